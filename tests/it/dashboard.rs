//! The web dashboard (`forgehand run --dashboard`) against a running daemon
//! with the scripted agent, looked at in a real headless Chromium
//! (`browser.rs`): the issue appears, its stage changes without a reload,
//! its page shows the agent's pane with secrets cut out, forge text stays
//! text; `/metrics` read by a strict parser (`prometheus.rs`); `/api/status`
//! is `forgehand status --json`; a token-protected dashboard refuses
//! without the token, in the browser and to scripts.

use forgehand::store::ClaimStatus;
use reqwest::StatusCode;
use serde_json::Value;

use crate::browser::Browser;
use crate::fake_forge::CI_CONTEXT;
use crate::harness::{Harness, OTHER_SECRET, STEP};
use crate::prometheus;
use crate::support::wait_until;

const DASHBOARD_TOKEN: &str = "dash-5ecret-token-0123456789";

/// Forge text meant to be markup, with a secret of the daemon's environment
/// early enough to reach the agent's screen (it shows a message's first line).
fn hostile_title() -> String {
    format!("{OTHER_SECRET} <img src=x onerror=\"document.title='pwned'\">")
}

/// The address in the daemon's "dashboard on http://ADDR/" line.
fn dashboard_address(log: &str) -> Option<String> {
    let rest = log.split("dashboard on http://").nth(1)?;
    rest.split('/').next().map(str::to_string)
}

async fn start(h: &mut Harness, addr: &str) -> String {
    h.enable();
    h.start_daemon_with(&["--dashboard", addr]);
    let bound = wait_until("the daemon logs its dashboard address", STEP, || async {
        dashboard_address(&h.daemon_log())
    })
    .await;
    h.wait_for_labels().await;
    let port = bound.rsplit(':').next().expect("a port").to_string();
    format!("http://127.0.0.1:{port}")
}

/// The text of the `/metrics` answer, parsed.
async fn metrics(client: &reqwest::Client, base: &str) -> prometheus::Exposition {
    let response = client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .expect("GET /metrics");
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4"),
        "{:?}",
        response.headers()
    );
    let text = response.text().await.expect("the metrics");
    prometheus::parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

fn stage_of(browser_issue: &str) -> String {
    format!("document.querySelector('[data-issue=\"{browser_issue}\"] .stage')?.textContent")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_follows_an_issue_live_in_a_browser() {
    let mut h = Harness::new("", "").await;
    let base = start(&mut h, "127.0.0.1:0").await;
    let client = reqwest::Client::new();
    let title = hostile_title();
    let issue = h.forge.create_issue(&title, "Say hello.", &["backlog"]);
    let row = format!("proj/{issue}");

    let mut browser = Browser::start(1200, 800).await;
    browser.goto(&format!("{base}/")).await;
    browser
        .wait_for(
            "the stage awaiting_ci",
            &format!("{} === 'awaiting_ci'", stage_of(&row)),
            STEP,
        )
        .await;
    // Forge text is shown as text: no element made of it, the secret cut out.
    let shown = browser
        .eval(&format!(
            "document.querySelector('[data-issue=\"{row}\"] .title').textContent"
        ))
        .await;
    assert_eq!(
        shown,
        Value::from(title.replace(OTHER_SECRET, "[REDACTED]")),
        "the title as shown"
    );
    assert_eq!(
        browser
            .eval("document.querySelectorAll('img').length")
            .await,
        0
    );
    assert_eq!(browser.eval("document.title").await, "forgehand");
    let pr = h.wait_for_pr(issue).await;
    browser
        .wait_for(
            "the PR link",
            &format!(
                "document.querySelector('[data-issue=\"{row}\"] a[href$=\"/acme/widget/pulls/{pr}\"]')"
            ),
            STEP,
        )
        .await;

    // CI goes green: the stage changes on the page that is already open.
    browser.eval("window.forgehandMarker = 'no reload'").await;
    let head = h.forge.pull(pr).head_sha;
    h.forge.set_status(
        &head,
        CI_CONTEXT,
        "success",
        "tests pass",
        "http://ci.example/1",
    );
    browser
        .wait_for(
            "the stage awaiting_review",
            &format!("{} === 'awaiting_review'", stage_of(&row)),
            STEP,
        )
        .await;
    assert_eq!(
        browser.eval("window.forgehandMarker").await,
        "no reload",
        "the page was reloaded"
    );

    // A reader that does not wait for events sees the same: the page comes
    // with its data.
    let dom = crate::browser::dump_dom(&format!("{base}/")).await;
    assert!(dom.contains(&format!("data-issue=\"{row}\"")), "{dom}");
    assert!(dom.contains(">awaiting_review<"), "{dom}");
    assert!(
        !dom.contains(OTHER_SECRET) && !dom.contains("<img"),
        "{dom}"
    );
    let dom = crate::browser::dump_dom(&format!("{base}/issue/proj/{issue}")).await;
    assert!(dom.contains("Received message 1"), "{dom}");

    // The issue's page: the agent's pane, redacted, and the journal.
    browser.goto(&format!("{base}/issue/proj/{issue}")).await;
    let pane = browser
        .wait_for(
            "the agent's pane",
            "(t => t.includes('PHASE:awaiting_ci') && t)(document.getElementById('pane').textContent)",
            STEP,
        )
        .await;
    let pane = pane.as_str().expect("pane text");
    assert!(pane.contains("Received message 1"), "{pane}");
    assert!(pane.contains("[REDACTED] <img"), "{pane}");
    assert!(!pane.contains(OTHER_SECRET), "{pane}");
    browser
        .wait_for(
            "the journal",
            "[...document.querySelectorAll('#journal .kind')].some(k => k.textContent === 'pr_opened')",
            STEP,
        )
        .await;
    assert_eq!(
        browser
            .eval("document.getElementById('stage').textContent")
            .await,
        "awaiting_review"
    );
    // A session no claim holds is not shown, whatever its name.
    let out = h.tmux(&[
        "new-session",
        "-d",
        "-s",
        "dev-proj-999",
        "printf 'not-forgehands-session\\n'; exec cat",
    ]);
    assert!(out.status.success(), "{out:?}");
    browser.goto(&format!("{base}/issue/proj/999")).await;
    browser
        .wait_for(
            "the page of an issue nobody holds",
            "document.getElementById('pane-state').textContent === '(no live session)' \
             && document.getElementById('heading').textContent === 'forgehand holds no such issue'",
            STEP,
        )
        .await;
    assert_eq!(
        browser
            .eval("document.getElementById('pane').textContent")
            .await,
        ""
    );
    if let Ok(path) = std::env::var("FORGEHAND_DASHBOARD_SCREENSHOT") {
        browser.goto(&format!("{base}/")).await;
        browser
            .wait_for("the overview", &stage_of(&row), STEP)
            .await;
        std::fs::write(&path, browser.screenshot().await).expect("writing the screenshot");
    }

    // Every answer forbids scripts but the dashboard's own.
    let page = client.get(format!("{base}/")).send().await.expect("GET /");
    let csp = page.headers()["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("script-src 'self'") && csp.contains("default-src 'none'"),
        "{csp}"
    );
    // A name rebound to 127.0.0.1 does not reach a dashboard without a token.
    let rebound = client
        .get(format!("{base}/api/status"))
        .header("Host", "attacker.example")
        .send()
        .await
        .expect("GET with another Host");
    assert_eq!(rebound.status(), StatusCode::FORBIDDEN);

    // /api/status is `forgehand status --json`.
    let api: Value = client
        .get(format!("{base}/api/status"))
        .send()
        .await
        .expect("GET /api/status")
        .json()
        .await
        .expect("JSON");
    let cli = h.run(&["status", "--json", "--state", &h.state_arg()]);
    assert!(cli.status.success(), "{cli:?}");
    let cli: Value = serde_json::from_slice(&cli.stdout).expect("status JSON");
    let without_updated = |v: &Value| {
        let mut v = v.clone();
        for row in v["issues"].as_array_mut().expect("rows") {
            row.as_object_mut().expect("a row").remove("updated_at");
        }
        v
    };
    // The same rows, but for the secret in the title.
    assert!(!api.to_string().contains(OTHER_SECRET), "{api}");
    let cli: Value =
        serde_json::from_str(&cli.to_string().replace(OTHER_SECRET, "[REDACTED]")).expect("JSON");
    assert_eq!(without_updated(&api), without_updated(&cli));
    assert_eq!(api["issues"][0]["stage"], "awaiting_review");

    // A quota as a GitHub project records it (this forge reports none).
    let reset = chrono::DateTime::from_timestamp(2_000_000_000, 0).expect("a time");
    forgehand::store::Db::open(&h.state.join("forgehand.db"))
        .expect("the daemon's database")
        .save_forge_quota("proj", 4321, Some(5000), reset)
        .expect("saving a quota");

    // /metrics, parsed strictly.
    let m = metrics(&client, &base).await;
    assert_eq!(
        m.value("forgehand_forge_quota_remaining", &[("project", "proj")]),
        Some(4321.0)
    );
    assert_eq!(
        m.value("forgehand_forge_quota_limit", &[("project", "proj")]),
        Some(5000.0)
    );
    assert_eq!(
        m.value(
            "forgehand_forge_quota_reset_timestamp_seconds",
            &[("project", "proj")]
        ),
        Some(2e9)
    );
    let proj = [("project", "proj")];
    assert_eq!(
        m.value(
            "forgehand_issues",
            &[
                ("project", "proj"),
                ("status", "active"),
                ("stage", "awaiting_review")
            ]
        ),
        Some(1.0)
    );
    assert_eq!(m.value("forgehand_sessions", &proj), Some(1.0));
    assert_eq!(m.value("forgehand_merges_total", &proj), Some(0.0));
    assert_eq!(m.value("forgehand_ci_attempts", &proj), Some(0.0));
    assert_eq!(m.value("forgehand_review_rounds", &proj), Some(0.0));
    assert!(
        m.value("forgehand_forge_requests_total", &[("code", "200")])
            .unwrap_or(0.0)
            > 0.0
    );
    assert!(
        m.value("forgehand_forge_requests_total", &[("code", "201")])
            .unwrap_or(0.0)
            >= 1.0,
        "the PR was created"
    );
    assert_eq!(m.types["forgehand_forge_requests_total"], "counter");
    assert!(
        m.value(
            "forgehand_tokens",
            &[("project", "proj"), ("kind", "output")]
        )
        .is_some()
    );
    assert!(m.value("forgehand_cost_dollars", &proj).is_some());

    // Approved: merged, and the metrics say so.
    h.forge
        .submit_review(pr, "reviewer", "APPROVED", "looks good", None, &[]);
    h.wait_cleaned_up(issue).await;
    let done = [("project", "proj"), ("status", "done"), ("stage", "done")];
    let m = wait_until(
        "the merge and the finished issue in /metrics",
        STEP,
        || async {
            let m = metrics(&client, &base).await;
            (m.value("forgehand_issues", &done) == Some(1.0)).then_some(m)
        },
    )
    .await;
    assert_eq!(m.value("forgehand_merges_total", &proj), Some(1.0));
    assert_eq!(m.value("forgehand_sessions", &proj), Some(0.0));
    h.assert_no_violations();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dashboard_with_a_token_refuses_without_it() {
    let mut h = Harness::new("", "").await;
    h.env
        .push(("FORGEHAND_DASHBOARD_TOKEN".into(), DASHBOARD_TOKEN.into()));
    // Every address of the machine: only the token keeps people out.
    let base = start(&mut h, "0.0.0.0:0").await;
    let question = "Which <b>language</b> should it greet in?";
    let issue = h.forge.create_issue(
        "Say hello",
        &format!("Say hello.\nfake-agent: escalate {question}"),
        &["backlog"],
    );
    let client = reqwest::Client::new();
    for path in ["/api/status", "/metrics", "/events", "/issue/proj/1", "/"] {
        let refused = client
            .get(format!("{base}{path}"))
            .send()
            .await
            .expect("GET");
        assert_eq!(refused.status(), StatusCode::UNAUTHORIZED, "{path}");
        let wrong = client
            .get(format!("{base}{path}"))
            .bearer_auth("dash-5ecret-token-012345678X")
            .send()
            .await
            .expect("GET");
        assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED, "{path}");
    }
    let allowed = client
        .get(format!("{base}/api/status"))
        .bearer_auth(DASHBOARD_TOKEN)
        .send()
        .await
        .expect("GET /api/status");
    assert_eq!(allowed.status(), StatusCode::OK);

    // In the browser: the login form, nothing of the factory; a wrong token
    // is refused; the right one shows the issue.
    let mut browser = Browser::start(420, 800).await;
    browser.goto(&format!("{base}/")).await;
    assert_eq!(browser.eval("location.pathname").await, "/login");
    assert_eq!(browser.eval("document.body.dataset.page").await, "login");
    assert_eq!(
        browser
            .eval("document.querySelectorAll('[data-issue]').length")
            .await,
        0
    );
    browser
        .submit("document.getElementById('token').value = 'not-the-token-at-all'; document.querySelector('form').submit()")
        .await;
    assert_eq!(
        browser
            .eval("document.querySelector('.failed')?.textContent ?? ''")
            .await,
        "That is not the dashboard's token."
    );
    browser
        .submit(&format!(
            "document.getElementById('token').value = '{DASHBOARD_TOKEN}'; document.querySelector('form').submit()"
        ))
        .await;
    assert_eq!(browser.eval("location.pathname").await, "/");
    // The agent's question, as text, on the issue's card.
    let row = format!("proj/{issue}");
    let reason = browser
        .wait_for(
            "the escalation's reason on the overview",
            &format!("document.querySelector('[data-issue=\"{row}\"] .reason')?.textContent"),
            STEP,
        )
        .await;
    assert_eq!(reason, question);
    assert_eq!(
        browser
            .eval(&format!(
                "document.querySelector('[data-issue=\"{row}\"] .waiting').textContent"
            ))
            .await,
        "waiting for answer"
    );
    // On a phone's width each issue is a card and nothing scrolls sideways.
    assert_eq!(
        browser
            .eval("getComputedStyle(document.querySelector('table.issues thead')).display")
            .await,
        "none"
    );
    assert_eq!(
        browser
            .eval("document.documentElement.scrollWidth <= window.innerWidth")
            .await,
        true
    );
    // The cookie is not the token.
    let cookies = browser
        .call("Network.getAllCookies", serde_json::json!({}))
        .await;
    assert!(!cookies.to_string().contains(DASHBOARD_TOKEN), "{cookies}");
    assert!(
        !h.daemon_log().contains(DASHBOARD_TOKEN),
        "the token was logged"
    );
}

#[tokio::test]
async fn a_dashboard_off_loopback_needs_a_good_token() {
    let h = Harness::new("", "").await;
    let run = |token: Option<&str>| {
        let mut cmd = h.command(&[
            "run",
            "--projects",
            &h.projects.display().to_string(),
            "--state",
            &h.state_arg(),
            "--dashboard",
            "0.0.0.0:0",
        ]);
        if let Some(token) = token {
            cmd.env("FORGEHAND_DASHBOARD_TOKEN", token);
        }
        cmd.output().expect("running forgehand")
    };
    let out = run(None);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("FORGEHAND_DASHBOARD_TOKEN") && stderr.contains("loopback"),
        "{stderr}"
    );
    let out = run(Some("short-5ecret"));
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("too short"), "{stderr}");
    assert!(
        !stderr.contains("short-5ecret"),
        "the token was echoed: {stderr}"
    );
    // The rule itself, for each case.
    use forgehand::dashboard::{Access, access};
    let lo = "127.0.0.1".parse().unwrap();
    let any = "0.0.0.0".parse().unwrap();
    assert!(matches!(access(lo, None), Ok(Access::Loopback)));
    assert!(matches!(
        access("::1".parse().unwrap(), None),
        Ok(Access::Loopback)
    ));
    assert!(access(any, None).is_err());
    assert!(access(any, Some(" dash-5ecret-token-0123456789")).is_err());
    assert!(access(any, Some("dash-5ecret-tøken-0123456789")).is_err());
    assert!(matches!(
        access(any, Some(DASHBOARD_TOKEN)),
        Ok(Access::Token(_))
    ));
    assert!(matches!(
        access(lo, Some(DASHBOARD_TOKEN)),
        Ok(Access::Token(_))
    ));
}

/// What the pages are built from, straight from a database: the reasons
/// read back from the journal, which finished issues are shown, the counts.
#[test]
fn the_store_views_read_reasons_and_counts_from_the_journal() {
    use forgehand::store::{Db, EventKind, Waiting};
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(&dir.path().join("forgehand.db")).unwrap();
    let mut blocked = crate::store::row("p", 1);
    blocked.status = ClaimStatus::Blocked;
    blocked.stage = "blocked".into();
    let mut asking = crate::store::row("p", 2);
    asking.stage = "working".into();
    asking.waiting = Some(Waiting::Answer);
    asking.ci_attempts = 2;
    asking.review_rounds = 1;
    db.save_claim(&blocked).unwrap();
    db.save_claim(&asking).unwrap();
    for n in 3..=5 {
        let mut done = crate::store::row("p", n);
        done.status = ClaimStatus::Done;
        done.stage = "done".into();
        done.claimed_at = chrono::Utc::now() - chrono::TimeDelta::minutes(n as i64);
        db.save_claim(&done).unwrap();
    }
    db.journal("p", Some(1), EventKind::Error, "blocked: CI failed 3 times")
        .unwrap();
    db.journal("p", Some(1), EventKind::Error, "not a block")
        .unwrap();
    db.journal(
        "p",
        Some(2),
        EventKind::PhaseSeen,
        "PHASE:escalate (Reason: which colour?)",
    )
    .unwrap();
    db.journal("p", Some(2), EventKind::PhaseSeen, "PHASE:awaiting_ci")
        .unwrap();
    db.journal(
        "p",
        Some(3),
        EventKind::Merged,
        "not merged yet: CI is not green on the head",
    )
    .unwrap();
    db.journal("p", Some(3), EventKind::Merged, "merged PR #9 at abc (def)")
        .unwrap();

    // Every held issue, and of the finished ones only the newest claimed.
    let overview = db.overview(1, 2).unwrap();
    let shown: Vec<u64> = overview.issues.iter().map(|v| v.claim.issue).collect();
    assert_eq!(shown.len(), 3, "{shown:?}");
    assert!(
        shown.contains(&1) && shown.contains(&2) && shown.contains(&3),
        "{shown:?}"
    );
    let reason = |n: u64| {
        overview
            .issues
            .iter()
            .find(|v| v.claim.issue == n)
            .and_then(|v| v.reason.clone())
    };
    assert_eq!(reason(1).as_deref(), Some("CI failed 3 times"));
    assert_eq!(reason(2).as_deref(), Some("which colour?"));
    assert_eq!(reason(3), None);
    let recent = &overview
        .issues
        .iter()
        .find(|v| v.claim.issue == 2)
        .unwrap()
        .recent;
    assert_eq!(recent.len(), 2);
    assert_eq!(recent[1].detail, "PHASE:awaiting_ci", "oldest first");

    let counts = db.counts().unwrap();
    assert_eq!(
        counts.merges,
        vec![("p".to_string(), 1)],
        "only the merge itself counts"
    );
    assert_eq!(counts.rounds, vec![("p".to_string(), 2, 1)]);
    assert_eq!(
        counts.sessions,
        vec![("p".to_string(), "dev-p-2".to_string())],
        "the session of the active claim"
    );
    assert!(
        counts
            .issues
            .contains(&("p".into(), "done".into(), "done".into(), 3))
    );
}
