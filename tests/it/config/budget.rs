//! `[budget]` in a project file: values, defaults, and errors located at
//! `file:line:col` with the field named.

use std::time::Duration;

use super::{MINIMAL, TOKEN, assert_error, env, errors_of, write};
use forgehand::budget::{DEFAULT_GRACE, Limit};
use forgehand::config::load_file_with;
use tempfile::TempDir;

#[test]
fn budget_keys_are_read_and_prices_override_the_defaults() {
    let src = format!(
        "{MINIMAL}
[budget]
issue_tokens = 200000
issue_cost = 2.5
issue_time = \"3h\"
grace = \"5m\"
day_cost = 20
month_tokens = 9000000
runs_per_day = 12

[budget.prices.\"my-model\"]
input = 1.0
output = 2.0
"
    );
    let dir = TempDir::new().unwrap();
    let path = write(dir.path(), "proj.toml", &src);
    let p = load_file_with(&path, &env(TOKEN)).expect("valid budget");
    let b = &p.budget;
    assert_eq!(
        b.issue,
        Limit {
            tokens: Some(200_000),
            cost_micros: Some(2_500_000)
        }
    );
    assert_eq!(b.issue_time, Some(Duration::from_secs(3 * 3600)));
    assert_eq!(b.grace, Duration::from_secs(300));
    assert_eq!(b.day.cost_micros, Some(20_000_000));
    assert_eq!(b.month.tokens, Some(9_000_000));
    assert_eq!(b.runs_per_day, Some(12));
    let mine = b.prices.price_of("my-model-v2");
    assert_eq!((mine.input, mine.output), (1.0, 2.0));
    // Cache prices default to Anthropic's ratios to the input price.
    assert_eq!((mine.cache_write, mine.cache_read), (1.25, 0.1));
    // The built-in entries stay.
    assert_eq!(b.prices.price_of("claude-sonnet-4-5").output, 15.0);
}

#[test]
fn no_budget_section_means_no_limits() {
    let dir = TempDir::new().unwrap();
    let path = write(dir.path(), "proj.toml", MINIMAL);
    let b = load_file_with(&path, &env(TOKEN)).unwrap().budget;
    assert!(!b.issue.is_set() && !b.day.is_set() && !b.month.is_set());
    assert_eq!((b.issue_time, b.runs_per_day), (None, None));
    assert_eq!(b.grace, DEFAULT_GRACE);
}

#[test]
fn bad_budget_values_are_located() {
    let src = format!(
        "{MINIMAL}
[budget]
issue_tokens = 0
issue_cost = -3.0
grace = \"soon\"
runs_per_day = 0

[budget.prices.\"m\"]
input = -1.0
output = 2.0
"
    );
    let (_dir, path, errors) = errors_of(&src, TOKEN);
    let line = |needle: &str| src.lines().position(|l| l.starts_with(needle)).unwrap() + 1;
    assert_error(
        &errors,
        &path,
        line("issue_tokens"),
        16,
        "[budget] issue_tokens",
        "at least 1",
    );
    assert_error(
        &errors,
        &path,
        line("issue_cost"),
        14,
        "[budget] issue_cost",
        "US dollars above 0",
    );
    assert_error(
        &errors,
        &path,
        line("grace"),
        9,
        "[budget] grace",
        "invalid duration \"soon\"",
    );
    assert_error(
        &errors,
        &path,
        line("runs_per_day"),
        16,
        "[budget] runs_per_day",
        "at least 1",
    );
    assert_error(
        &errors,
        &path,
        line("input"),
        9,
        "[budget.prices] \"m\" input",
        "per million tokens",
    );

    // A wrong type fails the section, and says what was expected.
    error_in_one_key(
        "budget",
        "month_cost = \"a lot\"",
        14,
        "[budget] month_cost",
        "expected f64",
    );
}

#[test]
fn unknown_budget_key_is_an_error() {
    error_in_one_key(
        "budget",
        "issue_dollars = 3",
        1,
        "[budget] issue_dollars",
        "unknown key",
    );
}

#[test]
fn merge_delay_is_read_and_zero_means_none() {
    let dir = TempDir::new().unwrap();
    for (delay, want) in [("\"30m\"", 1800), ("\"0s\"", 0)] {
        let path = write(
            dir.path(),
            "proj.toml",
            &format!("{MINIMAL}\n[merge]\ndelay = {delay}\n"),
        );
        let p = load_file_with(&path, &env(TOKEN)).expect("valid delay");
        assert_eq!(p.merge.delay, Duration::from_secs(want));
    }
    error_in_one_key(
        "merge",
        "delay = \"soon\"",
        9,
        "[merge] delay",
        "invalid duration",
    );
}

/// A file whose `[section]` holds only `line`, which is reported at `col`
/// of that line, naming `field`, its message containing `needle`.
fn error_in_one_key(section: &str, line: &str, col: usize, field: &str, needle: &str) {
    let src = format!("{MINIMAL}\n[{section}]\n{line}\n");
    let (_dir, path, errors) = errors_of(&src, TOKEN);
    let at = src.lines().position(|l| l == line).unwrap() + 1;
    assert_error(&errors, &path, at, col, field, needle);
}

/// `projects/_budget.toml`: the daemon's monthly budget, never a project.
#[test]
fn the_daemon_budget_file_is_read_beside_the_projects() {
    use forgehand::config::daemon_budget::load_daemon_budget;
    use forgehand::config::load_dir_with;
    let dir = TempDir::new().unwrap();
    write(dir.path(), "proj.toml", MINIMAL);
    assert_eq!(load_daemon_budget(dir.path()).unwrap(), Limit::default());
    write(
        dir.path(),
        "_budget.toml",
        "month_tokens = 900\nmonth_cost = 1.5\n",
    );
    assert_eq!(
        load_daemon_budget(dir.path()).unwrap(),
        Limit {
            tokens: Some(900),
            cost_micros: Some(1_500_000)
        }
    );
    let projects = load_dir_with(dir.path(), &env(TOKEN)).expect("only proj.toml is a project");
    assert_eq!(projects.len(), 1);

    let path = write(
        dir.path(),
        "_budget.toml",
        "month_tokens = 900\nmonth_cost = 0\n",
    );
    let errors = load_daemon_budget(dir.path()).unwrap_err();
    assert_error(&errors, &path, 2, 14, "month_cost", "US dollars above 0");
    write(dir.path(), "_budget.toml", "day_tokens = 9\n");
    let errors = load_daemon_budget(dir.path()).unwrap_err();
    assert!(
        errors[0].to_string().contains("unknown field"),
        "{}",
        errors[0]
    );
}
