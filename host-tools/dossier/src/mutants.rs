//! Which mutants the tests of each requirement caught: the mutation runs of
//! `docs/safety/verification.md` §3, kept in `docs/safety/mutants.tsv`.
//!
//! `cargo-mutants` records, for every mutant, its outcome and the log of the
//! `cargo test` that judged it. A caught mutant's log names the test
//! functions that failed (`test … ... FAILED`). `pump-dossier import-mutants`
//! reads a run's `mutants.out/` into the TSV, one row per mutant; the matrix
//! then says, per requirement, how many mutants the tests naming it caught.
//!
//! The count is a lower bound: `cargo test` stops at the first test binary
//! that fails, so a mutant caught by tests in two binaries names only the
//! first binary's tests.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde_json::Value;

use crate::test_index::TestIndex;

/// Where the imported runs are kept.
pub const MUTANTS_PATH: &str = "docs/safety/mutants.tsv";

const HEADER: &str = "run\toutcome\tmutant\tcaught_by";

/// What `cargo-mutants` decided about one mutant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Outcome {
    /// A test failed with the mutant in place.
    Caught,
    /// Every test passed with the mutant in place.
    Missed,
    /// The tests ran past the time limit.
    Timeout,
    /// The mutant did not build.
    Unviable,
}

impl Outcome {
    fn from_summary(summary: &str) -> Option<Outcome> {
        match summary {
            "CaughtMutant" => Some(Outcome::Caught),
            "MissedMutant" => Some(Outcome::Missed),
            "Timeout" => Some(Outcome::Timeout),
            "Unviable" => Some(Outcome::Unviable),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Outcome::Caught => "caught",
            Outcome::Missed => "missed",
            Outcome::Timeout => "timeout",
            Outcome::Unviable => "unviable",
        }
    }

    fn parse(s: &str) -> Option<Outcome> {
        [
            Outcome::Caught,
            Outcome::Missed,
            Outcome::Timeout,
            Outcome::Unviable,
        ]
        .into_iter()
        .find(|o| o.name() == s)
    }
}

/// One mutant of one run.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct MutantRecord {
    /// The run's label (`run-1`, …), as `verification.md` names it.
    pub run: String,
    /// What the run decided.
    pub outcome: Outcome,
    /// `cargo-mutants`' name: `file:line:col: replace … with …`.
    pub name: String,
    /// Test functions (last path segment) that failed, for a caught mutant.
    pub caught_by: Vec<String>,
}

/// Why a run or the TSV could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MutantsError {
    /// `outcomes.json` is not the JSON `cargo-mutants` writes.
    Outcomes(String),
    /// A caught mutant's log is missing.
    MissingLog(String),
    /// A TSV line is malformed.
    Tsv {
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        why: String,
    },
    /// A run label that would break the TSV.
    BadRunLabel(String),
}

impl fmt::Display for MutantsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MutantsError::Outcomes(why) => write!(f, "outcomes.json: {why}"),
            MutantsError::MissingLog(path) => {
                write!(f, "the log {path} of a caught mutant is missing")
            }
            MutantsError::Tsv { line, why } => write!(f, "{MUTANTS_PATH} line {line}: {why}"),
            MutantsError::BadRunLabel(l) => {
                write!(f, "run label {l:?}: use letters, digits, '-' and '.' only")
            }
        }
    }
}

/// The test functions a `cargo test` log reports as failed, by their last
/// path segment, sorted and without repeats.
pub fn failed_tests(log: &str) -> Vec<String> {
    let set: BTreeSet<String> = log
        .lines()
        .filter_map(|l| l.strip_prefix("test ")?.strip_suffix(" ... FAILED"))
        .map(|path| path.rsplit("::").next().unwrap_or(path).trim().to_string())
        .filter(|name| !name.is_empty() && !name.contains(char::is_whitespace))
        .collect();
    set.into_iter().collect()
}

/// Reads one run: `outcomes` is its `outcomes.json`, `read_log` reads a path
/// relative to its `mutants.out/`.
pub fn import(
    run: &str,
    outcomes: &str,
    read_log: impl Fn(&str) -> Option<String>,
) -> Result<Vec<MutantRecord>, MutantsError> {
    if run.is_empty()
        || !run
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
    {
        return Err(MutantsError::BadRunLabel(run.to_string()));
    }
    let json: Value =
        serde_json::from_str(outcomes).map_err(|e| MutantsError::Outcomes(e.to_string()))?;
    let list = json
        .get("outcomes")
        .and_then(Value::as_array)
        .ok_or_else(|| MutantsError::Outcomes("no `outcomes` list".into()))?;
    let mut records = Vec::new();
    for entry in list {
        // The baseline (the unmutated tree) has no `Mutant` scenario.
        let Some(mutant) = entry.get("scenario").and_then(|s| s.get("Mutant")) else {
            continue;
        };
        let name = mutant
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| MutantsError::Outcomes("a mutant without a name".into()))?;
        let summary = entry.get("summary").and_then(Value::as_str).unwrap_or("");
        let outcome = Outcome::from_summary(summary).ok_or_else(|| {
            MutantsError::Outcomes(format!("{name}: unknown outcome {summary:?}"))
        })?;
        let caught_by = if outcome == Outcome::Caught {
            let log_path = entry.get("log_path").and_then(Value::as_str).unwrap_or("");
            let log =
                read_log(log_path).ok_or_else(|| MutantsError::MissingLog(log_path.into()))?;
            failed_tests(&log)
        } else {
            Vec::new()
        };
        records.push(MutantRecord {
            run: run.to_string(),
            outcome,
            name: name.replace(['\t', '\n'], " "),
            caught_by,
        });
    }
    records.sort();
    Ok(records)
}

/// Parses the TSV (an empty text is no runs).
pub fn parse_tsv(text: &str) -> Result<Vec<MutantRecord>, MutantsError> {
    let mut records = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line_no = i + 1;
        if line.is_empty() || line.starts_with('#') || line == HEADER {
            continue;
        }
        let fields: Vec<&str> = line.split('\t').collect();
        let [run, outcome, name, caught_by] = fields[..] else {
            return Err(MutantsError::Tsv {
                line: line_no,
                why: format!("{} fields, expected 4", fields.len()),
            });
        };
        let outcome = Outcome::parse(outcome).ok_or_else(|| MutantsError::Tsv {
            line: line_no,
            why: format!("unknown outcome {outcome:?}"),
        })?;
        records.push(MutantRecord {
            run: run.to_string(),
            outcome,
            name: name.to_string(),
            caught_by: caught_by
                .split(',')
                .filter(|t| !t.is_empty())
                .map(str::to_string)
                .collect(),
        });
    }
    Ok(records)
}

/// The TSV of `records`, sorted; `parse_tsv` reads it back unchanged.
pub fn render_tsv(records: &[MutantRecord]) -> String {
    let mut sorted = records.to_vec();
    sorted.sort();
    let mut o = String::from(
        "# Generated by `pump-dossier import-mutants RUN DIR`; see verification.md §3.\n",
    );
    o.push_str(HEADER);
    o.push('\n');
    for r in sorted {
        o.push_str(&format!(
            "{}\t{}\t{}\t{}\n",
            r.run,
            r.outcome.name(),
            r.name,
            r.caught_by.join(",")
        ));
    }
    o
}

/// `records` with the run `run` replaced by `new`.
pub fn replace_run(
    records: &[MutantRecord],
    run: &str,
    new: Vec<MutantRecord>,
) -> Vec<MutantRecord> {
    let mut out: Vec<_> = records.iter().filter(|r| r.run != run).cloned().collect();
    out.extend(new);
    out.sort();
    out
}

/// Per requirement: the mutants (`run: name`) that a test naming it caught.
pub fn caught_per_requirement(
    tests: &TestIndex,
    records: &[MutantRecord],
) -> BTreeMap<String, BTreeSet<String>> {
    // Test function name → the requirements its tests verify. A name shared
    // by tests in two files counts for both: the log gives no path.
    let mut ids_of_fn: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for (id, fns) in &tests.by_id {
        for path in fns {
            let name = path.rsplit("::").next().unwrap_or(path);
            ids_of_fn.entry(name).or_default().insert(id.as_str());
        }
    }
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for r in records.iter().filter(|r| r.outcome == Outcome::Caught) {
        for t in &r.caught_by {
            for id in ids_of_fn.get(t.as_str()).into_iter().flatten() {
                out.entry((*id).to_string())
                    .or_default()
                    .insert(format!("{}: {}", r.run, r.name));
            }
        }
    }
    out
}

/// Outcome counts per run, in run order.
pub fn run_counts(records: &[MutantRecord]) -> BTreeMap<&str, BTreeMap<Outcome, usize>> {
    let mut out: BTreeMap<&str, BTreeMap<Outcome, usize>> = BTreeMap::new();
    for r in records {
        *out.entry(r.run.as_str())
            .or_default()
            .entry(r.outcome)
            .or_default() += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = "running 3 tests\n\
test sr_env_001_refuses_rate ... ok\n\
test pump::envelope::tests::sr_env_004_lockout ... FAILED\n\
test oracle_holds_from_a_running_pump ... FAILED\n\
test oracle_holds_from_a_running_pump ... FAILED\n\
failures:\n    sr_env_004_lockout\n";

    fn outcomes() -> String {
        r#"{"outcomes": [
            {"scenario": "Baseline", "summary": "Success", "log_path": "log/baseline.log"},
            {"scenario": {"Mutant": {"name": "src/a.rs:1:1: replace f -> bool with true"}},
             "summary": "CaughtMutant", "log_path": "log/a.log"},
            {"scenario": {"Mutant": {"name": "src/b.rs:2:2: replace < with <="}},
             "summary": "MissedMutant", "log_path": "log/b.log"},
            {"scenario": {"Mutant": {"name": "src/c.rs:3:3: delete !"}},
             "summary": "Unviable", "log_path": "log/c.log"}
        ]}"#
        .to_string()
    }

    fn read_log(path: &str) -> Option<String> {
        (path == "log/a.log").then(|| LOG.to_string())
    }

    #[test]
    fn failed_tests_are_read_from_a_cargo_test_log_by_their_last_segment() {
        assert_eq!(
            failed_tests(LOG),
            vec!["oracle_holds_from_a_running_pump", "sr_env_004_lockout"]
        );
        assert!(failed_tests("test x ... ok\n").is_empty());
    }

    #[test]
    fn a_run_imports_with_outcomes_and_the_catching_tests_and_round_trips() {
        let records = import("run-9", &outcomes(), read_log).unwrap();
        assert_eq!(records.len(), 3, "the baseline is not a mutant");
        let caught: Vec<_> = records
            .iter()
            .filter(|r| r.outcome == Outcome::Caught)
            .collect();
        assert_eq!(caught.len(), 1);
        assert_eq!(caught[0].caught_by.len(), 2);
        assert!(records
            .iter()
            .any(|r| r.outcome == Outcome::Missed && r.caught_by.is_empty()));
        assert_eq!(parse_tsv(&render_tsv(&records)).unwrap(), records);
        let counts = run_counts(&records);
        assert_eq!(counts["run-9"][&Outcome::Unviable], 1);
    }

    #[test]
    fn bad_runs_and_bad_tsv_lines_are_typed_errors() {
        assert!(matches!(
            import("run 9", &outcomes(), read_log),
            Err(MutantsError::BadRunLabel(_))
        ));
        assert!(matches!(
            import("r", "{}", read_log),
            Err(MutantsError::Outcomes(_))
        ));
        assert!(matches!(
            import("r", &outcomes(), |_| None),
            Err(MutantsError::MissingLog(_))
        ));
        assert!(matches!(
            parse_tsv("r\tcaught\tonly three"),
            Err(MutantsError::Tsv { line: 1, .. })
        ));
        assert!(matches!(
            parse_tsv("r\tlost\tm\t"),
            Err(MutantsError::Tsv { line: 1, .. })
        ));
    }

    #[test]
    fn a_requirement_is_credited_with_the_mutants_its_tests_caught_and_no_others() {
        let mut tests = TestIndex::default();
        tests
            .by_id
            .entry("SR-ENV-004".into())
            .or_default()
            .insert("capsules/infusion-core/src/pump/envelope.rs::sr_env_004_lockout".into());
        tests
            .by_id
            .entry("SR-ENV-001".into())
            .or_default()
            .insert("capsules/infusion-core/tests/envelope.rs::sr_env_001_refuses_rate".into());
        let records = import("run-9", &outcomes(), read_log).unwrap();
        let credited = caught_per_requirement(&tests, &records);
        assert_eq!(credited["SR-ENV-004"].len(), 1);
        assert!(credited["SR-ENV-004"]
            .iter()
            .next()
            .unwrap()
            .starts_with("run-9: src/a.rs"));
        assert!(!credited.contains_key("SR-ENV-001"), "its test passed");
        let replaced = replace_run(&records, "run-9", Vec::new());
        assert!(caught_per_requirement(&tests, &replaced).is_empty());
    }
}
