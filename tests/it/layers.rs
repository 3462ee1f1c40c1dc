//! The layers of `src/`, written once (below, top to bottom), checked against the code: every
//! `crate::` path in every source file (and `sluice::` in `main.rs`) must name a module of a
//! *lower* layer than its own file's module. Modules of one layer stay apart (`cache`, `router`
//! and `accounting` never import each other), so an upward import, a sideways one and an import
//! cycle all fail the build. Comment lines are not code and are skipped.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Top to bottom. A new top-level module must be placed here.
const LAYERS: &[&[&str]] = &[
    &["main"], // the binary: parses the command line, dispatches
    &["commands"],
    &["cli"],
    &["app"],
    &["api"],
    &["guard"],
    &["pipeline"],
    &["state"],
    &["cache", "router", "accounting", "access"],
    &["provider", "sim", "text"],
    // -- the ground floor --
    &["telemetry"],
    &["store"],
    &["config"],
    &["error"],
    &["outcome"],
    &["wire"],
    &["chat"],
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&module))
}

/// `src/cache/key.rs` -> `cache`, `src/main.rs` -> `main`.
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap();
    let first = rel.components().next().unwrap().as_os_str();
    first.to_string_lossy().trim_end_matches(".rs").to_owned()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The top-level modules a file's code names: `crate::x`, `crate::{x, y::z}` (also across lines).
fn imports(text: &str, root: &str) -> BTreeSet<String> {
    let code: String = text
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    let needle = format!("{root}::");
    let mut out = BTreeSet::new();
    let mut rest = code.as_str();
    while let Some(i) = rest.find(&needle) {
        let before = rest[..i].chars().next_back();
        rest = &rest[i + needle.len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue; // `my_crate::`
        }
        if let Some(group) = rest.strip_prefix('{') {
            // Names at the group's top level.
            let (mut depth, mut name, mut at_start) = (0usize, String::new(), true);
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => at_start = true,
                    c if depth == 0 && at_start && (c.is_alphanumeric() || c == '_') => {
                        name.push(c)
                    }
                    _ if !name.is_empty() => {
                        out.insert(std::mem::take(&mut name));
                        at_start = false;
                    }
                    _ => {}
                }
            }
            if !name.is_empty() {
                out.insert(name);
            }
            continue;
        }
        let name: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        if !name.is_empty() {
            out.insert(name);
        }
    }
    out
}

#[test]
fn imports_run_down_the_layers() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();

    let mut per_layer: BTreeMap<usize, usize> = BTreeMap::new();
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut problems = Vec::new();
    let mut checked = 0;
    for f in &files {
        let module = module_of(&src, f);
        if module == "lib" {
            continue; // the module list itself
        }
        let Some(own) = layer_of(&module) else {
            problems.push(format!(
                "{}: module `{module}` is in no layer of tests/it/layers.rs",
                f.display()
            ));
            continue;
        };
        *per_layer.entry(own).or_default() += 1;
        let text = std::fs::read_to_string(f).unwrap();
        let root = if module == "main" { "sluice" } else { "crate" };
        for used in imports(&text, root) {
            checked += 1;
            if used == module {
                continue;
            }
            edges
                .entry(module.clone())
                .or_default()
                .insert(used.clone());
            match layer_of(&used) {
                None => problems.push(format!(
                    "{}: uses `{used}`, which is in no layer",
                    f.display()
                )),
                Some(l) if l < own => problems.push(format!(
                    "{}: `{module}` (layer {own}) imports `{used}` from above (layer {l})",
                    f.display()
                )),
                Some(l) if l == own => problems.push(format!(
                    "{}: `{module}` imports `{used}`, a sibling of its own layer {own}",
                    f.display()
                )),
                Some(_) => {}
            }
        }
    }

    // Cycles among modules, found independently of the order (a depth-first search).
    let mut cycles = Vec::new();
    fn visit(
        m: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
        cycles: &mut Vec<String>,
    ) {
        if let Some(i) = path.iter().position(|p| p == m) {
            cycles.push(path[i..].join(" -> ") + " -> " + m);
            return;
        }
        if !done.insert(m.to_owned()) {
            return;
        }
        path.push(m.to_owned());
        for n in edges.get(m).into_iter().flatten() {
            visit(n, edges, path, done, cycles);
        }
        path.pop();
    }
    let mut done = BTreeSet::new();
    for m in edges.keys() {
        visit(m, &edges, &mut Vec::new(), &mut done, &mut cycles);
    }

    println!("layers, top to bottom (files):");
    for (i, layer) in LAYERS.iter().enumerate() {
        println!(
            "  {i:>2} {:<30} {}",
            layer.join(", "),
            per_layer.get(&i).copied().unwrap_or(0)
        );
    }
    let upward = problems.len();
    println!(
        "{} files, {checked} module references: {upward} upward or sideways imports, {} cycles",
        files.len() - 1,
        cycles.len()
    );
    assert!(
        problems.is_empty() && cycles.is_empty(),
        "{}\n{}",
        problems.join("\n"),
        cycles.join("\n")
    );
}

#[test]
fn the_checker_sees_grouped_and_plain_paths() {
    let text = "use crate::{cache::Key, router};\n// use crate::api;\nlet x = crate::store::open();\nuse my_crate::api;";
    let got: Vec<String> = imports(text, "crate").into_iter().collect();
    assert_eq!(got, ["cache", "router", "store"]);
    let multi = "use crate::{\n    a::{B, C},\n    d,\n};";
    let got: Vec<String> = imports(multi, "crate").into_iter().collect();
    assert_eq!(got, ["a", "d"]);
}
