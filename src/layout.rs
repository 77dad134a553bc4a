//! Checks the Layout section of `lib.rs` against the sources: every top-level module has a
//! floor, and no file imports (`crate::x`) a module on its own floor or above. Rank order
//! makes a cycle impossible, so this is also the cycle check.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// `(module, floor)` from lines like ``//! - `server` (11): …``.
fn floors() -> BTreeMap<String, u32> {
    let lib = std::fs::read_to_string(src().join("lib.rs")).expect("reading lib.rs");
    let mut out = BTreeMap::new();
    for line in lib.lines() {
        let Some(rest) = line.strip_prefix("//! - `") else {
            continue;
        };
        let Some((name, rest)) = rest.split_once("` (") else {
            continue;
        };
        let Some((n, _)) = rest.split_once("):") else {
            continue;
        };
        out.insert(name.to_string(), n.parse().expect("floor number"));
    }
    out
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).expect("reading src").flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// Top-level modules a source text names as `crate::x` or inside `crate::{x, y::z}`;
/// comment lines are skipped.
fn imports(text: &str) -> Vec<String> {
    let code: String = text
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    let mut out = Vec::new();
    let mut rest = code.as_str();
    while let Some(i) = rest.find("crate::") {
        let before = rest[..i].chars().last();
        rest = &rest[i + "crate::".len()..];
        if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$') {
            continue;
        }
        if let Some(group) = rest.strip_prefix('{') {
            // Items at depth 0 of the group: their first path segment.
            let mut depth = 0;
            let mut start = true;
            for (j, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => start = true,
                    c if start && !c.is_whitespace() => {
                        start = false;
                        out.push(ident(&group[j..]));
                    }
                    _ => {}
                }
            }
        } else {
            out.push(ident(rest));
        }
    }
    out
}

#[test]
fn no_module_imports_its_own_floor_or_above() {
    let floors = floors();
    assert!(floors.len() >= 10, "Layout section not found in lib.rs");
    let lib = std::fs::read_to_string(src().join("lib.rs")).expect("reading lib.rs");
    for m in lib.lines().filter_map(|l| l.strip_prefix("pub mod ")) {
        let m = m.trim_end_matches(';');
        assert!(
            floors.contains_key(m),
            "module {m} has no floor in the Layout section"
        );
    }
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let mut bad = Vec::new();
    for f in files {
        let rel = f.strip_prefix(src()).expect("under src");
        let first = rel.components().next().expect("a component");
        let module = first
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_string();
        let Some(&mine) = floors.get(&module) else {
            continue; // lib.rs, layout.rs, the binaries
        };
        let text = std::fs::read_to_string(&f).expect("reading a source file");
        for dep in imports(&text) {
            if dep == module || dep.is_empty() {
                continue;
            }
            match floors.get(&dep) {
                Some(&theirs) if theirs < mine => {}
                Some(&theirs) => bad.push(format!(
                    "{} (floor {mine}) imports crate::{dep} (floor {theirs})",
                    rel.display()
                )),
                None => bad.push(format!("{} imports unknown crate::{dep}", rel.display())),
            }
        }
    }
    assert!(bad.is_empty(), "layout violations:\n{}", bad.join("\n"));
}

#[test]
fn the_import_parser_sees_groups_and_skips_comments() {
    let text = "use crate::{a::X, b};\n// crate::c\nlet x = crate::d::f();\nuse crate::{\n    e::{F, G},\n    g,\n};";
    assert_eq!(imports(text), vec!["a", "b", "d", "e", "g"]);
}

#[test]
fn rocksdb_and_protobuf_stay_in_their_modules() {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    for f in files {
        let rel = f.strip_prefix(src()).expect("under src").to_path_buf();
        let text = std::fs::read_to_string(&f).expect("reading a source file");
        let code: String = text
            .lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n");
        let top = rel.components().next().expect("a component");
        let top = top.as_os_str().to_string_lossy();
        if top != "storage" && !rel.ends_with("layout.rs") {
            assert!(!code.contains("rocksdb"), "{} names rocksdb", rel.display());
        }
        if top != "rpc" && !rel.ends_with("layout.rs") {
            for generated in ["include_proto", "_pb::", "tonic::", "prost::"] {
                assert!(
                    !code.contains(generated),
                    "{} names {generated} outside rpc",
                    rel.display()
                );
            }
        }
    }
}
