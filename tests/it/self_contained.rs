//! The repository is all a clone needs: nothing under `src/`, `tests/`, `scripts/` or
//! `.ci/` names a path outside it (like the folder beside the checkout the API
//! descriptions were once read from, which a plain clone does not have).

use std::path::{Component, Path, PathBuf};

use regex::Regex;

const SCANNED: &[&str] = &["src", "tests", "scripts", ".ci"];

/// Every place in `text` (a file at `file`, relative to the repository root) that
/// refers to a path outside the repository, as `line: reference`.
fn outside_references(file: &Path, text: &str) -> Vec<String> {
    // Relative paths that climb out of a folder, and joins of a parent folder.
    // Only where a path starts: `/a/../b` stays inside `/a`'s parent.
    let climbing = Regex::new(
        r#"(?:^|[^A-Za-z0-9_./-])((?:\.\./)+[A-Za-z0-9_.\-/]*)|join\(\s*"\.\.(?:/[^"]*)?"\s*\)"#,
    )
    .expect("pattern");
    // Absolute paths of the machine the project was first built on (whole
    // names: `/workflow_run` in a JSON pointer is none).
    let workplace =
        Regex::new(r#"(?:^|[\s"'`(=:])/(?:work|shared)\b(?:/[A-Za-z0-9_.\-]*)*"#).expect("pattern");
    let dir = file.parent().unwrap_or(Path::new(""));
    let mut found = Vec::new();
    for (n, line) in text.lines().enumerate() {
        for c in climbing.captures_iter(line) {
            let m = c
                .get(1)
                .unwrap_or_else(|| c.get(0).expect("the whole match"));
            let reference = m
                .as_str()
                .trim_start_matches("join(")
                .trim_end_matches(')')
                .trim()
                .trim_matches('"');
            // `include_str!` and friends resolve against the file, everything else
            // (`Path::join`, a script's arguments) against where it runs: the root.
            let base = if line.contains("include_") {
                dir
            } else {
                Path::new("")
            };
            if escapes(&base.join(reference)) {
                found.push(format!("{}: {}", n + 1, m.as_str()));
            }
        }
        for m in workplace.find_iter(line) {
            found.push(format!("{}: {}", n + 1, m.as_str().trim()));
        }
    }
    found
}

/// Whether a path relative to the repository root leaves it.
fn escapes(path: &Path) -> bool {
    let mut depth = 0i32;
    for part in path.components() {
        match part {
            Component::ParentDir => depth -= 1,
            Component::Normal(_) => depth += 1,
            Component::CurDir => {}
            Component::RootDir | Component::Prefix(_) => return true,
        }
        if depth < 0 {
            return true;
        }
    }
    false
}

fn files_under(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(root.join(dir)) else {
        return;
    };
    for entry in entries.flatten() {
        let rel = dir.join(entry.file_name());
        match entry.file_type() {
            Ok(t) if t.is_dir() => files_under(root, &rel, out),
            Ok(t) if t.is_file() => out.push(rel),
            _ => {}
        }
    }
}

#[test]
fn nothing_refers_to_a_path_outside_the_repository() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for dir in SCANNED {
        files_under(root, Path::new(dir), &mut files);
    }
    assert!(
        files.iter().any(|f| f.ends_with("self_contained.rs")),
        "the scan must see the test files themselves"
    );
    let mut problems = Vec::new();
    for file in &files {
        let Ok(text) = std::fs::read_to_string(root.join(file)) else {
            continue; // not text
        };
        for reference in outside_references(file, &text) {
            problems.push(format!("{}:{reference}", file.display()));
        }
    }
    assert!(
        problems.is_empty(),
        "paths outside the repository:\n{}",
        problems.join("\n")
    );
}

#[test]
fn the_scan_recognises_what_a_clone_would_not_have() {
    let test = Path::new("tests/it/swagger.rs");
    // Spelt in pieces, so this file does not hold what it looks for.
    let (up, work) = ("..", "work");
    let bad = [
        format!(r#".join("{up}/shared/api")"#),
        format!(r#"include_str!("{up}/{up}/{up}/{up}/elsewhere/file")"#),
        format!(r#"let p = root.join("{up}");"#),
        format!("cat /{work}/shared/api/x.json"),
        format!(r#"path = "/{}/api""#, "shared"),
    ];
    for line in &bad {
        assert_eq!(
            outside_references(test, line).len(),
            1,
            "not flagged: {line}"
        );
    }
    let fine = [
        r#"include_str!("../../scripts/fake-agent")"#,
        r#".join("tests/api")"#,
        r#"if part == ".." { refuse }"#,
        r#"the home of /home/someone/elsewhere"#,
        r#"https://example.org/work/items"#,
        r#"sandbox_rw = ["/a/../b"]"#,
    ];
    for line in fine {
        assert_eq!(
            outside_references(Path::new("src/demo/assets.rs"), line),
            Vec::<String>::new(),
            "flagged: {line}"
        );
    }
}
