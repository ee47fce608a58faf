//! What watching many sessions costs (issue 17): a dead pane or a closed
//! session is learnt from tmux's hooks, not from polling each session; idle
//! sessions cost one tmux call per tick for all of them; a burst of session
//! starts shares one fetch. The calls are counted from outside, by `tmux`
//! and `git` wrappers first on the daemon's `PATH` that log and run the
//! real programs.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, Ordering};
use std::task::Poll;

use forgehand::actors::fetches::Fetches;
use forgehand::store::Db;

use crate::harness::{Harness, PROJECT, ProjectFile, STEP};
use crate::support::wait_until;

/// A poll interval no test waits for: whatever happens within `STEP` was
/// not brought by a tick.
const NO_POLL: &str = "1h";

/// The liveness watch's own safety net pushed as far out as `NO_POLL`
/// (it lists the sessions at least every 30 s by default): what is noticed
/// within `STEP` was noticed from tmux's news alone.
pub const NO_SAFETY_NET: &str = "liveness_safety_net=1h";

/// Puts logging `tmux` and `git` wrappers first on the daemon's `PATH`; each
/// call appends its first three words to `<dir>/<program>.log`.
fn log_calls(h: &mut Harness) -> PathBuf {
    let dir = h.dir.path().join("wrappers");
    std::fs::create_dir_all(&dir).unwrap();
    let path = std::env::var("PATH").unwrap_or_default();
    for program in ["tmux", "git"] {
        let real = which(program, &path);
        let log = dir.join(format!("{program}.log"));
        let script = format!(
            "#!/bin/sh\necho \"$1 $2 $3\" 2>/dev/null >> '{}'\nexec '{}' \"$@\"\n",
            log.display(),
            real.display()
        );
        let wrapper = dir.join(program);
        std::fs::write(&wrapper, script).unwrap();
        let mut perms = std::fs::metadata(&wrapper).unwrap().permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
        std::fs::set_permissions(&wrapper, perms).unwrap();
    }
    h.env
        .push(("PATH".into(), format!("{}:{path}", dir.display())));
    dir
}

fn which(program: &str, path: &str) -> PathBuf {
    path.split(':')
        .map(|d| Path::new(d).join(program))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("{program} is not on PATH"))
}

fn calls(dir: &Path, program: &str) -> Vec<String> {
    std::fs::read_to_string(dir.join(format!("{program}.log")))
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn project(h: &Harness, poll_interval: &str, max_sessions: u32) {
    h.write_project_file(&ProjectFile {
        poll_interval,
        agent_extra: &format!("max_sessions = {max_sessions}"),
        ..ProjectFile::default()
    });
}

/// Waits until every issue's task was delivered.
async fn wait_briefed(h: &Harness, issues: &[u64]) {
    let db = h.state.join("forgehand.db");
    for n in issues {
        wait_until(&format!("#{n}'s task delivered"), STEP, || async {
            let events = Db::open_read_only(&db)
                .ok()?
                .events(PROJECT, Some(*n))
                .ok()?;
            events
                .iter()
                .any(|e| e.detail == format!("task for #{n} delivered"))
                .then_some(())
        })
        .await;
    }
}

/// A session closed under the agent is respawned at once, with the poll an
/// hour away: tmux's `session-closed` hook said so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_session_is_noticed_without_a_poll() {
    let mut h = Harness::new("", "").await;
    h.env
        .push(("FORGEHAND_TIMINGS".into(), NO_SAFETY_NET.into()));
    project(&h, NO_POLL, 1);
    let n = h
        .forge
        .create_issue("Killed", "fake-agent: hang", &["backlog"]);
    h.enable();
    h.start_daemon();
    wait_briefed(&h, &[n]).await;
    let target = format!("={}", h.session(n));
    assert!(h.tmux(&["kill-session", "-t", &target]).status.success());
    h.agent_received(n, "this session was restarted").await;
    assert!(h.journal(n).iter().any(|(_, d)| d.contains("respawn 1")));
}

/// An agent that exits leaves a dead pane: respawned at once, with the poll
/// an hour away (`pane-died`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_pane_is_noticed_without_a_poll() {
    let mut h = Harness::new("", "").await;
    h.env
        .push(("FORGEHAND_TIMINGS".into(), NO_SAFETY_NET.into()));
    project(&h, NO_POLL, 1);
    let n = h
        .forge
        .create_issue("Dies", "fake-agent: exit", &["backlog"]);
    h.enable();
    h.start_daemon();
    let db = h.state.join("forgehand.db");
    wait_until("the first respawn", STEP, || async {
        let events = Db::open_read_only(&db)
            .ok()?
            .events(PROJECT, Some(n))
            .ok()?;
        events
            .iter()
            .any(|e| e.detail.ends_with("respawn 1"))
            .then_some(())
    })
    .await;
}

/// Idle sessions cost one tmux call per tick for all of them (a round:
/// hooks, listing, wait), never a call per session; the hooks carry fixed
/// text only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_sessions_cost_one_tmux_call_per_tick() {
    const SESSIONS: usize = 4;
    const TICKS: usize = 5;
    let mut h = Harness::new("", "").await;
    let wrappers = log_calls(&mut h);
    project(&h, "200ms", SESSIONS as u32);
    let issues: Vec<u64> = (0..SESSIONS)
        .map(|i| {
            h.forge
                .create_issue(&format!("Idle {i}"), "fake-agent: hang", &["backlog"])
        })
        .collect();
    h.enable();
    h.start_daemon();
    wait_briefed(&h, &issues).await;
    // A round: the hooks, the listing and the wait in one call.
    let round = |c: &String| c.starts_with("set-hook -g pane-died[1717]");
    let listings = |calls: &[String]| calls.iter().filter(|c| round(c)).count();
    // From the first listing after the last delivery: the starts are over.
    let from = calls(&wrappers, "tmux").len();
    wait_until("a listing after the starts", STEP, || async {
        (listings(&calls(&wrappers, "tmux")[from..]) >= 1).then_some(())
    })
    .await;
    let from = calls(&wrappers, "tmux").len();
    wait_until(&format!("{TICKS} more listings"), STEP, || async {
        (listings(&calls(&wrappers, "tmux")[from..]) >= TICKS).then_some(())
    })
    .await;
    let window = calls(&wrappers, "tmux")[from..].to_vec();
    let other: Vec<&String> = window.iter().filter(|c| !round(c)).collect();
    assert!(
        other.is_empty(),
        "idle sessions made tmux calls of their own: {other:?}"
    );
    // `pane-died` is a window hook: it shows with `-w`.
    let hooks: String = ["-g", "-gw"]
        .iter()
        .map(|scope| String::from_utf8_lossy(&h.tmux(&["show-hooks", scope]).stdout).into_owned())
        .collect();
    let mut ours: Vec<&str> = hooks.lines().filter(|l| l.contains("forgehand")).collect();
    ours.sort_unstable();
    assert_eq!(
        ours,
        [
            "pane-died[1717] wait-for -S forgehand-liveness",
            "session-closed[1717] wait-for -S forgehand-liveness"
        ],
        "{hooks}"
    );
}

/// A burst of issues picked at once shares one fetch of forgehand's clone
/// (two at most: one may have begun before the others asked), no start
/// asks the forge for its branch (`ls-remote`) on its own, and each agent's
/// repository takes two git processes (`init`, `read-tree`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_starts_shares_one_fetch() {
    const SESSIONS: usize = 6;
    let mut h = Harness::new("", "").await;
    let wrappers = log_calls(&mut h);
    project(&h, NO_POLL, SESSIONS as u32);
    let issues: Vec<u64> = (0..SESSIONS)
        .map(|i| {
            h.forge
                .create_issue(&format!("Burst {i}"), "fake-agent: hang", &["backlog"])
        })
        .collect();
    h.enable();
    h.start_daemon();
    wait_briefed(&h, &issues).await;
    let clone = h.state.join("repos").join(PROJECT);
    let git = calls(&wrappers, "git");
    let in_clone = |verb: &str| {
        git.iter()
            .filter(|c| *c == &format!("-C {} {verb}", clone.display()))
            .count()
    };
    assert!(
        (1..=2).contains(&in_clone("fetch")),
        "{} fetches for {SESSIONS} starts: {git:#?}",
        in_clone("fetch")
    );
    assert_eq!(in_clone("ls-remote"), 0, "{git:#?}");
    let worktrees = h.state.join("worktrees").join(PROJECT);
    let making: Vec<&String> = git
        .iter()
        .filter(|c| c.starts_with(&format!("-C {}", worktrees.display())))
        .collect();
    assert_eq!(making.len(), 2 * SESSIONS, "{making:#?}");
}

/// Callers asking at once share a fetch; one asking later gets a new one; a
/// failed fetch serves nobody.
#[tokio::test]
async fn fetches_are_shared_by_callers_asking_at_once() {
    let fetches = Fetches::default();
    let lock = tokio::sync::Mutex::new(());
    let count = AtomicU32::new(0);
    let count = &count;
    let fetch = |gate: Option<tokio::sync::oneshot::Receiver<()>>, fail: bool| {
        fetches.fresh(&lock, move || async move {
            count.fetch_add(1, Ordering::SeqCst);
            if let Some(gate) = gate {
                gate.await.expect("the gate opens");
            }
            if fail {
                anyhow::bail!("the forge is down");
            }
            Ok(())
        })
    };
    // Polled in order: the first caller's fetch waits at the gate while the
    // others ask, then the last opens it.
    let (open, gate) = tokio::sync::oneshot::channel();
    let mut callers: Vec<Pin<Box<dyn Future<Output = anyhow::Result<()>> + '_>>> =
        vec![Box::pin(fetch(Some(gate), false))];
    for _ in 0..9 {
        callers.push(Box::pin(fetch(None, false)));
    }
    let mut open = Some(open);
    callers.push(Box::pin(std::future::poll_fn(move |_| {
        let _ = open.take().expect("polled once").send(());
        Poll::Ready(Ok(()))
    })));
    for result in join_all(callers).await {
        result.unwrap();
    }
    // The first caller's fetch, and one for all who asked while it ran.
    assert_eq!(count.load(Ordering::SeqCst), 2);
    fetch(None, false).await.unwrap();
    assert_eq!(
        count.load(Ordering::SeqCst),
        3,
        "a later caller fetches anew"
    );
    assert!(fetch(None, true).await.is_err());
    fetch(None, false).await.unwrap();
    assert_eq!(
        count.load(Ordering::SeqCst),
        5,
        "a failed fetch serves nobody"
    );
}

/// Every future polled in the order given, each until it is ready.
async fn join_all<T>(mut futures: Vec<Pin<Box<dyn Future<Output = T> + '_>>>) -> Vec<T> {
    let mut results: Vec<Option<T>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        for (future, result) in futures.iter_mut().zip(results.iter_mut()) {
            if result.is_none()
                && let Poll::Ready(value) = future.as_mut().poll(cx)
            {
                *result = Some(value);
            }
        }
        if results.iter().all(Option::is_some) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await;
    results.into_iter().map(|r| r.expect("ready")).collect()
}
