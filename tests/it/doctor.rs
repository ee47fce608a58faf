//! `forgehand doctor` against the fake Forgejo: every check passes with a
//! good token (the labels only created with `--fix`), and a bad token fails
//! with exit 1 and a line saying what to do. The webhook, CI and Matrix
//! checks against the fake Forgejo and Woodpecker, the fake GitHub, and a
//! real Synapse.

use crate::fake_woodpecker::FakeWoodpecker;
use crate::harness::{Harness, ProjectFile, WOODPECKER_TOKEN};
use crate::synapse::Synapse;

fn doctor(h: &Harness, extra: &[&str], token: Option<&str>) -> (i32, String) {
    let projects = h.projects.display().to_string();
    let state = h.state_arg();
    let mut args = vec!["doctor", "--projects", &projects, "--state", &state];
    args.extend_from_slice(extra);
    let mut cmd = h.command(&args);
    if let Some(token) = token {
        cmd.env("FORGE_TOKEN", token);
    }
    let out = cmd.output().expect("running forgehand doctor");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    (out.status.code().unwrap_or(-1), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_checks_the_set_up_and_fix_creates_the_labels() {
    let h = Harness::new("", "").await;
    let label_names = |h: &Harness| -> Vec<String> {
        h.forge
            .read(|s| s.labels().iter().map(|l| l.name.clone()).collect())
    };
    // The state folder is open to others: a failure `--fix` repairs.
    let (code, text) = doctor(&h, &[], None);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("is open to others"), "{text}");
    let agent = format!("ok   proj: agent command {}: ", crate::harness::python());
    for needle in [
        "ok   daemon: git: ",
        "ok   daemon: tmux: ",
        "ok   proj: forge ",
        "signed in as ",
        "ok   proj: reads the pull requests of acme/widget",
        "may write to acme/widget",
        &agent,
        "FAIL proj: labels missing: backlog, priority, in-progress, blocked, underspecified: run doctor --fix",
        "skip proj: webhook: none configured",
        "skip proj: CI: no [ci] woodpecker_url",
        "skip proj: Matrix: no [matrix] section",
    ] {
        assert!(text.contains(needle), "{needle:?} in:\n{text}");
    }
    let writes = h
        .forge
        .read(|s| s.requests().iter().filter(|r| r.method != "GET").count());
    assert_eq!(writes, 0, "without --fix the doctor only reads");
    assert!(!label_names(&h).contains(&"in-progress".to_string()));

    let (code, text) = doctor(&h, &["--fix"], None);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("is private") && text.contains("(missing ones created)"),
        "{text}"
    );
    let names = label_names(&h);
    for l in [
        "backlog",
        "priority",
        "in-progress",
        "blocked",
        "underspecified",
    ] {
        assert!(names.contains(&l.to_string()), "{l} in {names:?}");
    }
    let (code, text) = doctor(&h, &[], None);
    assert_eq!(code, 0, "{text}");
    assert!(!text.contains("FAIL"), "{text}");
    assert!(
        text.contains(
            "ok   proj: labels backlog, priority, in-progress, blocked, underspecified exist\n"
        ),
        "{text}"
    );
    h.assert_no_violations();

    let (code, text) = doctor(&h, &[], Some("not-the-token"));
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("FAIL proj: forge ") && text.contains("check the token in [forge] token_env"),
        "{text}"
    );
    assert!(text.contains("check(s) failed"), "{text}");
    assert!(
        !text.contains("not-the-token"),
        "the token is never printed"
    );
}

/// The lines of `text` about `what`, for messages.
fn line<'t>(text: &'t str, what: &str) -> &'t str {
    text.lines()
        .find(|l| l.contains(what))
        .unwrap_or_else(|| panic!("no line with {what:?} in:\n{text}"))
}

/// A webhook to forgehand's listener must exist and be active; the
/// Woodpecker repository must answer for the token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_checks_the_webhook_and_woodpecker() {
    let ci = FakeWoodpecker::start(7, WOODPECKER_TOKEN);
    let sections = format!(
        "[ci]\nwoodpecker_url = \"{}\"\nwoodpecker_repo_id = 7\nwoodpecker_token_env = \"WOODPECKER_TOKEN\"\n",
        ci.url()
    );
    let mut h = Harness::new("", "").await;
    h.write_project_file(&ProjectFile {
        forge_extra: "webhook_secret_env = \"HOOK_SECRET\"",
        sections: &sections,
        ..ProjectFile::default()
    });
    h.env
        .push(("HOOK_SECRET".into(), "a-hook-secret-of-some-length".into()));
    let (_, text) = doctor(&h, &["--fix"], None);
    assert_eq!(
        line(&text, "webhook"),
        "FAIL proj: no webhook of acme/widget delivers to …/hooks/forgejo: add one (README, \"Webhooks\")"
    );
    assert_eq!(
        line(&text, "CI: "),
        "ok   proj: CI: Woodpecker builds repository acme/widget (id 7)"
    );

    h.forge.add_hook("http://elsewhere.example/hook", true);
    h.forge
        .add_hook("http://forgehand.example:8080/hooks/forgejo", false);
    let (code, text) = doctor(&h, &[], None);
    assert_eq!(code, 1, "{text}");
    assert!(
        line(&text, "webhook")
            .contains("the webhook to http://forgehand.example:8080/hooks/forgejo is inactive"),
        "{text}"
    );
    h.forge
        .add_hook("http://forgehand.example:8080/hooks/forgejo", true);
    let (code, text) = doctor(&h, &[], None);
    assert_eq!(code, 0, "{text}");
    assert!(
        line(&text, "webhook").starts_with(
            "ok   proj: webhook to http://forgehand.example:8080/hooks/forgejo is active"
        ),
        "{text}"
    );

    h.assert_no_violations();
    assert!(ci.violations().is_empty(), "{:#?}", ci.violations());
    let mut cmd = h.command(&[
        "doctor",
        "--projects",
        &h.projects.display().to_string(),
        "--state",
        &h.state_arg(),
    ]);
    let out = cmd
        .env("WOODPECKER_TOKEN", "not-the-woodpecker-token")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    let ci_line = line(&text, "CI: ");
    assert!(
        ci_line.starts_with("FAIL proj: CI: ") && ci_line.contains("woodpecker_token_env"),
        "{text}"
    );
    assert!(!text.contains("not-the-woodpecker-token"), "{text}");
}

/// On GitHub: the hook's latest delivery decides, and Actions is reachable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_reads_github_webhook_deliveries_and_actions() {
    let (mut h, github) = crate::github_e2e::github(crate::github_e2e::SignIn::Token).await;
    let file = h.projects.join("proj.toml");
    let toml = std::fs::read_to_string(&file).unwrap().replace(
        "token_env = \"GH_TOKEN\"",
        "token_env = \"GH_TOKEN\"\nwebhook_secret_env = \"HOOK_SECRET\"",
    );
    std::fs::write(&file, toml).unwrap();
    h.env
        .push(("HOOK_SECRET".into(), "a-hook-secret-of-some-length".into()));
    let hook = github.add_hook("https://forgehand.example/hooks/github", true);
    let (_, text) = doctor(&h, &["--fix"], None);
    assert_eq!(
        line(&text, "/hooks/github"),
        "ok   proj: webhook to https://forgehand.example/hooks/github is active; nothing delivered yet"
    );
    assert_eq!(
        line(&text, "CI: "),
        "ok   proj: CI: GitHub Actions: 0 workflow runs in acme/widget"
    );
    github.add_delivery(hook, 200, "OK");
    github.add_delivery(hook, 502, "Invalid HTTP Response: 502");
    let (code, text) = doctor(&h, &[], None);
    assert_eq!(code, 1, "{text}");
    let webhook = line(&text, "/hooks/github");
    assert!(
        webhook.starts_with(
            "FAIL proj: the latest delivery to https://forgehand.example/hooks/github failed at "
        ) && webhook.contains(
            ": 502 Invalid HTTP Response: 502: check that `forgehand run --listen` is reachable"
        ),
        "{text}"
    );
    github.add_delivery(hook, 200, "OK");
    let (code, text) = doctor(&h, &[], None);
    assert_eq!(code, 0, "{text}");
    assert!(
        line(&text, "/hooks/github")
            .ends_with("the latest delivery succeeded (1 of the last 3 failed)"),
        "{text}"
    );
    github.assert_no_violations();
}

/// Matrix: the token must be the configured account's, and that account in
/// the room; checked against a real Synapse.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_signs_in_to_matrix_and_finds_the_room() {
    let synapse = Synapse::start().await;
    let matrix = |room: &str, user: &str| {
        format!(
            "[matrix]\nhomeserver = \"{}\"\nroom_id = \"{room}\"\nuser_id = \"{user}\"\ntoken_env = \"MATRIX_TOKEN\"\n",
            synapse.url
        )
    };
    let mut h = Harness::new("", &matrix(&synapse.room_id, &synapse.bot.user_id)).await;
    h.env
        .push(("MATRIX_TOKEN".into(), synapse.bot.token.clone()));
    let (_, text) = doctor(&h, &["--fix"], None);
    assert_eq!(
        line(&text, "Matrix"),
        format!(
            "ok   proj: Matrix: {} signs in at {} and is in {}",
            synapse.bot.user_id, synapse.url, synapse.room_id
        )
    );

    // A room of alice's the bot was never asked into.
    let other = synapse
        .call(
            &synapse.alice,
            reqwest::Method::POST,
            "/_matrix/client/v3/createRoom",
            serde_json::json!({"preset": "private_chat"}),
        )
        .await["room_id"]
        .as_str()
        .unwrap()
        .to_string();
    h.write_project("", &matrix(&other, &synapse.bot.user_id));
    let (code, text) = doctor(&h, &[], None);
    assert_eq!(code, 1, "{text}");
    assert!(
        line(&text, "Matrix").contains(&format!(
            "{} has not joined {other}: invite it",
            synapse.bot.user_id
        )),
        "{text}"
    );

    // Alice's token for the bot's account.
    h.write_project("", &matrix(&synapse.room_id, &synapse.bot.user_id));
    h.env
        .push(("MATRIX_TOKEN".into(), synapse.alice.token.clone()));
    let (code, text) = doctor(&h, &[], None);
    assert_eq!(code, 1, "{text}");
    assert!(
        line(&text, "Matrix").contains(&format!("the token belongs to {}", synapse.alice.user_id)),
        "{text}"
    );
    assert!(!text.contains(&synapse.alice.token), "{text}");
}
