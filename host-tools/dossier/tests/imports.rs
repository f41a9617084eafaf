//! No import circles: in no crate of the root workspace does a source file
//! reach itself through the files it imports (the rules are in
//! `pump_dossier::imports`). A circle is reported with the line of each
//! import on it, e.g. `core.rs:26 → record.rs:53 → core.rs`; break it by
//! moving what both sides need to where it belongs, so that the imports
//! point one way.

use std::path::{Path, PathBuf};

use pump_dossier::imports::{workspace_cycles, workspace_members};
use pump_dossier::tree::DiskTree;

/// Workspace members this check leaves out: none. A crate put here must say
/// why, and must still be a workspace member.
const NOT_CHECKED: &[&str] = &[];

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/imports")
}

/// Every circle in `members` of the tree at `root`, one line each.
fn circles(root: &Path, members: &[String]) -> Vec<String> {
    workspace_cycles(&DiskTree::new(root), members)
        .unwrap_or_else(|e| panic!("cannot scan the imports: {e}"))
        .iter()
        .map(ToString::to_string)
        .collect()
}

#[test]
fn no_crate_of_the_workspace_has_an_import_circle() {
    let root = repo_root();
    let members = workspace_members(&DiskTree::new(&root)).unwrap();
    for left_out in NOT_CHECKED {
        assert!(
            members.iter().any(|m| m == left_out),
            "{left_out} is no longer a workspace member: take it off NOT_CHECKED"
        );
    }
    let checked: Vec<String> = members
        .into_iter()
        .filter(|m| !NOT_CHECKED.contains(&m.as_str()))
        .collect();
    assert!(checked.iter().any(|m| m == "apps/dosing-core"));
    let found = circles(&root, &checked);
    assert!(
        found.is_empty(),
        "import circles (each file imports the next at the line given):\n  {}",
        found.join("\n  ")
    );
}

#[test]
fn a_fixture_with_a_circle_fails_and_names_it() {
    let found = circles(&fixtures(), &["cyclic".to_string()]);
    assert_eq!(
        found,
        ["cyclic/src/alarms.rs:6 → cyclic/src/delivery.rs:1 → cyclic/src/motor.rs:4 → cyclic/src/alarms.rs"]
    );
}

#[test]
fn the_same_modules_without_the_circle_pass() {
    assert_eq!(
        circles(&fixtures(), &["acyclic".to_string()]),
        Vec::<String>::new()
    );
}
