//! `pump-dossier regenerate` rewrites `docs/safety/traceability.md` and
//! `docs/safety/soup.md`; `pump-dossier check` prints every problem the
//! traceability check finds.
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use pump_dossier::mutants;
use pump_dossier::tree::DiskTree;
use pump_dossier::{Dossier, REQUIREMENTS_PATH, SOUP_PATH, TRACEABILITY_PATH};

const USAGE: &str = "usage: pump-dossier [--root DIR] <regenerate | check | import-mutants RUN DIR>

  regenerate      rewrite docs/safety/traceability.md and docs/safety/soup.md
  check           print every traceability, hazard and SOUP problem; exit 1 if any
  import-mutants  record the cargo-mutants run in DIR (its mutants.out/) in
                  docs/safety/mutants.tsv under the label RUN, replacing a run
                  of that label; then regenerate

The repository root is found by walking up from the current directory to
the first directory holding docs/safety/requirements.md.";

fn find_root() -> Option<PathBuf> {
    let start = std::env::current_dir().ok()?;
    let from_cwd = start
        .ancestors()
        .find(|d| d.join(REQUIREMENTS_PATH).is_file())
        .map(Path::to_path_buf);
    from_cwd.or_else(|| {
        let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
        manifest
            .ancestors()
            .find(|d| d.join(REQUIREMENTS_PATH).is_file())
            .map(Path::to_path_buf)
    })
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let mut root = None;
    let mut command = None;
    let mut operands = Vec::new();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--root" => root = args.next().map(PathBuf::from),
            "-h" | "--help" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            other if command.is_none() => command = Some(other.to_string()),
            other if command.as_deref() == Some("import-mutants") && operands.len() < 2 => {
                operands.push(other.to_string());
            }
            _ => {
                eprintln!("{USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    let Some(root) = root.or_else(find_root) else {
        eprintln!("pump-dossier: cannot find the repository root (no {REQUIREMENTS_PATH} above the current directory); use --root");
        return ExitCode::from(2);
    };
    if command.as_deref() == Some("import-mutants") {
        let [run, dir] = &operands[..] else {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        };
        return import_mutants(&root, run, Path::new(dir));
    }
    let dossier = Dossier::load(&DiskTree::new(&root));
    match command.as_deref() {
        Some("regenerate") => {
            for (path, text) in [
                (TRACEABILITY_PATH, dossier.traceability_md()),
                (SOUP_PATH, dossier.soup_md()),
            ] {
                if let Err(e) = std::fs::write(root.join(path), text) {
                    eprintln!("pump-dossier: cannot write {path}: {e}");
                    return ExitCode::FAILURE;
                }
                println!("wrote {path}");
            }
            // Report what is still wrong, but regenerating succeeded.
            let remaining: Vec<_> = Dossier::load(&DiskTree::new(&root)).problems();
            if !remaining.is_empty() {
                println!(
                    "\n{} problem(s) remain (`cargo test -p pump-dossier` will fail):",
                    remaining.len()
                );
                for p in remaining {
                    println!("- {p}");
                }
            }
            ExitCode::SUCCESS
        }
        Some("check") => {
            let problems = dossier.problems();
            if problems.is_empty() {
                println!("dossier check: no problems");
                ExitCode::SUCCESS
            } else {
                for p in &problems {
                    println!("- {p}");
                }
                println!("\n{} problem(s)", problems.len());
                ExitCode::FAILURE
            }
        }
        _ => {
            eprintln!("{USAGE}");
            ExitCode::from(2)
        }
    }
}

/// `import-mutants RUN DIR`: reads `DIR/outcomes.json` and the caught
/// mutants' logs, and replaces the run `RUN` in the TSV.
fn import_mutants(root: &Path, run: &str, dir: &Path) -> ExitCode {
    let outcomes_path = dir.join("outcomes.json");
    let Ok(outcomes) = std::fs::read_to_string(&outcomes_path) else {
        eprintln!("pump-dossier: cannot read {}", outcomes_path.display());
        return ExitCode::FAILURE;
    };
    let new = match mutants::import(run, &outcomes, |log| {
        std::fs::read_to_string(dir.join(log)).ok()
    }) {
        Ok(records) => records,
        Err(e) => {
            eprintln!("pump-dossier: {e}");
            return ExitCode::FAILURE;
        }
    };
    let tsv_path = root.join(mutants::MUTANTS_PATH);
    let current = std::fs::read_to_string(&tsv_path).unwrap_or_default();
    let old = match mutants::parse_tsv(&current) {
        Ok(records) => records,
        Err(e) => {
            eprintln!("pump-dossier: {e}");
            return ExitCode::FAILURE;
        }
    };
    let count = new.len();
    let all = mutants::replace_run(&old, run, new);
    if let Err(e) = std::fs::write(&tsv_path, mutants::render_tsv(&all)) {
        eprintln!("pump-dossier: cannot write {}: {e}", tsv_path.display());
        return ExitCode::FAILURE;
    }
    println!(
        "recorded {count} mutants of run {run} in {}; run `pump-dossier regenerate` next",
        mutants::MUTANTS_PATH
    );
    ExitCode::SUCCESS
}
