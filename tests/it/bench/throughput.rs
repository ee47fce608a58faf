//! Issues end to end: a backlog of issues, the fake forge's CI green on every
//! push and its reviewer approving every green head, `max_sessions` agents at a
//! time; how fast the backlog is merged and what it costs in forge requests.

use std::time::Duration;

use chrono::Utc;

use crate::fake_forge::{Behaviour, CiBehaviour, ReviewBehaviour};

use super::rig::{ProjectOpts, Rig};

pub struct ThroughputResult {
    pub issues: usize,
    pub issues_per_minute: f64,
    pub requests_per_issue: f64,
    /// Daemon start → every issue closed.
    pub elapsed_s: f64,
    /// Daemon start → its first issue listing.
    pub first_poll_s: f64,
    pub max_sessions: u32,
    pub poll_interval: String,
}

pub async fn end_to_end(issues: usize, max_sessions: u32, poll_interval: &str) -> ThroughputResult {
    let mut rig = Rig::new(&ProjectOpts {
        poll_interval: poll_interval.to_owned(),
        max_sessions,
        ..Default::default()
    })
    .await;
    rig.h.forge.set_behaviour(Behaviour {
        ci: CiBehaviour::Succeed,
        review: ReviewBehaviour::ApproveWhenGreen,
        ..Default::default()
    });
    let numbers: Vec<u64> = (0..issues)
        .map(|i| {
            rig.h.forge.create_issue(
                &format!("Bench: issue {i}"),
                "Make a small change.",
                &["backlog"],
            )
        })
        .collect();
    let started = Utc::now();
    rig.start(None);
    let first_poll = rig.first_poll(Duration::from_secs(120)).await;
    let done = rig
        .h
        .forge
        .wait_until(Duration::from_secs(480), |s| {
            numbers.iter().all(|n| !s.issue(*n).is_open())
        })
        .await;
    let elapsed = (Utc::now() - started).as_seconds_f64();
    if let Err(e) = done {
        rig.assert_running();
        panic!("the backlog was not merged in time: {e:#}");
    }
    let merged = rig.h.forge.read(|s| s.merges().len());
    assert_eq!(merged, issues, "one merge per issue");
    rig.h.assert_no_violations();
    let requests = rig.h.forge.request_count();
    ThroughputResult {
        issues,
        issues_per_minute: issues as f64 * 60.0 / elapsed,
        requests_per_issue: requests as f64 / issues as f64,
        elapsed_s: elapsed,
        first_poll_s: (first_poll - started).as_seconds_f64(),
        max_sessions,
        poll_interval: poll_interval.to_owned(),
    }
}
