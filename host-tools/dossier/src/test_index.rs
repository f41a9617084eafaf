//! Which tests name which requirement IDs, over every Rust file of the tree.

use std::collections::{BTreeMap, BTreeSet};

use crate::testscan;
use crate::tree::{self, Tree};

/// Which tests name which requirement IDs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TestIndex {
    /// ID → test functions naming it (`path::fn`). Includes IDs that no
    /// requirement has.
    pub by_id: BTreeMap<String, BTreeSet<String>>,
    /// ID → places it is written that do not count (`path:line (why)`), for
    /// hints.
    pub outside_tests: BTreeMap<String, BTreeSet<String>>,
    /// Files that could not be parsed.
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
            match testscan::mentions(&src) {
                Ok(mentions) => {
                    for m in mentions {
                        match (&m.test_fn, &m.not_counted) {
                            (Some(f), None) => {
                                index
                                    .by_id
                                    .entry(m.id)
                                    .or_default()
                                    .insert(format!("{path}::{f}"));
                            }
                            (_, why) => {
                                let why =
                                    why.as_ref().map_or_else(String::new, |w| format!(" ({w})"));
                                index
                                    .outside_tests
                                    .entry(m.id)
                                    .or_default()
                                    .insert(format!("{path}:{}{why}", m.line));
                            }
                        }
                    }
                }
                Err(e) => index.errors.push(format!("{path}: {e}")),
            }
        }
        index
    }
}
