#!/usr/bin/env python3
"""A real client reads the fleet's Parquet: DuckDB (from PyPI) runs SQL over
a small sharded fleet and the results must equal pumpctl's own summaries
(total delivered per patient, patient boluses granted and denied, alarms by
code), and each shard must hold exactly its patients (i mod N).

Usage: duckdb_check.py PUMPCTL_BINARY WORK_DIR
Exit status 0 if every check passes, 1 if any fails (each failure printed).
Run by .ci/run; see docs/fleet.md.
"""

import json
import pathlib
import subprocess
import sys

import duckdb

PATIENTS = 8
DAYS = 40
SHARDS = 2

# Faults often enough that a small fleet raises several alarm codes.
PROFILE = """
initial_fill_ul = 20000
[refill]
interval_days = 30
volume_ul = 20000
late_percent = 50
late_days_max = 20
[[ptm]]
name = "light"
weight = 1
presses_per_day = 2
[[ptm]]
name = "heavy"
weight = 1
presses_per_day = 8
from = "06:00"
to = "23:00"
[faults]
stall = { per_1000_patient_years = 15000, duration_min = [30, 600] }
occlusion = { per_1000_patient_years = 15000, duration_min = [30, 600] }
power_loss = { per_1000_patient_years = 15000, duration_min = [1, 20] }
dosing_hang = { per_1000_patient_years = 15000, duration_min = [5, 60] }
forged_command = { per_1000_patient_years = 15000 }
replayed_command = { per_1000_patient_years = 15000 }
"""


def main() -> int:
    pumpctl, work = sys.argv[1], pathlib.Path(sys.argv[2])
    work.mkdir(parents=True, exist_ok=True)
    profile = work / "profile.toml"
    profile.write_text(PROFILE)
    out = work / "fleet"
    summaries = []
    for shard in range(SHARDS):
        subprocess.run(
            [pumpctl, "fleet", "--patients", str(PATIENTS), "--days", str(DAYS),
             "--seed", "5", "--profile", str(profile), "--shard", f"{shard}/{SHARDS}",
             "--out", str(out), "--quiet"],
            check=True, stdout=subprocess.DEVNULL)
        path = out / "summary" / f"shard={shard}" / "summary.json"
        summaries.append(json.loads(path.read_text()))

    expected = {p["patient_id"]: p for s in summaries for p in s["per_patient"]}
    failures = []

    def check(name, got, want):
        if got != want:
            failures.append(f"{name}: DuckDB {got!r} != pumpctl {want!r}")

    def table(name):
        return f"read_parquet('{out}/{name}/*/*.parquet', hive_partitioning = true)"

    con = duckdb.connect()
    check("patients", sorted(expected), list(range(PATIENTS)))

    rows = con.sql(f"""
        SELECT patient_id, sum(volume_nl)::BIGINT FROM {table('event')}
        WHERE kind = 'DeliveryRecord' GROUP BY patient_id""").fetchall()
    for pid, total in rows:
        check(f"patient {pid} delivered_nl (event)", total, expected[pid]["delivered_nl"])
    rows = con.sql(f"""
        SELECT patient_id, sum(total_nl)::BIGINT, sum(boluses_granted)::BIGINT,
               sum(boluses_denied)::BIGINT
        FROM {table('patient_day')} GROUP BY patient_id""").fetchall()
    check("patients in patient_day", len(rows), PATIENTS)
    for pid, total, granted, denied in rows:
        check(f"patient {pid} delivered_nl (patient_day)", total, expected[pid]["delivered_nl"])
        check(f"patient {pid} boluses granted (patient_day)", granted,
              expected[pid]["boluses_granted"])
        check(f"patient {pid} boluses denied (patient_day)", denied,
              expected[pid]["boluses_denied"])
    rows = con.sql(f"""
        SELECT patient_id,
               count(*) FILTER (WHERE kind = 'PatientBolusGranted'),
               count(*) FILTER (WHERE kind = 'PatientBolusDenied')
        FROM {table('event')} GROUP BY patient_id""").fetchall()
    for pid, granted, denied in rows:
        check(f"patient {pid} boluses granted (event)", granted, expected[pid]["boluses_granted"])
        check(f"patient {pid} boluses denied (event)", denied, expected[pid]["boluses_denied"])

    rows = con.sql(f"""
        SELECT patient_id, alarm_code, count(*) FROM {table('event')}
        WHERE kind = 'AlarmRaised' GROUP BY ALL""").fetchall()
    alarms = {}
    for pid, code, n in rows:
        alarms.setdefault(pid, {})[code] = n
    codes = set()
    for pid, p in expected.items():
        check(f"patient {pid} alarms by code", alarms.get(pid, {}), p["alarms_by_code"])
        codes.update(p["alarms_by_code"])
    # The fleet is a real test only if it raised more than the implant's
    # empty-reservoir alarms.
    if not {"MotorStall", "Occlusion"} & codes:
        failures.append(f"the fleet raised no stall or occlusion alarm: {sorted(codes)}")

    rows = con.sql(f"""
        SELECT shard, list(patient_id ORDER BY patient_id) FROM {table('patient')}
        GROUP BY shard ORDER BY shard""").fetchall()
    for shard, ids in rows:
        check(f"shard {shard} patients", ids, [i for i in range(PATIENTS) if i % SHARDS == shard])

    checked = len(expected)
    if failures:
        for f in failures:
            print(f"FAIL {f}")
        return 1
    print(f"duckdb {duckdb.__version__}: {checked} patients in {SHARDS} shards, "
          f"alarm codes {sorted(codes)}: Parquet equals pumpctl's summaries")
    return 0


if __name__ == "__main__":
    sys.exit(main())
