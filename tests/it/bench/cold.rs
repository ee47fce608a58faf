//! `cold_cycle` (issue 20): what a poll costs on the world of `poll_cost`
//! (sixty backlog issues waiting for one open issue outside the backlog, five
//! open PRs with red CI and no review). The requests and wall time of
//! `forgehand run --once` on it, then the running daemon's requests per poll
//! cycle on the same world once it is warm (`WARM_UP`), and its busiest
//! cycle (the safety net's looks are spread over several). A cycle runs from
//! one poll's first issue-list request to the next poll's, the merge
//! scanner's requests counted where they fall.

use serde_json::{Value, json};

use super::rig::{ProjectOpts, Rig};
use crate::harness::{Harness, STEP};
use crate::poll_cost::{self, cycles, polls_since};

/// Cycles the daemon is watched for once warm: two safety-net periods of ten.
const CYCLES: usize = 20;
const QUICK_CYCLES: usize = 10;
/// Cycles left out before: the first (cold) one, and those while the burst
/// of sixty issues made at once is still recent enough to be asked about
/// (`forge::forgejo::changes`, five seconds at one poll a second).
const WARM_UP: usize = 8;

pub async fn measure(
    report: &mut Value,
    details: &mut serde_json::Map<String, Value>,
    quick: bool,
) {
    let h = Harness::new("", "").await;
    poll_cost::world(&h).await;
    h.enable();
    let from = h.forge.request_count();
    let took = poll_cost::run_once(&h, "info");
    report["cold_cycle_requests"] = json!(h.forge.request_count() - from);
    report["cold_cycle_s"] = json!((took.as_secs_f64() * 1000.0).round() / 1000.0);

    let watched = if quick { QUICK_CYCLES } else { CYCLES };
    let mut rig = Rig::new(&ProjectOpts {
        poll_interval: "1s".into(),
        ..Default::default()
    })
    .await;
    poll_cost::world(&rig.h).await;
    let from = rig.h.forge.request_count();
    rig.start(None);
    if let Err(e) = rig
        .h
        .forge
        .wait_until(STEP, |s| polls_since(s, from) > WARM_UP + watched)
        .await
    {
        rig.assert_running();
        panic!("cold_cycle: the daemon did not poll {watched} times: {e:#}");
    }
    rig.assert_running();
    let requests = rig.h.forge.read(|s| s.requests()[from..].to_vec());
    let sizes: Vec<usize> = cycles(&requests)
        .iter()
        .take(WARM_UP + watched)
        .map(|c| c.len())
        .collect();
    let steady = &sizes[WARM_UP..];
    let per_cycle = steady.iter().sum::<usize>() as f64 / steady.len() as f64;
    let mut sorted = steady.to_vec();
    sorted.sort_unstable();
    report["steady_requests_per_cycle"] = json!((per_cycle * 100.0).round() / 100.0);
    report["steady_max_cycle_requests"] = json!(steady.iter().max());
    details.insert(
        "steady_median_cycle_requests".into(),
        json!(sorted[sorted.len() / 2]),
    );
    details.insert("cold_cycle_requests_per_cycle".into(), json!(sizes));
}
