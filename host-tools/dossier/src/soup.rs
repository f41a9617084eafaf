//! SOUP (software of unknown provenance, IEC 62304 3.29) list from the
//! lockfiles.
//!
//! Every lockfile of the repository is read: the root workspace's and those
//! of the firmware projects (`boards/`, `boards/*/`, `capsules/*/`, `apps/`,
//! `apps/*/`). Packages
//! without a `source` are ours; every other package is SOUP. Which of our
//! crates pull a package in, and how (normal, dev or build; directly or
//! transitively), comes from the lockfile's dependency graph plus our
//! manifests' dependency sections (the lockfile does not record kinds).
//! Purpose and acceptance come from `docs/safety/soup-rationale.toml`, which
//! must cover every direct dependency.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use crate::tree::Tree;

/// Where lockfiles are looked for (one `*` matches one directory).
pub const LOCKFILE_PATTERNS: &[&str] = &[
    "Cargo.lock",
    "boards/Cargo.lock",
    "boards/*/Cargo.lock",
    "capsules/*/Cargo.lock",
    "apps/Cargo.lock",
    "apps/*/Cargo.lock",
];

/// The hand-maintained rationale file.
pub const RATIONALE_PATH: &str = "docs/safety/soup-rationale.toml";

/// How a dependency is used.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DepKind {
    /// `[dependencies]`.
    Normal,
    /// `[build-dependencies]`.
    Build,
    /// `[dev-dependencies]`.
    Dev,
}

impl DepKind {
    fn name(self) -> &'static str {
        match self {
            DepKind::Normal => "normal",
            DepKind::Build => "build",
            DepKind::Dev => "dev",
        }
    }

    /// Kind of a path through `self` then `next`: dev wins, then build.
    fn then(self, next: DepKind) -> DepKind {
        self.max(next)
    }
}

/// One `[[package]]` of a lockfile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LockPackage {
    /// Name.
    pub name: String,
    /// Version.
    pub version: String,
    /// `source`, absent for path and workspace packages.
    pub source: Option<String>,
    /// Dependency strings (`name`, `name version` or `name version (source)`).
    pub deps: Vec<String>,
}

/// Parses a `Cargo.lock`.
pub fn parse_lockfile(text: &str) -> Result<Vec<LockPackage>, String> {
    let table: toml::Table = text.parse().map_err(|e| format!("not TOML: {e}"))?;
    let Some(packages) = table.get("package").and_then(|p| p.as_array()) else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for p in packages {
        let field = |k: &str| p.get(k).and_then(|v| v.as_str()).map(str::to_string);
        let (Some(name), Some(version)) = (field("name"), field("version")) else {
            return Err("a [[package]] lacks name or version".into());
        };
        let deps = p
            .get("dependencies")
            .and_then(|d| d.as_array())
            .map(|d| {
                d.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        out.push(LockPackage {
            name,
            version,
            source: field("source"),
            deps,
        });
    }
    Ok(out)
}

/// Resolves a lockfile dependency string to a package index.
fn resolve(packages: &[LockPackage], dep: &str) -> Option<usize> {
    let mut parts = dep.splitn(3, ' ');
    let name = parts.next()?;
    let version = parts.next();
    let source = parts
        .next()
        .map(|s| s.trim_start_matches('(').trim_end_matches(')'));
    let matches: Vec<usize> = packages
        .iter()
        .enumerate()
        .filter(|(_, p)| {
            p.name == name
                && version.is_none_or(|v| p.version == v)
                && source.is_none_or(|s| p.source.as_deref() == Some(s))
        })
        .map(|(i, _)| i)
        .collect();
    (matches.len() == 1).then(|| matches[0])
}

/// A manifest of one of our packages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Manifest {
    /// Repository-relative directory.
    pub dir: String,
    /// Dependencies as (package name, kind).
    pub deps: Vec<(String, DepKind)>,
}

/// Joins and lexically normalises repository-relative paths.
pub fn join(dir: &str, rel: &str) -> String {
    let mut parts: Vec<&str> = dir.split('/').filter(|p| !p.is_empty()).collect();
    for part in rel.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    parts.join("/")
}

fn parent(dir: &str) -> Option<&str> {
    if dir.is_empty() {
        None
    } else {
        Some(dir.rsplit_once('/').map_or("", |(p, _)| p))
    }
}

/// Expands a path pattern whose components may be `*`.
pub fn expand(tree: &dyn Tree, base: &str, pattern: &str) -> Vec<String> {
    let mut found = vec![base.to_string()];
    for part in pattern.split('/').filter(|p| !p.is_empty() && *p != ".") {
        let mut next = Vec::new();
        for dir in &found {
            if part == "*" {
                next.extend(tree.subdirs(dir).into_iter().map(|d| join(dir, &d)));
            } else {
                next.push(join(dir, part));
            }
        }
        found = next;
    }
    found
}

fn parse_toml(tree: &dyn Tree, path: &str) -> Result<Option<toml::Table>, String> {
    match tree.read(path) {
        None => Ok(None),
        Some(text) => text
            .parse::<toml::Table>()
            .map(Some)
            .map_err(|e| format!("{path}: not TOML: {e}")),
    }
}

/// The workspace a package directory belongs to: the nearest manifest with a
/// `[workspace]` table that does not exclude it.
fn workspace_of(tree: &dyn Tree, dir: &str) -> Option<(String, toml::Table)> {
    let mut cur = Some(dir);
    while let Some(d) = cur {
        if let Ok(Some(t)) = parse_toml(tree, &join(d, "Cargo.toml")) {
            if let Some(ws) = t.get("workspace").and_then(|w| w.as_table()) {
                let excluded = ws
                    .get("exclude")
                    .and_then(|e| e.as_array())
                    .into_iter()
                    .flatten()
                    .filter_map(|e| e.as_str())
                    .any(|e| {
                        let e = join(d, e);
                        dir == e || dir.starts_with(&format!("{e}/"))
                    });
                if !excluded {
                    return Some((d.to_string(), ws.clone()));
                }
            }
        }
        cur = parent(d);
    }
    None
}

const DEP_TABLES: [(&str, DepKind); 3] = [
    ("dependencies", DepKind::Normal),
    ("dev-dependencies", DepKind::Dev),
    ("build-dependencies", DepKind::Build),
];

/// Our manifests reachable from the project in `project_dir`: workspace
/// members and path dependencies, transitively, keyed by package name.
pub fn local_manifests(
    tree: &dyn Tree,
    project_dir: &str,
) -> Result<BTreeMap<String, Manifest>, Vec<String>> {
    let mut out = BTreeMap::new();
    let mut errors = Vec::new();
    let mut queue = VecDeque::from([project_dir.to_string()]);
    let mut seen = BTreeSet::new();
    while let Some(dir) = queue.pop_front() {
        if !seen.insert(dir.clone()) {
            continue;
        }
        let path = join(&dir, "Cargo.toml");
        let table = match parse_toml(tree, &path) {
            Ok(Some(t)) => t,
            Ok(None) => {
                errors.push(format!(
                    "{path}: missing (named as a member or path dependency)"
                ));
                continue;
            }
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        if let Some(ws) = table.get("workspace").and_then(|w| w.as_table()) {
            let excluded: Vec<String> = ws
                .get("exclude")
                .and_then(|e| e.as_array())
                .into_iter()
                .flatten()
                .filter_map(|e| e.as_str())
                .map(|e| join(&dir, e))
                .collect();
            for member in ws
                .get("members")
                .and_then(|m| m.as_array())
                .into_iter()
                .flatten()
                .filter_map(|m| m.as_str())
            {
                for m in expand(tree, &dir, member) {
                    if !excluded
                        .iter()
                        .any(|e| m == *e || m.starts_with(&format!("{e}/")))
                    {
                        queue.push_back(m);
                    }
                }
            }
        }
        let Some(package) = table.get("package").and_then(|p| p.as_table()) else {
            continue;
        };
        let Some(name) = package.get("name").and_then(|n| n.as_str()) else {
            errors.push(format!("{path}: [package] has no name"));
            continue;
        };
        let workspace = workspace_of(tree, &dir);
        let mut deps = Vec::new();
        let mut sections: Vec<(&toml::Table, DepKind)> = Vec::new();
        for (key, kind) in DEP_TABLES {
            if let Some(t) = table.get(key).and_then(|t| t.as_table()) {
                sections.push((t, kind));
            }
        }
        if let Some(targets) = table.get("target").and_then(|t| t.as_table()) {
            for target in targets.values().filter_map(|t| t.as_table()) {
                for (key, kind) in DEP_TABLES {
                    if let Some(t) = target.get(key).and_then(|t| t.as_table()) {
                        sections.push((t, kind));
                    }
                }
            }
        }
        for (section, kind) in sections {
            for (key, spec) in section {
                let mut package_name = key.clone();
                let mut dep_path = None;
                if let Some(spec) = spec.as_table() {
                    if spec.get("workspace").and_then(|w| w.as_bool()) == Some(true) {
                        let ws_spec = workspace.as_ref().and_then(|(ws_dir, ws)| {
                            ws.get("dependencies")
                                .and_then(|d| d.get(key))
                                .map(|s| (ws_dir, s))
                        });
                        match ws_spec {
                            Some((ws_dir, s)) => {
                                if let Some(p) = s.get("package").and_then(|p| p.as_str()) {
                                    package_name = p.to_string();
                                }
                                if let Some(p) = s.get("path").and_then(|p| p.as_str()) {
                                    dep_path = Some(join(ws_dir, p));
                                }
                            }
                            None => errors.push(format!(
                                "{path}: `{key}` uses `workspace = true` but no workspace defines it"
                            )),
                        }
                    }
                    if let Some(p) = spec.get("package").and_then(|p| p.as_str()) {
                        package_name = p.to_string();
                    }
                    if let Some(p) = spec.get("path").and_then(|p| p.as_str()) {
                        dep_path = Some(join(&dir, p));
                    }
                }
                if let Some(p) = dep_path {
                    queue.push_back(p);
                }
                deps.push((package_name, kind));
            }
        }
        deps.sort();
        deps.dedup();
        out.insert(name.to_string(), Manifest { dir, deps });
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

/// How one of our crates uses a SOUP package.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Use {
    /// Whether our crate names it in its manifest.
    pub direct: bool,
    /// How.
    pub kind: DepKind,
}

/// One SOUP package (name, version, source), merged over lockfiles.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SoupPackage {
    /// Name.
    pub name: String,
    /// Version.
    pub version: String,
    /// Raw lockfile source.
    pub source: String,
    /// Lockfiles it appears in.
    pub lockfiles: BTreeSet<String>,
    /// Our crate → how it uses the package.
    pub users: BTreeMap<String, BTreeSet<Use>>,
    /// For transitive packages: the direct dependencies that pull it in.
    pub via: BTreeSet<String>,
}

impl SoupPackage {
    /// Whether any of our crates depends on it directly.
    pub fn is_direct(&self) -> bool {
        self.users.values().flatten().any(|u| u.direct)
    }
}

/// The SOUP analysis of the repository.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Soup {
    /// Lockfiles read, with their count of SOUP packages.
    pub lockfiles: Vec<(String, usize)>,
    /// Packages, sorted by name, version, source.
    pub packages: Vec<SoupPackage>,
    /// Problems reading lockfiles or manifests.
    pub errors: Vec<String>,
}

/// Reads every lockfile and builds the SOUP list.
pub fn analyze(tree: &dyn Tree) -> Soup {
    let mut soup = Soup::default();
    let mut rows: BTreeMap<(String, String, String), SoupPackage> = BTreeMap::new();
    let mut lockfiles: Vec<String> = LOCKFILE_PATTERNS
        .iter()
        .flat_map(|p| expand(tree, "", p))
        .filter(|p| tree.read(p).is_some())
        .collect();
    lockfiles.sort();
    lockfiles.dedup();
    for lock_path in lockfiles {
        let project_dir = parent(&lock_path).unwrap_or("").to_string();
        let mut packages = match parse_lockfile(&tree.read(&lock_path).unwrap_or_default()) {
            Ok(p) => p,
            Err(e) => {
                soup.errors.push(format!("{lock_path}: {e}"));
                continue;
            }
        };
        let manifests = match local_manifests(tree, &project_dir) {
            Ok(m) => m,
            Err(e) => {
                soup.errors.extend(e);
                continue;
            }
        };
        attribute_path_patched(tree, &project_dir, &manifests, &mut packages);
        let count = packages.iter().filter(|p| p.source.is_some()).count();
        analyze_lock(
            &lock_path,
            &packages,
            &manifests,
            &mut rows,
            &mut soup.errors,
        );
        soup.lockfiles.push((lock_path, count));
    }
    soup.packages = rows.into_values().collect();
    soup
}

/// Firmware projects build offline with their upstream git dependencies
/// patched to local paths, so their lockfile lists those packages with no
/// source, like our own crates. A sourceless package with no manifest of ours
/// is upstream: attribute it to the git source the project's `Cargo.toml` pins,
/// when it pins exactly one (otherwise it stays unattributed and is reported).
pub fn attribute_path_patched(
    tree: &dyn Tree,
    project_dir: &str,
    manifests: &BTreeMap<String, Manifest>,
    packages: &mut [LockPackage],
) {
    let manifest_path = if project_dir.is_empty() {
        "Cargo.toml".to_string()
    } else {
        format!("{project_dir}/Cargo.toml")
    };
    let Some(pin) = tree
        .read(&manifest_path)
        .and_then(|text| single_git_pin(&text))
    else {
        return;
    };
    for p in packages
        .iter_mut()
        .filter(|p| p.source.is_none() && !manifests.contains_key(&p.name))
    {
        p.source = Some(pin.clone());
    }
}

/// The one `git` + `rev` pair a manifest's dependency tables use, as a
/// lockfile source string (`git+URL?rev=REV#REV`).
pub fn single_git_pin(manifest: &str) -> Option<String> {
    let table: toml::Table = manifest.parse().ok()?;
    let mut pins = BTreeSet::new();
    for section in ["dependencies", "build-dependencies", "dev-dependencies"] {
        let Some(deps) = table.get(section).and_then(|v| v.as_table()) else {
            continue;
        };
        for spec in deps.values().filter_map(|v| v.as_table()) {
            if let (Some(git), Some(rev)) = (
                spec.get("git").and_then(|v| v.as_str()),
                spec.get("rev").and_then(|v| v.as_str()),
            ) {
                pins.insert(format!("git+{git}?rev={rev}#{rev}"));
            }
        }
    }
    if pins.len() == 1 {
        pins.into_iter().next()
    } else {
        None
    }
}

/// Adds one lockfile's SOUP packages and their users to `rows`.
pub fn analyze_lock(
    lock_path: &str,
    packages: &[LockPackage],
    manifests: &BTreeMap<String, Manifest>,
    rows: &mut BTreeMap<(String, String, String), SoupPackage>,
    errors: &mut Vec<String>,
) {
    // Resolved edges per package.
    let mut edges: Vec<Vec<usize>> = Vec::with_capacity(packages.len());
    for p in packages {
        let mut out = Vec::new();
        for d in &p.deps {
            match resolve(packages, d) {
                Some(i) => out.push(i),
                None => errors.push(format!(
                    "{lock_path}: cannot resolve dependency `{d}` of {}",
                    p.name
                )),
            }
        }
        edges.push(out);
    }
    // Kinds of an edge from one of our packages, from its manifest.
    let our_edge_kinds = |from: usize, to: usize| -> Vec<DepKind> {
        let Some(m) = manifests.get(&packages[from].name) else {
            return Vec::new();
        };
        m.deps
            .iter()
            .filter(|(n, _)| *n == packages[to].name)
            .map(|(_, k)| *k)
            .collect()
    };
    for (ours, p) in packages.iter().enumerate() {
        if p.source.is_some() {
            continue;
        }
        if !manifests.contains_key(&p.name) {
            errors.push(format!(
                "{lock_path}: local package {} has no manifest reachable from the project's workspace members or path dependencies",
                p.name
            ));
            continue;
        }
        // (package, kind, direct, via)
        let mut queue: VecDeque<(usize, DepKind, bool, Option<String>)> = VecDeque::new();
        for &to in &edges[ours] {
            if to == ours {
                continue;
            }
            let kinds = our_edge_kinds(ours, to);
            if kinds.is_empty() {
                errors.push(format!(
                    "{lock_path}: {} depends on {} in the lockfile but not in its manifest",
                    p.name, packages[to].name
                ));
            }
            for kind in kinds {
                queue.push_back((to, kind, true, None));
            }
        }
        let mut seen = BTreeSet::new();
        while let Some((node, kind, direct, via)) = queue.pop_front() {
            if node == ours || !seen.insert((node, kind, direct, via.clone())) {
                continue;
            }
            let pkg = &packages[node];
            match &pkg.source {
                None => {
                    // Another of our crates: only its normal and build
                    // dependencies come along.
                    for &to in &edges[node] {
                        for k in our_edge_kinds(node, to) {
                            if k != DepKind::Dev {
                                queue.push_back((to, kind.then(k), false, None));
                            }
                        }
                    }
                }
                Some(source) => {
                    let row = rows
                        .entry((pkg.name.clone(), pkg.version.clone(), source.clone()))
                        .or_insert_with(|| SoupPackage {
                            name: pkg.name.clone(),
                            version: pkg.version.clone(),
                            source: source.clone(),
                            ..SoupPackage::default()
                        });
                    row.lockfiles.insert(lock_path.to_string());
                    row.users
                        .entry(p.name.clone())
                        .or_default()
                        .insert(Use { direct, kind });
                    if let Some(v) = &via {
                        row.via.insert(v.clone());
                    }
                    let via = Some(via.unwrap_or_else(|| pkg.name.clone()));
                    for &to in &edges[node] {
                        queue.push_back((to, kind, false, via.clone()));
                    }
                }
            }
        }
    }
}

/// A `[crates.*]` or `[sources.*]` entry of the rationale file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rationale {
    /// What we use it for.
    pub purpose: String,
    /// Why that is acceptable.
    pub acceptable: String,
    /// Known-anomaly review (IEC 62304 7.1.3), if done.
    pub anomalies: Option<String>,
}

/// The parsed rationale file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rationales {
    /// By package name.
    pub crates: BTreeMap<String, Rationale>,
    /// By source URL (git repository or registry), for every package from it.
    pub sources: BTreeMap<String, Rationale>,
}

/// Parses `soup-rationale.toml`.
pub fn parse_rationale(text: &str) -> Result<Rationales, Vec<String>> {
    let table: toml::Table = text
        .parse()
        .map_err(|e| vec![format!("{RATIONALE_PATH}: not TOML: {e}")])?;
    let mut out = Rationales::default();
    let mut errors = Vec::new();
    for (top, value) in &table {
        let target = match top.as_str() {
            "crates" => &mut out.crates,
            "sources" => &mut out.sources,
            other => {
                errors.push(format!(
                    "{RATIONALE_PATH}: unknown table `[{other}]`; only `[crates.NAME]` and `[sources.\"URL\"]` entries are allowed"
                ));
                continue;
            }
        };
        let Some(entries) = value.as_table() else {
            errors.push(format!("{RATIONALE_PATH}: `{top}` must be a table"));
            continue;
        };
        for (name, entry) in entries {
            let Some(entry) = entry.as_table() else {
                errors.push(format!("{RATIONALE_PATH}: [{top}.{name}] must be a table"));
                continue;
            };
            let text = |k: &str| {
                entry
                    .get(k)
                    .and_then(|v| v.as_str())
                    .map(|s| s.split_whitespace().collect::<Vec<_>>().join(" "))
            };
            for key in entry.keys() {
                if !matches!(key.as_str(), "purpose" | "acceptable" | "anomalies") {
                    errors.push(format!(
                        "{RATIONALE_PATH}: [{top}.{name}]: unknown key `{key}` (allowed: purpose, acceptable, anomalies)"
                    ));
                }
            }
            match (text("purpose"), text("acceptable")) {
                (Some(purpose), Some(acceptable))
                    if !purpose.is_empty() && !acceptable.is_empty() =>
                {
                    target.insert(
                        name.clone(),
                        Rationale {
                            purpose,
                            acceptable,
                            anomalies: text("anomalies").filter(|a| !a.is_empty()),
                        },
                    );
                }
                _ => errors.push(format!(
                    "{RATIONALE_PATH}: [{top}.{name}] needs non-empty `purpose` and `acceptable` strings"
                )),
            }
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

/// The repository or registry URL of a lockfile source.
pub fn source_url(source: &str) -> String {
    let rest = source.split_once('+').map_or(source, |(_, r)| r);
    let url = rest.split(['?', '#']).next().unwrap_or(rest);
    url.trim_end_matches('/')
        .trim_end_matches(".git")
        .to_string()
}

/// Whether a source is crates.io.
fn is_crates_io(source: &str) -> bool {
    source == "registry+https://github.com/rust-lang/crates.io-index"
        || source.starts_with("sparse+https://index.crates.io")
}

/// Human-readable source: `crates.io`, or git URL with the pinned commit.
pub fn display_source(source: &str) -> String {
    if is_crates_io(source) {
        return "crates.io".to_string();
    }
    if let Some(rest) = source.strip_prefix("git+") {
        let url = source_url(source);
        let commit = rest.split_once('#').map(|(_, c)| c);
        let reference = rest
            .split_once('?')
            .map(|(_, q)| q.split('#').next().unwrap_or(q).replace('=', " "));
        let mut out = format!("git {url}");
        if let Some(r) = reference {
            out.push_str(&format!(" ({r})"));
        }
        match commit {
            Some(c) => out.push_str(&format!(", pinned rev `{c}`")),
            None => out.push_str(", no pinned rev"),
        }
        return out;
    }
    format!("registry {}", source_url(source))
}

impl Rationales {
    /// The rationale that applies to a package, and whether it is its own.
    pub fn lookup(&self, name: &str, source: &str) -> Option<&Rationale> {
        self.crates
            .get(name)
            .or_else(|| self.sources.get(&source_url(source)))
    }
}

/// Direct dependencies without a rationale, each as a message telling the
/// developer the exact entry to add.
pub fn missing_rationale(soup: &Soup, rationales: &Rationales) -> Vec<String> {
    let mut out = Vec::new();
    for p in soup.packages.iter().filter(|p| p.is_direct()) {
        if rationales.lookup(&p.name, &p.source).is_some() {
            continue;
        }
        if out
            .iter()
            .any(|m: &String| m.contains(&format!("[crates.{}]", p.name)))
        {
            continue;
        }
        out.push(format!(
            "direct dependency `{name}` {version} ({source}, used by {users}) has no rationale. Add to {RATIONALE_PATH}:\n\n[crates.{name}]\npurpose = \"what {name} does for us\"\nacceptable = \"why that is acceptable: where it runs, what a failure of it would do, how it is verified\"\n\nthen run `cargo run -p pump-dossier -- regenerate`.",
            name = p.name,
            version = p.version,
            source = display_source(&p.source),
            users = users_text(p),
        ));
    }
    out
}

fn users_text(p: &SoupPackage) -> String {
    let mut direct = Vec::new();
    let mut transitive = Vec::new();
    for (user, uses) in &p.users {
        for (is_direct, list) in [(true, &mut direct), (false, &mut transitive)] {
            let kinds: BTreeSet<&str> = uses
                .iter()
                .filter(|u| u.direct == is_direct)
                .map(|u| u.kind.name())
                .collect();
            if !kinds.is_empty() {
                list.push(format!(
                    "{user} ({})",
                    kinds.into_iter().collect::<Vec<_>>().join(", ")
                ));
            }
        }
    }
    let mut parts = Vec::new();
    if !direct.is_empty() {
        parts.push(format!("direct: {}", direct.join(", ")));
    }
    if !transitive.is_empty() {
        parts.push(format!("transitive: {}", transitive.join(", ")));
    }
    parts.join("; ")
}

fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// Renders `docs/safety/soup.md`.
pub fn render(soup: &Soup, rationales: &Rationales) -> String {
    let mut o = String::new();
    o.push_str("# SOUP list\n\n");
    o.push_str("<!-- Generated by `cargo run -p pump-dossier -- regenerate`. Do not edit. -->\n\n");
    o.push_str("Software of unknown provenance (IEC 62304 3.29, 5.3.3, 5.3.4, 7.1.2, 8.1.2): every third-party package in the lockfiles below, with the version and source the lockfile pins, which of our crates pull it in and how, and why it is acceptable. Generated from the lockfiles and the hand-maintained [`soup-rationale.toml`](soup-rationale.toml) by\n\n```sh\ncargo run -p pump-dossier -- regenerate\n```\n\n`cargo test -p pump-dossier` fails when this file is stale or a direct dependency has no rationale.\n\n");
    o.push_str("How to read \"Used by\": *direct* means the crate names the package in its manifest, *transitive* that it comes in through another package; the kind (normal, dev, build) is that of the first edge from our crate (a dev-dependency's dependencies are dev). Packages used only as `dev` are test tooling and never reach the implant. The lockfile's graph is feature-unified across each lockfile's workspace, so \"Used by\" and \"Pulled in by\" may over-approximate (never under-approximate) which crate really needs a package. Firmware lockfiles pin upstream Tock and libtock-rs by git revision. A firmware lockfile produced offline, with upstream patched to local trees, lists upstream packages without a source; they are attributed to the single git source and revision its project's `Cargo.toml` pins (see residual-risks.md, RR-44).\n\n");
    o.push_str("## Lockfiles\n\n| Lockfile | Third-party packages |\n|---|---|\n");
    for (path, count) in &soup.lockfiles {
        o.push_str(&format!("| `{path}` | {count} |\n"));
    }
    let lockfiles_text = |p: &SoupPackage| {
        p.lockfiles
            .iter()
            .map(|l| format!("`{l}`"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    o.push_str("\n## Direct dependencies\n\n| Package | Version | Source | Lockfiles | Used by | Purpose | Why acceptable | Known anomalies |\n|---|---|---|---|---|---|---|---|\n");
    for p in soup.packages.iter().filter(|p| p.is_direct()) {
        let (purpose, acceptable, anomalies) = match rationales.lookup(&p.name, &p.source) {
            Some(r) => (
                r.purpose.clone(),
                r.acceptable.clone(),
                r.anomalies
                    .clone()
                    .unwrap_or_else(|| "Not yet reviewed.".to_string()),
            ),
            None => (
                "**MISSING** — add an entry to soup-rationale.toml".to_string(),
                "—".to_string(),
                "—".to_string(),
            ),
        };
        o.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} |\n",
            cell(&p.name),
            cell(&p.version),
            cell(&display_source(&p.source)),
            lockfiles_text(p),
            cell(&users_text(p)),
            cell(&purpose),
            cell(&acceptable),
            cell(&anomalies)
        ));
    }
    o.push_str("\n## Transitive dependencies\n\nAccepted with the direct dependency that pulls them in, unless they have their own entry.\n\n| Package | Version | Source | Lockfiles | Pulled in by | Used by | Purpose |\n|---|---|---|---|---|---|---|\n");
    for p in soup.packages.iter().filter(|p| !p.is_direct()) {
        let via = p.via.iter().cloned().collect::<Vec<_>>().join(", ");
        let purpose = match rationales.crates.get(&p.name) {
            Some(r) => format!("{} {}", r.purpose, r.acceptable),
            None => format!("Pulled in by {via}; accepted with it."),
        };
        o.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} |\n",
            cell(&p.name),
            cell(&p.version),
            cell(&display_source(&p.source)),
            lockfiles_text(p),
            cell(&via),
            cell(&users_text(p)),
            cell(&purpose)
        ));
    }
    if !soup.errors.is_empty() {
        o.push_str("\n## Problems\n\n");
        for e in &soup.errors {
            o.push_str(&format!("- {}\n", cell(e)));
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::MemTree;

    const CRATES_IO: &str = "registry+https://github.com/rust-lang/crates.io-index";

    fn fixture() -> MemTree {
        MemTree::new(&[
            (
                "Cargo.toml",
                "[workspace]\nmembers = [\"proto\", \"core\"]\nexclude = [\"boards\"]\n[workspace.dependencies]\nproto = { path = \"proto\" }\nser = { version = \"1\", package = \"serde\" }\n",
            ),
            (
                "proto/Cargo.toml",
                "[package]\nname = \"proto\"\n[dependencies]\nser.workspace = true\n[dev-dependencies]\nproptest = \"1\"\nproto = { path = \".\" }\n",
            ),
            (
                "core/Cargo.toml",
                "[package]\nname = \"core\"\n[dependencies]\nproto.workspace = true\n[target.'cfg(unix)'.build-dependencies]\ncc = \"1\"\n",
            ),
            (
                "Cargo.lock",
                &format!("version = 4\n[[package]]\nname = \"proto\"\nversion = \"0.1.0\"\ndependencies = [\"serde\", \"proptest\"]\n[[package]]\nname = \"core\"\nversion = \"0.1.0\"\ndependencies = [\"proto\", \"cc\"]\n[[package]]\nname = \"serde\"\nversion = \"1.0.0\"\nsource = \"{CRATES_IO}\"\ndependencies = [\"serde_derive\"]\n[[package]]\nname = \"serde_derive\"\nversion = \"1.0.0\"\nsource = \"{CRATES_IO}\"\n[[package]]\nname = \"proptest\"\nversion = \"1.5.0\"\nsource = \"{CRATES_IO}\"\ndependencies = [\"rand 0.8.0\"]\n[[package]]\nname = \"rand\"\nversion = \"0.8.0\"\nsource = \"{CRATES_IO}\"\n[[package]]\nname = \"rand\"\nversion = \"0.9.0\"\nsource = \"{CRATES_IO}\"\n[[package]]\nname = \"cc\"\nversion = \"1.0.0\"\nsource = \"{CRATES_IO}\"\n"),
            ),
            (
                "boards/b1/Cargo.toml",
                "[package]\nname = \"b1\"\n[dependencies]\nkernel = { git = \"https://github.com/tock/tock\", rev = \"abc\" }\ncore = { path = \"../../core\" }\n",
            ),
            (
                "boards/b1/Cargo.lock",
                "version = 4\n[[package]]\nname = \"b1\"\nversion = \"0.1.0\"\ndependencies = [\"kernel\", \"core\"]\n[[package]]\nname = \"core\"\nversion = \"0.1.0\"\ndependencies = [\"proto\"]\n[[package]]\nname = \"proto\"\nversion = \"0.1.0\"\ndependencies = [\"serde\"]\n[[package]]\nname = \"kernel\"\nversion = \"0.2.0\"\nsource = \"git+https://github.com/tock/tock?rev=abc#abcdef0123\"\n[[package]]\nname = \"serde\"\nversion = \"1.0.0\"\nsource = \"registry+https://github.com/rust-lang/crates.io-index\"\n",
            ),
        ])
    }

    fn users(soup: &Soup, name: &str) -> Vec<String> {
        let p = soup.packages.iter().find(|p| p.name == name).unwrap();
        users_text(p).split("; ").map(str::to_string).collect()
    }

    #[test]
    fn builds_the_graph_with_kinds_and_lockfiles() {
        let tree = fixture();
        let soup = analyze(&tree);
        assert_eq!(soup.errors, Vec::<String>::new());
        assert_eq!(
            soup.lockfiles,
            [
                ("Cargo.lock".to_string(), 6),
                ("boards/b1/Cargo.lock".to_string(), 2)
            ]
        );
        let names: Vec<(&str, &str)> = soup
            .packages
            .iter()
            .map(|p| (p.name.as_str(), p.version.as_str()))
            .collect();
        assert_eq!(
            names,
            [
                ("cc", "1.0.0"),
                ("kernel", "0.2.0"),
                ("proptest", "1.5.0"),
                ("rand", "0.8.0"),
                ("serde", "1.0.0"),
                ("serde_derive", "1.0.0")
            ],
            "rand 0.9 is used by nobody and must not be listed"
        );
        assert_eq!(
            users(&soup, "serde"),
            [
                "direct: proto (normal)",
                "transitive: b1 (normal), core (normal)"
            ]
        );
        assert_eq!(users(&soup, "proptest"), ["direct: proto (dev)"]);
        assert_eq!(users(&soup, "rand"), ["transitive: proto (dev)"]);
        assert_eq!(users(&soup, "cc"), ["direct: core (build)"]);
        let serde = &soup.packages[4];
        assert_eq!(serde.lockfiles.len(), 2);
        assert!(serde.is_direct());
        let derive = &soup.packages[5];
        assert!(!derive.is_direct());
        assert_eq!(derive.via.iter().collect::<Vec<_>>(), ["serde"]);
        assert_eq!(
            display_source(&soup.packages[1].source),
            "git https://github.com/tock/tock (rev abc), pinned rev `abcdef0123`"
        );
    }

    #[test]
    fn missing_rationale_names_the_entry_and_sources_cover_git_packages() {
        let soup = analyze(&fixture());
        let rationales = parse_rationale(
            "[crates.serde]\npurpose = \"p\"\nacceptable = \"a\"\n[crates.proptest]\npurpose = \"p\"\nacceptable = \"a\"\n[sources.\"https://github.com/tock/tock\"]\npurpose = \"Tock\"\nacceptable = \"upstream\"\n",
        )
        .unwrap();
        let missing = missing_rationale(&soup, &rationales);
        assert_eq!(missing.len(), 1, "{missing:?}");
        assert!(missing[0].contains("[crates.cc]\npurpose = "));
        assert!(missing[0].contains("cargo run -p pump-dossier -- regenerate"));
        let md = render(&soup, &rationales);
        assert!(md.contains("| kernel | 0.2.0 | git https://github.com/tock/tock (rev abc), pinned rev `abcdef0123` |"));
        assert!(md.contains("| serde_derive | 1.0.0 | crates.io | `Cargo.lock` | serde |"));
        assert_eq!(md, render(&soup, &rationales), "deterministic");
    }

    #[test]
    fn rationale_file_errors() {
        let errors = parse_rationale(
            "[crates.a]\npurpose = \"p\"\n[crates.b]\npurpose = \"p\"\nacceptable = \"a\"\nwhy = \"x\"\n[other]\n",
        )
        .unwrap_err()
        .join("\n");
        assert!(errors.contains("[crates.a] needs non-empty"));
        assert!(errors.contains("unknown key `why`"));
        assert!(errors.contains("unknown table `[other]`"));
    }

    #[test]
    fn lockfile_dependency_strings_resolve_by_version_and_source() {
        let pkgs = parse_lockfile(&format!(
            "[[package]]\nname = \"a\"\nversion = \"1.0.0\"\nsource = \"{CRATES_IO}\"\n[[package]]\nname = \"a\"\nversion = \"2.0.0\"\nsource = \"{CRATES_IO}\"\n"
        ))
        .unwrap();
        assert_eq!(resolve(&pkgs, "a"), None, "ambiguous");
        assert_eq!(resolve(&pkgs, "a 2.0.0"), Some(1));
        assert_eq!(resolve(&pkgs, &format!("a 1.0.0 ({CRATES_IO})")), Some(0));
    }

    #[test]
    fn path_helpers() {
        assert_eq!(join("boards/b1", "../../core"), "core");
        assert_eq!(join("", "./proto"), "proto");
        assert_eq!(
            source_url("git+https://github.com/tock/tock.git?rev=1#2"),
            "https://github.com/tock/tock"
        );
    }

    #[test]
    fn single_git_pin_names_the_one_pinned_upstream() {
        let one = "[dependencies]\nkernel = { git = \"https://github.com/tock/tock\", rev = \"abc\" }\ncore = { path = \"../core\" }\n";
        assert_eq!(
            single_git_pin(one).as_deref(),
            Some("git+https://github.com/tock/tock?rev=abc#abc")
        );
        let two = "[dependencies]\na = { git = \"https://x/a\", rev = \"1\" }\nb = { git = \"https://x/b\", rev = \"2\" }\n";
        assert_eq!(single_git_pin(two), None);
        assert_eq!(single_git_pin("[dependencies]\nserde = \"1\"\n"), None);
    }
}
