//! Many sessions on one daemon: how long 200 backlog issues take to become 200
//! working agents, then what the daemon costs while they all sit idle (its own
//! RSS and CPU from `/proc`, the requests the fake forge receives).

use std::time::{Duration, Instant};

use chrono::Utc;

use super::rig::{ProjectOpts, Rig, clock_ticks, proc_sample};

/// The poll interval of the `sessions` scenario: six poll cycles fit in the
/// idle window.
pub const POLL_SECS: u64 = 10;

pub struct ScaleResult {
    pub sessions: usize,
    /// Daemon start → every agent has received its task.
    pub start_s: f64,
    /// Daemon start → every tmux session exists.
    pub tmux_sessions_s: f64,
    /// Daemon start → its first issue listing.
    pub first_poll_s: f64,
    pub rss_mb: f64,
    pub cpu_pct_idle: f64,
    /// The daemon's children (tmux and git clients) that ended in the window.
    pub children_cpu_pct_idle: f64,
    /// The tmux server, which answers every tmux call.
    pub tmux_server_cpu_pct_idle: f64,
    pub idle_requests_per_cycle: f64,
    pub idle_window_s: f64,
    pub poll_interval_s: u64,
}

/// `sessions` hanging agents on a daemon polling every `poll_secs`.
pub async fn many_sessions(sessions: usize, idle_window: Duration, poll_secs: u64) -> ScaleResult {
    // Let start-up work (the last prompts, the first ticks) finish before measuring.
    let warm_up = Duration::from_secs(2 * poll_secs.max(5));
    let mut rig = Rig::new(&ProjectOpts {
        poll_interval: format!("{poll_secs}s"),
        max_sessions: sessions as u32,
        ..Default::default()
    })
    .await;
    let issues: Vec<u64> = (0..sessions)
        .map(|i| {
            rig.h.forge.create_issue(
                &format!("Bench: idle session {i}"),
                "fake-agent: hang",
                &["backlog"],
            )
        })
        .collect();
    let started = Utc::now();
    rig.start(None);
    let first_poll = rig
        .first_poll(Duration::from_secs(2 * poll_secs + 30))
        .await;
    let since_start = || (Utc::now() - started).as_seconds_f64();
    let mut tmux_sessions_s = None;
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        rig.assert_running();
        if tmux_sessions_s.is_none() && tmux_session_count(&rig) >= sessions {
            tmux_sessions_s = Some(since_start());
        }
        let briefed = issues
            .iter()
            .filter(|n| {
                std::fs::read_to_string(rig.h.transcript(**n))
                    .is_ok_and(|t| t.contains("fake-agent: hang"))
            })
            .count();
        if briefed == sessions {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "only {briefed} of {sessions} agents got their task within 300 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let start_s = since_start();
    let tmux_sessions_s = tmux_sessions_s.unwrap_or(start_s);

    tokio::time::sleep(warm_up).await;
    rig.assert_running();
    let pid = rig.pid();
    let server = tmux_server_pid(&rig);
    let window_start = Utc::now();
    let before = proc_sample(pid);
    let server_before = proc_sample(server);
    let t0 = Instant::now();
    let mut rss_kb = before.rss_kb;
    // Sampled through the window so a transient peak counts, not just the end.
    while t0.elapsed() < idle_window {
        tokio::time::sleep(Duration::from_secs(1)).await;
        rss_kb = rss_kb.max(proc_sample(pid).rss_kb);
    }
    let after = proc_sample(pid);
    let server_after = proc_sample(server);
    let elapsed = t0.elapsed().as_secs_f64();
    let window_end = Utc::now();
    rig.assert_running();
    let pct = |ticks: u64| 100.0 * ticks as f64 / clock_ticks() as f64 / elapsed;
    let requests = rig
        .h
        .forge
        .requests()
        .iter()
        .filter(|r| r.received >= window_start && r.received < window_end)
        .count();
    let cycles = elapsed / poll_secs as f64;
    let live = tmux_session_count(&rig);
    assert_eq!(live, sessions, "sessions died while idle");
    ScaleResult {
        sessions,
        start_s,
        tmux_sessions_s,
        first_poll_s: (first_poll - started).as_seconds_f64(),
        rss_mb: rss_kb as f64 / 1024.0,
        cpu_pct_idle: pct(after.cpu_ticks - before.cpu_ticks),
        children_cpu_pct_idle: pct(after.children_cpu_ticks - before.children_cpu_ticks),
        tmux_server_cpu_pct_idle: pct(server_after.cpu_ticks - server_before.cpu_ticks),
        idle_requests_per_cycle: requests as f64 / cycles,
        idle_window_s: elapsed,
        poll_interval_s: poll_secs,
    }
}

/// The pid of the tmux server the sessions run on.
fn tmux_server_pid(rig: &Rig) -> u32 {
    let out = rig.h.tmux(&["display-message", "-p", "#{pid}"]);
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("the tmux server's pid")
}

fn tmux_session_count(rig: &Rig) -> usize {
    let out = rig.h.tmux(&["list-sessions", "-F", "#{session_name}"]);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.starts_with("dev-"))
        .count()
}

/// Requests per poll cycle while `sessions` agents wait for a review that does not
/// come. Polling only, each dev actor looks at its PR's reviews once per cycle;
/// with webhooks (`webhook`), only every tenth cycle, as a safety net.
pub async fn awaiting_review(sessions: usize, window: Duration, webhook: bool) -> f64 {
    const POLL: Duration = Duration::from_secs(2);
    let mut rig = Rig::new(&ProjectOpts {
        poll_interval: format!("{}s", POLL.as_secs()),
        max_sessions: sessions as u32,
        webhook,
        ..Default::default()
    })
    .await;
    rig.h.forge.set_behaviour(crate::fake_forge::Behaviour {
        ci: crate::fake_forge::CiBehaviour::Succeed,
        ..Default::default()
    });
    let issues: Vec<u64> = (0..sessions)
        .map(|i| {
            rig.h
                .forge
                .create_issue(&format!("Bench: review wait {i}"), "", &["backlog"])
        })
        .collect();
    let listen = webhook.then(super::latency::free_local_addr);
    rig.start(listen.as_deref());
    for n in &issues {
        rig.wait_stage(*n, "awaiting_review", Duration::from_secs(120))
            .await;
    }
    tokio::time::sleep(2 * POLL).await;
    let from = Utc::now();
    let t0 = Instant::now();
    tokio::time::sleep(window).await;
    let cycles = t0.elapsed().as_secs_f64() / POLL.as_secs_f64();
    let to = Utc::now();
    rig.assert_running();
    let requests = rig
        .h
        .forge
        .requests()
        .iter()
        .filter(|r| r.received >= from && r.received < to)
        .count();
    requests as f64 / cycles
}
