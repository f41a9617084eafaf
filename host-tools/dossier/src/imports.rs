//! The import graph of a crate's source files, and the cycles in it.
//!
//! A node is a file under a crate's `src/`: one module, together with the
//! modules written inline in it (`mod tests { … }`). An edge `a.rs → b.rs`
//! means that code in `a.rs` names an item of `b.rs` by a path inside the
//! crate:
//! - in a `use` declaration: `use crate::b::X;`, `use super::X;`,
//!   `use self::child::X;`, `use child::X;` and any `{…}` tree of them;
//! - in code: `crate::b::f()`, `super::X`, `self::child::X`, `child::f()`,
//!   `$crate::b::X` in a macro.
//!
//! A path is followed through the modules that exist and then through the
//! `use` declarations of the module it ends in (named imports, then the
//! items the module defines, then its glob imports), so `crate::X` that
//! `lib.rs` re-exports from `b.rs`, by name or by `pub use b::*`, is an
//! edge to `b.rs`, not to `lib.rs`; a path that ends in another crate
//! (`use heapless::Vec` re-exported) is no edge.
//! Declaring a module (`mod b;`) is not an edge, and neither is an edge of
//! a file to itself. Comments and literals are not read; test code in a
//! file counts like the rest of it.
//!
//! Limits: an item is seen where its keyword and name are written (`fn f`,
//! `struct S`, also inside a macro's input); a name that none of the rules
//! above places is taken to be the module's own. `#[path]` attributes are
//! refused, not followed.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;

use crate::rustscan::{line_of, match_delimiters, tokenize, Kind, Token};
use crate::tree::Tree;

/// A module's path from its crate root (empty for the root).
type ModPath = Vec<String>;

/// Which files import which.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImportGraph {
    /// `edges[a][b]`: the first line of `a` that names an item of `b`.
    pub edges: BTreeMap<String, BTreeMap<String, usize>>,
}

/// A circle of imports: `files[0]` imports `files[1]` at line `lines[0]`,
/// …, and the last file imports `files[0]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cycle {
    /// The files in import order.
    pub files: Vec<String>,
    /// `lines[k]`: where `files[k]` imports the next file.
    pub lines: Vec<usize>,
    /// Every file that can reach every other one of this group by imports
    /// (a strongly connected component); the cycle is its shortest through
    /// the first of them.
    pub group: Vec<String>,
}

impl fmt::Display for Cycle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (file, line) in self.files.iter().zip(&self.lines) {
            write!(f, "{file}:{line} → ")?;
        }
        write!(f, "{}", self.files.first().map_or("", String::as_str))?;
        if self.group.len() > self.files.len() {
            write!(
                f,
                " (one circle of a group that all reach each other: {})",
                self.group.join(", ")
            )?;
        }
        Ok(())
    }
}

impl ImportGraph {
    /// Adds an edge, keeping the first line seen; an edge of a file to
    /// itself is dropped.
    pub fn add(&mut self, from: &str, to: &str, line: usize) {
        if from == to {
            return;
        }
        let line_seen = self
            .edges
            .entry(from.to_string())
            .or_default()
            .entry(to.to_string())
            .or_insert(line);
        *line_seen = (*line_seen).min(line);
    }

    /// Adds every edge of `other`.
    pub fn extend(&mut self, other: &ImportGraph) {
        for (from, tos) in &other.edges {
            for (to, line) in tos {
                self.add(from, to, *line);
            }
        }
    }

    /// One cycle for every group of files that import each other, in the
    /// order of the groups' first files; empty if the graph has no cycle.
    pub fn cycles(&self) -> Vec<Cycle> {
        let mut out: Vec<Cycle> = self
            .components()
            .into_iter()
            .filter(|group| group.len() > 1)
            .map(|group| self.shortest_cycle(group))
            .collect();
        out.sort_by(|a, b| a.group.cmp(&b.group));
        out
    }

    fn successors<'a>(&'a self, node: &str) -> impl Iterator<Item = &'a String> + 'a {
        self.edges.get(node).into_iter().flat_map(BTreeMap::keys)
    }

    /// Strongly connected components (Tarjan), each sorted.
    fn components(&self) -> Vec<Vec<String>> {
        let nodes: BTreeSet<&String> = self
            .edges
            .iter()
            .flat_map(|(from, tos)| std::iter::once(from).chain(tos.keys()))
            .collect();
        let mut state = Tarjan::default();
        for node in nodes {
            if !state.index.contains_key(node) {
                state.visit(self, node);
            }
        }
        state.components
    }

    /// The shortest cycle through the first file of `group`, within it.
    fn shortest_cycle(&self, group: Vec<String>) -> Cycle {
        let start = group[0].clone();
        let members: BTreeSet<&String> = group.iter().collect();
        let mut came_from: BTreeMap<String, String> = BTreeMap::new();
        let mut queue = VecDeque::from([start.clone()]);
        'search: while let Some(node) = queue.pop_front() {
            for next in self.successors(&node) {
                if !members.contains(next) || came_from.contains_key(next) {
                    continue;
                }
                came_from.insert(next.clone(), node.clone());
                if *next == start {
                    break 'search;
                }
                queue.push_back(next.clone());
            }
        }
        // Walk back from the start's predecessor on the cycle.
        let mut files = Vec::new();
        let mut at = came_from[&start].clone();
        while at != start {
            files.push(at.clone());
            at = came_from[&at].clone();
        }
        files.push(start);
        files.reverse();
        let lines = files
            .iter()
            .enumerate()
            .map(|(k, file)| self.edges[file][&files[(k + 1) % files.len()]])
            .collect();
        Cycle {
            files,
            lines,
            group,
        }
    }
}

#[derive(Default)]
struct Tarjan {
    next_index: usize,
    index: BTreeMap<String, usize>,
    low: BTreeMap<String, usize>,
    stack: Vec<String>,
    on_stack: BTreeSet<String>,
    components: Vec<Vec<String>>,
}

impl Tarjan {
    fn visit(&mut self, graph: &ImportGraph, node: &str) {
        self.index.insert(node.to_string(), self.next_index);
        self.low.insert(node.to_string(), self.next_index);
        self.next_index += 1;
        self.stack.push(node.to_string());
        self.on_stack.insert(node.to_string());
        for next in graph.successors(node) {
            if !self.index.contains_key(next) {
                self.visit(graph, next);
                let low = self.low[node].min(self.low[next]);
                self.low.insert(node.to_string(), low);
            } else if self.on_stack.contains(next) {
                let low = self.low[node].min(self.index[next]);
                self.low.insert(node.to_string(), low);
            }
        }
        if self.low[node] == self.index[node] {
            let mut component = Vec::new();
            while let Some(member) = self.stack.pop() {
                self.on_stack.remove(&member);
                let done = member == node;
                component.push(member);
                if done {
                    break;
                }
            }
            component.sort();
            self.components.push(component);
        }
    }
}

/// The members of the Cargo workspace whose manifest is `Cargo.toml` at the
/// tree's root, in the order written (a trailing `/*` is expanded to the
/// subdirectories that hold a `Cargo.toml`).
pub fn workspace_members(tree: &dyn Tree) -> Result<Vec<String>, String> {
    let text = tree.read("Cargo.toml").ok_or("Cargo.toml: not readable")?;
    let manifest: toml::Table = toml::from_str(&text).map_err(|e| format!("Cargo.toml: {e}"))?;
    let members = manifest
        .get("workspace")
        .and_then(|w| w.get("members"))
        .and_then(toml::Value::as_array)
        .ok_or("Cargo.toml: no [workspace] members")?;
    let mut out = Vec::new();
    for member in members {
        let member = member
            .as_str()
            .ok_or("Cargo.toml: a workspace member is not a string")?;
        match member.strip_suffix("/*") {
            Some(parent) => {
                for dir in tree.subdirs(parent) {
                    let path = format!("{parent}/{dir}");
                    if tree.read(&format!("{path}/Cargo.toml")).is_some() {
                        out.push(path);
                    }
                }
            }
            None => out.push(member.trim_end_matches('/').to_string()),
        }
    }
    Ok(out)
}

/// The import cycles of the crates in `members` (directories relative to
/// the tree's root), crate by crate.
pub fn workspace_cycles(tree: &dyn Tree, members: &[String]) -> Result<Vec<Cycle>, String> {
    let mut out = Vec::new();
    for member in members {
        out.extend(crate_graph(tree, member)?.cycles());
    }
    Ok(out)
}

/// The import graph of the crate in `crate_dir`: the files of every target
/// whose root is under its `src/` (`lib.rs`, `main.rs`, `bin/*.rs`,
/// `bin/*/main.rs`) and of the modules they declare.
pub fn crate_graph(tree: &dyn Tree, crate_dir: &str) -> Result<ImportGraph, String> {
    let src = format!("{crate_dir}/src");
    let mut roots: Vec<String> = ["lib.rs", "main.rs"]
        .iter()
        .map(|f| format!("{src}/{f}"))
        .collect();
    for f in tree.files(&format!("{src}/bin")) {
        if f.ends_with(".rs") {
            roots.push(format!("{src}/bin/{f}"));
        }
    }
    for d in tree.subdirs(&format!("{src}/bin")) {
        roots.push(format!("{src}/bin/{d}/main.rs"));
    }
    let mut graph = ImportGraph::default();
    for root in roots {
        if tree.read(&root).is_some() {
            graph.extend(&target_graph(tree, &root)?);
        }
    }
    Ok(graph)
}

/// A `use` declaration's binding or any other path, as written.
struct Reference {
    file: String,
    /// The (possibly inline) module the path is written in.
    module: ModPath,
    segments: Vec<String>,
    line: usize,
}

/// A name a `use` declaration brings into a module.
struct Binding {
    /// The module of the declaration.
    module: ModPath,
    /// The path it names, as written.
    segments: Vec<String>,
}

/// One target (crate root and its modules).
#[derive(Default)]
struct Target {
    /// Every module, file-backed or inline, and the file it is in.
    modules: BTreeMap<ModPath, String>,
    /// `bindings[module][name]`.
    bindings: BTreeMap<ModPath, BTreeMap<String, Binding>>,
    /// The glob imports of each module (`use a::*`), as written.
    globs: BTreeMap<ModPath, Vec<Vec<String>>>,
    /// The names of the items each module defines (functions, types,
    /// constants, statics, traits).
    items: BTreeMap<ModPath, BTreeSet<String>>,
    references: Vec<Reference>,
}

fn target_graph(tree: &dyn Tree, root: &str) -> Result<ImportGraph, String> {
    let mut target = Target::default();
    let root_dir = root.rsplit_once('/').map_or("", |(dir, _)| dir).to_string();
    // (file, its module, the directory its child modules' files are in)
    let mut queue = vec![(root.to_string(), ModPath::new(), root_dir)];
    while let Some((file, module, child_dir)) = queue.pop() {
        let text = tree
            .read(&file)
            .ok_or_else(|| format!("{file}: not readable as UTF-8"))?;
        target.modules.insert(module.clone(), file.clone());
        let children =
            scan_file(&mut target, &file, &text, &module).map_err(|e| format!("{file}: {e}"))?;
        for (inline, name) in children {
            let mut dir = child_dir.clone();
            for segment in &inline {
                dir = format!("{dir}/{segment}");
            }
            let flat = format!("{dir}/{name}.rs");
            let nested = format!("{dir}/{name}/mod.rs");
            let mut child = module.clone();
            child.extend(inline);
            child.push(name.clone());
            if tree.read(&flat).is_some() {
                queue.push((flat, child, format!("{dir}/{name}")));
            } else if tree.read(&nested).is_some() {
                queue.push((nested, child, format!("{dir}/{name}")));
            } else {
                return Err(format!("{file}: module `{name}` has no file ({flat})"));
            }
        }
    }
    let mut graph = ImportGraph::default();
    for reference in &target.references {
        let Some(path) = target.absolute(&reference.module, &reference.segments) else {
            continue;
        };
        if let Some(module) = target.resolve(path, 0) {
            graph.add(&reference.file, &target.modules[&module], reference.line);
        }
    }
    Ok(graph)
}

/// How deep re-exports are followed (a `use` cycle is a compile error, so
/// this only bounds the work on code that would not compile).
const MAX_REEXPORT_HOPS: usize = 16;

impl Target {
    /// `segments`, written in `module`, as a path from the crate root; `None`
    /// if it names another crate (or nothing this scanner can see).
    fn absolute(&self, module: &ModPath, segments: &[String]) -> Option<Vec<String>> {
        self.absolute_within(module, segments, 0)
    }

    fn absolute_within(
        &self,
        module: &ModPath,
        segments: &[String],
        hops: usize,
    ) -> Option<Vec<String>> {
        let first = segments.first()?;
        match first.as_str() {
            "crate" => Some(segments[1..].to_vec()),
            "self" => Some([module.as_slice(), &segments[1..]].concat()),
            "super" => {
                let ups = segments.iter().take_while(|s| *s == "super").count();
                let base = module.get(..module.len().checked_sub(ups)?)?;
                Some([base, &segments[ups..]].concat())
            }
            _ => {
                let mut child = module.clone();
                child.push(first.clone());
                if self.modules.contains_key(&child) {
                    return Some([module.as_slice(), segments].concat());
                }
                // A name the module imported (`use crate::a; use a::X;`);
                // `use serde;` names itself and leads out of the crate.
                let binding = self.bindings.get(module)?.get(first)?;
                if hops >= MAX_REEXPORT_HOPS {
                    return None;
                }
                let base = self.absolute_within(&binding.module, &binding.segments, hops + 1)?;
                Some([base.as_slice(), &segments[1..]].concat())
            }
        }
    }

    /// The module whose item the absolute `path` names, following `use`
    /// declarations; `None` if it leads out of the crate.
    fn resolve(&self, path: Vec<String>, hops: usize) -> Option<ModPath> {
        let mut module = ModPath::new();
        let mut rest = path.into_iter().peekable();
        while let Some(next) = rest.peek() {
            let mut child = module.clone();
            child.push(next.clone());
            if !self.modules.contains_key(&child) {
                break;
            }
            module = child;
            rest.next();
        }
        let Some(name) = rest.next() else {
            return Some(module);
        };
        match self.find(&module, &name, hops) {
            Found::Here(defined_in) => Some(defined_in),
            Found::Imported(mut target) => {
                target.extend(rest);
                self.resolve(target, hops + 1)
            }
            Found::Elsewhere => None,
            Found::Unknown => Some(module),
        }
    }

    /// Where the `name` that `module` holds comes from.
    fn find(&self, module: &ModPath, name: &str, hops: usize) -> Found {
        if hops >= MAX_REEXPORT_HOPS {
            return Found::Unknown;
        }
        if let Some(binding) = self.bindings.get(module).and_then(|b| b.get(name)) {
            return match self.absolute(&binding.module, &binding.segments) {
                Some(path) => Found::Imported(path),
                None => Found::Elsewhere,
            };
        }
        if self
            .items
            .get(module)
            .is_some_and(|items| items.contains(name))
        {
            return Found::Here(module.clone());
        }
        for glob in self.globs.get(module).into_iter().flatten() {
            let Some(from) = self
                .absolute(module, glob)
                .and_then(|path| self.resolve(path, hops + 1))
            else {
                continue;
            };
            if from != *module {
                match self.find(&from, name, hops + 1) {
                    Found::Unknown => {}
                    found => return found,
                }
            }
        }
        Found::Unknown
    }
}

/// Where a name held by a module comes from.
enum Found {
    /// An item this module defines.
    Here(ModPath),
    /// A `use` of this path (from the crate root).
    Imported(Vec<String>),
    /// A `use` of another crate's item.
    Elsewhere,
    /// Not seen (a macro's item, say): taken to be the module's own.
    Unknown,
}

fn is_punct(tokens: &[Token], i: usize, c: u8) -> bool {
    tokens.get(i).is_some_and(|t| t.kind == Kind::Punct(c))
}

/// Whether tokens `i` and `i + 1` are `::`.
fn is_path_sep(tokens: &[Token], i: usize) -> bool {
    is_punct(tokens, i, b':')
        && is_punct(tokens, i + 1, b':')
        && tokens[i].end == tokens[i + 1].start
}

/// Records the references and bindings of one file into `target`, and
/// returns the file-backed modules it declares: (inline modules they are
/// declared in, name).
fn scan_file(
    target: &mut Target,
    file: &str,
    src: &str,
    file_module: &ModPath,
) -> Result<Vec<(Vec<String>, String)>, String> {
    let tokens = tokenize(src).map_err(|e| e.to_string())?;
    let partner = match_delimiters(src, &tokens).map_err(|e| e.to_string())?;
    let text = |i: usize| &src[tokens[i].start..tokens[i].end];
    let ident = |i: usize| {
        tokens
            .get(i)
            .filter(|t| t.kind == Kind::Ident)
            .map(|t| &src[t.start..t.end])
    };
    let mut children = Vec::new();
    // Inline modules open at this point: (name, index of the closing brace).
    let mut inline: Vec<(String, usize)> = Vec::new();
    let mut path_attribute = false;
    let mut i = 0;
    while i < tokens.len() {
        while inline.last().is_some_and(|(_, close)| *close < i) {
            inline.pop();
        }
        let inline_names = || inline.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
        let module = || [file_module.clone(), inline_names()].concat();
        let tok = tokens[i];
        match tok.kind {
            Kind::Punct(b'#') => {
                let open = if is_punct(&tokens, i + 1, b'!') {
                    i + 2
                } else {
                    i + 1
                };
                if tokens.get(open).is_some_and(|t| t.kind == Kind::Open(b'[')) {
                    if ident(open + 1) == Some("path") {
                        path_attribute = true;
                    }
                    i = partner[open].unwrap_or(open) + 1;
                    continue;
                }
            }
            Kind::Ident if text(i) == "mod" => {
                if let Some(name) = ident(i + 1) {
                    let name = name.strip_prefix("r#").unwrap_or(name).to_string();
                    if is_punct(&tokens, i + 2, b';') {
                        if path_attribute {
                            return Err(format!(
                                "line {}: `#[path]` on module `{name}` is not supported",
                                line_of(src, tok.start)
                            ));
                        }
                        children.push((inline_names(), name));
                        path_attribute = false;
                        i += 3;
                        continue;
                    }
                    if tokens
                        .get(i + 2)
                        .is_some_and(|t| t.kind == Kind::Open(b'{'))
                    {
                        let mut path = module();
                        path.push(name.clone());
                        target.modules.insert(path, file.to_string());
                        inline.push((name, partner[i + 2].unwrap_or(tokens.len())));
                        path_attribute = false;
                        i += 3;
                        continue;
                    }
                }
            }
            Kind::Ident if text(i) == "use" => {
                let mut items = Vec::new();
                let end = parse_use_tree(&tokens, &partner, src, i + 1, Vec::new(), &mut items)
                    .ok_or_else(|| format!("line {}: unreadable `use`", line_of(src, tok.start)))?;
                let module = module();
                for item in items {
                    if item.glob {
                        target
                            .globs
                            .entry(module.clone())
                            .or_default()
                            .push(item.segments.clone());
                    }
                    if let Some(name) = item.binding {
                        target.bindings.entry(module.clone()).or_default().insert(
                            name,
                            Binding {
                                module: module.clone(),
                                segments: item.segments.clone(),
                            },
                        );
                    }
                    target.references.push(Reference {
                        file: file.to_string(),
                        module: module.clone(),
                        segments: item.segments,
                        line: line_of(src, tok.start),
                    });
                }
                path_attribute = false;
                i = end;
                continue;
            }
            Kind::Ident
                if matches!(
                    text(i),
                    "fn" | "struct" | "enum" | "const" | "static" | "type" | "trait"
                ) && ident(i + 1).is_some() =>
            {
                let name = ident(i + 1).unwrap_or_default();
                // `const fn f`, `static mut X`: the name comes later.
                if !matches!(name, "fn" | "mut" | "unsafe" | "async" | "extern" | "_") {
                    target
                        .items
                        .entry(module())
                        .or_default()
                        .insert(name.strip_prefix("r#").unwrap_or(name).to_string());
                }
            }
            Kind::Ident | Kind::Punct(b'$') => {
                let continues_path = i >= 2 && is_path_sep(&tokens, i - 2);
                let after_dot = i >= 1 && is_punct(&tokens, i - 1, b'.');
                // `pub(in crate::a)` restricts visibility, it imports nothing.
                let visibility = i >= 1 && ident(i - 1) == Some("in");
                let (first, mut j) = if tok.kind == Kind::Punct(b'$') {
                    match ident(i + 1) {
                        Some("crate") => ("crate", i + 2),
                        _ => ("", i + 1),
                    }
                } else {
                    (text(i), i + 1)
                };
                if !first.is_empty() && !continues_path && !after_dot && !visibility {
                    let mut segments = vec![first.to_string()];
                    while is_path_sep(&tokens, j) {
                        let Some(next) = ident(j + 2) else { break };
                        segments.push(next.to_string());
                        j += 3;
                    }
                    if segments.len() > 1 {
                        target.references.push(Reference {
                            file: file.to_string(),
                            module: module(),
                            segments,
                            line: line_of(src, tok.start),
                        });
                        i = j;
                        continue;
                    }
                }
            }
            Kind::Punct(b';') | Kind::Open(b'{') | Kind::Close(b'}') => path_attribute = false,
            _ => {}
        }
        i += 1;
    }
    Ok(children)
}

/// One leaf of a `use` tree.
struct UseItem {
    /// The path, `self` leaves resolved to their module.
    segments: Vec<String>,
    /// Whether it is a glob (`a::*`; then `segments` is `a`).
    glob: bool,
    /// The name it brings into scope (none for globs and `as _`).
    binding: Option<String>,
}

/// Parses the `use` tree starting at token `i` under `prefix`; returns the
/// index after it (after the `;` at the top level) or `None` if it is not
/// a `use` tree.
fn parse_use_tree(
    tokens: &[Token],
    partner: &[Option<usize>],
    src: &str,
    mut i: usize,
    prefix: Vec<String>,
    out: &mut Vec<UseItem>,
) -> Option<usize> {
    let top = prefix.is_empty();
    let mut segments = prefix;
    let finish = |i: usize| {
        if top {
            is_punct(tokens, i, b';').then_some(i + 1)
        } else {
            Some(i)
        }
    };
    if top && is_path_sep(tokens, i) {
        // `use ::name`: always another crate.
        segments.push("::".to_string());
        i += 2;
    }
    loop {
        let tok = tokens.get(i)?;
        match tok.kind {
            Kind::Open(b'{') => {
                let close = partner[i]?;
                let mut j = i + 1;
                while j < close {
                    j = parse_use_tree(tokens, partner, src, j, segments.clone(), out)?;
                    if is_punct(tokens, j, b',') {
                        j += 1;
                    } else if j != close {
                        return None;
                    }
                }
                return finish(close + 1);
            }
            Kind::Punct(b'*') => {
                out.push(UseItem {
                    segments,
                    glob: true,
                    binding: None,
                });
                return finish(i + 1);
            }
            Kind::Punct(b'$') if tokens.get(i + 1).is_some_and(|t| t.kind == Kind::Ident) => {
                segments.push(src[tokens[i + 1].start..tokens[i + 1].end].to_string());
                i += 2;
            }
            Kind::Ident => {
                segments.push(src[tok.start..tok.end].to_string());
                i += 1;
            }
            _ => return None,
        }
        if is_path_sep(tokens, i) {
            i += 2;
            continue;
        }
        if segments.last().is_some_and(|s| s == "self") && segments.len() > 1 {
            segments.pop();
        }
        let mut binding = segments.last().cloned();
        let as_name = tokens
            .get(i)
            .filter(|t| t.kind == Kind::Ident && &src[t.start..t.end] == "as");
        if as_name.is_some() {
            let renamed = tokens.get(i + 1).filter(|t| t.kind == Kind::Ident)?;
            let renamed = &src[renamed.start..renamed.end];
            binding = (renamed != "_").then(|| renamed.to_string());
            i += 2;
        }
        out.push(UseItem {
            segments,
            glob: false,
            binding,
        });
        return finish(i);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::MemTree;

    fn graph(files: &[(&str, &str)]) -> ImportGraph {
        crate_graph(&MemTree::new(files), "k").unwrap()
    }

    fn edges(g: &ImportGraph) -> Vec<(String, String)> {
        g.edges
            .iter()
            .flat_map(|(from, tos)| tos.keys().map(move |to| (from.clone(), to.clone())))
            .map(|(a, b)| {
                let short = |s: String| s.trim_start_matches("k/src/").to_string();
                (short(a), short(b))
            })
            .collect()
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn use_trees_and_paths_in_code_are_edges() {
        let g = graph(&[
            ("k/src/lib.rs", "mod a; mod b; mod c; pub mod d;\n"),
            (
                "k/src/a.rs",
                "use crate::{b::{self, B as Bee}, c::*};\nfn f() { let _ = b::g(); }\n",
            ),
            ("k/src/b.rs", "pub fn g() -> u8 { crate::d::inner::h() }\n"),
            (
                "k/src/c.rs",
                "use std::fmt::{self, Write as _};\nuse ::heapless::Vec;\n",
            ),
            ("k/src/d.rs", "pub mod inner;\n"),
            (
                "k/src/d/inner.rs",
                "pub fn h() -> u8 { super::super::c::x() }\n",
            ),
        ]);
        assert_eq!(
            edges(&g),
            pairs(&[
                ("a.rs", "b.rs"),
                ("a.rs", "c.rs"),
                ("b.rs", "d/inner.rs"),
                ("d/inner.rs", "c.rs"),
            ])
        );
        assert_eq!(g.edges["k/src/a.rs"]["k/src/c.rs"], 1);
        assert_eq!(g.cycles(), []);
    }

    #[test]
    fn re_exports_are_followed_to_the_defining_file() {
        let g = graph(&[
            (
                "k/src/lib.rs",
                "mod a; mod b;\npub use crate::a::A;\npub use b::B;\npub use heapless::Vec;\n",
            ),
            ("k/src/a.rs", "pub struct A(crate::B, crate::Vec<u8, 1>);\n"),
            ("k/src/b.rs", "pub struct B;\n"),
        ]);
        // `crate::B` is b.rs's, through lib.rs; `crate::Vec` is another crate's.
        assert_eq!(
            edges(&g),
            pairs(&[("a.rs", "b.rs"), ("lib.rs", "a.rs"), ("lib.rs", "b.rs")])
        );
        assert_eq!(g.cycles(), []);
    }

    #[test]
    fn glob_re_exports_are_followed_to_the_defining_file() {
        let g = graph(&[
            (
                "k/src/lib.rs",
                "mod error; mod messages;\npub use error::*;\npub use messages::*;\n\
                 pub const VERSION: u8 = 1;\n",
            ),
            (
                "k/src/error.rs",
                "pub enum FrameError {}\npub const fn code() -> crate::ErrorCode { todo!() }\n",
            ),
            (
                "k/src/messages.rs",
                "code_enum! { pub enum ErrorCode { Bad = 1, } }\n\
                 pub const fn v() -> u8 { crate::VERSION }\n",
            ),
        ]);
        // ErrorCode is messages.rs's; VERSION is lib.rs's own, which closes
        // two circles through lib.rs.
        assert_eq!(
            edges(&g),
            pairs(&[
                ("error.rs", "messages.rs"),
                ("lib.rs", "error.rs"),
                ("lib.rs", "messages.rs"),
                ("messages.rs", "lib.rs"),
            ])
        );
        assert_eq!(
            g.cycles()[0].files,
            ["k/src/error.rs", "k/src/messages.rs", "k/src/lib.rs"]
        );
    }

    #[test]
    fn comments_literals_inline_modules_and_visibility_are_not_edges() {
        let g = graph(&[
            ("k/src/lib.rs", "mod a; mod b;\n"),
            (
                "k/src/a.rs",
                "//! See [`crate::b::B`].\n\
                 /// crate::b::B\n\
                 pub(in crate::b) fn f() { let _ = \"crate::b::B\"; /* super::b */ }\n\
                 pub(crate) fn g() {}\n\
                 #[cfg(test)]\nmod tests { use super::*; use super::g; }\n",
            ),
            ("k/src/b.rs", "pub struct B;\n"),
        ]);
        assert_eq!(edges(&g), pairs(&[]));
    }

    #[test]
    fn a_pair_importing_each_other_is_a_cycle() {
        let g = graph(&[
            ("k/src/lib.rs", "mod core; mod record;\n"),
            (
                "k/src/core.rs",
                "use crate::record::save;\npub struct State;\n",
            ),
            (
                "k/src/record.rs",
                "//! Records.\n\npub fn save(_: &crate::core::State) {}\n",
            ),
        ]);
        let cycles = g.cycles();
        assert_eq!(cycles.len(), 1);
        assert_eq!(
            cycles[0].to_string(),
            "k/src/core.rs:1 → k/src/record.rs:3 → k/src/core.rs"
        );
    }

    #[test]
    fn a_longer_cycle_is_found_and_named_shortest_first() {
        let g = graph(&[
            ("k/src/lib.rs", "mod a; mod b; mod c; mod d;\n"),
            ("k/src/a.rs", "use super::b::B;\n"),
            ("k/src/b.rs", "pub struct B(crate::c::C);\n"),
            ("k/src/c.rs", "pub struct C(crate::a::A, crate::d::D);\n"),
            ("k/src/d.rs", "pub struct D;\nfn f() { crate::c::g() }\n"),
        ]);
        let cycles = g.cycles();
        assert_eq!(cycles.len(), 1);
        assert_eq!(cycles[0].files, ["k/src/a.rs", "k/src/b.rs", "k/src/c.rs"]);
        assert_eq!(
            cycles[0].group,
            ["k/src/a.rs", "k/src/b.rs", "k/src/c.rs", "k/src/d.rs"]
        );
        assert!(cycles[0].to_string().contains("k/src/d.rs"));
    }

    #[test]
    fn a_parent_and_child_importing_each_other_is_a_cycle() {
        let g = graph(&[
            ("k/src/lib.rs", "mod pump;\n"),
            (
                "k/src/pump/mod.rs",
                "mod authz;\npub use authz::Role;\npub struct Core;\n",
            ),
            (
                "k/src/pump/authz.rs",
                "use super::Core;\npub enum Role {}\n",
            ),
        ]);
        assert_eq!(
            g.cycles()[0].files,
            ["k/src/pump/authz.rs", "k/src/pump/mod.rs"]
        );
    }

    #[test]
    fn a_missing_module_file_or_a_path_attribute_is_an_error() {
        let tree = MemTree::new(&[("k/src/lib.rs", "mod gone;\n")]);
        assert!(crate_graph(&tree, "k").unwrap_err().contains("gone"));
        let tree = MemTree::new(&[
            ("k/src/lib.rs", "#[path = \"x.rs\"]\nmod y;\n"),
            ("k/src/x.rs", ""),
        ]);
        assert!(crate_graph(&tree, "k").unwrap_err().contains("#[path]"));
    }

    #[test]
    fn binaries_are_separate_targets() {
        let g = graph(&[
            ("k/src/lib.rs", "pub mod a;\n"),
            ("k/src/a.rs", ""),
            (
                "k/src/main.rs",
                "mod cli;\nfn main() { k::a::f(); cli::run() }\n",
            ),
            ("k/src/cli.rs", "pub fn run() { crate::helper() }\n"),
            ("k/src/bin/tool/main.rs", "mod cli;\nfn main() {}\n"),
            ("k/src/bin/tool/cli.rs", "pub fn run() { super::main() }\n"),
        ]);
        assert_eq!(
            edges(&g),
            pairs(&[
                ("bin/tool/cli.rs", "bin/tool/main.rs"),
                ("cli.rs", "main.rs"),
                ("main.rs", "cli.rs"),
            ])
        );
        assert_eq!(g.cycles().len(), 1);
    }

    #[test]
    fn workspace_members_are_read_from_the_root_manifest() {
        let tree = MemTree::new(&[
            (
                "Cargo.toml",
                "[workspace]\nmembers = [\"protocol\", \"tools/*\"]\nexclude = [\"boards\"]\n",
            ),
            ("tools/a/Cargo.toml", ""),
            ("tools/b/Cargo.toml", ""),
            ("tools/notes/README.md", ""),
        ]);
        assert_eq!(
            workspace_members(&tree).unwrap(),
            ["protocol", "tools/a", "tools/b"]
        );
    }
}
