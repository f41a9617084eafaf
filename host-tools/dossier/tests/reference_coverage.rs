//! `docs/safety/reference-coverage.md` is checked against the requirements,
//! the tests and the hazards: the fixture in `tests/fixtures/coverage` has a
//! row naming an unverified SR, one naming an SR that does not exist, one
//! naming a hazard without a row, one with a status that is not one of the
//! allowed words, and a stale summary; each is reported, and the row that
//! names a verified SR is not.

use std::path::Path;

use pump_dossier::coverage::COVERAGE_PATH;
use pump_dossier::tree::DiskTree;
use pump_dossier::{Check, Dossier};

#[test]
fn rows_naming_unknown_or_unverified_srs_or_a_bad_status_fail_the_check() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/coverage");
    let problems: Vec<String> = Dossier::load(&DiskTree::new(root))
        .problems()
        .into_iter()
        .filter(|p| p.check == Check::ReferenceCoverage)
        .map(|p| p.message)
        .collect();
    let expected_starts = [
        format!("{COVERAGE_PATH} line 7: GIP 1.4.9 names SR-ENV-009, which is not in docs/safety/requirements.md."),
        format!("{COVERAGE_PATH} line 6: GIP 1.4.3 names SR-ENV-002, which no test verifies."),
        format!("{COVERAGE_PATH} line 8: GIP 1.4.5 names HAZ-077, which has no row in docs/safety/hazards.md"),
        format!("{COVERAGE_PATH} line 9: GIP 1.1.8: status `partly` is not one of applies, adapted, deviation, gap, n/a"),
    ];
    for start in &expected_starts {
        assert!(
            problems.iter().any(|p| p.starts_with(start.as_str())),
            "missing {start:?} in {problems:#?}"
        );
    }
    assert_eq!(problems.len(), expected_starts.len(), "{problems:#?}");
    assert!(
        problems.iter().all(|p| !p.contains("GIP 1.4.4")),
        "a row naming a verified SR is fine: {problems:#?}"
    );
}

#[test]
fn a_summary_that_differs_from_the_rows_fails_the_check() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/coverage");
    let mut dossier = Dossier::load(&DiskTree::new(root));
    // The fixture's status error hides the summary check; drop that row.
    dossier.coverage.errors.clear();
    let stale: Vec<String> = dossier
        .problems()
        .into_iter()
        .filter(|p| p.check == Check::ReferenceCoverage && p.message.contains("summary"))
        .map(|p| p.message)
        .collect();
    assert_eq!(stale.len(), 1, "{stale:#?}");
    assert!(stale[0].contains("| applies | 3 | 0 |\n| adapted | 0 | 0 |\n| deviation | 1 | 0 |"));
}
