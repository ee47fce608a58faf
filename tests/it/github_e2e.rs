//! End to end on GitHub: the real daemon against the fake GitHub, a real bare
//! repository, real git, a private tmux server and the scripted agent. One issue
//! goes through a failing GitHub Actions job, a change request and the merge,
//! signed in as a GitHub App; another loses a runner, is re-run without counting
//! the attempt, and merges, signed in with a token.
//!
//! The harness's own fake Forgejo stays idle: the project file points at the
//! fake GitHub, which serves the same bare repository.

use crate::fake_forge::ReviewBehaviour;
use crate::fake_github::{
    ActionsBehaviour, AppOptions, Behaviour, FAILURE_MARKER, FakeGithub, FakeGithubOptions,
    InfraFailure, REVIEWER, keys,
};
use crate::harness::{Harness, PROJECT, STEP};
use crate::support::wait_until;

const GH_TOKEN: &str = "ghp_e2eT0kenForTheFakeGithub0123456789";

/// How forgehand signs in to the fake GitHub.
pub enum SignIn {
    Token,
    App,
}

/// A harness whose project is on a fake GitHub over the harness's repository.
pub async fn github(sign_in: SignIn) -> (Harness, FakeGithub) {
    let mut h = Harness::new("", "").await;
    let key = keys::app_key();
    let app = AppOptions::new(key);
    let github = FakeGithub::start(FakeGithubOptions {
        bare_repo: h.git.bare.clone(),
        token: GH_TOKEN.into(),
        app: matches!(sign_in, SignIn::App).then(|| app.clone()),
        ..Default::default()
    })
    .await;
    let auth = match sign_in {
        SignIn::Token => "token_env = \"GH_TOKEN\"".to_string(),
        SignIn::App => {
            let pem = key.write_private(&h.home);
            format!(
                "app_id = {}\ninstallation_id = {}\nprivate_key_file = {:?}",
                app.app_id,
                app.installation_id,
                pem.display().to_string()
            )
        }
    };
    let fake_agent = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/fake-agent");
    let toml = format!(
        r#"name = "{PROJECT}"
repo = "acme/widget"
clone_url = "{clone}"
poll_interval = "300ms"

[forge]
kind = "github"
url = "{url}"
{auth}

[agent]
command = "{agent}"
sandbox_ro = [{scripts:?}]
max_sessions = 1
"#,
        clone = h.git.bare.display(),
        url = github.url(),
        agent = crate::harness::agent_command("fake-agent"),
        scripts = fake_agent.parent().unwrap().display().to_string(),
    );
    std::fs::write(h.projects.join("proj.toml"), toml).expect("writing the project file");
    h.env.push(("GH_TOKEN".into(), GH_TOKEN.into()));
    (h, github)
}

fn status_json(h: &Harness) -> serde_json::Value {
    let out = h.run(&["status", "--state", &h.state_arg(), "--json"]);
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).expect("status --json");
    status["issues"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_takes_an_issue_through_a_failing_job_and_a_review_to_the_merge() {
    let (mut h, github) = github(SignIn::App).await;
    let n = github.create_issue("Add a greeting", "Print hello.", &["backlog"]);
    let file = format!("work/issue-{n}.txt");
    github.set_behaviour(Behaviour {
        actions: ActionsBehaviour::FailFirst(1),
        review: ReviewBehaviour::RequestChangesOnce {
            body: "Please say it more politely.".into(),
            comments: vec![(file.clone(), 1, "use 'good morning' here".into())],
        },
        ..Default::default()
    });
    h.enable();
    h.start_daemon();

    // The failing job's step and the end of its log reach the agent.
    let text = h.agent_received(n, "CI failed").await;
    assert!(text.contains("fix attempt 1/3"), "{text}");
    assert!(text.contains(FAILURE_MARKER), "the log tail: {text}");
    assert!(text.contains("CI / test"), "the workflow and job: {text}");

    let text = h.agent_received(n, "requested changes").await;
    assert!(text.contains("Please say it more politely."), "{text}");
    assert!(
        text.contains(&format!("{file}:1: use 'good morning' here")),
        "{text}"
    );

    github
        .wait_until(STEP, |s| !s.forge.issue(n).is_open())
        .await
        .expect("merged and closed");
    let merges = github.merges();
    assert_eq!(merges.len(), 1, "one merge");
    let pr = merges[0].pull;
    let pull = github.pull(pr);
    assert_eq!(
        &merges[0].head_sha,
        pull.heads_seen.last().unwrap(),
        "the final head was merged"
    );
    assert!(
        github.reviews(pr).iter().any(|r| r.state == "APPROVED"
            && r.user == REVIEWER
            && r.commit_id == merges[0].head_sha)
    );
    // What forgehand did, it did as the App.
    let bot = AppOptions::new(keys::app_key()).bot_login();
    assert_eq!(github.issue(pr).user, bot, "the PR is the App's");
    assert_eq!(
        pull.merged_by.as_deref(),
        Some(bot.as_str()),
        "merged by the App"
    );

    wait_until("cleaned up", STEP, || async {
        h.journal(n)
            .iter()
            .any(|(k, _)| k == "cleaned_up")
            .then_some(())
    })
    .await;
    let claims = status_json(&h);
    assert_eq!(
        (
            claims[0]["ci_attempts"].as_u64(),
            claims[0]["review_rounds"].as_u64()
        ),
        (Some(1), Some(1))
    );
    let table = h.run(&["status", "--state", &h.state_arg()]);
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(table.contains("forge quota of proj:"), "{table}");
    github.assert_no_violations();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_runner_is_re_run_once_without_counting() {
    let (mut h, github) = github(SignIn::Token).await;
    let n = github.create_issue("Add a farewell", "Print goodbye.", &["backlog"]);
    github.set_behaviour(Behaviour {
        actions: ActionsBehaviour::Infra {
            kind: InfraFailure::RunnerLost,
            attempts: 1,
        },
        review: ReviewBehaviour::ApproveWhenGreen,
        ..Default::default()
    });
    h.enable();
    h.start_daemon();

    github
        .wait_until(STEP, |s| !s.forge.issue(n).is_open())
        .await
        .expect("merged and closed after the re-run");
    let reruns = github
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("/rerun-failed-jobs"))
        .count();
    assert_eq!(reruns, 1, "re-run once");
    assert!(
        github.workflow_runs().iter().any(|r| r.attempt >= 2),
        "the run's second attempt"
    );
    wait_until("cleaned up", STEP, || async {
        h.journal(n)
            .iter()
            .any(|(k, _)| k == "cleaned_up")
            .then_some(())
    })
    .await;
    let journal = h.journal(n);
    assert!(
        journal
            .iter()
            .any(|(_, d)| d.contains("restarted pipeline")),
        "{journal:?}"
    );
    let claims = status_json(&h);
    assert_eq!(claims[0]["ci_attempts"].as_u64(), Some(0), "not counted");
    github.assert_no_violations();
}
