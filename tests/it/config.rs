//! Project files (DESIGN §4): real files in temp dirs through `load_file_with`,
//! `load_dir_with` and `check_dir_with`; every error is checked for its
//! `file:line:col: field:` prefix.

use std::path::{Path, PathBuf};
use std::time::Duration;

use forgehand::config::{
    ConfigError, ForgeConfig, ForgeKind, GithubAuth, check_dir_with, load_dir_with, load_file_with,
};
use forgehand::forge::MergeMethod;
use tempfile::TempDir;

mod budget;
mod errors;
mod github;

/// An environment with only the variables given.
fn env(vars: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
    move |name| {
        vars.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_string())
    }
}

const TOKEN: &[(&str, &str)] = &[("FORGE_TOKEN", "forge-secret")];

/// Writes `src` as `<dir>/<file>`.
fn write(dir: &Path, file: &str, src: &str) -> PathBuf {
    let path = dir.join(file);
    std::fs::write(&path, src).expect("writing a project file");
    path
}

/// Loads `src` from a temp file expecting it to fail; returns the path and errors.
fn errors_of(
    src: &str,
    vars: &'static [(&'static str, &'static str)],
) -> (TempDir, PathBuf, Vec<ConfigError>) {
    let dir = TempDir::new().expect("temp dir");
    let path = write(dir.path(), "proj.toml", src);
    let errors = match load_file_with(&path, &env(vars)) {
        Ok(p) => panic!("expected errors, loaded {p:?}"),
        Err(errors) => errors,
    };
    (dir, path, errors)
}

/// Asserts one error reads `<file>:<line>:<col>: <field>: …<needle>…`.
fn assert_error(
    errors: &[ConfigError],
    file: &Path,
    line: usize,
    col: usize,
    field: &str,
    needle: &str,
) {
    let prefix = format!("{}:{line}:{col}: {field}: ", file.display());
    let shown: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert!(
        shown
            .iter()
            .any(|e| e.starts_with(&prefix) && e.contains(needle)),
        "no error starting {prefix:?} containing {needle:?} in:\n{}",
        shown.join("\n")
    );
}

const MINIMAL: &str = r#"name = "proj"
repo = "owner/proj"

[forge]
kind = "forgejo"
url = "https://forge.example/"
token_env = "FORGE_TOKEN"

[agent]
command = "claude"
"#;

#[test]
fn minimal_file_gets_defaults_and_derived_clone_url() {
    let dir = TempDir::new().unwrap();
    let path = write(dir.path(), "proj.toml", MINIMAL);
    let p = load_file_with(&path, &env(TOKEN)).expect("minimal file is valid");
    assert_eq!(p.name, "proj");
    assert_eq!(p.repo, "owner/proj");
    assert_eq!(p.primary_branch, "main");
    assert_eq!(p.clone_url, "https://forge.example/owner/proj.git");
    assert_eq!(p.poll_interval, Duration::from_secs(60));
    assert_eq!(p.forge.kind(), ForgeKind::Forgejo);
    assert_eq!(p.forge.token_env(), Some("FORGE_TOKEN"));
    assert_eq!(p.labels.backlog, "backlog");
    assert_eq!(p.labels.priority, "priority");
    assert_eq!(p.labels.in_progress, "in-progress");
    assert_eq!(p.labels.blocked, "blocked");
    assert_eq!(p.labels.underspecified, "underspecified");
    assert_eq!(p.agent.command, "claude");
    assert_eq!(p.agent.ready_pattern, "❯");
    assert_eq!(p.agent.max_sessions, 1);
    assert_eq!(p.agent.idle_timeout, Duration::from_secs(2 * 3600));
    assert_eq!(p.agent.escalation_timeout, Duration::from_secs(24 * 3600));
    assert!(p.agent.pass_env.is_empty());
    assert!(p.ci.required);
    assert_eq!(p.ci.max_fix_attempts, 3);
    assert_eq!(p.ci.timeout, Duration::from_secs(30 * 60));
    assert!(p.ci.woodpecker.is_none());
    assert_eq!(p.review.required_approvals, 1);
    assert_eq!(p.review.max_rounds, 5);
    assert_eq!(p.review.timeout, Duration::from_secs(3 * 3600));
    assert_eq!(p.merge.method, MergeMethod::Merge);
    assert!(p.merge.delete_branch);
    assert!(p.matrix.is_none());
    assert!(p.mirrors.is_empty());
    assert_eq!(p.source, path);
    assert_eq!(p.secrets.forge_token.as_deref(), Some("forge-secret"));
    assert_eq!(p.secrets.values(), vec!["forge-secret".to_string()]);
}

const FULL: &str = r#"name = "full-1"
repo = "org/full"
primary_branch = "trunk"
clone_url = "ssh://git@forge.example/org/full.git"
poll_interval = "1m30s"

[forge]
kind = "gitea"
url = "http://gitea.local:3000"
token_env = "GITEA_TOKEN"

[labels]
backlog = "todo"
priority = "urgent"
in_progress = "doing"
blocked = "stuck"
underspecified = "vague"

[agent]
command = "codex --full-auto"
ready_pattern = ">"
max_sessions = 3
idle_timeout = "45m"
escalation_timeout = "1d"
pass_env = ["ANTHROPIC_API_KEY", "OPENAI_API_KEY"]

[ci]
required = false
max_fix_attempts = 0
timeout = "500ms"
woodpecker_url = "https://ci.example"
woodpecker_repo_id = 7
woodpecker_token_env = "WOODPECKER_TOKEN"

[review]
required_approvals = 2
max_rounds = 9
timeout = "2h"

[merge]
method = "squash"
delete_branch = false

[matrix]
homeserver = "https://matrix.example"
room_id = "!room:example"
user_id = "@forgehand:example"
token_env = "MATRIX_TOKEN"
mention_user = "@alice:example"

[mirrors]
github = "git@github.com:org/full.git"
codeberg = "https://codeberg.org/org/full.git"
"#;

const FULL_ENV: &[(&str, &str)] = &[
    ("GITEA_TOKEN", "g-secret"),
    ("WOODPECKER_TOKEN", "w-secret"),
    ("MATRIX_TOKEN", "m-secret"),
];

#[test]
fn full_file_keeps_every_value() {
    let dir = TempDir::new().unwrap();
    let path = write(dir.path(), "full.toml", FULL);
    let p = load_file_with(&path, &env(FULL_ENV)).expect("full file is valid");
    assert_eq!(p.name, "full-1");
    assert_eq!(p.primary_branch, "trunk");
    assert_eq!(p.clone_url, "ssh://git@forge.example/org/full.git");
    assert_eq!(p.poll_interval, Duration::from_secs(90));
    assert_eq!(p.forge.kind(), ForgeKind::Gitea);
    let ForgeConfig::Gitea(gitea) = &p.forge else {
        panic!("a Gitea forge: {:?}", p.forge)
    };
    assert_eq!(gitea.url, "http://gitea.local:3000");
    assert_eq!(p.labels.backlog, "todo");
    assert_eq!(p.labels.in_progress, "doing");
    assert_eq!(p.labels.underspecified, "vague");
    assert_eq!(p.agent.command, "codex --full-auto");
    assert_eq!(p.agent.ready_pattern, ">");
    assert_eq!(p.agent.max_sessions, 3);
    assert_eq!(p.agent.idle_timeout, Duration::from_secs(45 * 60));
    assert_eq!(p.agent.escalation_timeout, Duration::from_secs(86_400));
    assert_eq!(p.agent.pass_env, ["ANTHROPIC_API_KEY", "OPENAI_API_KEY"]);
    assert!(!p.ci.required);
    assert_eq!(p.ci.max_fix_attempts, 0);
    assert_eq!(p.ci.timeout, Duration::from_millis(500));
    let wp = p.ci.woodpecker.as_ref().expect("woodpecker configured");
    assert_eq!(
        (wp.url.as_str(), wp.repo_id, wp.token_env.as_str()),
        ("https://ci.example", 7, "WOODPECKER_TOKEN")
    );
    assert_eq!(p.review.required_approvals, 2);
    assert_eq!(p.review.max_rounds, 9);
    assert_eq!(p.review.timeout, Duration::from_secs(7200));
    assert_eq!(p.merge.method, MergeMethod::Squash);
    assert!(!p.merge.delete_branch);
    let m = p.matrix.as_ref().expect("matrix configured");
    assert_eq!(m.homeserver, "https://matrix.example");
    assert_eq!(m.room_id, "!room:example");
    assert_eq!(m.user_id, "@forgehand:example");
    assert_eq!(m.token_env, "MATRIX_TOKEN");
    assert_eq!(m.mention_user.as_deref(), Some("@alice:example"));
    assert_eq!(p.mirrors.len(), 2);
    assert_eq!(p.mirrors["github"], "git@github.com:org/full.git");
    assert_eq!(p.secrets.forge_token.as_deref(), Some("g-secret"));
    assert_eq!(p.secrets.woodpecker_token.as_deref(), Some("w-secret"));
    assert_eq!(p.secrets.matrix_token.as_deref(), Some("m-secret"));
    assert!(
        !format!("{:?}", p.secrets).contains("secret"),
        "Debug must not print secrets"
    );
}

#[test]
fn local_forge_needs_no_token() {
    let src = "name = \"solo\"\nrepo = \"me/solo\"\n[forge]\nkind = \"local\"\nurl = \"plans\"\n[agent]\ncommand = \"demo\"\n";
    let dir = TempDir::new().unwrap();
    let path = write(dir.path(), "solo.toml", src);
    let p = load_file_with(&path, &env(&[])).expect("local forge without token is valid");
    assert_eq!(p.forge.kind(), ForgeKind::Local);
    assert_eq!(p.forge.token_env(), None);
    assert_eq!(p.clone_url, "plans/me/solo.git");
}

/// GitHub parses into its own shape, here with a token.
#[test]
fn github_forge_has_its_own_shape() {
    let src = MINIMAL
        .replace("\"forgejo\"", "\"github\"")
        .replace("https://forge.example/", "https://api.github.com");
    let dir = TempDir::new().unwrap();
    let path = write(dir.path(), "gh.toml", &src);
    let p = load_file_with(&path, &env(TOKEN)).expect("a GitHub project parses");
    assert_eq!(p.forge.kind(), ForgeKind::Github);
    let ForgeConfig::Github(github) = &p.forge else {
        panic!("a GitHub forge: {:?}", p.forge)
    };
    assert_eq!(github.url, "https://api.github.com");
    let GithubAuth::Token { token_env } = &github.auth else {
        panic!("a token: {:?}", github.auth)
    };
    assert_eq!(token_env, "FORGE_TOKEN");
    assert_eq!(p.forge.token_env(), Some("FORGE_TOKEN"));
    assert_eq!(p.secrets.forge_token.as_deref(), Some("forge-secret"));
}

#[test]
fn duplicate_names_across_files() {
    let dir = TempDir::new().unwrap();
    let first = write(dir.path(), "a.toml", MINIMAL);
    let second = write(dir.path(), "b.toml", &format!("\n{MINIMAL}"));
    let errors = load_dir_with(dir.path(), &env(TOKEN)).expect_err("duplicate names");
    assert_eq!(errors.len(), 1, "{errors:?}");
    let expected = format!("is already used by {}", first.display());
    assert_error(&errors, &second, 2, 8, "name", &expected);
}

#[test]
fn load_dir_reads_toml_files_in_name_order() {
    let dir = TempDir::new().unwrap();
    write(
        dir.path(),
        "b.toml",
        &MINIMAL.replace("\"proj\"", "\"bee\""),
    );
    write(
        dir.path(),
        "a.toml",
        &MINIMAL.replace("\"proj\"", "\"ant\""),
    );
    write(dir.path(), "notes.txt", "not a project");
    write(dir.path(), ".#a.toml", "editor lock file");
    let projects = load_dir_with(dir.path(), &env(TOKEN)).expect("valid dir");
    let names: Vec<&str> = projects.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["ant", "bee"]);
}

#[test]
fn empty_or_missing_dir_is_an_error() {
    let dir = TempDir::new().unwrap();
    write(dir.path(), "readme.md", "no projects here");
    let errors = load_dir_with(dir.path(), &env(TOKEN)).expect_err("no *.toml");
    assert_eq!(errors.len(), 1);
    assert_error(
        &errors,
        dir.path(),
        0,
        0,
        "directory",
        "no project files (*.toml)",
    );
    let missing = dir.path().join("nope");
    let errors = load_dir_with(&missing, &env(TOKEN)).expect_err("missing dir");
    assert_error(
        &errors,
        &missing,
        0,
        0,
        "directory",
        "cannot read project directory",
    );
}

#[test]
fn check_dir_renders_good_and_bad_files() {
    let dir = TempDir::new().unwrap();
    let good = write(dir.path(), "a.toml", MINIMAL);
    let bad = write(
        dir.path(),
        "b.toml",
        &MINIMAL
            .replace("\"proj\"", "\"Bad\"")
            .replace("\"forgejo\"", "\"svn\""),
    );
    let report = check_dir_with(dir.path(), &env(TOKEN));
    assert!(!report.is_ok());
    let rendered = report.render();
    let lines: Vec<&str> = rendered.lines().collect();
    assert_eq!(lines.len(), 4, "{rendered}");
    assert_eq!(
        lines[0],
        format!("ok   {} (project \"proj\")", good.display())
    );
    assert!(
        lines[1].starts_with(&format!("{}:1:8: name: ", bad.display())),
        "{rendered}"
    );
    assert!(
        lines[2].starts_with(&format!("{}:5:8: [forge] kind: ", bad.display())),
        "{rendered}"
    );
    assert_eq!(
        lines[3],
        "2 project files checked: 1 ok, 1 with errors; 2 errors in total"
    );

    std::fs::remove_file(&bad).unwrap();
    let report = check_dir_with(dir.path(), &env(TOKEN));
    assert!(report.is_ok());
    assert!(
        report
            .render()
            .ends_with("1 project file checked: all ok\n"),
        "{}",
        report.render()
    );
}

#[test]
fn example_project_file_validates() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("projects/example.toml");
    let p = load_file_with(&path, &env(&[("FORGE_TOKEN", "t")])).expect("example.toml is valid");
    assert_eq!(p.forge.kind(), ForgeKind::Forgejo);
    assert!(p.matrix.is_none() && p.mirrors.is_empty());
    let errors = load_file_with(&path, &env(&[])).expect_err("FORGE_TOKEN unset");
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].field, "[forge] token_env");
}
