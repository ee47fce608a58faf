//! Issue 17: what many sessions cost when polling is fast. The `sessions`
//! scenario again (`scale.rs`: hanging agents, start time, then an idle
//! window measured in `/proc`), at `poll_interval = "1s"`: with liveness
//! learnt per session and tick, the daemon's CPU grew with sessions × ticks;
//! with tmux's events and one listing per tick, it should not.

use serde_json::json;

use super::{Sizes, round, scale};

/// The poll interval of this scenario, in seconds.
const POLL_SECS: u64 = 1;

/// Runs the scenario and fills its keys of `report`, and `details`.
pub async fn measure(
    sizes: &Sizes,
    report: &mut serde_json::Value,
    details: &mut serde_json::Map<String, serde_json::Value>,
) {
    let r = scale::many_sessions(sizes.sessions, sizes.idle_window, POLL_SECS).await;
    report["sessions_start_s_poll_1s"] = round(r.start_s, 1);
    report["daemon_cpu_pct_idle_poll_1s"] = round(r.cpu_pct_idle, 2);
    let mut add = |key: &str, value: serde_json::Value| {
        details.insert(format!("poll_1s_{key}"), value);
    };
    add("sessions", json!(r.sessions));
    add("tmux_sessions_s", round(r.tmux_sessions_s, 1));
    add("first_poll_s", round(r.first_poll_s, 1));
    add("idle_window_s", round(r.idle_window_s, 1));
    add("daemon_rss_mb", round(r.rss_mb, 1));
    add("children_cpu_pct_idle", round(r.children_cpu_pct_idle, 2));
    add(
        "tmux_server_cpu_pct_idle",
        round(r.tmux_server_cpu_pct_idle, 2),
    );
    add(
        "idle_requests_per_project_cycle",
        round(r.idle_requests_per_cycle, 2),
    );
}
