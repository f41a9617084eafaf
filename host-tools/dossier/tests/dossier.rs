//! The traceability check CI runs: one test per kind of problem, each
//! failing with the exact list of problems and what to do about them.

use std::path::Path;
use std::sync::OnceLock;

use pump_dossier::tree::DiskTree;
use pump_dossier::{report, Check, Dossier, Problem};

fn problems() -> &'static [Problem] {
    static PROBLEMS: OnceLock<Vec<Problem>> = OnceLock::new();
    PROBLEMS.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        Dossier::load(&DiskTree::new(root)).problems()
    })
}

fn assert_clean(check: Check) {
    if let Some(message) = report(problems(), check) {
        panic!("{message}");
    }
}

#[test]
fn requirement_entries_are_well_formed() {
    assert_clean(Check::Requirements);
}

#[test]
fn requirement_hazard_links_name_known_hazards() {
    assert_clean(Check::HazardLinks);
}

#[test]
fn hazards_file_is_well_formed_and_names_known_ids() {
    assert_clean(Check::HazardsFile);
}

#[test]
fn every_requirement_has_a_test() {
    assert_clean(Check::Untested);
}

#[test]
fn tests_name_only_known_requirements() {
    assert_clean(Check::UnknownInTests);
}

#[test]
fn every_rust_file_can_be_scanned() {
    assert_clean(Check::Scan);
}

#[test]
fn traceability_matrix_is_current() {
    assert_clean(Check::Traceability);
}

#[test]
fn soup_list_is_current() {
    assert_clean(Check::SoupStale);
}

#[test]
fn every_direct_dependency_has_a_soup_rationale() {
    assert_clean(Check::SoupRationale);
}

#[test]
fn reference_coverage_rows_name_verified_requirements_and_known_hazards() {
    assert_clean(Check::ReferenceCoverage);
}
