//! The syscall ABI has one source (`pump-abi`); these tests fail when the
//! capsule's behaviour or a table in the docs says otherwise.
mod support;

use infusion_core::abi::{self, Callers, COMMANDS};
use infusion_core::CommandResult;
use pump_protocol::ErrorCode;
use support::*;

/// Rows `| <num> | <name> | <callers> |…` of the first table after `marker`
/// (or of every such row in `text` when `marker` is `None`).
fn table_rows(text: &str, line_prefix: &str, marker: Option<&str>) -> Vec<Vec<String>> {
    let start = marker.map_or(0, |m| text.find(m).expect("table marker"));
    let mut rows = Vec::new();
    let mut in_table = false;
    for line in text[start..].lines() {
        let Some(row) = line.strip_prefix(line_prefix) else {
            if in_table {
                break;
            }
            continue;
        };
        let row = row.trim();
        if !row.starts_with('|') {
            if in_table && marker.is_some() {
                break;
            }
            continue;
        }
        in_table = true;
        let cells: Vec<String> = row
            .trim_matches('|')
            .split('|')
            .map(|c| c.trim().to_string())
            .collect();
        if cells.first().is_some_and(|c| c.parse::<u16>().is_ok()) {
            rows.push(cells);
        }
    }
    rows
}

fn expected_rows() -> Vec<(u16, &'static str, &'static str)> {
    COMMANDS
        .iter()
        .map(|c| (c.num, c.name, c.callers.doc_name()))
        .collect()
}

fn as_triples(rows: &[Vec<String>]) -> Vec<(u16, String, String)> {
    rows.iter()
        .map(|r| (r[0].parse().unwrap(), r[1].clone(), r[2].clone()))
        .collect()
}

fn assert_same(doc: &str, found: Vec<(u16, String, String)>) {
    let expected: Vec<(u16, String, String)> = expected_rows()
        .into_iter()
        .map(|(n, name, callers)| (n, name.to_string(), callers.to_string()))
        .collect();
    assert_eq!(found, expected, "{doc} disagrees with pump_abi::COMMANDS");
}

#[test]
fn crate_docs_command_table_is_the_abi() {
    let rows = table_rows(include_str!("../src/lib.rs"), "//!", None);
    assert_same("infusion-core's crate docs", as_triples(&rows));
}

#[test]
fn protocol_spec_command_table_is_the_abi() {
    let spec = include_str!("../../../docs/protocol.md");
    let rows = table_rows(spec, "", Some("<!-- abi-commands"));
    assert_same("docs/protocol.md §9.1", as_triples(&rows));
}

#[test]
fn protocol_spec_app_ids_and_fault_codes_are_the_abi() {
    let spec = include_str!("../../../docs/protocol.md");
    let ids: Vec<u32> = table_rows(spec, "", Some("<!-- abi-app-ids"))
        .iter()
        .map(|r| r[0].parse().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            abi::app_id::DOSING,
            abi::app_id::TELEMETRY,
            abi::app_id::UNIDENTIFIED
        ]
    );
    assert_eq!(support::DOSING.0, abi::app_id::DOSING);
    assert_eq!(support::TELEMETRY.0, abi::app_id::TELEMETRY);
    let codes: Vec<u16> = table_rows(spec, "", Some("<!-- abi-fault-codes"))
        .iter()
        .map(|r| r[0].parse().unwrap())
        .collect();
    assert_eq!(codes, [abi::fault_code::UNSPECIFIED]);
}

/// The roles the core enforces are the ones the ABI declares: every command
/// is called by every kind of app, and exactly the undeclared callers get
/// `NotPermitted` (SR-ROLE-001..003).
#[test]
fn sr_role_003_enforced_callers_are_the_declared_callers() {
    for spec in COMMANDS {
        for app in [DOSING, TELEMETRY, ROGUE] {
            let mut core = running(0);
            let mut rw = [0u8; 2048];
            let result = core.command(app, u32::from(spec.num), 0, 0, &[], &mut rw, 1_000);
            let refused = result == CommandResult::Failure(ErrorCode::NotPermitted);
            let declared = match spec.callers {
                Callers::Any => true,
                Callers::Dosing => app == DOSING,
                Callers::Telemetry => app == TELEMETRY,
                Callers::DosingOrTelemetry => app == DOSING || app == TELEMETRY,
            };
            assert_eq!(
                !refused, declared,
                "command {} ({}) from app {}: {result:?}",
                spec.num, spec.name, app.0
            );
        }
    }
}

#[test]
fn sr_role_004_numbers_past_the_table_are_unsupported_for_everyone() {
    let past = u32::try_from(COMMANDS.len()).unwrap();
    for num in [past, past + 1, 0xFFFF, 0x1_0000, u32::MAX] {
        for app in [DOSING, TELEMETRY, ROGUE] {
            let mut core = running(0);
            let before = core.safety_state();
            let result = core.command(app, num, 0, 0, &[], &mut [], 1_000);
            assert_eq!(result, CommandResult::Failure(ErrorCode::NoSupport));
            assert_eq!(core.safety_state(), before);
        }
    }
}

/// The Tock error each protocol error reaches an app as (the capsule's
/// `to_tock_error` uses this one mapping): role violations look like an
/// absent driver, state conflicts are BUSY/OFF, limits SIZE/INVAL,
/// verification failures RESERVE, unknown commands NOSUPPORT.
#[test]
fn tock_error_names_follow_the_documented_classes() {
    use infusion_core::tock_error_name;
    use pump_protocol::ErrorCode::*;
    let expected = [
        (NotPermitted, "NODEVICE"),
        (NoSupport, "NOSUPPORT"),
        (UnknownKind, "NOSUPPORT"),
        (Busy, "BUSY"),
        (LockoutActive, "BUSY"),
        (Suspended, "OFF"),
        (FaultActive, "OFF"),
        (NotReady, "OFF"),
        (NoPrescription, "RESERVE"),
        (InvalidSignature, "RESERVE"),
        (WrongDevice, "RESERVE"),
        (ReplayedSerial, "RESERVE"),
        (MalformedPrescription, "RESERVE"),
        (ReservoirInsufficient, "SIZE"),
        (DailyLimitReached, "SIZE"),
        (BolusCountReached, "SIZE"),
        (BolusAboveEnvelope, "INVAL"),
        (InvalidArgument, "INVAL"),
    ];
    for (error, name) in expected {
        assert_eq!(tock_error_name(error), name, "{error:?}");
    }
}

/// The one reader of read-command answers: what `FULL_STATUS` wrote is
/// decoded back; a refusal keeps its own error; a length past the buffer,
/// bytes that do not decode and an answer of the wrong shape are
/// `InvalidArgument`.
#[test]
fn read_commands_answers_decode_through_one_reader() {
    use infusion_core::command::FULL_STATUS;
    use infusion_core::CommandResult;
    use pump_protocol::{ErrorCode, StatusSnapshot};
    let mut core = support::running(0);
    let mut rw = [0u8; 128];
    let answer = core.command(
        support::TELEMETRY,
        u32::from(FULL_STATUS),
        0,
        0,
        &[],
        &mut rw,
        0,
    );
    let status: StatusSnapshot = answer.read_postcard(&rw).unwrap();
    assert_eq!(status, core.status(0));
    let refused = CommandResult::Failure(ErrorCode::NotPermitted);
    assert_eq!(
        refused.read_postcard::<StatusSnapshot>(&rw),
        Err(ErrorCode::NotPermitted)
    );
    for bad in [
        CommandResult::SuccessU32(rw.len() as u32 + 1),
        CommandResult::SuccessU32(0),
        CommandResult::Success,
        CommandResult::SuccessU32U32(1, 1),
    ] {
        assert_eq!(
            bad.read_postcard::<StatusSnapshot>(&rw),
            Err(ErrorCode::InvalidArgument),
            "{bad:?}"
        );
    }
}
