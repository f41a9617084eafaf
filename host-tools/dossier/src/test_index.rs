//! Which tests name which requirement IDs, over every Rust file of the tree.

use std::collections::{BTreeMap, BTreeSet};

use crate::rustscan;
use crate::tree::{self, Tree};

/// Which tests name which requirement IDs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TestIndex {
    /// ID → tests naming it (`path::fn`, or `path` for file-level code under
    /// `tests/`). Includes IDs that no requirement has.
    pub by_id: BTreeMap<String, BTreeSet<String>>,
    /// ID → places it is mentioned outside any test (`path:line`), for hints.
    pub outside_tests: BTreeMap<String, BTreeSet<String>>,
    /// Files that could not be scanned.
    pub errors: Vec<String>,
}

impl TestIndex {
    /// Scans every Rust file of the tree.
    pub fn scan(tree: &dyn Tree) -> TestIndex {
        let mut index = TestIndex::default();
        for path in tree::rust_files(tree) {
            let Some(src) = tree.read(&path) else {
                index.errors.push(format!("{path}: not readable as UTF-8"));
                continue;
            };
            match rustscan::mentions(&src, tree::under_tests_dir(&path)) {
                Ok(mentions) => {
                    for m in mentions {
                        if m.in_test {
                            let label = match &m.test_fn {
                                Some(f) => format!("{path}::{f}"),
                                None => path.clone(),
                            };
                            index.by_id.entry(m.id).or_default().insert(label);
                        } else {
                            index
                                .outside_tests
                                .entry(m.id)
                                .or_default()
                                .insert(format!("{path}:{}", m.line));
                        }
                    }
                }
                Err(e) => index.errors.push(format!("{path}: {e}")),
            }
        }
        // A file-level entry adds nothing when a function of the same file
        // already names the ID.
        for tests in index.by_id.values_mut() {
            let named_by_fn: BTreeSet<String> = tests
                .iter()
                .filter_map(|t| t.split_once("::").map(|(path, _)| path.to_string()))
                .collect();
            tests.retain(|t| !named_by_fn.contains(t));
        }
        index
    }
}
