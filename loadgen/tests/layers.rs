//! The source tree's shape, checked: layers run one way (no import cycle
//! between modules, at any folder level: between top-level modules, and
//! between the files of one folder, its `mod.rs` included), no file over
//! 600 lines (a trailing test module not counted), and the layout the docs
//! describe is the one on disk.
//!
//! A dependency is any path to another module: `use crate::…`,
//! `use super::…`, `crate::x::f()` in code, a child module named from its
//! parent (`model::run_case`). Comments and string literals do not count.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// A module path from the crate root: `[]` is lib.rs, `["run", "driver"]`
/// is src/run/driver.rs.
type ModPath = Vec<String>;

const MAX_LINES: usize = 600;

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every library source file with its module path (main.rs is the binary).
fn modules() -> BTreeMap<ModPath, PathBuf> {
    fn walk(dir: &Path, base: &ModPath, out: &mut BTreeMap<ModPath, PathBuf>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for path in entries {
            let name = path.file_stem().unwrap().to_string_lossy().to_string();
            if path.is_dir() {
                let mut m = base.clone();
                m.push(name);
                walk(&path, &m, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let m = match name.as_str() {
                    "lib" | "mod" => base.clone(),
                    "main" if base.is_empty() => continue,
                    _ => {
                        let mut m = base.clone();
                        m.push(name);
                        m
                    }
                };
                out.insert(m, path);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(&src(), &Vec::new(), &mut out);
    out
}

fn peek(c: &[char], i: usize) -> Option<char> {
    c.get(i).copied()
}

/// The code without comments, string and char literals (replaced by spaces,
/// so nothing inside them looks like a path).
fn code_only(text: &str) -> String {
    let c: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < c.len() {
        if c[i] == '/' && peek(&c, i + 1) == Some('/') {
            while i < c.len() && c[i] != '\n' {
                i += 1;
            }
        } else if c[i] == '/' && peek(&c, i + 1) == Some('*') {
            let mut depth = 0;
            while i < c.len() {
                if c[i] == '/' && peek(&c, i + 1) == Some('*') {
                    depth += 1;
                    i += 2;
                } else if c[i] == '*' && peek(&c, i + 1) == Some('/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else if c[i] == 'r' && (peek(&c, i + 1) == Some('"') || peek(&c, i + 1) == Some('#')) {
            // A raw string: r"…" or r#"…"#.
            let mut j = i + 1;
            let mut hashes = 0;
            while c.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if c.get(j) != Some(&'"') {
                out.push(c[i]);
                i += 1;
                continue;
            }
            j += 1;
            loop {
                match c.get(j) {
                    None => break,
                    Some('"') if (1..=hashes).all(|h| c.get(j + h) == Some(&'#')) => {
                        j += 1 + hashes;
                        break;
                    }
                    _ => j += 1,
                }
            }
            out.push(' ');
            i = j;
        } else if c[i] == '"' {
            i += 1;
            while i < c.len() && c[i] != '"' {
                i += if c[i] == '\\' { 2 } else { 1 };
            }
            i += 1;
            out.push(' ');
        } else if c[i] == '\'' && (peek(&c, i + 1) == Some('\\') || peek(&c, i + 2) == Some('\'')) {
            // A char literal (a lifetime has no closing quote).
            i += 1;
            while i < c.len() && c[i] != '\'' {
                i += if c[i] == '\\' { 2 } else { 1 };
            }
            i += 1;
            out.push(' ');
        } else {
            out.push(c[i]);
            i += 1;
        }
    }
    out
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Ident(String),
    Punct(char),
    PathSep,
}

fn tokens(code: &str) -> Vec<Token> {
    let c: Vec<char> = code.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < c.len() {
        if c[i].is_alphanumeric() || c[i] == '_' {
            let start = i;
            while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_') {
                i += 1;
            }
            out.push(Token::Ident(c[start..i].iter().collect()));
        } else if c[i] == ':' && c.get(i + 1) == Some(&':') {
            out.push(Token::PathSep);
            i += 2;
        } else {
            if !c[i].is_whitespace() {
                out.push(Token::Punct(c[i]));
            }
            i += 1;
        }
    }
    out
}

/// The modules a file's code refers to, as paths before resolution: each
/// path is (the inline module it appears in, its segments).
fn paths(tokens: &[Token]) -> Vec<(Vec<String>, Vec<String>)> {
    let mut out = Vec::new();
    // Inline modules (`mod tests { … }`) the scan is inside, with the brace
    // depth at which each opened.
    let mut inline: Vec<(String, usize)> = Vec::new();
    let mut depth = 0usize;
    let mut i = 0;
    while i < tokens.len() {
        match &tokens[i] {
            Token::Punct('{') => depth += 1,
            Token::Punct('}') => {
                depth = depth.saturating_sub(1);
                if inline.last().is_some_and(|(_, d)| *d == depth) {
                    inline.pop();
                }
            }
            Token::Ident(k) if k == "mod" => {
                if let (Some(Token::Ident(name)), Some(Token::Punct('{'))) =
                    (tokens.get(i + 1), tokens.get(i + 2))
                {
                    inline.push((name.clone(), depth));
                }
            }
            Token::Ident(k) if k == "use" => {
                let here: Vec<String> = inline.iter().map(|(n, _)| n.clone()).collect();
                let mut j = i + 1;
                for p in use_tree(tokens, &mut j, Vec::new()) {
                    out.push((here.clone(), p));
                }
                i = j;
                continue;
            }
            // A path in code: a::b::c (not preceded by `::`).
            Token::Ident(first)
                if tokens.get(i + 1) == Some(&Token::PathSep)
                    && (i == 0 || tokens[i - 1] != Token::PathSep) =>
            {
                let mut p = vec![first.clone()];
                let mut j = i + 1;
                while tokens.get(j) == Some(&Token::PathSep) {
                    match tokens.get(j + 1) {
                        Some(Token::Ident(s)) => {
                            p.push(s.clone());
                            j += 2;
                        }
                        _ => break,
                    }
                }
                let here = inline.iter().map(|(n, _)| n.clone()).collect();
                out.push((here, p));
                i = j;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    out
}

/// Expands one `use` tree (from `*j`, up to `;` or the closing `}`).
fn use_tree(tokens: &[Token], j: &mut usize, prefix: Vec<String>) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut cur = prefix.clone();
    // `cur` went into a `{…}` group: the group's paths are the ones to keep.
    let mut grouped = false;
    while let Some(t) = tokens.get(*j) {
        *j += 1;
        match t {
            Token::Ident(s) if s == "as" => *j += 1,
            Token::Ident(s) => cur.push(s.clone()),
            Token::PathSep => {}
            Token::Punct('{') => {
                out.extend(use_tree(tokens, j, cur.clone()));
                grouped = true;
            }
            Token::Punct(',') | Token::Punct('}') | Token::Punct(';') => {
                if !grouped && cur.len() > prefix.len() {
                    out.push(cur.clone());
                }
                if t != &Token::Punct(',') {
                    return out;
                }
                cur = prefix.clone();
                grouped = false;
            }
            Token::Punct(_) => {}
        }
    }
    out
}

/// The child modules a file declares (`mod x;`).
fn declared_children(tokens: &[Token]) -> BTreeSet<String> {
    tokens
        .windows(3)
        .filter_map(|w| match w {
            [Token::Ident(m), Token::Ident(name), Token::Punct(';')] if m == "mod" => {
                Some(name.clone())
            }
            _ => None,
        })
        .collect()
}

/// The file a path lands in: its longest prefix that is a module file.
fn resolve(
    path: &[String],
    file: &ModPath,
    inline: &[String],
    children: &BTreeSet<String>,
    known: &BTreeMap<ModPath, PathBuf>,
) -> Option<ModPath> {
    let mut here: ModPath = file.iter().chain(inline).cloned().collect();
    let mut segs = path.iter().peekable();
    let mut abs: ModPath = match segs.peek().map(|s| s.as_str()) {
        Some("crate") => {
            segs.next();
            Vec::new()
        }
        Some("super") => {
            while segs.peek().map(|s| s.as_str()) == Some("super") {
                segs.next();
                here.pop();
            }
            here
        }
        Some("self") => {
            segs.next();
            here
        }
        Some(first) if inline.is_empty() && children.contains(first) => file.clone(),
        _ => return None, // an external crate or std
    };
    abs.extend(segs.cloned());
    (0..=abs.len())
        .rev()
        .map(|n| abs[..n].to_vec())
        .find(|m| known.contains_key(m))
}

/// Every dependency between two different module files.
fn edges() -> BTreeSet<(ModPath, ModPath)> {
    let known = modules();
    let mut out = BTreeSet::new();
    for (m, path) in &known {
        let toks = tokens(&code_only(&std::fs::read_to_string(path).unwrap()));
        let children = declared_children(&toks);
        for (inline, p) in paths(&toks) {
            if let Some(to) = resolve(&p, m, &inline, &children, &known) {
                if &to != m {
                    out.insert((m.clone(), to));
                }
            }
        }
    }
    out
}

/// A cycle among `graph`'s nodes, if there is one.
fn cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        n: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<String, u8>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        state.insert(n.to_string(), 1);
        stack.push(n.to_string());
        for m in graph.get(n).into_iter().flatten() {
            match state.get(m.as_str()) {
                Some(1) => {
                    let start = stack.iter().position(|s| s == m).unwrap_or(0);
                    let mut c = stack[start..].to_vec();
                    c.push(m.clone());
                    return Some(c);
                }
                Some(_) => {}
                None => {
                    if let Some(c) = visit(m, graph, state, stack) {
                        return Some(c);
                    }
                }
            }
        }
        stack.pop();
        state.insert(n.to_string(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for n in graph.keys() {
        if !state.contains_key(n.as_str()) {
            if let Some(c) = visit(n, graph, &mut state, &mut Vec::new()) {
                return Some(c);
            }
        }
    }
    None
}

/// Edges grouped by the folder where two modules part: at folder F the
/// nodes are F's own file (`mod.rs`, shown as `self`) and its children.
fn levels(
    edges: &BTreeSet<(ModPath, ModPath)>,
) -> BTreeMap<ModPath, BTreeMap<String, BTreeSet<String>>> {
    let mut out: BTreeMap<ModPath, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
    for (a, b) in edges {
        let common = a.iter().zip(b).take_while(|(x, y)| x == y).count();
        let level = a[..common].to_vec();
        let node = |m: &ModPath| m.get(common).cloned().unwrap_or_else(|| "self".into());
        out.entry(level)
            .or_default()
            .entry(node(a))
            .or_default()
            .insert(node(b));
    }
    out
}

#[test]
fn no_import_cycle_at_any_level() {
    let edges = edges();
    assert!(
        edges
            .iter()
            .any(|(a, b)| a == &["run".to_string(), "driver".into()] && b[0] == "client"),
        "the scan finds dependencies (run::driver uses client): {edges:?}"
    );
    let mut cycles = Vec::new();
    for (level, graph) in levels(&edges) {
        if let Some(c) = cycle(&graph) {
            let folder = if level.is_empty() {
                "src".into()
            } else {
                format!("src/{}", level.join("/"))
            };
            cycles.push(format!("{folder}: {}", c.join(" -> ")));
        }
    }
    assert!(cycles.is_empty(), "import cycles:\n{}", cycles.join("\n"));
}

#[test]
fn the_cycle_check_finds_cycles() {
    // The checker itself: a cycle between files of a folder, and one
    // through a folder's mod.rs, are both found.
    let e = |a: &[&str], b: &[&str]| {
        (
            a.iter().map(|s| s.to_string()).collect(),
            b.iter().map(|s| s.to_string()).collect(),
        )
    };
    let files: BTreeSet<(ModPath, ModPath)> =
        [e(&["x", "a"], &["x", "b"]), e(&["x", "b"], &["x", "a"])].into();
    assert!(cycle(&levels(&files)[&vec!["x".to_string()]]).is_some());
    let through_mod: BTreeSet<(ModPath, ModPath)> =
        [e(&["x"], &["x", "a"]), e(&["x", "a"], &["x"])].into();
    assert!(cycle(&levels(&through_mod)[&vec!["x".to_string()]]).is_some());
    let folders: BTreeSet<(ModPath, ModPath)> =
        [e(&["x", "a"], &["y", "b"]), e(&["y", "c"], &["x", "d"])].into();
    assert!(cycle(&levels(&folders)[&Vec::new()]).is_some());
    let code = code_only(
        "use super::{a, b::{C, D}}; // use crate::z;\nlet s = \"crate::q\"; crate::w::f();",
    );
    let toks = tokens(&code);
    let found: Vec<Vec<String>> = paths(&toks).into_iter().map(|(_, p)| p).collect();
    let want: Vec<Vec<String>> = vec![
        vec!["super".into(), "a".into()],
        vec!["super".into(), "b".into(), "C".into()],
        vec!["super".into(), "b".into(), "D".into()],
        vec!["crate".into(), "w".into(), "f".into()],
    ];
    assert_eq!(found, want);
}

/// Lines before the trailing `#[cfg(test)] mod tests`, if there is one.
fn lines_without_tests(text: &str) -> usize {
    let lines: Vec<&str> = text.lines().collect();
    let tests = lines
        .windows(2)
        .rposition(|w| w[0].trim() == "#[cfg(test)]" && w[1].trim_start().starts_with("mod tests"));
    tests.unwrap_or(lines.len())
}

#[test]
fn no_file_over_600_lines() {
    let mut long = Vec::new();
    for path in modules()
        .values()
        .chain(std::iter::once(&src().join("main.rs")))
    {
        let n = lines_without_tests(&std::fs::read_to_string(path).unwrap());
        if n > MAX_LINES {
            long.push(format!("{}: {n} lines", path.display()));
        }
    }
    assert!(
        long.is_empty(),
        "files over {MAX_LINES} lines:\n{}",
        long.join("\n")
    );
}

/// The top-level modules on disk.
fn top_level() -> BTreeSet<String> {
    modules()
        .keys()
        .filter_map(|m| m.first().cloned())
        .collect()
}

#[test]
fn the_layout_docs_name_every_module_on_disk() {
    let lib = std::fs::read_to_string(src().join("lib.rs")).unwrap();
    let layout = lib
        .split("# Layout")
        .nth(1)
        .expect("lib.rs has a `# Layout` section");
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md"))
            .unwrap();
    let readme_layout = readme
        .split("## Layout")
        .nth(1)
        .expect("README.md has a Layout section");
    for m in top_level() {
        assert!(
            layout.contains(&format!("[`{m}`]")),
            "lib.rs's layout names `{m}`"
        );
        let folder = src().join(&m).is_dir();
        let shown = if folder {
            format!("`{m}/`")
        } else {
            format!("`{m}`")
        };
        assert!(
            readme_layout.contains(&shown),
            "README's layout names {shown}"
        );
    }
}
