#!/bin/sh
# End-to-end test of the pump on QEMU: one command.
#
#   INFUSION_PUMP_TOCK_PATCH=<patch config(s)> boards/qemu_rv32_virt/scripts/e2e.sh
#
# Builds the kernel and the signed apps (build-image.sh), pumpctl and the
# host driver (boards/pump-e2e), signs the test prescription with pumpctl,
# then boots QEMU and drives it like a clinic and a patient would (see
# boards/pump-e2e/src/main.rs): clock, prescription, refill, basal, a patient
# bolus (Button 1), a second one inside the lockout, a clinician bolus the
# programmer orders (signed, verified and relayed by the capsule to the
# dosing app, which grants it), a power cut in the middle of that bolus (QEMU
# killed and started again on the same flash), an attacker's forged, replayed
# and unsigned commands (each refused), suspend and resume (notices to the
# dosing app), two watchdog resets (F10 hangs the kernel loop; the board's
# watchdog stops QEMU, which starts again on the same flash), a drug change, a
# motor stall, a full log read. After each reset it checks what came back.
# Finally it decodes the UART capture (all lives of the pump) with `pumpctl
# decode` and checks the outcome. Everything lands in
# boards/qemu_rv32_virt/target/pump/e2e.
set -eu
. "$(dirname "$0")/common.sh"
require_upstream
require_tool qemu-system-riscv32 "install QEMU >= 8.2.7 (docs/firmware-build.md §4)"

"$board_dir/scripts/build-image.sh"

echo "== host tools: pumpctl, pump-e2e"
(cd "$repo_dir" && cargo build --release --locked -p pumpctl)
(cd "$repo_dir/boards/pump-e2e" && cargo build --release --locked)
pumpctl=$repo_dir/target/release/pumpctl
driver=$repo_dir/boards/pump-e2e/target/release/pump-e2e

run=$out_dir/e2e
rm -rf "$run"
mkdir -p "$run"

# The clinic key the QEMU board trusts: pumpctl's simulator key, TEST-ONLY
# (its seed is public: host-tools/pumpctl/src/board.rs).
seed=$(printf 'pumpctl simulator TEST-ONLY key!' | od -An -tx1 | tr -d ' \n')
printf '# pumpctl Ed25519 clinic signing key (private seed, hex). Keep it secret.\n%s\n' "$seed" >"$run/clinic-TEST-ONLY.key"
"$pumpctl" rx sign "$board_dir/scripts/rx-e2e.toml" --key "$run/clinic-TEST-ONLY.key" \
    --device 0x00C0FFEE --serial 1 --out "$run/rx.install.bin"
# The drug change: the same prescription at twice the concentration, serial 2.
sed 's/^concentration_ug_per_ml = 50 .*/concentration_ug_per_ml = 100/' \
    "$board_dir/scripts/rx-e2e.toml" >"$run/rx-change.toml"
grep -q '^concentration_ug_per_ml = 100$' "$run/rx-change.toml" || die "rx-e2e.toml: no concentration to change"
"$pumpctl" rx sign "$run/rx-change.toml" --key "$run/clinic-TEST-ONLY.key" \
    --device 0x00C0FFEE --serial 2 --out "$run/rx-change.install.bin"

echo "== QEMU scenario"
timeout 900 "$driver" --out "$run" --kernel "$out_dir/kernel.elf" --apps "$out_dir/apps.bin" \
    --install "$run/rx.install.bin" --install-change "$run/rx-change.install.bin" \
    --clinic-key "$run/clinic-TEST-ONLY.key" --qemu qemu-system-riscv32

echo "== decoded outcome (pumpctl decode)"
"$pumpctl" decode "$run/uart.bin" >"$run/decoded.txt"
"$pumpctl" decode "$run/uart.bin" --json >"$run/decoded.jsonl"
grep -v ' AccessDenied \| code=RefillDue' "$run/decoded.txt" | tail -n 40

fail=0
check() { # description, command...
    what=$1
    shift
    if "$@"; then
        echo "PASS  $what"
    else
        echo "FAIL  $what"
        fail=1
    fi
}
# Live frames only (flags 0); the log read repeats some with FROM_LOG (flags 1).
live() { grep '"flags":0,' "$run/decoded.jsonl" | grep "\"kind\":\"$1\"" || true; }
count() { live "$1" | grep -c "${2:-.}" || true; }
text() { grep -a -c -F "$1" "$run/uart.bin" || true; }
eq() { [ "$1" -eq "$2" ]; }
ge() { [ "$1" -ge "$2" ]; }

check "no undecodable frame on the link" grep -q ' 0 bad frames' "$run/decoded.txt"
check "both prescriptions installed (PrescriptionInstalled serial 1, then 2)" sh -c "
    [ \"\$(grep '\"flags\":0,' '$run/decoded.jsonl' | grep '\"kind\":\"PrescriptionInstalled\"' | sed 's/.*\"serial\":\([0-9]*\).*/\1/' | tr '\n' ' ')\" = '1 2 ' ]"
check "basal delivered (DeliveryRecord Basal, volume > 0)" \
    ge "$(live DeliveryRecord | grep '"delivery_kind":"Basal"' | grep -vc '"volume_nl":0[,}]')" 1
check "patient bolus granted once (PatientBolusGranted)" eq "$(count PatientBolusGranted)" 1
check "patient bolus delivered in full (DeliveryRecord PatientBolus Completed 20000 nL)" \
    eq "$(live DeliveryRecord | grep '"delivery_kind":"PatientBolus"' | grep '"outcome":"Completed"' | grep -c '"volume_nl":20000')" 1
denied_text=$(text 'dosing: patient bolus denied: LockoutActive')
denied_events=$(live PatientBolusDenied | grep -c 'LockoutActive' || true)
check "second request refused by the lockout (dosing app; logged PatientBolusDenied LockoutActive)" \
    sh -c "[ $denied_text -eq 1 ] && [ $denied_events -eq 1 ]"
check "status answered (GetStatus -> StatusSnapshot)" ge "$(count StatusSnapshot)" 1
# The dosing app's own record (commands 26/27): none on a fresh board, then
# saved in the capsule once it knows what the catheter holds; after the crash
# (F9) the kernel restarts the app, which reads the record back.
check "dosing app read its record back at start: none yet (command 27)" \
    eq "$(text 'dosing: no record')" 1
# The dosing app's lives: its first, the restart after its crash, and one
# after each of the three resets of the pump.
check "dosing app saved its record in the capsule in each of its five lives (command 26)" \
    eq "$(text 'dosing: record saved')" 5
app_faults=$(live AppFault | grep -c '"app_id":1,' || true)
app_restarts=$(live AppRestarted | grep '"app_id":1,' | grep -c '"restart_count":1' || true)
check "the dosing app crashed once and the kernel restarted it (AppFault, AppRestarted count 1)" \
    sh -c "[ $app_faults -eq 1 ] && [ $app_restarts -eq 1 ] && [ $(count AppFault) -eq 1 ]"
check "the crash raised the medium AppFault alarm" \
    eq "$(live AlarmRaised | grep '"code":"AppFault"' | grep -c '"priority":"Medium"')" 1
check "the dosing app restored its record from the capsule after its crash and after each reset (command 27)" \
    eq "$(text 'dosing: record restored')" 4
# The programmer's clinician bolus goes through the relay: the dosing app
# takes it, grants it (its console line is written before it answers), and
# only then does the host get its Ack.
cb_ticket=$(grep -a -o 'dosing: relay: ClinicianBolus #[0-9]*' "$run/uart.bin" | head -n 1 | sed 's/.*#//')
cb_granted_at=$(grep -a -b -o "dosing: relay: answer #${cb_ticket:-none}: accepted" "$run/uart.bin" | head -n 1 | cut -d: -f1)
check "clinician bolus relayed to the dosing app and granted (dosing: relay: answer #${cb_ticket:-?}: accepted)" \
    test -n "$cb_ticket" -a -n "$cb_granted_at"
# Every programmer command is signed (protocol 1.1): the capsule logs each
# one it verified with its signer (1, the clinic) and counter; pump-e2e
# matched each Ack to its request's sequence and saw the bolus's Ack only
# after the dosing app's grant.
authenticated() { live CommandAuthenticated | grep '"signer":1,' | grep -c "\"command_kind\":\"$1\"" || true; }
check "every programmer command verified by the capsule (CommandAuthenticated: SetClock 1, Refill 2, ClinicianBolus 1, Suspend 1, Resume 1, ClearFault 1)" \
    sh -c "[ $(authenticated SetClock) -eq 1 ] && [ $(authenticated Refill) -eq 2 ] && [ $(authenticated ClinicianBolus) -eq 1 ] && [ $(authenticated Suspend) -eq 1 ] && [ $(authenticated Resume) -eq 1 ] && [ $(authenticated ClearFault) -eq 1 ]"
check "the forged bolus and the unsigned suspend refused Unauthenticated; the bolus and the resume signed before a reset and replayed after it refused Replayed (Nack)" \
    sh -c "[ $(live Nack | grep -c '"error":"Unauthenticated"') -eq 2 ] && [ $(live Nack | grep -c '"error":"Replayed"') -eq 3 ]"
check "each refusal audited by the capsule with its reason only (CommandRefused: 2 Unauthenticated, 3 Replayed)" \
    sh -c "[ $(count CommandRefused) -eq 5 ] && [ $(live CommandRefused | grep -c '"reason":"Unauthenticated"') -eq 2 ]"
check "the first prescription sent again after each reset refused ReplayedSerial (Nack, PrescriptionRejected)" \
    sh -c "[ $(live Nack | grep '"request_kind":"InstallPrescription"' | grep -c '"error":"ReplayedSerial"') -eq 3 ] && [ $(live PrescriptionRejected | grep -c '"reason":"ReplayedSerial"') -eq 3 ]"
check "no other Nack on the link" eq "$(count Nack)" 8
# The power cut fell in the middle of the clinician bolus: the restore
# closed it as Interrupted and counted the reserved steps it could not
# confirm as Unconfirmed; nothing ran it again, and the attacker's replay
# did not start another.
cb() { live DeliveryRecord | grep '"delivery_kind":"ClinicianBolus"' | grep "\"outcome\":\"$1\"" || true; }
cb_logged=$( (cb Interrupted; cb Unconfirmed; cb Checkpoint; cb Completed) | sed 's/.*"volume_nl":\([0-9]*\).*/\1/' | awk '{ s += $1 } END { print s + 0 }')
check "clinician bolus cut by the power cut: one Interrupted, never Completed or started again, ${cb_logged} nL logged of its 20000 nL (Interrupted + Unconfirmed)" \
    sh -c "[ $(cb Interrupted | wc -l) -eq 1 ] && [ $(cb Completed | wc -l) -eq 0 ] && [ $(live DeliveryRecord | grep '"delivery_kind":"ClinicianBolus"' | grep -vc '"outcome":"Interrupted"\|"outcome":"Unconfirmed"\|"outcome":"Checkpoint"') -eq 0 ] && [ $cb_logged -le 20000 ]"
check "Suspend and Resume relayed to the dosing app as notices by the capsule" \
    sh -c "[ $(text 'dosing: relay: Suspend #') -eq 1 ] && [ $(text 'dosing: relay: Resume #') -eq 1 ]"
check "between the new prescription and the refill the old drug ran on, capped by the new envelope (no DeliveryDenied)" \
    eq "$(count DeliveryDenied)" 0
check "both refills' notices reached the dosing app, the second one the drug change (dosing: relay: Refill #)" \
    eq "$(text 'dosing: relay: Refill #')" 2
check "the old drug left the catheter as a bridge bolus (DeliveryRecord Bridge, cut short by the stall)" \
    ge "$(live DeliveryRecord | grep -c '"delivery_kind":"Bridge"')" 1
check "stall raised a high-priority alarm (AlarmRaised MotorStall High)" \
    eq "$(live AlarmRaised | grep '"code":"MotorStall"' | grep -c '"priority":"High"')" 1
check "stall aborted the running delivery (DeliveryRecord Aborted)" \
    ge "$(live DeliveryRecord | grep -c '"outcome":"Aborted"')" 1
# The last three step reports (F7) are the ones just before and 8 s after
# the jam and at the end; earlier ones (after Resume) show the basal moving.
check "stall stopped the motor (driver disabled, no step after)" sh -c "
    grep -q 'stall detector: fault input asserted' '$run/kernel.log' &&
    grep -q 'motor driver disabled' '$run/kernel.log' &&
    [ \"\$(grep '^\[sim\] motor: ' '$run/kernel.log' | tail -n 3 | sed 's/^\[sim\] motor: \([0-9]*\) .*/\1/' | sort -u | wc -l)\" -eq 1 ]"
# The rogue app runs in each of the pump's four lives (the scenario lets it
# finish every time).
check "rogue refused every time, in each of the four lives (its own tally)" \
    sh -c "[ $(text 'rogue: done: 460 attempts, 460 refused, 0 accepted') -eq 4 ] && [ $(text 'rogue: done:') -eq 4 ]"
# Refusals after an app's first are folded into AccessDeniedRepeated with a
# count (SR-ROLE-005): the records and their counts add up to every attempt.
folded=$(live AccessDeniedRepeated | sed 's/.*"count":\([0-9]*\).*/\1/' | awk '{ s += $1 } END { print s + 0 }')
check "rogue audited every time, relay 22-25 and app record 26/27 included (AccessDenied + folded counts = 4 x 461)" \
    eq "$(($(count AccessDenied) + folded))" $((4 * 461))
check "the flood is folded: fewer than 4 x 100 audit records for 4 x 461 refusals" \
    sh -c "[ $(($(count AccessDenied) + $(count AccessDeniedRepeated))) -lt 400 ]"
check "every AccessDenied is rogue's (one app id, not a role id)" sh -c "
    ids=\$(grep '\"kind\":\"AccessDenied\"' '$run/decoded.jsonl' | sed 's/.*\"app_id\":\([0-9]*\).*/\1/' | sort -u)
    [ \"\$(echo \"\$ids\" | wc -l)\" -eq 1 ] && [ \"\$ids\" -ge 4026531840 ]"
check "unsigned and wrongly signed copies never ran" eq "$(($(text 'rogue-unsigned') + $(text 'rogue-badsig')))" 0
check "log read back to the end (LogChunkEnd more=false, FROM_LOG frames)" sh -c "
    grep -q '\"kind\":\"LogChunkEnd\".*' '$run/decoded.jsonl' &&
    grep '\"kind\":\"LogChunkEnd\"' '$run/decoded.jsonl' | tail -n 1 | grep -q '\"more\":false' &&
    grep -q '\"flags\":1,' '$run/decoded.jsonl'"
# The telemetry log lives in flash (docs/persistence.md §9): after each
# reset and at the end pump-e2e read it back whole from sequence 0 and found
# every event the pump had sent before (log-checks.txt, one line each); a
# LogGap there would only account for events that never reached the link.
check "the log read back after each of the 3 resets and at the end held every event sent before it, from sequence 0 ($(sed 's/^log \([^:]*\):.*all \([0-9]*\) events.*, \([0-9]*\) LogGap.*/\1: \2 events, \3 gaps/' "$run/log-checks.txt" 2>/dev/null | tr '\n' ';'))" sh -c "
    [ \$(grep -c '^log after reset [123]: .* read back from sequence 0 .*, all [0-9]* events sent before among them' '$run/log-checks.txt') -eq 3 ] &&
    [ \$(grep -c '^log at the end: .* read back from sequence 0 .*, all [0-9]* events sent before among them' '$run/log-checks.txt') -eq 1 ]"
check "the rogue app's floods pushed nothing out of the log (last LogChunkEnd: oldest_sequence 0)" sh -c "
    grep '\"kind\":\"LogChunkEnd\"' '$run/decoded.jsonl' | tail -n 1 | grep -q '\"oldest_sequence\":0[,}]'"

# The resets: every boot is logged with its reason (1 power-on: the first
# boot and the one after the power cut; 2 watchdog, twice in a row), and the
# second watchdog reset in a row raised RepeatedResets, which the clinic
# cleared (signed ClearFault).
starts=$(live KernelStarted | sed 's/.*"reset_reason":"\([A-Za-z]*\)".*"watchdog_resets":\([0-9]*\).*/\1:\2/' | tr '\n' ' ')
check "every boot logged with its reason (KernelStarted: $starts)" \
    test "$starts" = "PowerOn:0 PowerOn:0 Watchdog:1 Watchdog:2 "
check "the board's watchdog stopped the hung kernel loop twice (kernel log)" \
    eq "$(grep -c '^\[wdt\] the kernel loop was not fed for' "$run/kernel.log")" 2
check "the second watchdog reset in a row raised the medium RepeatedResets alarm, once, and the clinic cleared it" \
    sh -c "[ $(live AlarmRaised | grep '"code":"RepeatedResets"' | grep -c '"priority":"Medium"') -eq 1 ] && [ $(live AlarmRaised | grep -c '"code":"RepeatedResets"') -eq 1 ] && [ $(live AlarmCleared | grep -c '"code":"RepeatedResets"') -eq 1 ]"
# Self-tests (SR-STS-001/002): the power-on RAM test passed at each of the
# four boots, and the failure F11 injected is logged with its high alarm.
check "the power-on RAM test passed at every boot (kernel log: 4 of 4)" \
    eq "$(grep -c '^\[post\] RAM test over 1024 bytes: passed' "$run/kernel.log")" 4
check "an injected self-test failure logged (SelfTestFailed, program memory) with the high SelfTestFailed alarm" \
    sh -c "[ $(live SelfTestFailed | grep -c '"test":2') -eq 1 ] && [ $(live AlarmRaised | grep '"code":"SelfTestFailed"' | grep -c '"priority":"High"') -eq 1 ]"
# The hourly self-tests (SR-STS-005) ran at least once in the last life
# (their first run follows the restore), over a share of the kernel's code,
# and found nothing: the one SelfTestFailed of the run is F11's.
sts=$(grep '^\[sts\] hourly self-tests since boot: ' "$run/kernel.log" | tail -n 1 | sed 's/^\[sts\] hourly self-tests since boot: \([0-9]*\) runs, \([0-9]*\) bytes.*/\1 \2/')
check "the hourly self-tests ran in the last life and found nothing (kernel log: ${sts:-none} = runs, program bytes)" \
    sh -c "set -- ${sts:-0 0}; [ \$1 -ge 1 ] && [ \$2 -gt 0 ] && [ $(live SelfTestFailed | wc -l) -eq 1 ]"
# Log = motor steps: the DeliveryRecords of all lives (Unconfirmed included)
# against the mechanism's own count (kept across restarts, the last F7
# report). Each reset may count up to RESERVATION_STEPS (32) steps the motor
# did not make, never one it made without counting.
logged_nl=$(live DeliveryRecord | sed 's/.*"volume_nl":\([0-9]*\).*/\1/' | awk '{ s += $1 } END { print s + 0 }')
motor_steps=$(grep '^\[sim\] motor: ' "$run/kernel.log" | tail -n 1 | sed 's/^\[sim\] motor: \([0-9]*\) .*/\1/')
motor_nl=$((${motor_steps:-0} * 250))
resets=3
check "log = motor steps within the stated uncertainty: motor ${motor_nl} nL <= logged ${logged_nl} nL <= motor + ${resets} resets x 32 x 250 nL" \
    sh -c "[ ${motor_steps:-0} -gt 0 ] && [ $motor_nl -le $logged_nl ] && [ $logged_nl -le $((motor_nl + resets * 32 * 250)) ]"

echo "== memory use at the end (F8, kernel log)"
grep '^\[sim\] process \|^\[wdt\] longest\|^\[sim\] flash since\|^\[sim\] telemetry log region\|^\[sts\] ' "$run/kernel.log" || true

if [ "$fail" -ne 0 ]; then
    echo "e2e: FAILED (artifacts in $run)"
    exit 1
fi
echo "e2e: PASSED (artifacts in $run)"
