//! The layering of `src/`, checked against the ```` ```layers ```` block of
//! `docs/ARCHITECTURE.md` (one layer per line, top first, modules separated by spaces).
//!
//! Rules, for the top-level modules of the crate (`src/env/vm/x.rs` belongs to `env`,
//! `src/plan.rs` to `plan`; `src/main.rs` and `src/lib.rs` are outside the check):
//!
//! - every top-level module is placed in exactly one layer (a new module must be placed in
//!   the documentation before it can land);
//! - a module may import (`crate::X`, anywhere in code, grouped `use crate::{a, b::c}` forms
//!   included) modules of its own layer or of a lower one, never of a higher one;
//! - the import graph among top-level modules has no cycle, not even within one layer.
//!
//! Comments, string and character literals, and test-only code are not imports: an item
//! after a `#[cfg(test)]` attribute (a `mod tests { … }` block, or a `mod tests;` whose file
//! is then skipped) extends to its `;` or to its closing brace. Layers are numbered from
//! the bottom of the block: 0 is its last line.
//!
//! The checker is a function over (layers, list of (path, text)), so the tests at the end
//! of this file feed it synthetic sources and prove that it fails when it should.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fs;
use std::path::Path;

/// The document that holds the layers block, relative to the package root.
const ARCHITECTURE: &str = "docs/ARCHITECTURE.md";

/// The layers of the ```` ```layers ```` block of `markdown`, top first.
fn parse_layers(markdown: &str) -> Result<Vec<Vec<String>>, String> {
    let mut blocks = Vec::new();
    let mut lines = markdown.lines();
    while let Some(line) = lines.next() {
        let Some(info) = line.trim_start().strip_prefix("```") else {
            continue;
        };
        let body: Vec<&str> = lines
            .by_ref()
            .take_while(|l| !l.trim_start().starts_with("```"))
            .collect();
        if info.trim() == "layers" {
            blocks.push(body);
        }
    }
    match blocks.as_slice() {
        [] => Err("no ```layers block found".into()),
        [body] => {
            let layers: Vec<Vec<String>> = body
                .iter()
                .map(|l| l.split_whitespace().map(str::to_string).collect::<Vec<_>>())
                .filter(|l| !l.is_empty())
                .collect();
            if layers.is_empty() {
                Err("the ```layers block is empty".into())
            } else {
                Ok(layers)
            }
        }
        _ => Err(format!(
            "{} ```layers blocks found; keep exactly one",
            blocks.len()
        )),
    }
}

/// The path below `src/` (`env/vm/x.rs`), whatever leads up to it.
fn below_src(path: &str) -> &str {
    path.strip_prefix("./")
        .unwrap_or(path)
        .strip_prefix("src/")
        .unwrap_or(path)
}

/// Whether a file is outside the check: the crate roots and separate binaries.
fn outside_check(path: &str) -> bool {
    let rel = below_src(path);
    rel == "main.rs" || rel == "lib.rs" || rel.starts_with("bin/")
}

/// The top-level module a file belongs to: `env/vm/x.rs` → `env`, `plan.rs` → `plan`.
fn top_level_module(path: &str) -> String {
    let rel = below_src(path);
    let first = rel.split('/').next().unwrap_or(rel);
    first.strip_suffix(".rs").unwrap_or(first).to_string()
}

/// The module path of a file: `env/container/mod.rs` → `env/container`,
/// `env/container/tests.rs` → `env/container/tests`.
fn module_path(path: &str) -> String {
    let rel = below_src(path);
    let rel = rel.strip_suffix(".rs").unwrap_or(rel);
    rel.strip_suffix("/mod").unwrap_or(rel).to_string()
}

fn is_ident_char(c: char) -> bool {
    c == '_' || c.is_alphanumeric()
}

/// `text` with comments and the contents of string and character literals replaced by
/// spaces; line breaks are kept, so line numbers stay right.
fn strip_comments_and_literals(text: &str) -> String {
    let s: Vec<char> = text.chars().collect();
    let mut out: Vec<char> = Vec::with_capacity(s.len());
    let blank = |c: char| if c == '\n' { '\n' } else { ' ' };
    let at = |i: usize| s.get(i).copied().unwrap_or('\0');
    let mut i = 0;
    while i < s.len() {
        let c = s[i];
        let prev = if i > 0 { s[i - 1] } else { '\0' };
        if c == '/' && at(i + 1) == '/' {
            while i < s.len() && s[i] != '\n' {
                out.push(' ');
                i += 1;
            }
        } else if c == '/' && at(i + 1) == '*' {
            let mut depth = 0usize;
            while i < s.len() {
                if s[i] == '/' && at(i + 1) == '*' {
                    depth += 1;
                    out.extend([' ', ' ']);
                    i += 2;
                } else if s[i] == '*' && at(i + 1) == '/' {
                    depth -= 1;
                    out.extend([' ', ' ']);
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    out.push(blank(s[i]));
                    i += 1;
                }
            }
        } else if c == 'r'
            && (!is_ident_char(prev)
                || ((prev == 'b' || prev == 'c') && !is_ident_char(at(i.wrapping_sub(2)))))
            && matches!(at(i + 1), '"' | '#')
        {
            // A raw string r"…", r#"…"# (or br/cr), or just an identifier starting with r.
            let mut j = i + 1;
            while at(j) == '#' {
                j += 1;
            }
            if at(j) != '"' {
                out.push(c);
                i += 1;
                continue;
            }
            let hashes = j - i - 1;
            out.extend(s[i..=j].iter().copied());
            i = j + 1;
            while i < s.len() {
                if s[i] == '"' && (1..=hashes).all(|k| at(i + k) == '#') {
                    out.extend(s[i..=i + hashes].iter().copied());
                    i += hashes + 1;
                    break;
                }
                out.push(blank(s[i]));
                i += 1;
            }
        } else if c == '"' {
            out.push('"');
            i += 1;
            while i < s.len() {
                if s[i] == '\\' {
                    out.push(' ');
                    out.push(blank(at(i + 1)));
                    i += 2;
                } else if s[i] == '"' {
                    out.push('"');
                    i += 1;
                    break;
                } else {
                    out.push(blank(s[i]));
                    i += 1;
                }
            }
        } else if c == '\'' && (at(i + 1) == '\\' || (at(i + 1) != '\0' && at(i + 2) == '\'')) {
            // A character literal ('x', '\n', '\u{1F600}'); a lifetime has no closing quote.
            out.push('\'');
            i += 1;
            while i < s.len() && s[i] != '\'' {
                if s[i] == '\\' {
                    out.push(' ');
                    i += 1;
                }
                if i < s.len() {
                    out.push(blank(s[i]));
                    i += 1;
                }
            }
            if i < s.len() {
                out.push('\'');
                i += 1;
            }
        } else {
            out.push(c);
            i += 1;
        }
    }
    out.into_iter().collect()
}

/// Whether an attribute's text (between `#[` and `]`, whitespace removed) makes the item
/// test-only: `cfg(test)` or `cfg(all(…, test, …))`.
fn is_test_cfg(attr: &str) -> bool {
    if attr == "cfg(test)" {
        return true;
    }
    attr.strip_prefix("cfg(all(")
        .and_then(|a| a.strip_suffix("))"))
        .is_some_and(|args| args.split(',').any(|a| a == "test"))
}

/// Code that is compiled outside tests: `code` (already stripped) with every item that
/// follows a test-only attribute blanked out. Also returns the names of the out-of-line
/// modules declared test-only (`#[cfg(test)] mod tests;` → `tests`), and whether an inner
/// `#![cfg(test)]` makes the whole file test-only.
fn non_test_code(code: &str) -> (String, Vec<String>, bool) {
    let mut s: Vec<char> = code.chars().collect();
    let mut test_mods = Vec::new();
    let at = |s: &[char], i: usize| s.get(i).copied().unwrap_or('\0');
    let skip_ws = |s: &[char], mut i: usize| {
        while i < s.len() && s[i].is_whitespace() {
            i += 1;
        }
        i
    };
    // Parses an attribute starting at `#`; returns (inner, text without whitespace, end).
    let attribute = |s: &[char], i: usize| -> Option<(bool, String, usize)> {
        let mut j = i + 1;
        let inner = at(s, j) == '!';
        if inner {
            j += 1;
        }
        j = skip_ws(s, j);
        if at(s, j) != '[' {
            return None;
        }
        let mut depth = 0usize;
        let mut text = String::new();
        while j < s.len() {
            match s[j] {
                '[' => depth += 1,
                ']' => {
                    depth -= 1;
                    if depth == 0 {
                        return Some((inner, text, j + 1));
                    }
                }
                _ => {}
            }
            if depth >= 1 && !(depth == 1 && s[j] == '[') && !s[j].is_whitespace() {
                text.push(s[j]);
            }
            j += 1;
        }
        None
    };
    let mut i = 0;
    while i < s.len() {
        if s[i] != '#' {
            i += 1;
            continue;
        }
        let Some((inner, text, end)) = attribute(&s, i) else {
            i += 1;
            continue;
        };
        if !is_test_cfg(&text) {
            i = end;
            continue;
        }
        if inner {
            return (String::new(), test_mods, true);
        }
        // Skip further attributes, then find the end of the item.
        let start = i;
        let mut j = skip_ws(&s, end);
        while at(&s, j) == '#' {
            match attribute(&s, j) {
                Some((_, _, e)) => j = skip_ws(&s, e),
                None => break,
            }
        }
        let item_start = j;
        let mut stack: Vec<char> = Vec::new();
        while j < s.len() {
            match s[j] {
                '(' | '[' | '{' => stack.push(s[j]),
                ')' | ']' | '}' => {
                    if stack.pop().is_none() {
                        // The enclosing block ends: so does the item.
                        break;
                    }
                    if s[j] == '}' && stack.is_empty() {
                        j += 1;
                        break;
                    }
                }
                ';' if stack.is_empty() => {
                    j += 1;
                    break;
                }
                _ => {}
            }
            j += 1;
        }
        let j = j.min(s.len());
        let item: String = s[item_start..j].iter().collect();
        let words: Vec<&str> = item
            .split(|c: char| !is_ident_char(c))
            .filter(|w| !w.is_empty())
            .collect();
        let mod_at = words.iter().position(|w| *w == "mod");
        let visibility_only = mod_at.is_some_and(|m| {
            words[..m]
                .iter()
                .all(|w| matches!(*w, "pub" | "crate" | "super" | "self" | "in"))
        });
        if let (Some(m), true) = (mod_at, visibility_only) {
            if item.trim_end().ends_with(';') && !item.contains('{') {
                if let Some(name) = words.get(m + 1) {
                    test_mods.push(name.to_string());
                }
            }
        }
        for c in &mut s[start..j] {
            if *c != '\n' {
                *c = ' ';
            }
        }
        i = j;
    }
    (s.into_iter().collect(), test_mods, false)
}

/// One `crate::X` reference: the 1-based line and the first path segment after `crate::`.
fn crate_references(code: &str) -> Vec<(usize, String)> {
    let s: Vec<char> = code.chars().collect();
    let at = |i: usize| s.get(i).copied().unwrap_or('\0');
    let mut line_of = Vec::with_capacity(s.len());
    let mut line = 1;
    for &c in &s {
        line_of.push(line);
        if c == '\n' {
            line += 1;
        }
    }
    let skip_ws = |mut i: usize| {
        while i < s.len() && s[i].is_whitespace() {
            i += 1;
        }
        i
    };
    let ident = |i: usize| -> (String, usize) {
        let mut j = i;
        while j < s.len() && is_ident_char(s[j]) {
            j += 1;
        }
        (s[i..j].iter().collect(), j)
    };
    let mut out = Vec::new();
    let mut i = 0;
    while i < s.len() {
        let starts_word = i == 0 || !is_ident_char(s[i - 1]);
        if !(starts_word
            && s[i..].starts_with(&['c', 'r', 'a', 't', 'e'])
            && !is_ident_char(at(i + 5)))
        {
            i += 1;
            continue;
        }
        let j = skip_ws(i + 5);
        if !(at(j) == ':' && at(j + 1) == ':') {
            i += 5;
            continue;
        }
        let j = skip_ws(j + 2);
        if at(j) == '{' {
            // A group: the first segment of every top-level entry, nested groups skipped.
            let mut k = j + 1;
            let mut depth = 1usize;
            let mut entry_start = true;
            while k < s.len() && depth > 0 {
                let c = s[k];
                if entry_start && depth == 1 && is_ident_char(c) {
                    let (name, end) = ident(k);
                    if name != "self" {
                        out.push((line_of[k], name));
                    }
                    entry_start = false;
                    k = end;
                    continue;
                }
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    ',' if depth == 1 => entry_start = true,
                    _ => {}
                }
                k += 1;
            }
            i = k;
        } else if is_ident_char(at(j)) {
            let (name, end) = ident(j);
            out.push((line_of[j], name));
            i = end;
        } else {
            i = j;
        }
    }
    out
}

/// One import of another top-level module.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Import {
    file: String,
    line: usize,
    from: String,
    to: String,
}

/// Checks `files` (`(path, text)`, paths as `src/…`) against `layers` (top first).
/// Returns every problem found, as lines to print; empty when the tree follows the layers.
fn check(layers: &[Vec<String>], files: &[(String, String)]) -> Vec<String> {
    let mut problems = Vec::new();

    // Rank of each module: 0 for the last (lowest) layer.
    let mut rank: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, layer) in layers.iter().enumerate() {
        let r = layers.len() - 1 - i;
        for m in layer {
            if let Some(other) = rank.insert(m, r) {
                problems.push(format!(
                    "{ARCHITECTURE}: module {m} is listed twice in the layers block (layers {other} and {r})"
                ));
            }
        }
    }

    let files: Vec<&(String, String)> = files.iter().filter(|(p, _)| !outside_check(p)).collect();

    // First pass: the code of each file outside tests, and the test-only module files.
    let mut test_only_modules: BTreeSet<String> = BTreeSet::new();
    let mut code_of: BTreeMap<&str, (String, bool)> = BTreeMap::new();
    for (path, text) in &files {
        let (code, test_mods, whole_file) = non_test_code(&strip_comments_and_literals(text));
        for m in test_mods {
            // `mod m;` in `a/b.rs` or `a/b/mod.rs` lives in `a/b/m.rs` or `a/b/m/mod.rs`.
            test_only_modules.insert(format!("{}/{m}", module_path(path)));
        }
        code_of.insert(path.as_str(), (code, whole_file));
    }
    let is_test_file = |path: &str| {
        let mp = module_path(path);
        test_only_modules
            .iter()
            .any(|t| mp == *t || mp.starts_with(&format!("{t}/")))
    };

    // The top-level modules that exist, each with the first file that makes it exist.
    let mut modules: BTreeMap<String, &str> = BTreeMap::new();
    for (path, _) in &files {
        modules
            .entry(top_level_module(path))
            .or_insert(path.as_str());
    }
    for (m, path) in &modules {
        if !rank.contains_key(m.as_str()) {
            problems.push(format!(
                "{path}: module {m} is not in the layers block of {ARCHITECTURE}: place it in a layer"
            ));
        }
    }
    let known = |m: &str| modules.contains_key(m) || rank.contains_key(m);

    // Every import of another known top-level module.
    let mut imports: BTreeSet<Import> = BTreeSet::new();
    for (path, _) in &files {
        let (code, whole_file) = &code_of[path.as_str()];
        if *whole_file || is_test_file(path) {
            continue;
        }
        let from = top_level_module(path);
        for (line, to) in crate_references(code) {
            if to != from && known(&to) {
                imports.insert(Import {
                    file: path.to_string(),
                    line,
                    from: from.clone(),
                    to,
                });
            }
        }
    }

    for imp in &imports {
        if let (Some(&rf), Some(&rt)) = (rank.get(imp.from.as_str()), rank.get(imp.to.as_str())) {
            if rt > rf {
                problems.push(format!(
                    "{}:{}: module {} (layer {rf}) imports {} (layer {rt})",
                    imp.file, imp.line, imp.from, imp.to
                ));
            }
        }
    }

    // The import graph, with the first place each edge appears.
    let mut edges: BTreeMap<(String, String), &Import> = BTreeMap::new();
    for imp in &imports {
        edges
            .entry((imp.from.clone(), imp.to.clone()))
            .or_insert(imp);
    }
    for cycle in cycles(edges.keys()) {
        let sites: Vec<String> = cycle
            .windows(2)
            .map(|w| {
                let imp = edges[&(w[0].clone(), w[1].clone())];
                format!("{} -> {} at {}:{}", w[0], w[1], imp.file, imp.line)
            })
            .collect();
        problems.push(format!(
            "import cycle: {} ({})",
            cycle.join(" -> "),
            sites.join("; ")
        ));
    }
    problems
}

/// The shortest cycle through each module that lies on one, each cycle once, written
/// from its smallest module and back to it (`a -> b -> a` as `["a", "b", "a"]`).
fn cycles<'a>(edges: impl Iterator<Item = &'a (String, String)>) -> Vec<Vec<String>> {
    let mut next: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (a, b) in edges {
        next.entry(a).or_default().push(b);
    }
    let mut found: BTreeSet<Vec<String>> = BTreeSet::new();
    for &start in next.keys() {
        // Breadth-first from `start` until an edge leads back to it.
        let mut parent: BTreeMap<&str, &str> = BTreeMap::new();
        let mut queue = VecDeque::from([start]);
        let mut closing = None;
        'search: while let Some(m) = queue.pop_front() {
            for &n in next.get(m).map(Vec::as_slice).unwrap_or_default() {
                if n == start {
                    closing = Some(m);
                    break 'search;
                }
                if !parent.contains_key(n) {
                    parent.insert(n, m);
                    queue.push_back(n);
                }
            }
        }
        let Some(mut m) = closing else { continue };
        let mut path = vec![start];
        while m != start {
            path.push(m);
            m = parent[m];
        }
        path[1..].reverse();
        // Rotate to start at the smallest module, then close the cycle.
        let smallest = (0..path.len()).min_by_key(|&k| path[k]).unwrap_or(0);
        path.rotate_left(smallest);
        let mut cycle: Vec<String> = path.iter().map(|m| m.to_string()).collect();
        cycle.push(cycle[0].clone());
        found.insert(cycle);
    }
    found.into_iter().collect()
}

/// Every `.rs` file under `dir`, as (`src/…` path, text), sorted by path.
fn rust_files(root: &Path, dir: &Path, out: &mut Vec<(String, String)>) {
    let mut entries: Vec<_> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|e| e.unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display())))
        .map(|e| e.path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            rust_files(root, &path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let text = fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
            let rel = path.strip_prefix(root).unwrap_or(&path);
            out.push((rel.to_string_lossy().into_owned(), text));
        }
    }
}

#[test]
fn src_follows_the_documented_layers() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let doc = fs::read_to_string(root.join(ARCHITECTURE))
        .unwrap_or_else(|e| panic!("cannot read {ARCHITECTURE}: {e}"));
    let layers = parse_layers(&doc).unwrap_or_else(|e| panic!("{ARCHITECTURE}: {e}"));
    let mut files = Vec::new();
    rust_files(root, &root.join("src"), &mut files);
    let problems = check(&layers, &files);
    assert!(
        problems.is_empty(),
        "src/ does not follow the layers of {ARCHITECTURE} (layers numbered from the bottom, \
         0 = its last line; a module may import only its own layer or lower ones, with no \
         cycle), {} problem(s):\n{}",
        problems.len(),
        problems.join("\n")
    );
}

// ---------------------------------------------------------------------------------------
// The checker on synthetic sources.
// ---------------------------------------------------------------------------------------

fn layers(spec: &[&str]) -> Vec<Vec<String>> {
    spec.iter()
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .collect()
}

fn files(spec: &[(&str, &str)]) -> Vec<(String, String)> {
    spec.iter()
        .map(|(p, t)| (p.to_string(), t.to_string()))
        .collect()
}

/// cli / measure report / env analysis / plan / results / stats
fn sample_layers() -> Vec<Vec<String>> {
    layers(&[
        "cli",
        "measure report",
        "env analysis",
        "plan",
        "results",
        "stats",
    ])
}

#[test]
fn a_clean_tree_passes() {
    let tree = files(&[
        (
            "src/main.rs",
            "use isobench::cli;\nfn main() { crate::cli::run(); }\n",
        ),
        ("src/lib.rs", "pub mod cli;\npub mod stats;\n"),
        (
            "src/cli/mod.rs",
            "use crate::measure::run;\nuse crate::{report, stats};\n",
        ),
        (
            "src/measure.rs",
            "use crate::env::Environment;\nuse crate::report::x;\n",
        ),
        (
            "src/env/vm/vcpu.rs",
            "use crate::plan::VmOptions;\nuse crate::env::EnvError;\n",
        ),
        ("src/analysis.rs", "use crate::stats::paired;\n"),
        ("src/stats/paired.rs", "pub fn f() {}\n"),
    ]);
    assert_eq!(check(&sample_layers(), &tree), Vec::<String>::new());
}

#[test]
fn fails_on_an_upward_import() {
    let tree = files(&[
        ("src/stats/mod.rs", "pub mod paired;\n"),
        (
            "src/stats/paired.rs",
            "//! Pure statistics.\n\nuse std::fmt;\nuse crate::results::SampleRow;\n",
        ),
        ("src/results.rs", ""),
    ]);
    assert_eq!(
        check(&sample_layers(), &tree),
        vec!["src/stats/paired.rs:4: module stats (layer 0) imports results (layer 1)"]
    );
}

#[test]
fn fails_on_a_path_in_code_not_only_in_use() {
    let tree = files(&[(
        "src/plan.rs",
        "fn f() -> u32 {\n    let x = crate::cli::args::parse();\n    x\n}\n",
    )]);
    assert_eq!(
        check(&sample_layers(), &tree),
        vec!["src/plan.rs:2: module plan (layer 2) imports cli (layer 5)"]
    );
}

#[test]
fn fails_on_a_grouped_upward_import() {
    let tree = files(&[(
        "src/env/native.rs",
        "use crate::{\n    plan::Plan,\n    stats::{self, paired::{pair, Better}},\n    measure::{Protocol, Task},\n    self,\n};\n",
    )]);
    assert_eq!(
        check(&sample_layers(), &tree),
        vec!["src/env/native.rs:4: module env (layer 3) imports measure (layer 4)"]
    );
    // The group may sit on one line and follow `pub use`.
    let tree = files(&[(
        "src/results.rs",
        "pub use crate::{stats::x, analysis::{a, b}};\n",
    )]);
    assert_eq!(
        check(&sample_layers(), &tree),
        vec!["src/results.rs:1: module results (layer 1) imports analysis (layer 3)"]
    );
}

#[test]
fn fails_on_a_cycle_within_a_layer() {
    let tree = files(&[
        ("src/env/mod.rs", "use crate::analysis::Analysis;\n"),
        ("src/analysis.rs", "\n\nuse crate::env::EnvKind;\n"),
    ]);
    assert_eq!(
        check(&sample_layers(), &tree),
        vec![
            "import cycle: analysis -> env -> analysis (analysis -> env at src/analysis.rs:3; \
             env -> analysis at src/env/mod.rs:1)"
        ]
    );
}

#[test]
fn fails_on_a_module_missing_from_the_layers() {
    let tree = files(&[
        ("src/gizmo/mod.rs", "use crate::stats::paired;\n"),
        ("src/gizmo/part.rs", ""),
        ("src/cli/mod.rs", "use crate::gizmo;\n"),
    ]);
    assert_eq!(
        check(&sample_layers(), &tree),
        vec![
            "src/gizmo/mod.rs: module gizmo is not in the layers block of docs/ARCHITECTURE.md: \
             place it in a layer"
        ]
    );
}

#[test]
fn fails_on_a_module_listed_twice() {
    let problems = check(&layers(&["cli", "plan cli", "stats"]), &[]);
    assert_eq!(
        problems,
        vec![
            "docs/ARCHITECTURE.md: module cli is listed twice in the layers block (layers 2 and 1)"
        ]
    );
}

#[test]
fn passes_when_the_import_is_test_only_or_not_code() {
    let tree = files(&[
        (
            "src/stats/paired.rs",
            r##"//! Uses `crate::cli` only in docs: crate::cli::run().
/// See [`crate::report::render`].
/* crate::measure in a block comment /* nested crate::cli */ still a comment */
fn f() -> &'static str {
    let _c = '{';
    let _q = '"';
    let _s = "crate::cli and an unbalanced { brace";
    let _r = r#"crate::measure "quoted" {"#;
    let _b = b"crate::report";
    "crate::env"
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::args;
    fn g() {
        let _ = crate::measure::run();
        if true { let _ = '}'; }
    }
}

#[cfg(test)]
#[allow(dead_code)]
fn helper() { crate::report::x(); }

#[cfg(all(test, feature = "slow"))]
use crate::env::fake;

#[cfg(test)]
mod more;
"##,
        ),
        ("src/stats/paired/more.rs", "use crate::cli::args;\n"),
        (
            "src/stats/harness.rs",
            "#![cfg(test)]\nuse crate::cli::args;\n",
        ),
    ]);
    assert_eq!(check(&sample_layers(), &tree), Vec::<String>::new());
}

#[test]
fn code_after_a_test_module_is_checked_again() {
    let tree = files(&[(
        "src/stats/outliers.rs",
        "#[cfg(test)]\nmod tests {\n    fn f() { if x { y() } }\n}\n\nuse crate::measure::Task;\n",
    )]);
    assert_eq!(
        check(&sample_layers(), &tree),
        vec!["src/stats/outliers.rs:6: module stats (layer 0) imports measure (layer 4)"]
    );
}

#[test]
fn every_offending_import_is_listed_and_cycles_are_printed() {
    let tree = files(&[
        ("src/stats/a.rs", "use crate::results::R;\n"),
        (
            "src/stats/b.rs",
            "use crate::results::S;\nuse crate::plan::P;\n",
        ),
        ("src/results.rs", "use crate::stats::x;\n"),
        ("src/plan.rs", "use crate::stats::y;\n"),
    ]);
    assert_eq!(
        check(&sample_layers(), &tree),
        vec![
            "src/stats/a.rs:1: module stats (layer 0) imports results (layer 1)",
            "src/stats/b.rs:1: module stats (layer 0) imports results (layer 1)",
            "src/stats/b.rs:2: module stats (layer 0) imports plan (layer 2)",
            "import cycle: plan -> stats -> plan (plan -> stats at src/plan.rs:1; \
             stats -> plan at src/stats/b.rs:2)",
            "import cycle: results -> stats -> results (results -> stats at src/results.rs:1; \
             stats -> results at src/stats/a.rs:1)",
        ]
    );
}

#[test]
fn reads_the_layers_block() {
    let md = "# Title\n\n```rust\nlet a = 1;\n```\n\n```layers\ncli\nenv  analysis\n\nstats\n```\n";
    assert_eq!(
        parse_layers(md),
        Ok(layers(&["cli", "env analysis", "stats"]))
    );
    assert!(parse_layers("```text\ncli\n```\n").is_err());
    assert!(parse_layers("```layers\n```\n").is_err());
    assert!(parse_layers("```layers\na\n```\n```layers\nb\n```\n").is_err());
}

#[test]
fn modules_of_paths() {
    assert_eq!(top_level_module("src/env/vm/x.rs"), "env");
    assert_eq!(top_level_module("src/plan.rs"), "plan");
    assert_eq!(module_path("src/env/container/mod.rs"), "env/container");
    assert_eq!(
        module_path("src/env/container/tests.rs"),
        "env/container/tests"
    );
    assert!(outside_check("src/main.rs") && outside_check("src/lib.rs"));
    assert!(!outside_check("src/cli/main.rs"));
}
