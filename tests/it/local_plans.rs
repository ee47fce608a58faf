//! Plan files of the local backend: parsing, its errors with file:line, and the
//! folder-level checks of `load_plans` (issue 6).

use std::fs;
use std::path::{Path, PathBuf};

use forgehand::forge::local::{Plan, PlanError, load_plans, parse_plan};

fn parse(name: &str, text: &str) -> Result<Plan, PlanError> {
    parse_plan(Path::new("plans").join(name).as_path(), text)
}

/// The error's `file:line: message`, checked for its place and a fragment of its message.
fn assert_error(result: Result<Plan, PlanError>, file: &str, line: usize, fragment: &str) {
    let error = result.expect_err("expected a plan error");
    let shown = error.to_string();
    assert!(
        shown.starts_with(&format!("{file}:{line}: ")),
        "wrong place in `{shown}`, expected {file}:{line}"
    );
    assert!(shown.contains(fragment), "`{shown}` lacks `{fragment}`");
}

#[test]
fn a_plain_plan_is_key_title_and_body() {
    let plan = parse(
        "add-login.md",
        "# Add a login page\n\nUsers sign in.\n\n## Details\n- a form\n\n",
    )
    .unwrap();
    assert_eq!(plan.key, "add-login");
    assert_eq!(plan.title, "Add a login page");
    assert_eq!(plan.body, "Users sign in.\n\n## Details\n- a form");
    assert!(plan.labels.is_empty());
    assert!(plan.depends_on.is_empty());
    assert_eq!(plan.path, PathBuf::from("plans/add-login.md"));
}

#[test]
fn front_matter_with_inline_lists() {
    let plan = parse(
        "p1.md",
        "---\nlabels: [priority, \"bug\"]\ndepends_on: [setup, 'db_v2']\n---\n# Fix it\nbody\n",
    )
    .unwrap();
    assert_eq!(plan.labels, ["priority", "bug"]);
    assert_eq!(plan.depends_on, ["setup", "db_v2"]);
    assert_eq!(plan.title, "Fix it");
    assert_eq!(plan.body, "body");
}

#[test]
fn front_matter_with_block_lists_comments_and_empty_lists() {
    let text = "---\n# why this plan waits\nlabels:\n  - bug\n  - priority\n\ndepends_on:\n- a_1\n- B-2\n---\n\n# T\n";
    let plan = parse("p.md", text).unwrap();
    assert_eq!(plan.labels, ["bug", "priority"]);
    assert_eq!(plan.depends_on, ["a_1", "B-2"]);
    assert_eq!(plan.body, "");

    let plan = parse("p.md", "---\nlabels: []\ndepends_on:\n---\n# T\n").unwrap();
    assert!(plan.labels.is_empty() && plan.depends_on.is_empty());
}

#[test]
fn any_heading_level_is_the_title_and_closing_hashes_are_dropped() {
    for (text, title) in [
        ("# One", "One"),
        ("###### Six ######", "Six"),
        ("  ### Indented", "Indented"),
        ("## C# rocks", "C# rocks"),
        ("#\tTab", "Tab"),
    ] {
        let plan = parse("h.md", &format!("\n\n{text}\nbody")).unwrap();
        assert_eq!(plan.title, title, "for `{text}`");
        assert_eq!(plan.body, "body");
    }
}

#[test]
fn body_keeps_its_first_line_indentation_and_later_headings() {
    let plan = parse("b.md", "# T\n\n    code\n# Not a title\n").unwrap();
    assert_eq!(plan.body, "    code\n# Not a title");
}

#[test]
fn crlf_and_a_byte_order_mark_parse_like_plain_lf() {
    let text = "\u{feff}---\r\nlabels: [bug]\r\n---\r\n# Title\r\nline one\r\nline two\r\n";
    let plan = parse("w.md", text).unwrap();
    assert_eq!(plan.labels, ["bug"]);
    assert_eq!(plan.title, "Title");
    assert_eq!(plan.body, "line one\nline two");
}

#[test]
fn heading_errors_name_file_and_line() {
    assert_error(parse("a.md", ""), "plans/a.md", 1, "no title heading");
    assert_error(
        parse("a.md", "\njust text\nmore\n"),
        "plans/a.md",
        2,
        "no title heading",
    );
    assert_error(
        parse("a.md", "\nintro\n# Title\n"),
        "plans/a.md",
        2,
        "text before the title heading",
    );
    // `#tag` is not a heading, and seven hashes are not either.
    assert_error(parse("a.md", "#tag\n"), "plans/a.md", 1, "no title heading");
    assert_error(
        parse("a.md", "####### x\n"),
        "plans/a.md",
        1,
        "no title heading",
    );
    assert_error(parse("a.md", "\n\n#  \n"), "plans/a.md", 3, "empty");
    assert_error(
        parse("a.md", "---\nlabels: [x]\n---\n\nplain\n"),
        "plans/a.md",
        5,
        "no title heading",
    );
}

#[test]
fn front_matter_errors_name_file_and_line() {
    let cases = [
        ("---\nlabels: [a]\n# T\n", 1, "never closed"),
        ("---\nlabels: [a]\nowner: bob\n---\n# T\n", 3, "`owner`"),
        ("---\nlabels: bug\n---\n# T\n", 2, "expected a list"),
        ("---\nlabels: [a,, b]\n---\n# T\n", 2, "empty list item"),
        ("---\nlabels: [a, [b]]\n---\n# T\n", 2, "labels:"),
        ("---\nlabels: [a]\nlabels: [b]\n---\n# T\n", 3, "twice"),
        ("---\n- bug\n---\n# T\n", 2, "not under a key"),
        ("---\nlabels:\n  -bug\n---\n# T\n", 3, "expected `- item`"),
        ("---\njust words\n---\n# T\n", 2, "expected `key: value`"),
        ("---\nlabels: [a]\n  stray\n---\n# T\n", 3, "indented"),
        ("---\ndepends_on: [a/b]\n---\n# T\n", 2, "depends_on"),
    ];
    for (text, line, fragment) in cases {
        assert_error(parse("fm.md", text), "plans/fm.md", line, fragment);
    }
}

#[test]
fn keys_are_restricted_and_a_plan_cannot_depend_on_itself() {
    assert_error(
        parse("bad key.md", "# T\n"),
        "plans/bad key.md",
        1,
        "may only contain",
    );
    assert_error(parse("notes.txt", "# T\n"), "plans/notes.txt", 1, ".md");
    // What tmux or git would rewrite or refuse, or read as an option.
    for (name, fragment) in [
        ("v1.2.md", "may only contain"),
        ("a:b.md", "may only contain"),
        ("-rf.md", "must not start with `-`"),
        ("ünï.md", "may only contain"),
    ] {
        assert_error(parse(name, "# T\n"), &format!("plans/{name}"), 1, fragment);
    }
    let long = "k".repeat(65);
    assert_error(
        parse(&format!("{long}.md"), "# T\n"),
        &format!("plans/{long}.md"),
        1,
        "longer than 64",
    );
    assert!(parse(&format!("{}.md", "k".repeat(64)), "# T\n").is_ok());
    assert!(parse("Fix_it-2.md", "# T\n").is_ok());
    assert_error(
        parse("me.md", "---\ndepends_on:\n  - other\n  - me\n---\n# T\n"),
        "plans/me.md",
        4,
        "depends on itself",
    );
}

fn write(dir: &Path, name: &str, text: &str) {
    let path = dir.join(name);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
}

fn keys(results: &[Result<Plan, PlanError>]) -> Vec<String> {
    results
        .iter()
        .map(|r| match r {
            Ok(plan) => plan.key.clone(),
            Err(e) => format!("error {}", e.path.file_name().unwrap().to_string_lossy()),
        })
        .collect()
}

#[test]
fn load_plans_reads_only_open_plan_files_sorted_by_key() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "b.md", "# B\n");
    write(d, "a.md", "---\ndepends_on: [finished]\n---\n# A\n");
    write(d, "c.md", "no heading\n");
    write(d, "a.report.md", "# report\n");
    write(d, ".hidden.md", "# hidden\n");
    write(d, "notes.txt", "# not a plan\n");
    write(d, "done/finished.md", "# merged earlier\n");
    write(d, "done/finished.report.md", "# report\n");
    write(d, "blocked/stuck.md", "# stuck\n");
    fs::create_dir(d.join("folder.md")).unwrap();

    let results = load_plans(d).unwrap();
    assert_eq!(keys(&results), ["a", "b", "error c.md"]);
    // A dependency on a plan already in `done/` is not missing.
    assert_eq!(results[0].as_ref().unwrap().depends_on, ["finished"]);
    let error = results[2].as_ref().unwrap_err();
    assert_eq!(error.path, d.join("c.md"));
    assert_eq!(error.line, 1);
}

#[test]
fn load_plans_reports_invalid_utf8_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("x.md"), b"# T\nok\n\xff\n").unwrap();
    let results = load_plans(dir.path()).unwrap();
    let error = results[0].as_ref().unwrap_err();
    assert_eq!(
        (error.line, error.message.as_str()),
        (3, "the plan is not valid UTF-8")
    );
}

#[test]
fn load_plans_fails_for_a_missing_folder() {
    let dir = tempfile::tempdir().unwrap();
    assert!(load_plans(&dir.path().join("nope")).is_err());
}

#[test]
fn a_missing_dependency_is_an_error_on_the_plan_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "a.md", "---\ndepends_on:\n  - b\n  - ghost\n---\n# A\n");
    write(d, "b.md", "# B\n");
    // A plan that fails to parse still exists: depending on it is not "missing".
    write(d, "c.md", "---\ndepends_on: [broken]\n---\n# C\n");
    write(d, "broken.md", "no heading\n");
    let results = load_plans(d).unwrap();
    assert_eq!(keys(&results), ["error a.md", "b", "error broken.md", "c"]);
    let error = results[0].as_ref().unwrap_err();
    assert_eq!(error.line, 4);
    assert!(error.message.contains("no plan `ghost`"), "{error}");
}

#[test]
fn a_self_dependency_is_an_error_in_the_folder_too() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "me.md", "---\ndepends_on: [me]\n---\n# Me\n");
    let results = load_plans(dir.path()).unwrap();
    let error = results[0].as_ref().unwrap_err();
    assert_eq!(error.line, 2);
    assert!(error.message.contains("depends on itself"), "{error}");
}

#[test]
fn a_two_cycle_is_an_error_on_both_plans_and_bystanders_stay_valid() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "a.md", "---\nlabels: [bug]\ndepends_on: [b]\n---\n# A\n");
    write(d, "b.md", "---\ndepends_on:\n  - x\n  - a\n---\n# B\n");
    write(d, "x.md", "# X\n");
    write(d, "y.md", "---\ndepends_on: [a]\n---\n# Y\n");
    let results = load_plans(d).unwrap();
    assert_eq!(keys(&results), ["error a.md", "error b.md", "x", "y"]);
    let a = results[0].as_ref().unwrap_err();
    assert_eq!(a.line, 3);
    assert_eq!(a.message, "dependency cycle: a -> b -> a");
    let b = results[1].as_ref().unwrap_err();
    assert_eq!(b.line, 4);
    assert_eq!(b.message, "dependency cycle: b -> a -> b");
}

#[test]
fn a_longer_cycle_names_every_step() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "a.md", "---\ndepends_on: [b]\n---\n# A\n");
    write(d, "b.md", "---\ndepends_on: [c]\n---\n# B\n");
    write(d, "c.md", "---\ndepends_on: [a]\n---\n# C\n");
    let results = load_plans(d).unwrap();
    let c = results[2].as_ref().unwrap_err();
    assert_eq!(
        c.to_string(),
        format!(
            "{}:2: dependency cycle: c -> a -> b -> c",
            d.join("c.md").display()
        )
    );
}
