//! The layering of `src/`, checked: every `crate::` path in a module's code
//! names a module on the same floor or a lower one, and the imports form no
//! cycle. The floors are the table below (docs/development.md draws them); a
//! module missing from it fails the test, so a new module gets a place.
//!
//! It reads the source as text: `crate::name` and `crate::{a, b}` in code
//! (comments are skipped), attributed to the top-level module whose file or
//! folder it is in. No tool to install, and it runs with `cargo test`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Bottom up. A module may use its own floor and those below.
const FLOORS: &[&[&str]] = &[
    // 1: leaves — pure logic and process plumbing.
    &[
        "policy", "duration", "secret", "schedule", "notify", "metrics", "logging", "signals", "summary",
    ],
    // 2: the files the user hands in: the config, validated into domain
    // types; the plan document that `plan` writes and `apply` reads.
    &["config", "plan"],
    // 3: GitLab: the client, both APIs, the parallel tag walk, the backend seam.
    &["gitlab"],
    // 4: one cleanup pass.
    &["pass"],
    // 5: the command line and the resolved settings.
    &["cli", "settings"],
    // 6: the commands.
    &["commands"],
];

fn floor_of(module: &str) -> Option<usize> {
    FLOORS.iter().position(|floor| floor.contains(&module))
}

/// Every `.rs` file under `dir`.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file belongs to (`src/gitlab/rest.rs` → `gitlab`).
fn owner(src: &Path, file: &Path) -> String {
    let relative = file.strip_prefix(src).unwrap();
    let first = relative.components().next().unwrap().as_os_str().to_str().unwrap();
    first.trim_end_matches(".rs").to_owned()
}

/// The modules a source text names as `crate::x`, outside comments.
fn crate_paths(text: &str) -> BTreeSet<String> {
    let mut used = BTreeSet::new();
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            let before = &rest[..at];
            rest = &rest[at + "crate::".len()..];
            // `gitlab_registry_cleaner::` or `fake_crate::` are other crates.
            if before.ends_with(|c: char| c.is_alphanumeric() || c == '_') {
                continue;
            }
            if let Some(group) = rest.strip_prefix('{') {
                let inner = group.split('}').next().unwrap_or("");
                for item in inner.split(',') {
                    let name: String = item
                        .trim()
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect();
                    if !name.is_empty() {
                        used.insert(name);
                    }
                }
            } else {
                let name: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                if !name.is_empty() {
                    used.insert(name);
                }
            }
        }
    }
    used
}

/// Module → the other modules it uses.
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in files {
        let module = owner(&src, &file);
        if module == "lib" || module == "main" {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        let uses = graph.entry(module.clone()).or_default();
        uses.extend(crate_paths(&text).into_iter().filter(|m| *m != module));
    }
    graph
}

#[test]
fn every_module_has_a_floor() {
    let unplaced: Vec<String> = graph().into_keys().filter(|m| floor_of(m).is_none()).collect();
    assert!(unplaced.is_empty(), "modules without a floor in FLOORS: {unplaced:?}");
}

#[test]
fn no_module_uses_a_higher_floor() {
    let mut upward = Vec::new();
    for (module, uses) in graph() {
        let Some(own) = floor_of(&module) else { continue };
        for used in uses {
            match floor_of(&used) {
                Some(floor) if floor > own => upward.push(format!(
                    "{module} (floor {}) uses {used} (floor {})",
                    own + 1,
                    floor + 1
                )),
                _ => {}
            }
        }
    }
    assert!(upward.is_empty(), "imports that point up:\n{}", upward.join("\n"));
}

#[test]
fn the_imports_form_no_cycle() {
    let graph = graph();
    // Depth-first search; a module met again while on the stack closes a cycle.
    fn visit<'g>(
        module: &'g str,
        graph: &'g BTreeMap<String, BTreeSet<String>>,
        stack: &mut Vec<&'g str>,
        done: &mut BTreeSet<&'g str>,
    ) -> Option<Vec<String>> {
        if let Some(at) = stack.iter().position(|m| *m == module) {
            let mut cycle: Vec<String> = stack[at..].iter().map(|m| m.to_string()).collect();
            cycle.push(module.to_owned());
            return Some(cycle);
        }
        if !done.insert(module) {
            return None;
        }
        stack.push(module);
        for used in graph.get(module).into_iter().flatten() {
            if let Some(cycle) = visit(used, graph, stack, done) {
                return Some(cycle);
            }
        }
        stack.pop();
        None
    }
    let mut done = BTreeSet::new();
    for module in graph.keys() {
        if let Some(cycle) = visit(module, &graph, &mut Vec::new(), &mut done) {
            panic!("import cycle: {}", cycle.join(" -> "));
        }
    }
}

#[test]
fn the_reader_finds_paths_and_groups() {
    let text = "use crate::config::{Entry, Target};\nuse crate::{gitlab, pass::run};\n// crate::commented\nlet x = other_crate::y; crate::metrics::metrics();";
    let found: Vec<String> = crate_paths(text).into_iter().collect();
    assert_eq!(found, ["config", "gitlab", "metrics", "pass"]);
}
