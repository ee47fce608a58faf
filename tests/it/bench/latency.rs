//! Reaction latencies, measured outside the daemon: phase file written →
//! first forge request (at the fake forge), and review webhook sent → review
//! text in the agent's transcript.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use crate::fake_forge::{Behaviour, CiBehaviour, ReviewBehaviour};
use crate::harness::STEP;

use super::rig::{ProjectOpts, Rig, WEBHOOK_SECRET};

/// An agent does not write phases back to back; trials start at most this often,
/// so one trial's tail (the answer being read, the journal) is not the next one's wait.
const TRIAL_SPACING: Duration = Duration::from_millis(25);

/// Milliseconds from `t0` to `t1`.
fn ms_between(t0: DateTime<Utc>, t1: DateTime<Utc>) -> f64 {
    (t1 - t0).num_microseconds().unwrap_or(i64::MAX) as f64 / 1000.0
}

/// `trials` times: the bench writes `PHASE:escalate` with a unique reason into the
/// session's phase file, as the agent would, and takes the time until the fake forge
/// receives the escalation comment (the first request that phase causes).
pub async fn phase_reaction(trials: usize) -> Vec<f64> {
    let mut rig = Rig::new(&ProjectOpts::default()).await;
    // The agent takes its task and then stays silent: the bench writes the phases.
    let issue = rig
        .h
        .forge
        .create_issue("Bench: phase reaction", "fake-agent: hang", &["backlog"]);
    rig.start(None);
    rig.wait_stage(issue, "working", STEP).await;
    let phase_file = rig.phase_file(issue);
    let comments = format!("/issues/{issue}/comments");
    let mut samples = Vec::with_capacity(trials);
    for k in 0..trials {
        let next = tokio::time::Instant::now() + TRIAL_SPACING;
        let tag = format!("bench-phase-trial-{k}");
        let t0 = Utc::now();
        // Open, truncate, write, close: what an agent's file tool does.
        std::fs::write(&phase_file, format!("PHASE:escalate\nReason: {tag}\n"))
            .expect("writing the phase file");
        let sent = |r: &crate::fake_forge::RequestRecord| {
            r.method == "POST" && r.path.ends_with(&comments) && r.body.contains(&tag)
        };
        if let Err(e) = rig
            .h
            .forge
            .wait_until(Duration::from_secs(10), |s| s.requests().iter().any(sent))
            .await
        {
            rig.assert_running();
            panic!("trial {k}: no escalation comment: {e:#}");
        }
        let requests = rig.h.forge.requests();
        let comment = requests
            .iter()
            .find(|r| sent(r))
            .expect("the comment just seen");
        samples.push(ms_between(t0, comment.received));
        tokio::time::sleep_until(next).await;
    }
    rig.h.assert_no_violations();
    samples
}

/// `trials` review rounds on one PR: the fake forge holds a changes-requested review
/// on the current head, the bench sends the matching signed `pull_request_review_rejected`
/// webhook to `--listen` and takes the time until the review text shows up in the
/// fake agent's transcript (which it writes as soon as the paste's Enter arrives).
/// Polling is slowed to an hour (the first poll at start picks the issue) so that
/// only the webhook can explain the reaction.
pub async fn webhook_to_paste(trials: usize) -> Vec<f64> {
    let mut rig = Rig::new(&ProjectOpts {
        poll_interval: "1h".into(),
        max_review_rounds: 1000,
        webhook: true,
        ..Default::default()
    })
    .await;
    rig.h.forge.set_behaviour(Behaviour {
        ci: CiBehaviour::Succeed,
        review: ReviewBehaviour::None,
        ..Default::default()
    });
    let issue = rig
        .h
        .forge
        .create_issue("Bench: webhook to paste", "Make a change.", &["backlog"]);
    let addr = free_local_addr();
    rig.start(Some(&addr));
    let url = format!("http://{addr}/hooks/forgejo");
    let client = reqwest::Client::new();
    let pr = rig.h.wait_for_pr(issue).await;
    let transcript = rig.h.transcript(issue);
    let reviews_path = format!("/pulls/{pr}/reviews");
    let mut samples = Vec::with_capacity(trials);
    for k in 0..trials {
        // Ready when the daemon waits for a review on the current head and has already
        // looked once (its own look right after CI passed: one per round, plus the
        // webhook's look per earlier trial).
        let looked = 2 * k + 1;
        rig.wait_stage(issue, "awaiting_review", STEP).await;
        crate::support::wait_until("the daemon's look at the reviews", STEP, || async {
            let n = rig
                .h
                .forge
                .requests()
                .iter()
                .filter(|r| r.method == "GET" && r.path.ends_with(&reviews_path))
                .count();
            (n >= looked && rig.stage(issue).as_deref() == Some("awaiting_review")).then_some(())
        })
        .await;
        let tag = format!("bench-review-trial-{k}");
        rig.h.forge.submit_review(
            pr,
            "reviewer",
            "REQUEST_CHANGES",
            &format!("Please change this ({tag})."),
            None,
            &[],
        );
        let review = serde_json::json!({
            "action": "reviewed",
            "number": pr,
            "pull_request": { "number": pr, "state": "open" },
            "repository": { "full_name": "acme/widget", "name": "widget" },
            "review": { "type": "pull_request_review_rejected", "content": tag },
            "sender": { "login": "reviewer" },
        });
        let t0 = Instant::now();
        let delivery = format!("bench-review-{k}");
        let event = "pull_request_review_rejected";
        assert!(
            send_hook(&client, &url, event, &delivery, &review).await,
            "the review webhook was refused"
        );
        samples.push(wait_for_text(&transcript, &tag, t0).await);
    }
    rig.h.assert_no_violations();
    samples
}

/// Sends one signed Forgejo webhook; whether it was accepted.
async fn send_hook(
    client: &reqwest::Client,
    url: &str,
    event: &str,
    delivery: &str,
    payload: &serde_json::Value,
) -> bool {
    let body = payload.to_string();
    let signature = forgehand::webhook::sign(WEBHOOK_SECRET.as_bytes(), body.as_bytes());
    let sent = client
        .post(url)
        .header("content-type", "application/json")
        .header("x-forgejo-event", event)
        .header("x-forgejo-delivery", delivery)
        .header("x-forgejo-signature", signature)
        .body(body)
        .send()
        .await;
    sent.is_ok_and(|answer| answer.status().is_success())
}

/// Milliseconds from `t0` until `path` contains `needle`, read every millisecond.
async fn wait_for_text(path: &std::path::Path, needle: &str, t0: Instant) -> f64 {
    let deadline = t0 + Duration::from_secs(20);
    loop {
        if std::fs::read_to_string(path).is_ok_and(|t| t.contains(needle)) {
            return t0.elapsed().as_secs_f64() * 1000.0;
        }
        assert!(
            Instant::now() < deadline,
            "{needle} never reached {}",
            path.display()
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// A loopback address nobody listens on (bound, read, released).
pub fn free_local_addr() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("binding a free port");
    listener.local_addr().expect("its address").to_string()
}
