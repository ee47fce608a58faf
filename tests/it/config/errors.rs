//! One test per kind of error in a project file, each checking the
//! `file:line:col: field:` prefix and the gist of the message.

use super::{MINIMAL, TOKEN, assert_error, env, errors_of, write};
use forgehand::config::duration;
use forgehand::config::{load_dir_with, load_file_with};
use std::path::PathBuf;
use std::time::Duration;
use tempfile::TempDir;

#[test]
fn toml_syntax_error_is_located() {
    let (_dir, path, errors) = errors_of("name = \"proj\"\nrepo = = \"x\"\n", TOKEN);
    assert_error(&errors, &path, 2, 8, "TOML syntax", "");
}

#[test]
fn unknown_top_level_key_lists_allowed_keys() {
    let src = format!("{MINIMAL}\n");
    let src = src.replacen("repo = ", "colour = \"red\"\nrepo = ", 1);
    let (_dir, path, errors) = errors_of(&src, TOKEN);
    assert_error(
        &errors,
        &path,
        2,
        1,
        "colour",
        "unknown key `colour`; allowed keys: `name`, `repo`",
    );
    assert_error(&errors, &path, 2, 1, "colour", "`mirrors`");
}

#[test]
fn unknown_key_in_section_lists_its_keys() {
    let src = MINIMAL.replace(
        "command = \"claude\"",
        "command = \"claude\"\n  idle_timout = \"1h\"",
    );
    let (_dir, path, errors) = errors_of(&src, TOKEN);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_error(
        &errors,
        &path,
        11,
        3,
        "[agent] idle_timout",
        "unknown key `idle_timout`; allowed keys: `command`",
    );
    assert_error(
        &errors,
        &path,
        11,
        3,
        "[agent] idle_timout",
        "`idle_timeout`",
    );
}

#[test]
fn wrong_type_names_the_key() {
    let src = MINIMAL.replace(
        "command = \"claude\"",
        "command = \"claude\"\nmax_sessions = \"two\"",
    ) + "[ci]\ntimeout = 5\n";
    let (_dir, path, errors) = errors_of(&src, TOKEN);
    assert_error(
        &errors,
        &path,
        11,
        16,
        "[agent] max_sessions",
        "invalid type: string \"two\", expected u32",
    );
    assert_error(
        &errors,
        &path,
        13,
        11,
        "[ci] timeout",
        "invalid type: integer `5`, expected a duration string such as \"90s\"",
    );
}

#[test]
fn bad_durations_are_reported_at_their_values() {
    let src = MINIMAL.replace("repo = ", "poll_interval = \"10\"\nrepo = ")
        + "idle_timeout = \"-5m\"\nescalation_timeout = \"\"\n[ci]\ntimeout = \"0s\"\n[review]\ntimeout = \"1w\"\n";
    let (_dir, path, errors) = errors_of(&src, TOKEN);
    assert_eq!(
        errors.len(),
        5,
        "every bad duration is reported: {errors:?}"
    );
    assert_error(
        &errors,
        &path,
        2,
        17,
        "poll_interval",
        "the number 10 has no unit",
    );
    assert_error(&errors, &path, 12, 16, "[agent] idle_timeout", "negative");
    assert_error(
        &errors,
        &path,
        13,
        22,
        "[agent] escalation_timeout",
        "empty",
    );
    assert_error(&errors, &path, 15, 11, "[ci] timeout", "greater than zero");
    assert_error(
        &errors,
        &path,
        17,
        11,
        "[review] timeout",
        "unknown unit \"w\"",
    );
    for e in &errors {
        assert!(
            e.message.contains("\"1h30m\""),
            "message shows accepted forms: {e}"
        );
    }
}

#[test]
fn duration_forms() {
    let ok = [
        ("90s", Duration::from_secs(90)),
        ("30m", Duration::from_secs(1800)),
        ("2h", Duration::from_secs(7200)),
        ("1d", Duration::from_secs(86_400)),
        ("500ms", Duration::from_millis(500)),
        ("1h30m", Duration::from_secs(5400)),
        ("1d2h3m4s5ms", Duration::from_millis(93_784_005)),
    ];
    for (text, want) in ok {
        assert_eq!(duration::parse(text), Ok(want), "{text}");
    }
    for bad in [
        "",
        "0s",
        "0h0m",
        "-1s",
        "10",
        "5x",
        "1.5h",
        "h",
        "1h 30m",
        "99999999999999999999s",
        "999999999999999d",
    ] {
        let err = duration::parse(bad).expect_err(bad);
        assert!(
            err.contains(&format!("\"{bad}\"")) && err.contains("\"90s\""),
            "{bad}: {err}"
        );
    }
}

#[test]
fn bad_name_and_bad_repo() {
    let src = MINIMAL
        .replace("name = \"proj\"", "name = \"My_Proj\"")
        .replace("repo = \"owner/proj\"", "repo = \"just-a-name\"");
    let (_dir, path, errors) = errors_of(&src, TOKEN);
    assert_error(&errors, &path, 1, 8, "name", "[a-z0-9-]+");
    assert_error(&errors, &path, 2, 8, "repo", "owner/name");
    for repo in ["a/b/c", "/b", "a/", "a b/c"] {
        let src = MINIMAL.replace("owner/proj", repo);
        let (_dir, path, errors) = errors_of(&src, TOKEN);
        assert_error(&errors, &path, 2, 8, "repo", "owner/name");
    }
}

#[test]
fn missing_required_keys_are_named() {
    let src = "repo = \"o/r\"\n[forge]\nkind = \"gitea\"\n[agent]\ncommand = \"  \"\n";
    let (_dir, path, errors) = errors_of(src, TOKEN);
    assert_error(&errors, &path, 1, 1, "name", "is required");
    assert_error(&errors, &path, 2, 1, "[forge] url", "is required");
    assert_error(&errors, &path, 2, 1, "[forge] token_env", "is required");
    assert_error(
        &errors,
        &path,
        5,
        11,
        "[agent] command",
        "must not be empty",
    );
    let (_dir, path, errors) = errors_of("name = \"x\"\nrepo = \"o/r\"\n", TOKEN);
    assert_error(
        &errors,
        &path,
        1,
        1,
        "[forge]",
        "required section is missing",
    );
    assert_error(
        &errors,
        &path,
        1,
        1,
        "[agent]",
        "required section is missing",
    );
}

#[test]
fn unknown_forge_kind_and_merge_method_name_the_allowed_ones() {
    let src = MINIMAL.replace("\"forgejo\"", "\"gitlab\"") + "[merge]\nmethod = \"ff\"\n";
    let (_dir, path, errors) = errors_of(&src, TOKEN);
    assert_error(
        &errors,
        &path,
        5,
        8,
        "[forge] kind",
        "unknown forge kind \"gitlab\"; allowed: forgejo, gitea, github, local",
    );
    assert_error(
        &errors,
        &path,
        12,
        10,
        "[merge] method",
        "allowed: merge, squash, rebase",
    );
}

#[test]
fn forge_url_must_be_http() {
    let src = MINIMAL.replace("https://forge.example/", "forge.example");
    let (_dir, path, errors) = errors_of(&src, TOKEN);
    assert_error(&errors, &path, 6, 7, "[forge] url", "http:// or https://");
}

#[test]
fn missing_token_variable() {
    let (_dir, path, errors) = errors_of(MINIMAL, &[]);
    assert_error(
        &errors,
        &path,
        7,
        13,
        "[forge] token_env",
        "environment variable FORGE_TOKEN named by [forge] token_env is not set",
    );
    let (_dir, path, errors) = errors_of(MINIMAL, &[("FORGE_TOKEN", "")]);
    assert_error(
        &errors,
        &path,
        7,
        13,
        "[forge] token_env",
        "FORGE_TOKEN named by [forge] token_env is empty",
    );
}

#[test]
fn secret_in_pass_env_is_refused_at_the_entry() {
    let src = MINIMAL.to_string()
        + "pass_env = [\"HOME_DIR\", \"FORGE_TOKEN\", \"MATRIX_TOKEN\", \"9BAD\"]\n"
        + "[matrix]\nhomeserver = \"https://m.example\"\nroom_id = \"!r:m\"\nuser_id = \"@b:m\"\ntoken_env = \"MATRIX_TOKEN\"\n";
    let vars: &[(&str, &str)] = &[("FORGE_TOKEN", "f"), ("MATRIX_TOKEN", "m")];
    let (_dir, path, errors) = errors_of(&src, vars);
    assert_eq!(errors.len(), 3, "{errors:?}");
    assert_error(
        &errors,
        &path,
        11,
        25,
        "[agent] pass_env",
        "FORGE_TOKEN is a secret (named by [forge] token_env) and must not be passed to the agent",
    );
    assert_error(
        &errors,
        &path,
        11,
        40,
        "[agent] pass_env",
        "MATRIX_TOKEN is a secret (named by [matrix] token_env)",
    );
    assert_error(
        &errors,
        &path,
        11,
        56,
        "[agent] pass_env",
        "\"9BAD\" is not a valid environment variable name",
    );
}

#[test]
fn partial_woodpecker_settings() {
    let src = MINIMAL.to_string() + "[ci]\nrequired = true\nwoodpecker_repo_id = 7\n";
    let (_dir, path, errors) = errors_of(&src, TOKEN);
    assert_error(
        &errors,
        &path,
        13,
        22,
        "[ci] woodpecker_repo_id",
        "missing: woodpecker_url, woodpecker_token_env",
    );
    let src = MINIMAL.to_string()
        + "[ci]\nwoodpecker_url = \"https://ci\"\nwoodpecker_repo_id = 7\nwoodpecker_token_env = \"WP\"\n";
    let (_dir, path, errors) = errors_of(&src, TOKEN);
    assert_error(
        &errors,
        &path,
        14,
        24,
        "[ci] woodpecker_token_env",
        "environment variable WP named by [ci] woodpecker_token_env is not set",
    );
}

#[test]
fn bad_matrix_ids() {
    let src = MINIMAL.to_string()
        + "[matrix]\nhomeserver = \"matrix.example\"\nroom_id = \"#room:example\"\nuser_id = \"@bot\"\ntoken_env = \"MATRIX_TOKEN\"\nmention_user = \"alice:example\"\n";
    let vars: &[(&str, &str)] = &[("FORGE_TOKEN", "f"), ("MATRIX_TOKEN", "m")];
    let (_dir, path, errors) = errors_of(&src, vars);
    assert_eq!(errors.len(), 4, "{errors:?}");
    assert_error(
        &errors,
        &path,
        12,
        14,
        "[matrix] homeserver",
        "http:// or https://",
    );
    assert_error(
        &errors,
        &path,
        13,
        11,
        "[matrix] room_id",
        "is not a room id like !abc:example.org",
    );
    assert_error(
        &errors,
        &path,
        14,
        11,
        "[matrix] user_id",
        "is not a user id",
    );
    assert_error(
        &errors,
        &path,
        16,
        16,
        "[matrix] mention_user",
        "is not a user id",
    );
    let (_dir, path, errors) = errors_of(
        &(MINIMAL.to_string() + "[matrix]\nroom_id = \"!r:m\"\n"),
        TOKEN,
    );
    assert_error(&errors, &path, 11, 1, "[matrix] homeserver", "is required");
    assert_error(&errors, &path, 11, 1, "[matrix] token_env", "is required");
}

#[test]
fn errors_in_several_sections_are_all_reported() {
    let src = "name = \"Bad\"\nrepo = \"o/r\"\n[forge]\nkind = \"x\"\nurl = \"https://f\"\ntoken_env = \"T\"\n[agent]\ncommand = 1\n[review]\nmax_rounds = 0\n[mirrors]\ngh = 3\n";
    let (_dir, path, errors) = errors_of(src, &[("T", "t")]);
    assert_eq!(errors.len(), 5, "{errors:?}");
    assert_error(&errors, &path, 1, 8, "name", "");
    assert_error(&errors, &path, 4, 8, "[forge] kind", "");
    assert_error(&errors, &path, 8, 11, "[agent] command", "invalid type");
    assert_error(
        &errors,
        &path,
        10,
        14,
        "[review] max_rounds",
        "must be at least 1",
    );
    assert_error(&errors, &path, 12, 6, "[mirrors] gh", "invalid type");
}

/// `[forge] webhook_secret_env` is optional, but when given its variable must
/// be set, its value is a secret like the token (redacted, never passed to the
/// agent).
#[test]
fn webhook_secret_is_a_secret() {
    let src = MINIMAL.replace(
        "token_env = \"FORGE_TOKEN\"",
        "token_env = \"FORGE_TOKEN\"\nwebhook_secret_env = \"HOOK_SECRET\"",
    );
    let (_dir, path, errors) = errors_of(&src, TOKEN);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_error(
        &errors,
        &path,
        8,
        22,
        "[forge] webhook_secret_env",
        "environment variable HOOK_SECRET named by [forge] webhook_secret_env is not set",
    );

    let passed = src.clone() + "pass_env = [\"HOOK_SECRET\"]\n";
    let vars: &[(&str, &str)] = &[("FORGE_TOKEN", "f"), ("HOOK_SECRET", "h00k-value")];
    let (_dir, path, errors) = errors_of(&passed, vars);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_error(
        &errors,
        &path,
        12,
        13,
        "[agent] pass_env",
        "HOOK_SECRET is a secret (named by [forge] webhook_secret_env) and must not be passed to the agent",
    );

    let dir = TempDir::new().unwrap();
    let file = write(dir.path(), "proj.toml", &src);
    let p = load_file_with(&file, &env(vars)).expect("loads");
    assert_eq!(p.forge.webhook_secret_env(), Some("HOOK_SECRET"));
    assert_eq!(p.secrets.webhook_secret.as_deref(), Some("h00k-value"));
    assert!(p.secrets.values().contains(&"h00k-value".to_string()));
    let plain = write(dir.path(), "plain.toml", MINIMAL);
    let p = load_file_with(&plain, &env(TOKEN)).expect("loads");
    assert_eq!(p.secrets.webhook_secret, None);
}

#[test]
fn pass_env_never_passes_what_would_run_code_in_the_agent() {
    let src = MINIMAL.to_string()
        + "pass_env = [\"LD_PRELOAD\", \"GIT_CONFIG_GLOBAL\", \"BASH_ENV\", \"ENV\", \"LD_LIBRARY_PATH\", \"LANGUAGE\"]\n";
    let (_dir, path, errors) = errors_of(&src, TOKEN);
    assert_eq!(errors.len(), 5, "{errors:?}");
    for (col, var) in [
        (13, "LD_PRELOAD"),
        (27, "GIT_CONFIG_GLOBAL"),
        (48, "BASH_ENV"),
    ] {
        assert_error(
            &errors,
            &path,
            11,
            col,
            "[agent] pass_env",
            &format!("{var} changes how the agent's programs run"),
        );
    }
}

#[test]
fn sandbox_kinds_and_paths() {
    let src = MINIMAL.to_string()
        + "sandbox = \"docker\"\nsandbox_rw = [\"relative/dir\", \"/ok\", \"/a/../b\"]\nsandbox_ro = [\"~/.cache/tool\"]\n";
    let vars: &[(&str, &str)] = &[("FORGE_TOKEN", "f"), ("HOME", "/home/u")];
    let (_dir, path, errors) = errors_of(&src, vars);
    assert_eq!(errors.len(), 3, "{errors:?}");
    assert_error(
        &errors,
        &path,
        11,
        11,
        "[agent] sandbox",
        "unknown sandbox \"docker\"; allowed: bwrap, none",
    );
    assert_error(
        &errors,
        &path,
        12,
        15,
        "[agent] sandbox_rw",
        "must be an absolute path",
    );
    assert_error(
        &errors,
        &path,
        12,
        38,
        "[agent] sandbox_rw",
        "without \"..\"",
    );

    let dir = TempDir::new().unwrap();
    let ok = MINIMAL.to_string()
        + "sandbox = \"none\"\nsandbox_rw = [\"/srv/cache\"]\nsandbox_ro = [\"~/.cache/tool\"]\n";
    let path = write(dir.path(), "proj.toml", &ok);
    let p = load_file_with(&path, &env(vars)).expect("valid sandbox settings");
    assert_eq!(p.agent.sandbox, forgehand::sandbox::SandboxKind::None);
    assert_eq!(p.agent.sandbox_rw, [PathBuf::from("/srv/cache")]);
    assert_eq!(p.agent.sandbox_ro, [PathBuf::from("/home/u/.cache/tool")]);
}

/// Without bubblewrap on `PATH`, the default sandbox is an error that names
/// the package and the opt-out; `sandbox = "none"` needs no bubblewrap.
#[test]
fn a_missing_bubblewrap_names_the_package_and_the_opt_out() {
    let empty = TempDir::new().unwrap();
    let path_var: &'static str = Box::leak(empty.path().display().to_string().into_boxed_str());
    let vars: &'static [(&'static str, &'static str)] =
        Box::leak(vec![("FORGE_TOKEN", "f"), ("PATH", path_var)].into_boxed_slice());
    let (_dir, path, errors) = errors_of(MINIMAL, vars);
    assert_error(
        &errors,
        &path,
        9,
        1,
        "[agent] sandbox",
        "install the package bubblewrap",
    );
    assert!(
        errors[0].to_string().contains("sandbox = \"none\""),
        "{errors:?}"
    );
    let dir = TempDir::new().unwrap();
    let path = write(
        dir.path(),
        "proj.toml",
        &(MINIMAL.to_string() + "sandbox = \"none\"\n"),
    );
    load_file_with(&path, &env(vars)).expect("no sandbox, no bubblewrap needed");
}

/// What only shows across project files: another project's secret passed to
/// an agent, and names whose sessions could be taken for each other's.
#[test]
fn across_projects_secrets_and_session_names() {
    let dir = TempDir::new().unwrap();
    let a = write(
        dir.path(),
        "a.toml",
        &MINIMAL.replace("name = \"proj\"", "name = \"a\""),
    );
    let b = write(
        dir.path(),
        "b.toml",
        &(MINIMAL
            .replace("name = \"proj\"", "name = \"a-b\"")
            .replace("FORGE_TOKEN", "B_TOKEN")
            + "pass_env = [\"FORGE_TOKEN\"]\n"),
    );
    let vars: &[(&str, &str)] = &[("FORGE_TOKEN", "f"), ("B_TOKEN", "b")];
    let errors = load_dir_with(dir.path(), &env(vars)).expect_err("two clashes");
    assert_error(
        &errors,
        &b,
        11,
        13,
        "[agent] pass_env",
        &format!("FORGE_TOKEN is a secret of the project in {}", a.display()),
    );
    assert_error(
        &errors,
        &b,
        1,
        8,
        "name",
        "sessions of project \"a-b\" (dev-a-b-<issue>) could be taken for those of \"a\"",
    );
    assert_eq!(errors.len(), 2, "{errors:?}");
}
