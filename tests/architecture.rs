//! The layering rules of `ARCHITECTURE.md`, checked on the source itself:
//! top-level modules form no cycle, dialects use only the engine facade,
//! the model and the API's shared pieces, no dialect uses another, files
//! stay small, and every file says what it owns.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The dialect modules under `src/api`.
const DIALECTS: [&str; 4] = ["moneyprinter", "openreels", "aivideogen", "clipzy"];

/// What a dialect may use from the rest of the crate.
const DIALECT_MAY_USE: [&str; 4] = ["engine", "model", "AppState", "Config"];

/// The API modules every dialect may use.
const API_SHARED: [&str; 9] = [
    "error", "dialect", "deadline", "extract", "fields", "sse", "streams", "video", "api",
];

/// Longest file under `src/`, in lines.
const MAX_LINES: usize = 400;

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The module path of a file: `src/api/clipzy/mod.rs` → `api::clipzy`.
fn module_of(file: &Path, src: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src).expect("under src");
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_string())
        .collect();
    if matches!(
        parts.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        parts.pop();
    }
    parts
}

/// Every module path a file names with `crate::` or `super::`, resolved to
/// absolute segments, brace groups expanded one level.
fn references(text: &str, module: &[String]) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let bytes = text.as_bytes();
    let ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    for start in ["crate::", "super::"] {
        let mut from = 0;
        while let Some(at) = text[from..].find(start) {
            let at = from + at;
            from = at + start.len();
            if at > 0 && (ident(bytes[at - 1]) || bytes[at - 1] == b':') {
                continue;
            }
            // Resolve the prefix.
            let mut base: Vec<String> = if start == "crate::" {
                Vec::new()
            } else {
                // `super` of `a::b` is `a`, whether `b` is `a/b.rs` or
                // `a/b/mod.rs`.
                let mut parent = module.to_vec();
                parent.pop();
                parent
            };
            let mut rest = &text[from..];
            while let Some(next) = rest.strip_prefix("super::") {
                base.pop();
                rest = next;
            }
            if let Some(group) = rest.strip_prefix('{') {
                let end = group.find('}').unwrap_or(group.len());
                for item in group[..end].split(',') {
                    let name: String = item
                        .trim()
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect();
                    if !name.is_empty() && name != "self" {
                        let mut path = base.clone();
                        path.push(name);
                        out.push(path);
                    }
                }
                continue;
            }
            let mut path = base;
            for segment in rest.split("::") {
                let name: String = segment
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if name.is_empty() {
                    break;
                }
                path.push(name.clone());
                if name.len() != segment.len() {
                    break;
                }
            }
            out.push(path);
        }
    }
    out
}

struct Source {
    module: Vec<String>,
    refs: Vec<Vec<String>>,
    text: String,
    path: PathBuf,
}

fn sources() -> Vec<Source> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).expect("read a source file");
            let module = module_of(&path, &src);
            // Code only: no tests, no comments.
            let code: String = text
                .split("#[cfg(test)]")
                .next()
                .unwrap_or("")
                .lines()
                .filter(|line| !line.trim_start().starts_with("//"))
                .collect::<Vec<_>>()
                .join("\n");
            let refs = references(&code, &module);
            Source {
                module,
                refs,
                text,
                path,
            }
        })
        .collect()
}

#[test]
fn top_level_modules_form_no_cycle() {
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for source in sources() {
        let Some(from) = source.module.first() else {
            continue;
        };
        for target in &source.refs {
            // `crate::Config` and `crate::AppState` live at the root.
            let Some(to) = target.first() else { continue };
            if to == from || to.chars().next().is_some_and(char::is_uppercase) {
                continue;
            }
            graph.entry(from.clone()).or_default().insert(to.clone());
        }
    }
    // Depth-first search for a back edge.
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) {
        if let Some(at) = path.iter().position(|n| n == node) {
            panic!("import cycle: {} -> {node}", path[at..].join(" -> "));
        }
        if !done.insert(node.to_string()) {
            return;
        }
        path.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            visit(next, graph, path, done);
        }
        path.pop();
    }
    for node in graph.keys() {
        visit(node, &graph, &mut Vec::new(), &mut BTreeSet::new());
    }
    // The layers read as ARCHITECTURE.md draws them.
    assert!(!graph["engine"].contains("pipeline"));
    assert!(!graph["engine"].contains("api"));
    assert!(!graph["store"].contains("engine"));
    assert!(graph.get("model").is_none_or(|deps| deps.is_empty()));
}

#[test]
fn dialects_use_only_the_engine_the_model_and_the_api_s_shared_pieces() {
    for source in sources() {
        let [api, dialect, ..] = source.module.as_slice() else {
            continue;
        };
        if api != "api" || !DIALECTS.contains(&dialect.as_str()) {
            continue;
        }
        for target in &source.refs {
            let allowed = match target.as_slice() {
                [] => true,
                [top, ..] if DIALECT_MAY_USE.contains(&top.as_str()) => true,
                [top] if top == "api" => true,
                [top, next, ..] if top == "api" => {
                    next == dialect || API_SHARED.contains(&next.as_str())
                }
                _ => false,
            };
            assert!(
                allowed,
                "{} uses {}: a dialect uses only the engine facade, the model \
                 and the API's shared modules",
                source.path.display(),
                target.join("::")
            );
        }
    }
}

#[test]
fn files_stay_small_and_say_what_they_own() {
    for source in sources() {
        let lines = source.text.lines().count();
        assert!(
            lines <= MAX_LINES,
            "{} has {lines} lines; split it by idea",
            source.path.display()
        );
        assert!(
            source.text.starts_with("//!"),
            "{} has no //! header",
            source.path.display()
        );
    }
}
