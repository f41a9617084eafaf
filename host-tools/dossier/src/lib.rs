//! The safety dossier's generator and traceability check.
//!
//! Inputs (all in the repository):
//! - `docs/safety/requirements.md`: requirement entries; their `- Hazards:`
//!   lines are the single source of the requirement ↔ hazard link.
//! - `docs/safety/hazards.md`: the hazard table (names requirement *areas*
//!   only).
//! - every `.rs` file: which tests name which requirement.
//! - every `Cargo.lock` and `docs/safety/soup-rationale.toml`: the SOUP list.
//! - `docs/safety/reference-coverage.md`: the answer to each reference
//!   requirement (GIP v1.0, Open PCA 1.0.0), checked against the others.
//! - `docs/safety/mutants.tsv` (optional): the recorded mutation runs, for
//!   the mutants each requirement's tests caught.
//!
//! Outputs: `docs/safety/traceability.md` and `docs/safety/soup.md`, written
//! by `cargo run -p pump-dossier -- regenerate` and checked for staleness by
//! `cargo test -p pump-dossier`.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod coverage;
pub mod hazards;
pub mod imports;
pub mod mutants;
pub mod requirements;
pub mod rustscan;
pub mod soup;
pub mod test_index;
pub mod testscan;
pub mod trace;
pub mod tree;

use std::collections::BTreeSet;
use std::fmt;

pub use crate::test_index::TestIndex;
pub use crate::trace::REGENERATE;
use crate::tree::Tree;

/// Requirements file.
pub const REQUIREMENTS_PATH: &str = "docs/safety/requirements.md";
/// Hazards file.
pub const HAZARDS_PATH: &str = "docs/safety/hazards.md";
/// Generated traceability matrix.
pub const TRACEABILITY_PATH: &str = "docs/safety/traceability.md";
/// Generated SOUP list.
pub const SOUP_PATH: &str = "docs/safety/soup.md";

/// The kinds of problem the check reports; each has its own test.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Check {
    /// requirements.md is malformed (including `- Hazards: TBD`).
    Requirements,
    /// A requirement's `- Hazards:` line names a hazard hazards.md lacks.
    HazardLinks,
    /// hazards.md is malformed or names unknown requirements or hazards.
    HazardsFile,
    /// A requirement has no test naming it.
    Untested,
    /// A test names an ID that no requirement has.
    UnknownInTests,
    /// A Rust file could not be scanned.
    Scan,
    /// traceability.md differs from what would be generated.
    Traceability,
    /// soup.md differs from what would be generated.
    SoupStale,
    /// A direct dependency has no rationale, or the lockfiles, manifests or
    /// rationale file could not be read.
    SoupRationale,
    /// reference-coverage.md is malformed, a row names an SR that does not
    /// exist or that no test verifies, or a hazard without a row, or its
    /// summary differs from its rows.
    ReferenceCoverage,
}

/// One problem.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Problem {
    /// Its kind.
    pub check: Check,
    /// What is wrong and what to do.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{:?}] {}", self.check, self.message)
    }
}

/// Everything the dossier is built from.
pub struct Dossier {
    /// Parsed requirements.md.
    pub requirements: requirements::Requirements,
    /// Parsed hazards.md.
    pub hazards: hazards::Hazards,
    /// Parsed reference-coverage.md.
    pub coverage: coverage::Coverage,
    /// Test scan.
    pub tests: TestIndex,
    /// The recorded mutation runs (none when the file is absent).
    pub mutant_runs: Result<Vec<mutants::MutantRecord>, mutants::MutantsError>,
    /// SOUP analysis.
    pub soup: soup::Soup,
    /// Parsed soup-rationale.toml.
    pub rationales: Result<soup::Rationales, Vec<String>>,
    /// traceability.md as committed, if present.
    pub current_traceability: Option<String>,
    /// soup.md as committed, if present.
    pub current_soup: Option<String>,
    /// Files missing from the tree.
    pub missing: Vec<String>,
}

impl Dossier {
    /// Reads and parses everything.
    pub fn load(tree: &dyn Tree) -> Dossier {
        let mut missing = Vec::new();
        let mut read = |path: &str| {
            tree.read(path).unwrap_or_else(|| {
                missing.push(path.to_string());
                String::new()
            })
        };
        let requirements = requirements::parse(&read(REQUIREMENTS_PATH));
        let areas: BTreeSet<String> = requirements.areas.keys().cloned().collect();
        let hazards = hazards::parse(&read(HAZARDS_PATH), &areas);
        let rationales = soup::parse_rationale(&read(soup::RATIONALE_PATH));
        let coverage = coverage::parse(&read(coverage::COVERAGE_PATH));
        Dossier {
            requirements,
            hazards,
            coverage,
            tests: TestIndex::scan(tree),
            mutant_runs: mutants::parse_tsv(&tree.read(mutants::MUTANTS_PATH).unwrap_or_default()),
            soup: soup::analyze(tree),
            rationales,
            current_traceability: tree.read(TRACEABILITY_PATH),
            current_soup: tree.read(SOUP_PATH),
            missing,
        }
    }

    /// The traceability matrix as it should be.
    pub fn traceability_md(&self) -> String {
        let runs = self.mutant_runs.as_deref().unwrap_or(&[]);
        trace::render(&self.requirements, &self.hazards, &self.tests, runs)
    }

    /// The SOUP list as it should be.
    pub fn soup_md(&self) -> String {
        let empty = soup::Rationales::default();
        soup::render(&self.soup, self.rationales.as_ref().unwrap_or(&empty))
    }

    /// Every problem, sorted by check.
    pub fn problems(&self) -> Vec<Problem> {
        let mut out = Vec::new();
        let mut add = |check, message: String| out.push(Problem { check, message });
        for path in &self.missing {
            let check = if path == soup::RATIONALE_PATH {
                Check::SoupRationale
            } else if path == HAZARDS_PATH {
                Check::HazardsFile
            } else if path == coverage::COVERAGE_PATH {
                Check::ReferenceCoverage
            } else {
                Check::Requirements
            };
            add(check, format!("{path} is missing"));
        }
        for e in &self.requirements.errors {
            add(Check::Requirements, format!("{REQUIREMENTS_PATH} {e}"));
        }
        for r in &self.requirements.entries {
            for h in &r.hazards {
                if self.hazards.get(h).is_none() {
                    add(
                        Check::HazardLinks,
                        format!(
                            "{REQUIREMENTS_PATH} line {}: {} names {h}, which is not a hazard in {HAZARDS_PATH}",
                            r.line, r.id
                        ),
                    );
                }
            }
        }
        for e in &self.hazards.errors {
            add(Check::HazardsFile, format!("{HAZARDS_PATH} {e}"));
        }
        for (id, line) in &self.hazards.requirement_mentions {
            if self.requirements.get(id).is_none() {
                add(
                    Check::HazardsFile,
                    format!(
                        "{HAZARDS_PATH} line {line}: names {id}, which is not in {REQUIREMENTS_PATH} (hazards.md should name requirement areas only; the link lives in the requirement's `- Hazards:` line)"
                    ),
                );
            }
        }
        for (id, line) in &self.hazards.hazard_mentions {
            if self.hazards.get(id).is_none() {
                add(
                    Check::HazardsFile,
                    format!("{HAZARDS_PATH} line {line}: names {id}, which has no row"),
                );
            }
        }
        for r in &self.requirements.entries {
            if self.tests.by_id.get(&r.id).is_some_and(|t| !t.is_empty()) {
                continue;
            }
            let mut message = format!(
                "{} ({REQUIREMENTS_PATH} line {}: {}) has no test naming it. Name it in a #[test] fn that is not #[ignore]d (or a proptest! case): on a `// Verifies: {}` line or in a string in its body, in its doc comment, or in its name as `{}_…`.",
                r.id,
                r.line,
                r.title,
                r.id,
                r.id.to_ascii_lowercase().replace('-', "_")
            );
            if let Some(places) = self.tests.outside_tests.get(&r.id) {
                message.push_str(&format!(
                    " It is written where it does not count at {}.",
                    places.iter().cloned().collect::<Vec<_>>().join(", ")
                ));
            }
            add(Check::Untested, message);
        }
        for (id, tests) in &self.tests.by_id {
            if self.requirements.get(id).is_none() {
                add(
                    Check::UnknownInTests,
                    format!(
                        "{id} is not a requirement in {REQUIREMENTS_PATH}, but {} test(s) name it: {}. Add the entry or correct the ID.",
                        tests.len(),
                        tests.iter().cloned().collect::<Vec<_>>().join(", ")
                    ),
                );
            }
        }
        for e in &self.tests.errors {
            add(
                Check::Scan,
                format!("cannot scan {e}; the traceability check needs every .rs file to lex"),
            );
        }
        if let Some(problem) = stale(
            TRACEABILITY_PATH,
            self.current_traceability.as_deref(),
            &self.traceability_md(),
        ) {
            add(Check::Traceability, problem);
        }
        if let Err(e) = &self.mutant_runs {
            add(Check::Traceability, e.to_string());
        }
        if let Some(problem) = stale(SOUP_PATH, self.current_soup.as_deref(), &self.soup_md()) {
            add(Check::SoupStale, problem);
        }
        for e in &self.soup.errors {
            add(Check::SoupRationale, e.clone());
        }
        match &self.rationales {
            Ok(r) => {
                for m in soup::missing_rationale(&self.soup, r) {
                    add(Check::SoupRationale, m);
                }
            }
            Err(errors) => {
                for e in errors {
                    add(Check::SoupRationale, e.clone());
                }
            }
        }
        self.coverage_problems(&mut add);
        out.sort();
        out
    }

    /// The problems of reference-coverage.md: its format, every SR a row
    /// names must exist and be verified by a test (a row claiming coverage
    /// by an untested requirement claims nothing), every hazard must have a
    /// row, and the summary must be the one its rows give.
    fn coverage_problems(&self, add: &mut impl FnMut(Check, String)) {
        let path = coverage::COVERAGE_PATH;
        if self.missing.iter().any(|m| m == path) {
            return;
        }
        for e in &self.coverage.errors {
            add(Check::ReferenceCoverage, format!("{path} {e}"));
        }
        for row in &self.coverage.rows {
            for id in &row.requirements {
                let what = if self.requirements.get(id).is_none() {
                    format!("which is not in {REQUIREMENTS_PATH}")
                } else if self.tests.by_id.get(id).is_none_or(|t| t.is_empty()) {
                    "which no test verifies".to_string()
                } else {
                    continue;
                };
                add(
                    Check::ReferenceCoverage,
                    format!(
                        "{path} line {}: {} names {id}, {what}. A row may name only verified requirements; if none covers it, its status is `gap`.",
                        row.line, row.reference_id
                    ),
                );
            }
            for id in &row.hazards {
                if self.hazards.get(id).is_none() {
                    add(
                        Check::ReferenceCoverage,
                        format!(
                            "{path} line {}: {} names {id}, which has no row in {HAZARDS_PATH}",
                            row.line, row.reference_id
                        ),
                    );
                }
            }
        }
        let summary = self.coverage.summary();
        if self.coverage.errors.is_empty() && !self.coverage.text.contains(&summary) {
            add(
                Check::ReferenceCoverage,
                format!(
                    "{path}: the summary differs from the rows; it must contain exactly\n{summary}"
                ),
            );
        }
    }
}

/// Compares a generated file with its committed version.
fn stale(path: &str, current: Option<&str>, expected: &str) -> Option<String> {
    let Some(current) = current else {
        return Some(format!(
            "{path} does not exist. Run `{REGENERATE}` and commit the result."
        ));
    };
    if current == expected {
        return None;
    }
    let mut cur = current.lines();
    let mut exp = expected.lines();
    let mut line = 1;
    loop {
        match (cur.next(), exp.next()) {
            (Some(c), Some(e)) if c == e => line += 1,
            (c, e) => {
                return Some(format!(
                    "{path} is stale: it differs from what would be generated, first at line {line} (expected {:?}, found {:?}). Run `{REGENERATE}` and commit the result.",
                    e.unwrap_or("<end of file>"),
                    c.unwrap_or("<end of file>")
                ));
            }
        }
    }
}

/// Formats the problems of one check for a test failure message.
pub fn report(problems: &[Problem], check: Check) -> Option<String> {
    let selected: Vec<&Problem> = problems.iter().filter(|p| p.check == check).collect();
    if selected.is_empty() {
        return None;
    }
    let mut out = format!("{} problem(s):\n", selected.len());
    for p in selected {
        out.push_str(&format!("- {}\n", p.message));
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::MemTree;

    const REQS: &str = "# Safety requirements\n\nAreas: `ENV` safety envelope · `RX` prescriptions.\n\n## Capsule: safety envelope\n\n### SR-ENV-001: tested\n- Requirement: It shall refuse.\n- Rationale: r\n- Hazards: HAZ-001\n\n### SR-ENV-002: untested\n- Requirement: It shall stop.\n- Rationale: r\n- Hazards: HAZ-001, HAZ-009\n\n## Capsule: prescriptions\n\n### SR-RX-001: tbd\n- Requirement: It shall verify.\n- Rationale: r\n- Hazards: TBD\n";
    const HAZARDS: &str = "# Hazards\n\n| ID | Hazard | Sev | Requirement areas | Verification |\n|---|---|---|---|---|\n| HAZ-001 | over | S5 | ENV | [m](traceability.md#haz-001) |\n\nControlled by SR-ENV-009.\n";
    const LOCK: &str = "version = 4\n[[package]]\nname = \"core\"\nversion = \"0.1.0\"\ndependencies = [\"serde\"]\n[[package]]\nname = \"serde\"\nversion = \"1.0.0\"\nsource = \"registry+https://github.com/rust-lang/crates.io-index\"\n";

    fn repo() -> MemTree {
        MemTree::new(&[
            (REQUIREMENTS_PATH, REQS),
            (HAZARDS_PATH, HAZARDS),
            ("Cargo.toml", "[workspace]\nmembers = [\"core\"]\n"),
            ("Cargo.lock", LOCK),
            (
                "core/Cargo.toml",
                "[package]\nname = \"core\"\n[dependencies]\nserde = \"1\"\n",
            ),
            (
                "core/src/lib.rs",
                "/// SR-ENV-002 above a helper does not count.\nfn h() {}\n#[test]\nfn t() { /* Verifies: SR-ENV-001 */ }\n#[test]\nfn sr_env_077_typo() {}\n",
            ),
            (
                "core/tests/it.rs",
                "//! SR-ENV-001 and SR-ENV-002 at file level do not count\nfn x() { /* Verifies: SR-ENV-002 in a helper */ }\n",
            ),
            (soup::RATIONALE_PATH, "[crates.other]\npurpose = \"p\"\nacceptable = \"a\"\n"),
        ])
    }

    fn messages(problems: &[Problem], check: Check) -> Vec<String> {
        problems
            .iter()
            .filter(|p| p.check == check)
            .map(|p| p.message.clone())
            .collect()
    }

    #[test]
    fn every_kind_of_problem_is_reported() {
        let d = Dossier::load(&repo());
        let p = d.problems();
        let reqs = messages(&p, Check::Requirements);
        assert_eq!(reqs.len(), 1, "{reqs:?}");
        assert!(reqs[0].contains("SR-RX-001: `- Hazards:` says TBD"));
        assert_eq!(
            messages(&p, Check::HazardLinks),
            ["docs/safety/requirements.md line 12: SR-ENV-002 names HAZ-009, which is not a hazard in docs/safety/hazards.md"]
        );
        let haz = messages(&p, Check::HazardsFile);
        assert_eq!(haz.len(), 1);
        assert!(haz[0].starts_with("docs/safety/hazards.md line 7: names SR-ENV-009"));
        let untested = messages(&p, Check::Untested);
        assert_eq!(untested.len(), 2, "{untested:?}");
        assert!(untested[0]
            .starts_with("SR-ENV-002 (docs/safety/requirements.md line 12: untested) has no test"));
        assert!(
            untested[0].contains(
                "written where it does not count at core/src/lib.rs:1 (outside any test function), core/tests/it.rs:1 (outside any test function), core/tests/it.rs:2 (outside any test function)"
            ),
            "{untested:?}"
        );
        assert!(untested[1].starts_with("SR-RX-001 "));
        assert_eq!(
            messages(&p, Check::UnknownInTests),
            ["SR-ENV-077 is not a requirement in docs/safety/requirements.md, but 1 test(s) name it: core/src/lib.rs::sr_env_077_typo. Add the entry or correct the ID."]
        );
        for check in [Check::Traceability, Check::SoupStale] {
            let m = messages(&p, check);
            assert_eq!(m.len(), 1);
            assert!(m[0].contains("does not exist. Run `cargo run -p pump-dossier -- regenerate`"));
        }
        let soup = messages(&p, Check::SoupRationale);
        assert_eq!(soup.len(), 1);
        assert!(soup[0].contains("[crates.serde]\npurpose = "));
        // Only the test function counts; file-level text under tests/ does not.
        assert_eq!(
            d.tests.by_id["SR-ENV-001"].iter().collect::<Vec<_>>(),
            ["core/src/lib.rs::t"]
        );
    }

    #[test]
    fn generated_files_are_current_after_regenerating_and_stale_after_a_change() {
        let mut tree = repo();
        let d = Dossier::load(&tree);
        tree.insert(TRACEABILITY_PATH, &d.traceability_md());
        tree.insert(SOUP_PATH, &d.soup_md());
        let p = Dossier::load(&tree).problems();
        assert!(messages(&p, Check::Traceability).is_empty());
        assert!(messages(&p, Check::SoupStale).is_empty());

        tree.insert(
            "core/src/more.rs",
            "#[test]\nfn sr_env_002_now_tested() {}\n",
        );
        let p = Dossier::load(&tree).problems();
        let stale = messages(&p, Check::Traceability);
        assert_eq!(stale.len(), 1);
        assert!(stale[0].starts_with("docs/safety/traceability.md is stale"));
        assert!(stale[0]
            .contains("Run `cargo run -p pump-dossier -- regenerate` and commit the result."));
        assert!(messages(&p, Check::Untested)
            .iter()
            .all(|m| !m.starts_with("SR-ENV-002")));
    }

    /// Issue 20's trick: a made-up requirement `SR-ENV-010` "verified" by a
    /// trailing comment in a test file and by an ignored test is reported as
    /// untested; the same requirement named by a real test counts.
    #[test]
    fn the_comment_trick_and_an_ignored_test_are_reported_a_real_test_counts() {
        let reqs = format!(
            "{REQS}\n### SR-ENV-010: made up\n- Requirement: It shall be made up.\n- Rationale: r\n- Hazards: HAZ-001\n"
        )
        .replace(
            "## Capsule: prescriptions\n\n### SR-RX-001: tbd\n- Requirement: It shall verify.\n- Rationale: r\n- Hazards: TBD\n",
            "",
        );
        let reqs = reqs.replace("## Capsule: prescriptions\n", "");
        let envelope = "#[test]\nfn refuses_rate() {\n    // Verifies: SR-ENV-001\n    assert!(true);\n}\n\n#[test]\n#[ignore]\nfn sr_env_010_slow() {\n    // Verifies: SR-ENV-010\n}\n// SR-ENV-010\n";
        let mut tree = repo();
        tree.insert(REQUIREMENTS_PATH, &reqs);
        tree.insert("capsules/infusion-core/tests/envelope.rs", envelope);
        let p = Dossier::load(&tree).problems();
        let untested = messages(&p, Check::Untested);
        let trick: Vec<&String> = untested
            .iter()
            .filter(|m| m.starts_with("SR-ENV-010 "))
            .collect();
        assert_eq!(trick.len(), 1, "{untested:?}");
        assert!(
            trick[0].contains(
                "capsules/infusion-core/tests/envelope.rs:10 (in `sr_env_010_slow`, which is #[ignore]d)"
            ) && trick[0].contains(
                "capsules/infusion-core/tests/envelope.rs:12 (outside any test function)"
            ) && trick[0].contains("capsules/infusion-core/tests/envelope.rs:9 (in `sr_env_010_slow`"),
            "{trick:?}"
        );
        assert!(Dossier::load(&tree).tests.by_id["SR-ENV-001"]
            .contains("capsules/infusion-core/tests/envelope.rs::refuses_rate"));

        // A real test naming it makes it verified.
        tree.insert(
            "capsules/infusion-core/tests/envelope.rs",
            &envelope.replace("#[ignore]\n", ""),
        );
        let d = Dossier::load(&tree);
        assert!(messages(&d.problems(), Check::Untested)
            .iter()
            .all(|m| !m.starts_with("SR-ENV-010 ")));
        assert_eq!(
            d.tests.by_id["SR-ENV-010"].iter().collect::<Vec<_>>(),
            ["capsules/infusion-core/tests/envelope.rs::sr_env_010_slow"]
        );
    }
}
