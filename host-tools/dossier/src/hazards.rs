//! Parser for the hazard table of `docs/safety/hazards.md`.
//!
//! The table's header row starts with `| ID |` and names at least the
//! columns `Hazard`, `Sev`, `Requirement areas` and `Verification`. Each
//! hazard is one row whose first cell is `HAZ-NNN`.

use std::collections::BTreeSet;

use crate::requirements::is_hazard_id;
use crate::rustscan::find_ids;

/// One hazard row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hazard {
    /// `HAZ-NNN`.
    pub id: String,
    /// The hazard, short.
    pub title: String,
    /// `S1` … `S5`.
    pub severity: String,
    /// Requirement area codes named in the row.
    pub areas: Vec<String>,
    /// Whether the row says the hazard is (at least partly) outside firmware.
    pub outside_firmware: bool,
    /// 1-based line.
    pub line: usize,
}

/// The parsed file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Hazards {
    /// Rows in file order.
    pub rows: Vec<Hazard>,
    /// Every `SR-…` ID the file mentions anywhere, with its line.
    pub requirement_mentions: Vec<(String, usize)>,
    /// Every `HAZ-…` ID the file mentions outside the ID column, with its line.
    pub hazard_mentions: Vec<(String, usize)>,
    /// Format errors, each `line N: message`.
    pub errors: Vec<String>,
}

impl Hazards {
    /// The row with this ID.
    pub fn get(&self, id: &str) -> Option<&Hazard> {
        self.rows.iter().find(|h| h.id == id)
    }
}

/// Splits a Markdown table row on unescaped `|`.
pub(crate) fn cells(line: &str) -> Vec<String> {
    let inner = line.trim().trim_start_matches('|');
    let inner = inner.strip_suffix('|').unwrap_or(inner);
    let mut out = Vec::new();
    let mut cell = String::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(next) = chars.next() {
                    if next != '|' {
                        cell.push('\\');
                    }
                    cell.push(next);
                }
            }
            '|' => out.push(std::mem::take(&mut cell).trim().to_string()),
            _ => cell.push(c),
        }
    }
    out.push(cell.trim().to_string());
    out
}

pub(crate) fn hazard_ids(text: &str) -> Vec<(String, usize)> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(rel) = text[from..].find("HAZ-") {
        let at = from + rel;
        from = at + 4;
        if at > 0 && (b[at - 1].is_ascii_alphanumeric() || b[at - 1] == b'_') {
            continue;
        }
        let end = at
            + 4
            + b[at + 4..]
                .iter()
                .take_while(|c| c.is_ascii_digit())
                .count();
        if end > at + 4 {
            out.push((text[at..end].to_string(), at));
        }
    }
    out
}

/// Parses the file. `areas` are the known requirement area codes.
pub fn parse(text: &str, areas: &BTreeSet<String>) -> Hazards {
    let mut out = Hazards::default();
    let line_starts: Vec<usize> = std::iter::once(0)
        .chain(text.match_indices('\n').map(|(i, _)| i + 1))
        .collect();
    let line_of = |offset: usize| line_starts.partition_point(|s| *s <= offset);
    out.requirement_mentions = find_ids(text)
        .into_iter()
        .map(|(id, at)| (id, line_of(at)))
        .collect();

    let mut columns: Option<Vec<String>> = None;
    for (index, line) in text.lines().enumerate() {
        let line_no = index + 1;
        if !line.starts_with('|') {
            continue;
        }
        let row = cells(line);
        if row.first().map(String::as_str) == Some("ID") {
            columns = Some(row);
            continue;
        }
        let Some(first) = row.first() else { continue };
        if !first.starts_with("HAZ") {
            // Mentions in other tables (e.g. the severity scale) still count.
            for (id, _) in hazard_ids(line) {
                out.hazard_mentions.push((id, line_no));
            }
            continue;
        }
        let Some(cols) = &columns else {
            out.errors.push(format!(
                "line {line_no}: hazard row before the table header `| ID | … |`"
            ));
            continue;
        };
        let col = |name: &str| cols.iter().position(|c| c == name);
        let (Some(c_title), Some(c_sev), Some(c_areas), Some(c_ver)) = (
            col("Hazard"),
            col("Sev"),
            col("Requirement areas"),
            col("Verification"),
        ) else {
            out.errors.push(format!(
                "line {line_no}: the hazard table header must have the columns ID, Hazard, Sev, Requirement areas, Verification"
            ));
            columns = None;
            continue;
        };
        if row.len() != cols.len() {
            out.errors.push(format!(
                "line {line_no}: {first}: {} cells, the header has {} (an unescaped `|` inside a cell?)",
                row.len(),
                cols.len()
            ));
            continue;
        }
        let id = first.clone();
        if !is_hazard_id(&id) {
            out.errors
                .push(format!("line {line_no}: `{id}` is not a hazard ID HAZ-NNN"));
            continue;
        }
        if out.rows.iter().any(|h| h.id == id) {
            out.errors
                .push(format!("line {line_no}: {id}: duplicate hazard ID"));
            continue;
        }
        for (index, cell) in row.iter().enumerate().skip(1) {
            for (mention, _) in hazard_ids(cell) {
                if index != c_ver {
                    out.hazard_mentions.push((mention, line_no));
                }
            }
        }
        let severity = row[c_sev].clone();
        if !matches!(severity.as_str(), "S1" | "S2" | "S3" | "S4" | "S5") {
            out.errors.push(format!(
                "line {line_no}: {id}: severity `{severity}` is not one of S1…S5"
            ));
        }
        let mut hazard_areas = Vec::new();
        let mut outside_firmware = false;
        for item in row[c_areas].split(',').map(str::trim) {
            if item.starts_with('—') || item.starts_with('-') {
                outside_firmware = true;
            } else if areas.contains(item) {
                hazard_areas.push(item.to_string());
            } else {
                out.errors.push(format!(
                    "line {line_no}: {id}: `{item}` in Requirement areas is not an area code of requirements.md (or `— (outside firmware)`)"
                ));
            }
        }
        let anchor = format!("traceability.md#{}", id.to_ascii_lowercase());
        if !row[c_ver].contains(&anchor) {
            out.errors.push(format!(
                "line {line_no}: {id}: the Verification cell must link to `{anchor}`"
            ));
        }
        out.rows.push(Hazard {
            id,
            title: row[c_title].clone(),
            severity,
            areas: hazard_areas,
            outside_firmware,
            line: line_no,
        });
    }
    // Mentions in prose, outside tables.
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        if !line.starts_with('|') {
            for (id, at) in hazard_ids(line) {
                out.hazard_mentions.push((id, line_of(offset + at)));
            }
        }
        offset += line.len();
    }
    if out.rows.is_empty() {
        out.errors
            .push("no hazard rows (`| HAZ-NNN | … |`) found".to_string());
    }
    out.hazard_mentions.sort();
    out.hazard_mentions.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn areas() -> BTreeSet<String> {
        ["ENV", "RX"].iter().map(|s| s.to_string()).collect()
    }

    const HEAD: &str =
        "| ID | Hazard | Sev | Requirement areas | Verification |\n|---|---|---|---|---|\n";

    #[test]
    fn parses_rows() {
        let text = format!(
            "# H\nSee HAZ-002.\n\n{HEAD}| HAZ-001 | Over \\| under | S5 | ENV, RX | [m](traceability.md#haz-001) |\n| HAZ-002 | Pocket fill | S5 | — (outside firmware) | [m](traceability.md#haz-002) |\n"
        );
        let h = parse(&text, &areas());
        assert_eq!(h.errors, Vec::<String>::new());
        assert_eq!(h.rows.len(), 2);
        assert_eq!(h.rows[0].title, "Over | under");
        assert_eq!(h.rows[0].areas, ["ENV", "RX"]);
        assert!(!h.rows[0].outside_firmware);
        assert!(h.rows[1].outside_firmware);
        assert_eq!(h.rows[1].line, 7);
        assert_eq!(h.hazard_mentions, [("HAZ-002".to_string(), 2)]);
        assert!(h.requirement_mentions.is_empty());
    }

    #[test]
    fn reports_bad_rows_and_requirement_mentions() {
        let text = format!(
            "Controlled by SR-ENV-001.\n{HEAD}| HAZ-01 | x | S5 | ENV | traceability.md#haz-01 |\n| HAZ-003 | x | S9 | FOO | nothing |\n| HAZ-004 | x | S1 | ENV |\n| HAZ-003 | x | S1 | ENV | traceability.md#haz-003 |\n"
        );
        let h = parse(&text, &areas());
        let all = h.errors.join("\n");
        for expected in [
            "`HAZ-01` is not a hazard ID",
            "severity `S9`",
            "`FOO` in Requirement areas",
            "must link to `traceability.md#haz-003`",
            "4 cells, the header has 5",
            "duplicate hazard ID",
        ] {
            assert!(all.contains(expected), "missing {expected:?} in {all}");
        }
        assert_eq!(h.requirement_mentions, [("SR-ENV-001".to_string(), 1)]);
    }
}
