//! The benchmark behind `scripts/bench` (issue 7): the real daemon against the
//! fake forge with scripted agents, measured from outside the daemon. One
//! `#[ignore]`d test (CI never runs it) writes one JSON object to the file named
//! by `FORGEHAND_BENCH_OUT`; `scripts/bench` prints it and a table.
//!
//! - `FORGEHAND_BENCH_ONLY=phase,webhook,sessions,sessions_1s,issues` runs a subset; the keys
//!   of the others are `null`.
//! - `FORGEHAND_BENCH_QUICK=1` shrinks every scenario (a smoke run, not a result).
//!
//! # Layout
//! - `rig.rs` — harness + project file + daemon process + `/proc` readings.
//! - `latency.rs` — phase file → forge request; review webhook → paste.
//! - `scale.rs` — 200 sessions: start time, then idle RSS, CPU and requests.
//! - `throughput.rs` — 100 issues end to end.
//! - `cold.rs` — `cold_cycle`: what a poll costs on a backlog waiting for one issue.
//! - `fast_poll.rs` — the 200 sessions again at `poll_interval = "1s"` (issue 17).

mod cold;
mod fast_poll;
mod latency;
mod rig;
mod scale;
mod throughput;

use std::time::Duration;

use serde_json::{Value, json};

/// The sizes the issue pins, and the quick ones for a smoke run.
struct Sizes {
    phase_trials: usize,
    webhook_trials: usize,
    sessions: usize,
    idle_window: Duration,
    issues: usize,
    max_sessions: u32,
    /// Sessions left waiting for a review, for the second idle request count.
    review_wait_sessions: usize,
}

const FULL: Sizes = Sizes {
    phase_trials: 100,
    webhook_trials: 30,
    sessions: 200,
    idle_window: Duration::from_secs(60),
    issues: 100,
    max_sessions: 20,
    review_wait_sessions: 20,
};

const QUICK: Sizes = Sizes {
    phase_trials: 10,
    webhook_trials: 3,
    sessions: 10,
    idle_window: Duration::from_secs(10),
    issues: 6,
    max_sessions: 3,
    review_wait_sessions: 3,
};

/// The throughput scenario polls at forgehand's default interval.
const THROUGHPUT_POLL: &str = "60s";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a benchmark: run it with scripts/bench"]
async fn bench() {
    let out = std::env::var("FORGEHAND_BENCH_OUT")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/target/bench.json").to_owned());
    let only = std::env::var("FORGEHAND_BENCH_ONLY").unwrap_or_default();
    let wanted = |name: &str| only.is_empty() || only.split(',').any(|s| s.trim() == name);
    let sizes = if std::env::var("FORGEHAND_BENCH_QUICK").is_ok_and(|v| v == "1") {
        QUICK
    } else {
        FULL
    };
    let mut report = json!({
        "phase_reaction_ms_p50": null,
        "phase_reaction_ms_p99": null,
        "webhook_to_paste_ms_p50": null,
        "webhook_to_paste_ms_p99": null,
        "sessions": null,
        "sessions_start_s": null,
        "daemon_rss_mb": null,
        "daemon_cpu_pct_idle": null,
        "idle_requests_per_project_cycle": null,
        "issues": null,
        "issues_per_minute": null,
        "requests_per_issue": null,
        "sessions_start_s_poll_1s": null,
        "daemon_cpu_pct_idle_poll_1s": null,
    });
    let mut details = serde_json::Map::new();
    details.insert(
        "quick".into(),
        json!(sizes.phase_trials != FULL.phase_trials),
    );

    if wanted("cold_cycle") {
        let quick = sizes.phase_trials != FULL.phase_trials;
        cold::measure(&mut report, &mut details, quick).await;
        eprintln!("bench: cold_cycle done");
    }

    if wanted("phase") {
        let samples = latency::phase_reaction(sizes.phase_trials).await;
        report["phase_reaction_ms_p50"] = round(percentile(&samples, 50.0), 1);
        report["phase_reaction_ms_p99"] = round(percentile(&samples, 99.0), 1);
        details.insert("phase_trials".into(), json!(samples.len()));
        details.insert(
            "phase_reaction_ms_max".into(),
            round(percentile(&samples, 100.0), 1),
        );
        eprintln!("bench: phase reaction done");
    }
    if wanted("webhook") {
        if daemon_has_listen() {
            let samples = latency::webhook_to_paste(sizes.webhook_trials).await;
            report["webhook_to_paste_ms_p50"] = round(percentile(&samples, 50.0), 1);
            report["webhook_to_paste_ms_p99"] = round(percentile(&samples, 99.0), 1);
            details.insert("webhook_trials".into(), json!(samples.len()));
        } else {
            details.insert(
                "webhook_skipped".into(),
                json!("this forgehand has no `run --listen`"),
            );
        }
        eprintln!("bench: webhook done");
    }
    if wanted("sessions") {
        let r = scale::many_sessions(sizes.sessions, sizes.idle_window, scale::POLL_SECS).await;
        report["sessions"] = json!(r.sessions);
        report["sessions_start_s"] = round(r.start_s, 1);
        report["daemon_rss_mb"] = round(r.rss_mb, 1);
        report["daemon_cpu_pct_idle"] = round(r.cpu_pct_idle, 2);
        report["idle_requests_per_project_cycle"] = round(r.idle_requests_per_cycle, 2);
        details.insert("tmux_sessions_s".into(), round(r.tmux_sessions_s, 1));
        details.insert(
            "children_cpu_pct_idle".into(),
            round(r.children_cpu_pct_idle, 2),
        );
        details.insert(
            "tmux_server_cpu_pct_idle".into(),
            round(r.tmux_server_cpu_pct_idle, 2),
        );
        details.insert("sessions_first_poll_s".into(), round(r.first_poll_s, 1));
        details.insert("idle_window_s".into(), round(r.idle_window_s, 1));
        details.insert("idle_poll_interval_s".into(), json!(r.poll_interval_s));
        let review_wait = sizes.review_wait_sessions;
        let per_cycle = scale::awaiting_review(review_wait, Duration::from_secs(10), false).await;
        details.insert(
            format!("idle_requests_per_project_cycle_{review_wait}_awaiting_review"),
            round(per_cycle, 2),
        );
        if daemon_has_listen() {
            // Ten cycles: the window holds every session's one safety-net look.
            let per_cycle =
                scale::awaiting_review(review_wait, Duration::from_secs(20), true).await;
            details.insert(
                format!("idle_requests_per_project_cycle_{review_wait}_awaiting_review_webhooks"),
                round(per_cycle, 2),
            );
        }
        eprintln!("bench: sessions done");
    }
    if wanted("sessions_1s") {
        fast_poll::measure(&sizes, &mut report, &mut details).await;
        eprintln!("bench: sessions at a 1 s poll done");
    }
    if wanted("issues") {
        let r = throughput::end_to_end(sizes.issues, sizes.max_sessions, THROUGHPUT_POLL).await;
        report["issues"] = json!(r.issues);
        report["issues_per_minute"] = round(r.issues_per_minute, 1);
        report["requests_per_issue"] = round(r.requests_per_issue, 1);
        details.insert("issues_elapsed_s".into(), round(r.elapsed_s, 1));
        details.insert("issues_first_poll_s".into(), round(r.first_poll_s, 1));
        details.insert("issues_max_sessions".into(), json!(r.max_sessions));
        details.insert("issues_poll_interval".into(), json!(r.poll_interval));
        eprintln!("bench: issues done");
    }
    report["details"] = Value::Object(details);
    let text = serde_json::to_string(&report).expect("the report is JSON");
    std::fs::write(&out, format!("{text}\n"))
        .unwrap_or_else(|e| panic!("writing the report to {out}: {e}"));
    println!("{text}");
}

/// Nearest-rank percentile of `samples` (`p` in 0..=100).
fn percentile(samples: &[f64], p: f64) -> f64 {
    assert!(!samples.is_empty(), "no samples");
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn round(value: f64, digits: i32) -> Value {
    let scale = 10f64.powi(digits);
    json!((value * scale).round() / scale)
}

/// Whether the daemon under test serves webhooks (`run --listen`).
fn daemon_has_listen() -> bool {
    std::process::Command::new(env!("CARGO_BIN_EXE_forgehand"))
        .args(["run", "--help"])
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("--listen"))
}

#[test]
fn percentiles_are_nearest_rank() {
    let samples: Vec<f64> = (1..=100).map(f64::from).collect();
    assert_eq!(percentile(&samples, 50.0), 50.0);
    assert_eq!(percentile(&samples, 99.0), 99.0);
    assert_eq!(percentile(&samples, 100.0), 100.0);
    assert_eq!(percentile(&[3.0, 1.0, 2.0], 50.0), 2.0);
    assert_eq!(percentile(&[7.0], 99.0), 7.0);
}
