//! Parser and summary of `docs/safety/reference-coverage.md`, the answer of
//! the safety case to the field's reference requirements (the Generic
//! Infusion Pump requirements v1.0 and the Open PCA Pump System
//! Requirements 1.0.0).
//!
//! The file holds one Markdown table whose header row is exactly
//! `| Ref | Paraphrase | Status | SRs | Note |`. Each row answers one
//! reference requirement; its `Ref` starts with `GIP ` or `Open PCA `, and
//! its `Status` is one word of [`Status`]. The rules a row must keep are
//! those of [`Status::rule`]; that every `SR-…` a row names exists and is
//! verified, and every `HAZ-…` exists, is checked against the other files
//! by [`crate::Dossier::problems`].
//!
//! The file also carries the summary [`Coverage::summary`] renders from the
//! rows, word for word, so the figures quoted cannot drift from the table.

use std::collections::BTreeSet;

use crate::hazards::{cells, hazard_ids};
use crate::rustscan::find_ids;

/// Where the file lives.
pub const COVERAGE_PATH: &str = "docs/safety/reference-coverage.md";

/// The header row's cells, in order.
pub const COLUMNS: [&str; 5] = ["Ref", "Paraphrase", "Status", "SRs", "Note"];

/// How the pump answers a reference requirement.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Status {
    /// Applies as written; covered by the SRs named.
    Applies,
    /// Applies with an adaptation to an implant (the note says how);
    /// covered by the SRs named.
    Adapted,
    /// A deliberate deviation; the note gives the reason and the hazard
    /// that controls it.
    Deviation,
    /// Applies and is not yet covered.
    Gap,
    /// Does not apply to this device; the note says why.
    NotApplicable,
}

impl Status {
    /// Every status, in the order of the summary.
    pub const ALL: [Status; 5] = [
        Status::Applies,
        Status::Adapted,
        Status::Deviation,
        Status::Gap,
        Status::NotApplicable,
    ];

    /// The word the table uses.
    pub fn word(self) -> &'static str {
        match self {
            Status::Applies => "applies",
            Status::Adapted => "adapted",
            Status::Deviation => "deviation",
            Status::Gap => "gap",
            Status::NotApplicable => "n/a",
        }
    }

    /// The status a table word stands for.
    pub fn parse(word: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|s| s.word() == word)
    }

    /// Whether a row of this status answers an applicable requirement (is
    /// covered or a written deviation).
    pub fn answers(self) -> bool {
        matches!(self, Status::Applies | Status::Adapted | Status::Deviation)
    }

    /// What a row of this status must carry, as said in an error message.
    pub fn rule(self) -> &'static str {
        match self {
            Status::Applies | Status::Adapted => "must name at least one SR in its SRs column",
            Status::Deviation => "must name the hazard (HAZ-…) that controls the deviation",
            Status::Gap | Status::NotApplicable => "must say why in its Note column",
        }
    }
}

/// The reference document a row answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Reference {
    /// Arney et al., Generic Infusion Pump Hazard Analysis and Safety
    /// Requirements v1.0 (UPenn MS-CIS-08-31, 2009).
    Gip,
    /// KSU Open PCA Pump System Requirements 1.0.0 (2020).
    OpenPca,
}

impl Reference {
    /// Both, in the order of the summary's columns.
    pub const ALL: [Reference; 2] = [Reference::Gip, Reference::OpenPca];

    /// The prefix of a `Ref` cell.
    pub fn prefix(self) -> &'static str {
        match self {
            Reference::Gip => "GIP ",
            Reference::OpenPca => "Open PCA ",
        }
    }

    /// The summary's column title.
    pub fn title(self) -> &'static str {
        match self {
            Reference::Gip => "GIP v1.0",
            Reference::OpenPca => "Open PCA 1.0.0",
        }
    }
}

/// One row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    /// The `Ref` cell, e.g. `GIP 1.4.3`.
    pub reference_id: String,
    /// Which document.
    pub reference: Reference,
    /// Its status.
    pub status: Status,
    /// Every `SR-…` the row names, in any column.
    pub requirements: Vec<String>,
    /// Every `HAZ-…` the row names, in any column.
    pub hazards: Vec<String>,
    /// 1-based line.
    pub line: usize,
}

/// The parsed file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Coverage {
    /// Rows in file order (only rows whose status and reference parsed).
    pub rows: Vec<Row>,
    /// Format errors, each `line N: message`.
    pub errors: Vec<String>,
    /// The file's text.
    pub text: String,
}

impl Coverage {
    /// Rows of one status for one reference.
    pub fn count(&self, reference: Reference, status: Status) -> usize {
        self.rows
            .iter()
            .filter(|r| r.reference == reference && r.status == status)
            .count()
    }

    /// The summary table the file must carry, rendered from the rows.
    pub fn summary(&self) -> String {
        let titles: Vec<&str> = Reference::ALL.iter().map(|r| r.title()).collect();
        let mut o = format!("| Status | {} |\n|---|---|---|\n", titles.join(" | "));
        for status in Status::ALL {
            let counts: Vec<String> = Reference::ALL
                .iter()
                .map(|r| self.count(*r, status).to_string())
                .collect();
            o.push_str(&format!("| {} | {} |\n", status.word(), counts.join(" | ")));
        }
        let totals: Vec<String> = Reference::ALL
            .iter()
            .map(|r| {
                self.rows
                    .iter()
                    .filter(|row| row.reference == *r)
                    .count()
                    .to_string()
            })
            .collect();
        o.push_str(&format!("| rows | {} |\n", totals.join(" | ")));
        let figures: Vec<String> = Reference::ALL
            .iter()
            .map(|r| {
                let answered: usize = Status::ALL
                    .iter()
                    .filter(|s| s.answers())
                    .map(|s| self.count(*r, *s))
                    .sum();
                let applicable = answered + self.count(*r, Status::Gap);
                format!(
                    "{answered} / {applicable} ({})",
                    percent_one_decimal(answered, applicable)
                )
            })
            .collect();
        o.push_str(&format!(
            "| covered or deviation / applicable | {} |\n",
            figures.join(" | ")
        ));
        o
    }
}

/// `part / whole` as a percentage with one decimal, rounded down so that a
/// figure never claims more coverage than there is.
fn percent_one_decimal(part: usize, whole: usize) -> String {
    if whole == 0 {
        return "— %".to_string();
    }
    let tenths = part * 1000 / whole;
    format!("{}.{} %", tenths / 10, tenths % 10)
}

/// Parses the file.
pub fn parse(text: &str) -> Coverage {
    let mut out = Coverage {
        text: text.to_string(),
        ..Coverage::default()
    };
    let mut seen = BTreeSet::new();
    let mut in_table = false;
    let mut tables = 0;
    for (index, line) in text.lines().enumerate() {
        let line_no = index + 1;
        if !line.starts_with('|') {
            in_table = false;
            continue;
        }
        let row = cells(line);
        if row.first().map(String::as_str) == Some("Ref") {
            tables += 1;
            if row != COLUMNS {
                out.errors.push(format!(
                    "line {line_no}: the header must be exactly `| {} |`",
                    COLUMNS.join(" | ")
                ));
            }
            in_table = true;
            continue;
        }
        if !in_table
            || row
                .iter()
                .all(|c| c.chars().all(|ch| ch == '-' || ch == ':'))
        {
            continue;
        }
        let reference_id = row[0].clone();
        if row.len() != COLUMNS.len() {
            out.errors.push(format!(
                "line {line_no}: {reference_id}: {} cells, expected {}",
                row.len(),
                COLUMNS.len()
            ));
            continue;
        }
        let Some(reference) = Reference::ALL
            .into_iter()
            .find(|r| reference_id.starts_with(r.prefix()))
        else {
            out.errors.push(format!(
                "line {line_no}: `{reference_id}` does not start with `GIP ` or `Open PCA `"
            ));
            continue;
        };
        if !seen.insert(reference_id.clone()) {
            out.errors
                .push(format!("line {line_no}: {reference_id} has a second row"));
        }
        let Some(status) = Status::parse(&row[2]) else {
            out.errors.push(format!(
                "line {line_no}: {reference_id}: status `{}` is not one of {}",
                row[2],
                Status::ALL.map(Status::word).join(", ")
            ));
            continue;
        };
        let requirements: Vec<String> = find_ids(line).into_iter().map(|(id, _)| id).collect();
        let hazards: Vec<String> = hazard_ids(line).into_iter().map(|(id, _)| id).collect();
        let kept = match status {
            Status::Applies | Status::Adapted => !find_ids(&row[3]).is_empty(),
            Status::Deviation => !hazards.is_empty(),
            Status::Gap | Status::NotApplicable => !row[4].is_empty() && row[4] != "—",
        };
        if !kept {
            out.errors.push(format!(
                "line {line_no}: {reference_id} is `{}` and {}",
                status.word(),
                status.rule()
            ));
        }
        out.rows.push(Row {
            reference_id,
            reference,
            status,
            requirements,
            hazards,
            line: line_no,
        });
    }
    if tables != 1 {
        out.errors.push(format!(
            "has {tables} tables with a `| Ref |` header; it must have exactly one"
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "# Coverage\n\n| Ref | Paraphrase | Status | SRs | Note |\n|---|---|---|---|---|\n| GIP 1.1.1 | rate programmable | adapted | SR-RX-001 | by telemetry |\n| GIP 1.1.2 | range | n/a | — | external pumps |\n| GIP 1.4.5 | pre-empt | deviation | SR-ENV-003 | refused Busy; HAZ-005 |\n| GIP 3.3.1 | RAM test | gap | — | issue 21 §2 |\n| Open PCA R5.3.0(5) | 6 h max | gap | — | issue 21 §3 |\n\nprose\n";

    #[test]
    fn rows_statuses_and_ids_are_read() {
        let c = parse(FILE);
        assert!(c.errors.is_empty(), "{:?}", c.errors);
        assert_eq!(c.rows.len(), 5);
        assert_eq!(c.rows[0].requirements, ["SR-RX-001"]);
        assert_eq!(c.rows[2].hazards, ["HAZ-005"]);
        assert_eq!(c.rows[4].reference, Reference::OpenPca);
        assert_eq!(c.rows[1].line, 6);
    }

    #[test]
    fn the_summary_counts_each_status_and_the_answered_share() {
        let s = parse(FILE).summary();
        assert!(s.contains("| adapted | 1 | 0 |\n"), "{s}");
        assert!(s.contains("| n/a | 1 | 0 |\n"), "{s}");
        assert!(s.contains("| rows | 4 | 1 |\n"), "{s}");
        // GIP: adapted + deviation answered, over 3 applicable (n/a left out).
        assert!(
            s.contains("| covered or deviation / applicable | 2 / 3 (66.6 %) | 0 / 1 (0.0 %) |\n"),
            "{s}"
        );
    }

    #[test]
    fn a_bad_status_a_missing_sr_hazard_or_reason_and_a_duplicate_are_errors() {
        let bad = "| Ref | Paraphrase | Status | SRs | Note |\n|---|---|---|---|---|\n| GIP 1.1.1 | x | partly | SR-RX-001 | |\n| GIP 1.1.2 | x | applies | — | see SR-RX-001 |\n| GIP 1.4.5 | x | deviation | — | no hazard |\n| GIP 1.4.6 | x | n/a | — | — |\n| GIP 1.4.6 | x | gap | — | twice |\n| ISO 1 | x | gap | — | other document |\n";
        let c = parse(bad);
        assert_eq!(
            c.errors,
            [
                "line 3: GIP 1.1.1: status `partly` is not one of applies, adapted, deviation, gap, n/a",
                "line 4: GIP 1.1.2 is `applies` and must name at least one SR in its SRs column",
                "line 5: GIP 1.4.5 is `deviation` and must name the hazard (HAZ-…) that controls the deviation",
                "line 6: GIP 1.4.6 is `n/a` and must say why in its Note column",
                "line 7: GIP 1.4.6 has a second row",
                "line 8: `ISO 1` does not start with `GIP ` or `Open PCA `",
            ]
        );
    }

    #[test]
    fn a_wrong_header_or_no_table_is_an_error() {
        let c = parse("| Ref | Status |\n|---|---|\n");
        assert_eq!(
            c.errors[0],
            "line 1: the header must be exactly `| Ref | Paraphrase | Status | SRs | Note |`"
        );
        assert_eq!(
            parse("no table\n").errors,
            ["has 0 tables with a `| Ref |` header; it must have exactly one"]
        );
    }
}
