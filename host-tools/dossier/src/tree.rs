//! Read access to the repository, on disk or in memory (for tests).

use std::collections::BTreeMap;
use std::path::PathBuf;

/// A directory tree addressed by `/`-separated paths relative to its root
/// (`""` is the root).
pub trait Tree {
    /// A file's text, if it exists and is UTF-8.
    fn read(&self, rel: &str) -> Option<String>;
    /// Names of the subdirectories of `rel`, sorted.
    fn subdirs(&self, rel: &str) -> Vec<String>;
    /// Names of the files in `rel`, sorted.
    fn files(&self, rel: &str) -> Vec<String>;
}

fn child(rel: &str, name: &str) -> String {
    if rel.is_empty() {
        name.to_string()
    } else {
        format!("{rel}/{name}")
    }
}

/// Directories never scanned for Rust sources.
fn skipped_dir(path: &str, name: &str) -> bool {
    name == "target" || name == "fuzz" || name.starts_with('.') || path == "host-tools/dossier"
}

/// Every `.rs` file of the tree, sorted, skipping `target/`, hidden and
/// `fuzz/` directories and this crate (whose fixtures name fake IDs).
pub fn rust_files(tree: &dyn Tree) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![String::new()];
    while let Some(dir) = stack.pop() {
        for f in tree.files(&dir) {
            if f.ends_with(".rs") {
                out.push(child(&dir, &f));
            }
        }
        for d in tree.subdirs(&dir) {
            let path = child(&dir, &d);
            if !skipped_dir(&path, &d) {
                stack.push(path);
            }
        }
    }
    out.sort();
    out
}

/// Whether a file is under a directory named `tests`.
pub fn under_tests_dir(path: &str) -> bool {
    let mut parts: Vec<&str> = path.split('/').collect();
    parts.pop();
    parts.contains(&"tests")
}

/// The repository on disk.
pub struct DiskTree {
    root: PathBuf,
}

impl DiskTree {
    /// A tree rooted at `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        DiskTree { root: root.into() }
    }

    fn entries(&self, rel: &str, dirs: bool) -> Vec<String> {
        let Ok(read) = std::fs::read_dir(self.root.join(rel)) else {
            return Vec::new();
        };
        let mut out: Vec<String> = read
            .filter_map(Result::ok)
            .filter(|e| {
                e.file_type()
                    .is_ok_and(|t| if dirs { t.is_dir() } else { t.is_file() })
            })
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        out.sort();
        out
    }
}

impl Tree for DiskTree {
    fn read(&self, rel: &str) -> Option<String> {
        std::fs::read_to_string(self.root.join(rel)).ok()
    }

    fn subdirs(&self, rel: &str) -> Vec<String> {
        self.entries(rel, true)
    }

    fn files(&self, rel: &str) -> Vec<String> {
        self.entries(rel, false)
    }
}

/// An in-memory tree of files (directories are implied by paths).
#[derive(Clone, Debug, Default)]
pub struct MemTree {
    files: BTreeMap<String, String>,
}

impl MemTree {
    /// A tree holding these `(path, text)` files.
    pub fn new(files: &[(&str, &str)]) -> Self {
        MemTree {
            files: files
                .iter()
                .map(|(p, t)| (p.to_string(), t.to_string()))
                .collect(),
        }
    }

    /// Adds or replaces a file.
    pub fn insert(&mut self, path: &str, text: &str) {
        self.files.insert(path.to_string(), text.to_string());
    }

    fn children(&self, rel: &str) -> impl Iterator<Item = (&str, bool)> {
        let prefix = if rel.is_empty() {
            String::new()
        } else {
            format!("{rel}/")
        };
        self.files.keys().filter_map(move |k| {
            let rest = k.strip_prefix(&prefix)?;
            Some(match rest.split_once('/') {
                Some((dir, _)) => (dir, true),
                None => (rest, false),
            })
        })
    }
}

impl Tree for MemTree {
    fn read(&self, rel: &str) -> Option<String> {
        self.files.get(rel).cloned()
    }

    fn subdirs(&self, rel: &str) -> Vec<String> {
        let mut out: Vec<String> = self
            .children(rel)
            .filter(|(_, d)| *d)
            .map(|(n, _)| n.to_string())
            .collect();
        out.dedup();
        out
    }

    fn files(&self, rel: &str) -> Vec<String> {
        self.children(rel)
            .filter(|(_, d)| !*d)
            .map(|(n, _)| n.to_string())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walks_rust_files_with_skips() {
        let tree = MemTree::new(&[
            ("a.rs", ""),
            ("x/target/b.rs", ""),
            ("target/c.rs", ""),
            ("fuzz/fuzz_targets/d.rs", ""),
            (".git/e.rs", ""),
            ("host-tools/dossier/src/f.rs", ""),
            ("host-tools/pumpctl/src/g.rs", ""),
            ("protocol/tests/h.rs", ""),
            ("protocol/README.md", ""),
        ]);
        assert_eq!(
            rust_files(&tree),
            ["a.rs", "host-tools/pumpctl/src/g.rs", "protocol/tests/h.rs"]
        );
        assert!(under_tests_dir("protocol/tests/h.rs"));
        assert!(under_tests_dir("protocol/tests/common/mod.rs"));
        assert!(!under_tests_dir("protocol/src/tests.rs"));
    }
}
