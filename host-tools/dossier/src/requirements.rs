//! Parser for `docs/safety/requirements.md`.
//!
//! Each entry has exactly this form (continuation lines indented by spaces
//! are joined to the field above):
//!
//! ```text
//! ### SR-AREA-NNN: short title
//! - Requirement: one sentence, "shall".
//! - Rationale: why.
//! - Hazards: HAZ-NNN, HAZ-NNN
//! ```
//!
//! The file's header lists the areas (`` `PRO` wire protocol · `ROLE` caller
//! roles · … ``); a `## ` section whose title (without a `Capsule: ` prefix)
//! is an area's description holds only that area's entries.

use std::collections::BTreeMap;

/// One requirement entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Requirement {
    /// `SR-AREA-NNN`.
    pub id: String,
    /// `AREA`.
    pub area: String,
    /// Short title.
    pub title: String,
    /// The "shall" sentence.
    pub requirement: String,
    /// Why.
    pub rationale: String,
    /// Hazard IDs of the `- Hazards:` line, as written (validated separately).
    pub hazards: Vec<String>,
    /// 1-based line of the heading.
    pub line: usize,
}

/// A requirement section (`## …`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Section {
    /// Title as written.
    pub title: String,
    /// The area it holds, if its title names one.
    pub area: Option<String>,
    /// IDs of its entries, in file order.
    pub entries: Vec<String>,
}

/// The parsed file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Requirements {
    /// Area code → description, from the header's `Areas:` paragraph.
    pub areas: BTreeMap<String, String>,
    /// Sections in file order.
    pub sections: Vec<Section>,
    /// Entries in file order.
    pub entries: Vec<Requirement>,
    /// Format errors, each `line N: message`.
    pub errors: Vec<String>,
}

impl Requirements {
    /// The entry with this ID.
    pub fn get(&self, id: &str) -> Option<&Requirement> {
        self.entries.iter().find(|r| r.id == id)
    }
}

/// Splits `SR-AREA-NNN` into `AREA` if well formed.
pub fn parse_id(id: &str) -> Option<&str> {
    let rest = id.strip_prefix("SR-")?;
    let (area, num) = rest.split_once('-')?;
    let area_ok = !area.is_empty() && area.bytes().all(|c| c.is_ascii_uppercase());
    let num_ok = num.len() == 3 && num.bytes().all(|c| c.is_ascii_digit());
    (area_ok && num_ok).then_some(area)
}

/// Whether `id` is a well-formed hazard ID `HAZ-NNN`.
pub fn is_hazard_id(id: &str) -> bool {
    id.strip_prefix("HAZ-")
        .is_some_and(|n| n.len() == 3 && n.bytes().all(|c| c.is_ascii_digit()))
}

fn parse_areas(header: &str) -> BTreeMap<String, String> {
    let mut areas = BTreeMap::new();
    let Some(start) = header.find("Areas:") else {
        return areas;
    };
    let para = header[start + "Areas:".len()..]
        .split("\n\n")
        .next()
        .unwrap_or("")
        .replace('\n', " ");
    for item in para.split('·') {
        let item = item.trim().trim_end_matches('.');
        let mut parts = item.splitn(3, '`');
        let (Some(""), Some(code), Some(desc)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        areas.insert(code.trim().to_string(), desc.trim().to_string());
    }
    areas
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Field {
    Requirement,
    Rationale,
    Hazards,
}

const FIELDS: [(Field, &str); 3] = [
    (Field::Requirement, "- Requirement:"),
    (Field::Rationale, "- Rationale:"),
    (Field::Hazards, "- Hazards:"),
];

struct Pending {
    id: String,
    area: String,
    title: String,
    line: usize,
    fields: Vec<(Field, String)>,
}

/// Parses the file. Never fails: problems are collected in `errors`.
pub fn parse(text: &str) -> Requirements {
    let mut out = Requirements::default();
    let header_end = text.find("\n## ").map_or(text.len(), |i| i + 1);
    out.areas = parse_areas(&text[..header_end]);
    if out.areas.is_empty() {
        out.errors
            .push("line 1: the header has no `Areas:` paragraph listing the area codes".into());
    }
    let mut in_fence = false;
    let mut pending: Option<Pending> = None;
    for (index, raw) in text.lines().enumerate() {
        let line_no = index + 1;
        let line = raw.trim_end();
        if line.trim_start().starts_with("```") {
            in_fence = !in_fence;
            if pending.is_some() {
                out.errors.push(format!(
                    "line {line_no}: code fence inside a requirement entry"
                ));
            }
            continue;
        }
        if in_fence {
            continue;
        }
        if line.starts_with('#') {
            if let Some(p) = pending.take() {
                finish(&mut out, p);
            }
            if let Some(title) = line.strip_prefix("## ") {
                let title = title.trim().to_string();
                let key = title
                    .strip_prefix("Capsule: ")
                    .unwrap_or(&title)
                    .to_ascii_lowercase();
                let area = out
                    .areas
                    .iter()
                    .find(|(_, desc)| desc.to_ascii_lowercase() == key)
                    .map(|(code, _)| code.clone());
                out.sections.push(Section {
                    title,
                    area,
                    entries: Vec::new(),
                });
            } else if let Some(heading) = line.strip_prefix("### ") {
                pending = start_entry(&mut out, heading, line_no);
            } else if !line.starts_with("# ") {
                out.errors.push(format!(
                    "line {line_no}: unexpected heading `{line}`; entries are `### SR-AREA-NNN: title` under a `## ` section"
                ));
            }
            continue;
        }
        let Some(p) = pending.as_mut() else {
            continue;
        };
        if line.is_empty() {
            continue;
        }
        if let Some((field, rest)) = FIELDS
            .iter()
            .find_map(|(f, prefix)| line.strip_prefix(prefix).map(|rest| (*f, rest)))
        {
            let expected = FIELDS.get(p.fields.len()).map(|(f, _)| *f);
            if expected != Some(field) {
                out.errors.push(format!(
                    "line {line_no}: {}: field `{field:?}` out of order or repeated; the order is Requirement, Rationale, Hazards",
                    p.id
                ));
            }
            p.fields.push((field, rest.trim().to_string()));
        } else if raw.starts_with("  ") && !p.fields.is_empty() {
            let last = p.fields.last_mut().expect("non-empty");
            last.1.push(' ');
            last.1.push_str(line.trim());
        } else {
            out.errors.push(format!(
                "line {line_no}: {}: unexpected line `{line}`; an entry has only `- Requirement:`, `- Rationale:` and `- Hazards:` lines",
                p.id
            ));
        }
    }
    if let Some(p) = pending.take() {
        finish(&mut out, p);
    }
    if in_fence {
        out.errors.push("end of file: unclosed code fence".into());
    }
    out
}

fn start_entry(out: &mut Requirements, heading: &str, line_no: usize) -> Option<Pending> {
    let Some((id, title)) = heading.split_once(':') else {
        out.errors.push(format!(
            "line {line_no}: heading `### {heading}` is not `### SR-AREA-NNN: title`"
        ));
        return None;
    };
    let (id, title) = (id.trim(), title.trim());
    let Some(area) = parse_id(id) else {
        out.errors.push(format!(
            "line {line_no}: `{id}` is not an ID of the form SR-AREA-NNN (upper-case area, three digits)"
        ));
        return None;
    };
    if title.is_empty() {
        out.errors
            .push(format!("line {line_no}: {id}: the heading has no title"));
    }
    if !out.areas.is_empty() && !out.areas.contains_key(area) {
        let known: Vec<&str> = out.areas.keys().map(String::as_str).collect();
        out.errors.push(format!(
            "line {line_no}: {id}: unknown area `{area}`; known areas: {}",
            known.join(", ")
        ));
    }
    match out.sections.last_mut() {
        None => {
            out.errors.push(format!(
                "line {line_no}: {id}: entry before the first `## ` section"
            ));
        }
        Some(section) => {
            if let Some(section_area) = &section.area {
                if section_area != area {
                    out.errors.push(format!(
                        "line {line_no}: {id}: entry of area {area} is under section `## {}`, which holds area {section_area}",
                        section.title
                    ));
                }
            }
            section.entries.push(id.to_string());
        }
    }
    if out.entries.iter().any(|r| r.id == id) {
        out.errors
            .push(format!("line {line_no}: {id}: duplicate requirement ID"));
    }
    Some(Pending {
        id: id.to_string(),
        area: area.to_string(),
        title: title.to_string(),
        line: line_no,
        fields: Vec::new(),
    })
}

fn finish(out: &mut Requirements, p: Pending) {
    let line = p.line;
    let id = &p.id;
    let get = |f: Field| {
        p.fields
            .iter()
            .find(|(field, _)| *field == f)
            .map(|(_, v)| v.clone())
    };
    for (field, prefix) in FIELDS {
        match get(field) {
            None => {
                out.errors
                    .push(format!("line {line}: {id}: missing `{prefix}` line"));
            }
            Some(v) if v.is_empty() => {
                out.errors
                    .push(format!("line {line}: {id}: `{prefix}` is empty"));
            }
            Some(_) => {}
        }
    }
    let requirement = get(Field::Requirement).unwrap_or_default();
    if !requirement.is_empty() && !requirement.to_ascii_lowercase().contains("shall") {
        out.errors.push(format!(
            "line {line}: {id}: the requirement sentence has no \"shall\""
        ));
    }
    let hazards_raw = get(Field::Hazards).unwrap_or_default();
    let mut hazards = Vec::new();
    if hazards_raw.to_ascii_uppercase().contains("TBD") {
        out.errors.push(format!(
            "line {line}: {id}: `- Hazards:` says TBD; name the HAZ-NNN IDs from docs/safety/hazards.md"
        ));
    } else if !hazards_raw.is_empty() {
        for item in hazards_raw.split(',').map(str::trim) {
            if is_hazard_id(item) {
                if hazards.iter().any(|h| h == item) {
                    out.errors
                        .push(format!("line {line}: {id}: hazard {item} listed twice"));
                }
                hazards.push(item.to_string());
            } else {
                out.errors.push(format!(
                    "line {line}: {id}: `{item}` in `- Hazards:` is not a hazard ID HAZ-NNN"
                ));
            }
        }
    }
    out.entries.push(Requirement {
        id: p.id,
        area: p.area,
        title: p.title,
        requirement,
        rationale: get(Field::Rationale).unwrap_or_default(),
        hazards,
        line,
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "# Safety requirements\n\nFormat:\n\n```text\n### SR-AREA-NNN: short title\n- Requirement: x\n```\n\nAreas: `PRO` wire protocol · `ROLE` caller\nroles · `ENV` safety envelope.\n\n";

    fn parse_body(body: &str) -> Requirements {
        parse(&format!("{HEADER}{body}"))
    }

    #[test]
    fn parses_areas_entries_and_sections() {
        let r = parse_body(
            "## Wire protocol\n\n### SR-PRO-001: CRC\n- Requirement: The decoder shall reject bad CRCs.\n- Rationale: Corruption.\n  Continued here.\n- Hazards: HAZ-021, HAZ-003\n\n## Capsule: caller roles\n\n## Capsule: safety envelope\n",
        );
        assert_eq!(r.errors, Vec::<String>::new());
        assert_eq!(r.areas.len(), 3);
        assert_eq!(r.areas["ROLE"], "caller roles");
        assert_eq!(r.sections.len(), 3);
        assert_eq!(r.sections[1].area.as_deref(), Some("ROLE"));
        let e = &r.entries[0];
        assert_eq!(e.id, "SR-PRO-001");
        assert_eq!(e.area, "PRO");
        assert_eq!(e.title, "CRC");
        assert_eq!(e.rationale, "Corruption. Continued here.");
        assert_eq!(e.hazards, ["HAZ-021", "HAZ-003"]);
        assert_eq!(e.line, 15);
    }

    #[test]
    fn example_in_code_fence_is_not_an_entry() {
        let r = parse_body("## Wire protocol\n");
        assert!(r.entries.is_empty());
        assert!(r.errors.is_empty());
    }

    #[test]
    fn tbd_hazards_is_an_error() {
        let r = parse_body(
            "## Wire protocol\n### SR-PRO-001: x\n- Requirement: It shall.\n- Rationale: y\n- Hazards: TBD\n",
        );
        assert_eq!(r.errors.len(), 1, "{:?}", r.errors);
        assert!(r.errors[0].contains("TBD"));
    }

    #[test]
    fn malformed_entries_are_reported() {
        let cases = [
            ("### SR-PRO-1: x\n", "not an ID"),
            ("### SR-pro-001: x\n", "not an ID"),
            ("### SR-PRO-001 x\n", "is not `### SR-AREA-NNN: title`"),
            ("### SR-XYZ-001: x\n- Requirement: shall\n- Rationale: r\n- Hazards: HAZ-001\n", "unknown area"),
            ("### SR-ENV-001: x\n- Requirement: shall\n- Rationale: r\n- Hazards: HAZ-001\n", "which holds area PRO"),
            ("### SR-PRO-001: x\n- Rationale: r\n- Requirement: shall\n- Hazards: HAZ-001\n", "out of order"),
            ("### SR-PRO-001: x\n- Requirement: shall\n- Hazards: HAZ-001\n", "out of order"),
            ("### SR-PRO-001: x\n- Requirement: shall\n- Rationale: r\n", "missing `- Hazards:`"),
            ("### SR-PRO-001: x\n- Requirement: must\n- Rationale: r\n- Hazards: HAZ-001\n", "no \"shall\""),
            ("### SR-PRO-001: x\n- Requirement: shall\n- Rationale:\n- Hazards: HAZ-001\n", "is empty"),
            ("### SR-PRO-001: x\n- Requirement: shall\n- Rationale: r\n- Hazards: HAZ-1, foo\n", "is not a hazard ID"),
            ("### SR-PRO-001: x\n- Requirement: shall\n- Rationale: r\n- Hazards: HAZ-001\n- Verification: t\n", "unexpected line"),
            ("### SR-PRO-001: x\n- Requirement: shall\n- Rationale: r\n- Hazards: HAZ-001\n### SR-PRO-001: y\n- Requirement: shall\n- Rationale: r\n- Hazards: HAZ-001\n", "duplicate"),
            ("### Notes\n", "is not `### SR-AREA-NNN: title`"),
            ("#### SR-PRO-001: x\n", "unexpected heading"),
        ];
        for (body, expected) in cases {
            let r = parse_body(&format!("## Wire protocol\n{body}"));
            assert!(
                r.errors.iter().any(|e| e.contains(expected)),
                "{body:?}: expected an error containing {expected:?}, got {:?}",
                r.errors
            );
        }
    }

    #[test]
    fn missing_areas_paragraph_is_an_error() {
        let r = parse("# Safety requirements\n\n## Wire protocol\n");
        assert_eq!(r.errors.len(), 1);
        assert!(r.errors[0].contains("Areas:"));
    }

    #[test]
    fn id_shapes() {
        assert_eq!(parse_id("SR-ENV-003"), Some("ENV"));
        assert_eq!(parse_id("SR-ENV-03"), None);
        assert_eq!(parse_id("SR-Env-003"), None);
        assert!(is_hazard_id("HAZ-046"));
        assert!(!is_hazard_id("HAZ-46"));
    }
}
