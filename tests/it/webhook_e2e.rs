//! Webhooks through the real daemon (`forgehand run --listen 127.0.0.1:0`,
//! the bound port read from its log): signatures, replays and the body limit
//! at the bound port; each kind of event reaching the actor that owns it with
//! `poll_interval = "1h"`, so only the hook can explain the reaction; a lost
//! hook still caught by polling; and the request count of idle cycles.

use std::time::Duration;

use forgehand::webhook::sign;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::fake_forge::{CI_CONTEXT, ForgeState, REVIEWER};
use crate::harness::{Harness, ProjectFile, STEP};
use crate::support::wait_until;

const SECRET: &str = "hook-5ecret-value";
const REPO: &str = "acme/widget";
/// Long enough that no timer fires during a test: reactions come from hooks.
const NEVER: &str = "1h";

/// A harness whose project takes webhooks signed with `SECRET`, polling every
/// `poll_interval`, its daemon listening on a free port.
struct Hooked {
    h: Harness,
    base: String,
    client: reqwest::Client,
}

impl Hooked {
    async fn start(poll_interval: &str, agent: &str) -> Hooked {
        let mut h = Harness::new(agent, "").await;
        write_project(&h, poll_interval, agent);
        h.env.push(("WEBHOOK_SECRET".into(), SECRET.into()));
        h.enable();
        h.start_daemon_with(&["--listen", "127.0.0.1:0"]);
        let base = wait_until("the daemon logs its webhook address", STEP, || async {
            bound_address(&h.daemon_log())
        })
        .await;
        h.wait_for_labels().await;
        Hooked {
            h,
            base: format!("http://{base}"),
            client: reqwest::Client::new(),
        }
    }

    /// POST `body` to `/hooks/forgejo` as Forgejo would, signed with `secret`
    /// (no signature header when `None`); the status and the answer's text.
    async fn post(
        &self,
        event: &str,
        delivery: &str,
        body: &[u8],
        secret: Option<&str>,
    ) -> (StatusCode, String) {
        let mut req = self
            .client
            .post(format!("{}/hooks/forgejo", self.base))
            .header("X-Forgejo-Event", event)
            .header("X-Forgejo-Delivery", delivery)
            .header("Content-Type", "application/json")
            .body(body.to_vec());
        if let Some(secret) = secret {
            req = req.header("X-Forgejo-Signature", sign(secret.as_bytes(), body));
        }
        let response = req.send().await.expect("posting to the daemon's listener");
        let status = response.status();
        (status, response.text().await.unwrap_or_default())
    }

    /// A correctly signed delivery, which must be accepted.
    async fn hook(&self, event: &str, delivery: &str, payload: Value) {
        let body = payload.to_string().into_bytes();
        let (status, text) = self.post(event, delivery, &body, Some(SECRET)).await;
        assert_eq!(status, StatusCode::OK, "{event} {delivery}: {text}");
    }
}

/// The address in the daemon's "listening for webhooks on ADDR" line.
fn bound_address(log: &str) -> Option<String> {
    let rest = log.split("listening for webhooks on ").nth(1)?;
    rest.split_whitespace().next().map(str::to_string)
}

/// The harness's project file, plus the webhook secret and another interval.
fn write_project(h: &Harness, poll_interval: &str, agent: &str) {
    h.write_project_file(&ProjectFile {
        poll_interval,
        forge_extra: "webhook_secret_env = \"WEBHOOK_SECRET\"",
        agent_extra: agent,
        ..ProjectFile::default()
    });
}

fn repository() -> Value {
    json!({ "full_name": REPO, "name": "widget", "owner": { "login": "acme" } })
}

fn issue_event(action: &str, n: u64) -> Value {
    json!({ "action": action, "issue": { "number": n }, "repository": repository() })
}

/// How many times the open issues with the backlog label were listed.
fn issue_lists(s: &ForgeState) -> usize {
    s.requests_matching("GET", "/repos/acme/widget/issues")
        .filter(|r| r.template.as_deref() == Some("/repos/{owner}/{repo}/issues"))
        .count()
}

/// Wait until the daemon's first poll has listed the issues, so that what
/// happens afterwards can only come from a hook.
async fn first_poll_done(h: &Harness) {
    h.forge
        .wait_until(STEP, |s| issue_lists(s) >= 1)
        .await
        .expect("the first poll");
}

/// Valid, missing, wrong and replayed signatures and an oversized body, at
/// the daemon's own port; a labelled issue is claimed only because of the hook.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hooks_at_the_daemon_port_are_verified_and_claim_at_once() {
    let w = Hooked::start(NEVER, "max_sessions = 1").await;
    let h = &w.h;
    first_poll_done(h).await;
    let n = h.forge.create_issue("Add a greeting", "Print hello.", &[]);
    h.forge.add_label(n, "backlog");
    let body = issue_event("label_updated", n).to_string().into_bytes();

    let (status, _) = w.post("issues", "d-1", &body, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "no signature");
    let (status, _) = w.post("issues", "d-1", &body, Some("guess")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "wrong secret");
    let big = vec![b' '; forgehand::webhook::DEFAULT_MAX_BODY + 1];
    let (status, _) = w.post("issues", "d-big", &big, Some(SECRET)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    // The refused deliveries made nobody look at the forge.
    assert_eq!(h.forge.read(issue_lists), 1);

    // Issue events arrive under Gitea's specific names as well.
    let (status, text) = w.post("issue_label", "d-1", &body, Some(SECRET)).await;
    assert_eq!((status, text.trim()), (StatusCode::OK, "ok"));
    h.forge
        .wait_until(Duration::from_secs(20), |s| {
            s.issue(n).has_label("in-progress")
        })
        .await
        .expect("the issue is claimed within seconds, with polling an hour away");

    // The same delivery again is recognised and does nothing.
    let lists = h.forge.read(issue_lists);
    let (status, text) = w.post("issue_label", "d-1", &body, Some(SECRET)).await;
    assert_eq!((status, text.trim()), (StatusCode::OK, "already seen"));
    assert_eq!(h.forge.read(issue_lists), lists);
    h.assert_no_violations();
}

/// A commit status hook makes the dev actor paste the CI failure, a second
/// one lets it go on, and a review hook makes it paste the review: each with
/// the dev actor's own timer an hour away.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_and_review_hooks_reach_the_dev_actor() {
    let w = Hooked::start(NEVER, "max_sessions = 1").await;
    let h = &w.h;
    first_poll_done(h).await;
    let n = h
        .forge
        .create_issue("Add a greeting", "Print hello.", &["backlog"]);
    // The first poll may have run before the issue existed: its hook claims it.
    w.hook("issues", "i-1", issue_event("opened", n)).await;
    let pr = h.wait_for_pr(n).await;
    let head = |i: usize| {
        h.forge
            .read(|s| s.pull(pr).unwrap().heads_seen.get(i).cloned())
    };
    let first = head(0).expect("the first head");
    // The dev actor has looked at CI once and found nothing: only a hook
    // makes it look again.
    let asked = |s: &ForgeState, sha: &str, what: &str| {
        s.requests_matching("GET", &format!("/commits/{sha}/{what}"))
            .count()
    };
    h.forge
        .wait_until(STEP, |s| asked(s, &first, "status") >= 1)
        .await
        .expect("a first CI check");
    h.forge.set_status(
        &first,
        CI_CONTEXT,
        "failure",
        "3 tests failed",
        "http://ci.example/7",
    );
    let status = |sha: &str, state: &str| json!({ "sha": sha, "state": state, "context": CI_CONTEXT, "repository": repository() });
    w.hook("status", "s-1", status(&first, "failure")).await;
    let text = h.agent_received(n, "CI failed").await;
    assert!(text.contains("3 tests failed"), "{text}");

    // The agent pushes a fix; its green status arrives by hook too.
    h.forge
        .wait_until(STEP, |s| s.pull(pr).unwrap().heads_seen.len() >= 2)
        .await
        .expect("a second push");
    let second = head(1).expect("the second head");
    h.forge
        .wait_until(STEP, |s| asked(s, &second, "status") >= 1)
        .await
        .expect("a CI check of the second head");
    h.forge
        .set_status(&second, CI_CONTEXT, "success", "ok", "http://ci.example/8");
    w.hook("status", "s-2", status(&second, "success")).await;
    h.agent_received(n, "CI passed").await;

    // Reviews were looked at once the head was green; the review comes by hook.
    let reviews_asked = |s: &ForgeState| {
        s.requests_matching("GET", &format!("/pulls/{pr}/reviews"))
            .count()
    };
    h.forge
        .wait_until(STEP, |s| reviews_asked(s) >= 1)
        .await
        .expect("a first review check");
    h.forge.submit_review(
        pr,
        REVIEWER,
        "REQUEST_CHANGES",
        "Please greet in French.",
        Some(&second),
        &[],
    );
    let review = json!({
        "action": "reviewed",
        "pull_request": { "number": pr },
        "review": { "type": "pull_request_review_rejected", "content": "Please greet in French." },
        "repository": repository()
    });
    w.hook("pull_request_review_rejected", "r-1", review).await;
    let text = h.agent_received(n, "Please greet in French.").await;
    assert!(text.contains("requested changes"), "{text}");
    h.assert_no_violations();
}

/// A hook that never arrives costs only latency: polling picks the issue up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_hook_is_caught_by_polling() {
    let w = Hooked::start("500ms", "max_sessions = 1").await;
    let h = &w.h;
    first_poll_done(h).await;
    let n = h
        .forge
        .create_issue("Add a greeting", "Print hello.", &["backlog"]);
    h.forge
        .wait_until(STEP, |s| s.issue(n).has_label("in-progress"))
        .await
        .expect("claimed by a later poll, without any hook");
    assert!(!w.h.daemon_log().contains("webhook nudge"));
}

/// A hook naming the issue others wait for makes the poller ask about it
/// again, once however many wait for it; a hook naming something else asks
/// nothing again; its closing lets the first of them go.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hook_naming_a_dependency_asks_about_it_once() {
    let w = Hooked::start(NEVER, "max_sessions = 1").await;
    let h = &w.h;
    first_poll_done(h).await;
    let blocker = h.forge.create_issue("Prepare the schema", "", &[]);
    let waiting: Vec<u64> = (0..3)
        .map(|i| {
            let body = format!("Depends on #{blocker}");
            h.forge
                .create_issue(&format!("Use the schema ({i})"), &body, &["backlog"])
        })
        .collect();
    let other = h.forge.create_issue("Unrelated", "", &[]);
    let blocker_path = format!("/repos/{REPO}/issues/{blocker}");
    let asked = |s: &ForgeState| {
        s.requests()
            .iter()
            .filter(|r| r.method == "GET" && r.path.ends_with(&blocker_path))
            .count()
    };
    // Each hook makes one poll; the next hook's listing means it is over.
    let mut delivery = 0;
    let mut poll_after = async |event: Value| {
        let lists = h.forge.read(issue_lists);
        delivery += 1;
        w.hook("issues", &format!("dep-{delivery}"), event).await;
        h.forge
            .wait_until(STEP, |s| issue_lists(s) > lists)
            .await
            .expect("a poll after the hook");
    };
    poll_after(issue_event("opened", waiting[0])).await;
    poll_after(issue_event("edited", other)).await;
    assert_eq!(h.forge.read(asked), 1, "three issues wait for #{blocker}");

    poll_after(issue_event("edited", blocker)).await;
    poll_after(issue_event("edited", other)).await;
    assert_eq!(h.forge.read(asked), 2, "asked again once, for the hook");

    h.forge.close_issue(blocker);
    poll_after(issue_event("closed", blocker)).await;
    h.forge
        .wait_until(STEP, |s| s.issue(waiting[0]).has_label("in-progress"))
        .await
        .expect("the first waiting issue claimed once its dependency closed");
    assert_eq!(h.forge.read(asked), 3);
    h.assert_no_violations();
}

/// A review whose hook never arrives is still seen: a dev actor waiting for
/// a review with hooks arriving looks at the forge itself every tenth tick.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_review_hook_is_caught_by_the_safety_net() {
    use crate::fake_forge::{CiBehaviour, ReviewBehaviour};
    use crate::harness::auto;

    let w = Hooked::start("300ms", "max_sessions = 1").await;
    let h = &w.h;
    h.forge
        .set_behaviour(auto(CiBehaviour::Succeed, ReviewBehaviour::None));
    let n = h
        .forge
        .create_issue("Add a greeting", "Print hello.", &["backlog"]);
    let pr = h.wait_for_pr(n).await;
    let reviews_path = format!("/pulls/{pr}/reviews");
    h.forge
        .wait_until(STEP, |s| {
            s.requests_matching("GET", &reviews_path).count() >= 1
        })
        .await
        .expect("the dev actor's first look for a review");
    let head = h.forge.pull(pr).head_sha;
    h.forge
        .submit_review(pr, REVIEWER, "APPROVED", "ok", Some(&head), &[]);
    h.forge
        .wait_until(STEP, |s| s.pull(pr).is_some_and(|p| p.merged))
        .await
        .expect("merged after a safety-net look, without any hook");
}

/// Idle cycles, after a warm-up, cost at most two requests each (the look
/// at what changed, answered 304, and now and then the pull list), even with
/// an issue waiting for a dependency and a person's PR waiting for CI.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_cycles_cost_two_requests_each() {
    use crate::fake_forge::{CiBehaviour, ReviewBehaviour};
    use crate::harness::auto;

    let w = Hooked::start("1s", "max_sessions = 2").await;
    let h = &w.h;
    let blocker = h.forge.create_issue("Prepare the schema", "", &[]);
    let _waiting = h.forge.create_issue(
        "Use the schema",
        &format!("Depends on #{blocker}"),
        &["backlog"],
    );
    h.git.branch("feature", "main");
    h.git
        .commit("feature.txt", "feature\n", "a person's feature");
    h.git.push("feature");
    let response = w
        .client
        .post(format!("{}/repos/{REPO}/pulls", h.forge.api_url()))
        .header("Authorization", format!("token {}", h.forge.token()))
        .json(&json!({ "head": "feature", "base": "main", "title": "Feature", "body": "" }))
        .send()
        .await
        .expect("opening a PR on the fake forge");
    assert_eq!(response.status().as_u16(), 201);
    let pr: Value = response.json().await.expect("the new PR");
    let pr = pr["number"].as_u64().expect("a PR number");
    // An agent's PR, green and waiting for a review: with hooks arriving,
    // its dev actor does not ask for reviews on every tick.
    h.forge
        .set_behaviour(auto(CiBehaviour::Succeed, ReviewBehaviour::None));
    let working = h
        .forge
        .create_issue("Add a greeting", "Print hello.", &["backlog"]);
    let agents_pr = h.wait_for_pr(working).await;
    let reviews_path = format!("/pulls/{agents_pr}/reviews");
    h.forge
        .wait_until(STEP, |s| {
            s.requests_matching("GET", &reviews_path).count() >= 1
        })
        .await
        .expect("the dev actor's first look for a review");
    // Once the agent's PR stops changing, the look at what changed is
    // answered 304.
    let settled = h.forge.read(|s| s.requests().len());
    h.forge
        .wait_until(STEP, |s| {
            s.requests()[settled..].iter().any(|r| {
                r.status == 304
                    && r.template.as_deref() == Some("/repos/{owner}/{repo}/issues")
                    && r.query.contains("since=")
            })
        })
        .await
        .expect("nothing changed");

    // Warm-up: the dependency and the PR's CI have been looked at once, and a
    // whole cycle has passed since.
    let blocker_path = format!("/issues/{blocker}");
    h.forge
        .wait_until(STEP, |s| {
            s.requests_matching("GET", &blocker_path).count() >= 1
                && s.requests_matching("GET", "/status").count() >= 1
        })
        .await
        .expect("the first look at the dependency and the PR");
    let checked = h.forge.read(issue_lists);
    h.forge
        .wait_until(STEP, |s| issue_lists(s) > checked)
        .await
        .expect("a cycle after the warm-up");

    let (start, lists) = h.forge.read(|s| (s.requests().len(), issue_lists(s)));
    let cycles = 3;
    h.forge
        .wait_until(STEP, |s| issue_lists(s) >= lists + cycles)
        .await
        .expect("idle cycles");
    let window: Vec<_> = h.forge.read(|s| s.requests()[start..].to_vec());
    let lists_of = |template: &str| {
        window
            .iter()
            .filter(|r| r.method == "GET" && r.template.as_deref() == Some(template))
            .count()
    };
    let issues = lists_of("/repos/{owner}/{repo}/issues");
    let pulls = lists_of("/repos/{owner}/{repo}/pulls");
    let others: Vec<String> = window
        .iter()
        .filter(|r| {
            !matches!(
                r.template.as_deref(),
                Some("/repos/{owner}/{repo}/issues" | "/repos/{owner}/{repo}/pulls")
            )
        })
        .map(|r| format!("{} {}?{}", r.method, r.path, r.query))
        .collect();
    assert!(
        others.is_empty(),
        "requests beyond the two lists: {others:#?}"
    );
    // The pull list only as the merge scanner's safety net, every tenth scan.
    assert!(
        window.len() <= 2 * issues + 1 && pulls <= 1,
        "{} requests in {issues} cycles ({pulls} pull lists)",
        window.len()
    );
    // The backlog is read whole every tenth poll, in full when it changed
    // since the last whole reading (here: the agent's issue left it); in
    // between, only its changes are asked for, and those are unchanged.
    let whole_backlog = |r: &&crate::fake_forge::RequestRecord| {
        r.template.as_deref() == Some("/repos/{owner}/{repo}/issues") && !r.query.contains("since=")
    };
    let fresh: Vec<String> = window
        .iter()
        .filter(|r| r.status != 304 && !whole_backlog(r))
        .map(|r| format!("{} {}?{} -> {}", r.method, r.path, r.query, r.status))
        .collect();
    assert!(fresh.is_empty(), "answered in full: {fresh:#?}");
    assert!(h.forge.merges().is_empty() && !h.forge.pull(pr).merged);
    h.assert_no_violations();
}
