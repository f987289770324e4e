//! The source tree's layering: no two modules of `src/` import each other,
//! directly or around a loop (a module and its own submodules aside), so each
//! layer can be read, tested and changed on its own.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Every module of `src/` (as `server::db::budgets`) with its source text,
/// test modules left out.
fn modules() -> BTreeMap<String, String> {
    fn walk(dir: &Path, root: &Path, out: &mut BTreeMap<String, String>) {
        for entry in std::fs::read_dir(dir).expect("src is readable") {
            let path = entry.expect("an entry").path();
            if path.is_dir() {
                walk(&path, root, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let relative = path.strip_prefix(root).expect("under src");
                let name = relative
                    .with_extension("")
                    .to_string_lossy()
                    .replace('/', "::");
                let text = std::fs::read_to_string(&path).expect("a source file");
                let text = match text.find("#[cfg(test)]\nmod tests") {
                    Some(tests) => text[..tests].to_owned(),
                    None => text,
                };
                out.insert(name, text);
            }
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut out = BTreeMap::new();
    walk(&root, &root, &mut out);
    out
}

/// The longest module `path` names (a path may go on into an item).
fn module_of<'a>(path: &str, modules: &'a BTreeMap<String, String>) -> Option<&'a str> {
    let mut parts: Vec<&str> = path.split("::").collect();
    while !parts.is_empty() {
        if let Some((name, _)) = modules.get_key_value(&parts.join("::")) {
            return Some(name);
        }
        parts.pop();
    }
    None
}

/// What each module imports from the others (`crate::…` and `super::…` paths).
fn imports(modules: &BTreeMap<String, String>) -> BTreeMap<&str, BTreeSet<&str>> {
    let nested =
        |a: &str, b: &str| a.starts_with(&format!("{b}::")) || b.starts_with(&format!("{a}::"));
    let mut graph = BTreeMap::new();
    for (name, text) in modules {
        let parent = name.rsplit_once("::").map_or("", |(parent, _)| parent);
        let mut targets = BTreeSet::new();
        for (prefix, base) in [
            ("crate::", String::new()),
            ("super::", format!("{parent}::")),
        ] {
            for (at, _) in text.match_indices(prefix) {
                let before = text[..at].chars().next_back();
                if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                    continue;
                }
                let path: String = text[at + prefix.len()..]
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
                    .collect();
                let full = format!("{base}{}", path.trim_end_matches(':'));
                if let Some(target) = module_of(full.trim_start_matches("::"), modules) {
                    if target != name && !nested(name, target) {
                        targets.insert(target);
                    }
                }
            }
        }
        graph.insert(name.as_str(), targets);
    }
    graph
}

#[test]
fn no_modules_of_src_import_each_other_around_a_loop() {
    let modules = modules();
    assert!(modules.contains_key("server::state"), "the walk found src/");
    let graph = imports(&modules);
    // A module is in a loop when it can reach itself.
    for (&start, targets) in &graph {
        let mut seen = BTreeSet::new();
        let mut next: Vec<(&str, Vec<&str>)> =
            targets.iter().map(|&t| (t, vec![start, t])).collect();
        while let Some((module, path)) = next.pop() {
            assert!(module != start, "an import loop: {}", path.join(" → "));
            if seen.insert(module) {
                for &target in &graph[module] {
                    let mut longer = path.clone();
                    longer.push(target);
                    next.push((target, longer));
                }
            }
        }
    }
}
