//! The merge scanner: one per project (DESIGN §1 "MergeScanner"). Every
//! `poll_interval`, while `state/.dev-active` exists, it merges the open pull
//! requests into the primary branch that are approved on their head and
//! CI-green and that no live dev actor owns: agent PRs whose session is gone,
//! and PRs people opened without forgehand. A dev actor merges its own PR;
//! this catches everything that would otherwise sit there approved forever.
//!
//! An idle scan costs at most one request, and mostly none: on Forgejo and
//! GitHub the pull list (conditional) is read only when a look at what
//! changed, which the poller may have made already, names a pull request
//! (`Forge::open_pulls_as_of`, `forge::changes`), after a nudge and every
//! `RECHECK_CYCLES` scans. A PR found not ready (CI not green, not
//! approved) is not asked about again until its list entry changes (a push
//! moves its head), a nudge names it or its head (a review, a status), or
//! `RECHECK_CYCLES` scans have passed (a webhook that never arrived, a
//! status, which stamps nothing): a share of those per scan, so they are
//! spread out. Each head's status is asked once per scan.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use ractor::{Actor, ActorProcessingErr, ActorRef};
use regex::Regex;
use tokio::task::JoinHandle;
use tracing::Instrument;

use crate::forge::{CommitSha, IssueNumber, PrNumber, PullRequest};
use crate::prompt;
use crate::store::{ClaimStatus, EventKind};

use super::dev::machine::Stage;
use super::merging::{self, Decision, MergePolicy, Merged, Statuses};
use super::outage::Outage;
use super::parent::Parent;
use super::periodic::{self, Periodic, RECHECK_CYCLES};
use super::reconcile;
use super::{ProjectCtx, Timings};

/// How long the scanner waits for the supervisor's list of owned issues.
const SUPERVISOR_TIMEOUT: Duration = Duration::from_secs(10);

pub struct MergeScanner;

pub struct MergeScannerArgs {
    pub ctx: Arc<ProjectCtx>,
    pub supervisor: Parent,
    /// Scan once, report `ScanDone`, and stop.
    pub once: bool,
    pub timings: Timings,
}

pub enum MergeScannerMsg {
    /// The `poll_interval` timer: look, trusting earlier checks of PRs whose
    /// list entry did not change.
    Tick,
    /// Something changed on the forge: look now, checking again what it names.
    Nudge(ScanHint),
    /// Scan, once for every `Tick` and `Nudge` since the last scan: a burst of
    /// webhooks costs one scan, and the last of them is never lost.
    Run,
}

/// What a nudge says changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScanHint {
    /// A pull request (pushed to, reviewed, commented on, closed).
    Pull(PrNumber),
    /// The statuses of a commit.
    Commit(CommitSha),
    /// Anything.
    All,
}

/// What the nudges since the last scan ask of it.
#[derive(Default)]
struct Asks {
    /// Something changed just now: no earlier look at the forge will do.
    nudged: bool,
    /// A pull request changed: its list, not only what changed.
    list: bool,
}

/// A PR found not ready to merge, with its list entry when it was checked.
struct NotReady {
    entry: PullRequest,
    at: Instant,
    /// The end of its veto window, when it waits in one: due then.
    until: Option<DateTime<Utc>>,
}

pub struct MergeScannerState {
    ctx: Arc<ProjectCtx>,
    supervisor: Parent,
    once: bool,
    /// The timer and the queued `Run`; nudges add to `hints`.
    periodic: Periodic,
    hints: Vec<ScanHint>,
    not_ready: HashMap<PrNumber, NotReady>,
    /// The veto window each PR was last announced for (the comment is
    /// posted once per window, without asking the forge every scan).
    announced: HashMap<PrNumber, DateTime<Utc>>,
    /// Scans since the pull list was last asked for whatever the looks at
    /// what changed said: it is, every `RECHECK_CYCLES`.
    since_listed: u32,
    outage: Outage,
}

impl MergeScannerState {
    /// Forget the checks the nudges since the last scan made stale; what
    /// they say this scan must ask.
    fn apply_hints(&mut self) -> Asks {
        let mut asks = Asks::default();
        for hint in std::mem::take(&mut self.hints) {
            asks.nudged = true;
            match hint {
                ScanHint::All => {
                    asks.list = true;
                    self.not_ready.clear();
                }
                ScanHint::Pull(n) => {
                    asks.list = true;
                    self.not_ready.remove(&n);
                }
                ScanHint::Commit(sha) => self.not_ready.retain(|_, p| p.entry.head_sha != sha),
            }
        }
        asks
    }

    /// Whether `pr` needs a look in this scan: `Some(true)` when only the
    /// safety net says so (found not ready long ago, unchanged since).
    fn needs_look(&self, pr: &PullRequest) -> Option<bool> {
        let recheck = self
            .ctx
            .project
            .poll_interval
            .saturating_mul(RECHECK_CYCLES);
        match self.not_ready.get(&pr.number) {
            Some(n) if n.until.is_some_and(|until| Utc::now() >= until) => Some(false),
            Some(n) if n.entry == *pr && n.at.elapsed() < recheck => None,
            Some(n) if n.entry == *pr => Some(true),
            _ => Some(false),
        }
    }
}

impl Actor for MergeScanner {
    type Msg = MergeScannerMsg;
    type State = MergeScannerState;
    type Arguments = MergeScannerArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<MergeScannerMsg>,
        args: MergeScannerArgs,
    ) -> Result<MergeScannerState, ActorProcessingErr> {
        Ok(MergeScannerState {
            ctx: args.ctx,
            supervisor: args.supervisor,
            once: args.once,
            periodic: Periodic::default(),
            hints: Vec::new(),
            not_ready: HashMap::new(),
            announced: HashMap::new(),
            since_listed: 0,
            outage: args.timings.outage(),
        })
    }

    async fn post_start(
        &self,
        myself: ActorRef<MergeScannerMsg>,
        state: &mut MergeScannerState,
    ) -> Result<(), ActorProcessingErr> {
        if state.once {
            myself.send_message(MergeScannerMsg::Run)?;
        } else {
            let every = state.ctx.project.poll_interval;
            state
                .periodic
                .start(&myself, every, || MergeScannerMsg::Tick)?;
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<MergeScannerMsg>,
        state: &mut MergeScannerState,
    ) -> Result<(), ActorProcessingErr> {
        state.periodic.stop();
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<MergeScannerMsg>,
        msg: MergeScannerMsg,
        state: &mut MergeScannerState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            MergeScannerMsg::Run => state.periodic.running(),
            MergeScannerMsg::Tick | MergeScannerMsg::Nudge(_) => {
                if let MergeScannerMsg::Nudge(hint) = msg {
                    state.hints.push(hint);
                }
                return state.periodic.trigger(&myself, MergeScannerMsg::Run);
            }
        }
        let span = tracing::info_span!("merge_scan", project = %state.ctx.name());
        let mirror_pushes = match scan(state).instrument(span).await {
            Ok(pushes) => {
                if let Some(line) = state.outage.recovered(Utc::now()) {
                    state
                        .ctx
                        .journal(None, EventKind::Daemon, &format!("merge scanner: {line}"));
                }
                pushes
            }
            // An outage: said once, and the scan is tried again after a
            // backoff rather than only at the next interval.
            Err(e) if crate::transient::is_transient(&e) && !state.once => {
                let (line, wait) = state.outage.failed(Utc::now(), &e);
                if let Some(line) = line {
                    state
                        .ctx
                        .journal(None, EventKind::Error, &format!("merge scanner: {line}"));
                }
                myself.send_after(wait, || MergeScannerMsg::Tick);
                Vec::new()
            }
            Err(e) => {
                tracing::warn!("merge scan failed: {e:#}");
                state
                    .ctx
                    .journal(None, EventKind::Error, &format!("merge scan failed: {e:#}"));
                Vec::new()
            }
        };
        if state.once {
            // `run --once` exits when every scanner reported: let this scan's
            // mirror pushes finish first, without holding up this handler.
            let supervisor = state.supervisor.clone();
            let project = state.ctx.name().to_string();
            tokio::spawn(async move {
                for push in mirror_pushes {
                    let _ = push.await;
                }
                let _ = supervisor.scan_done(&project);
            });
            myself.stop(None);
        }
        Ok(())
    }
}

/// One pass over the open pull requests; returns the mirror pushes it started.
async fn scan(state: &mut MergeScannerState) -> anyhow::Result<Vec<JoinHandle<()>>> {
    let started = Instant::now();
    let asks = state.apply_hints();
    let ctx = state.ctx.clone();
    let ctx = &ctx;
    if !ctx.paths.dev_active().exists() {
        tracing::debug!(
            "{} is absent: not merging",
            ctx.paths.dev_active().display()
        );
        return Ok(Vec::new());
    }
    let project = ctx.name().to_string();
    let owned = state.supervisor.owned(&project, SUPERVISOR_TIMEOUT).await?;
    let mut pushes = Vec::new();
    let every = ctx.project.poll_interval;
    let as_of = periodic::as_of(started, every, asks.nudged || state.once);
    let list = asks.list || state.since_listed + 1 >= RECHECK_CYCLES;
    let pulls = ctx.forge.open_pulls_as_of(as_of, list).await?;
    state.since_listed = if list { 0 } else { state.since_listed + 1 };
    state
        .not_ready
        .retain(|n, _| pulls.iter().any(|p| p.number == *n));
    state
        .announced
        .retain(|n, _| pulls.iter().any(|p| p.number == *n));
    // The rest are looked at in the next scans, so PRs found not ready in
    // one scan do not all come due in one spike.
    let mut safety_net_left = periodic::safety_net_share(state.not_ready.len());
    let mut statuses = Statuses::default();
    for pr in pulls {
        match state.needs_look(&pr) {
            None => continue,
            Some(true) if safety_net_left == 0 => continue,
            Some(true) => safety_net_left -= 1,
            Some(false) => {}
        }
        match consider(ctx, &pr, &owned, &mut state.announced, &mut statuses).await {
            Ok(Considered::Merged(mirrors)) => {
                state.not_ready.remove(&pr.number);
                pushes.push(mirrors);
            }
            Ok(Considered::NotReady { until }) => {
                let at = Instant::now();
                let entry = pr;
                state
                    .not_ready
                    .insert(entry.number, NotReady { entry, at, until });
            }
            Ok(Considered::Skipped) => {
                state.not_ready.remove(&pr.number);
            }
            // An outage stops the scan (it is tried again); one PR the forge
            // chokes on must not stop the others.
            Err(e) if crate::transient::is_transient(&e) => return Err(e),
            Err(e) => {
                tracing::warn!("PR #{}: {e:#}", pr.number);
                ctx.journal(
                    linked_issues(&pr.head_ref, &pr.body, |k| ctx.forge.issue_for_key(k))
                        .first()
                        .map(|n| n.0),
                    EventKind::Error,
                    &format!("merge scan of PR #{}: {e:#}", pr.number),
                );
            }
        }
    }
    Ok(pushes)
}

/// What `consider` made of a PR.
enum Considered {
    /// Merged; the handle ends when its mirror pushes did.
    Merged(JoinHandle<()>),
    /// Asked the forge: not green, not approved or not mergeable, or in
    /// its veto window until `until`.
    NotReady { until: Option<DateTime<Utc>> },
    /// Not the scanner's to merge, seen from the list alone (a draft, another
    /// base, a PR a dev actor owns).
    Skipped,
}

/// Merges `pr` if it is ready and nobody else will; in its veto window,
/// says once on it when it will merge (`announced`: the windows said).
async fn consider(
    ctx: &Arc<ProjectCtx>,
    pr: &PullRequest,
    owned: &[u64],
    announced: &mut HashMap<PrNumber, DateTime<Utc>>,
    statuses: &mut Statuses,
) -> anyhow::Result<Considered> {
    let n = pr.number;
    let head = &pr.head_sha;
    // Nobody is driving this PR, so an explicit approval is the only sign a
    // person wants it in, whatever the project lets its agents skip.
    let policy = MergePolicy::of(ctx, 1);
    // What the list entry alone settles costs no request.
    if merging::decide_on_pull(pr, head, &policy).is_some() {
        return Ok(Considered::Skipped);
    }
    let linked = linked_issues(&pr.head_ref, &pr.body, |k| ctx.forge.issue_for_key(k));
    if let Some(owner) = linked.iter().find(|i| owned.contains(&i.0)) {
        tracing::debug!("PR #{n}: the dev actor of #{owner} merges it");
        return Ok(Considered::Skipped);
    }
    // The scanner keeps no count of its own: the window runs from the
    // latest review on the head.
    let clock = merging::Clock {
        now: chrono::Utc::now(),
        ready_since: None,
    };
    let mut decision = merging::look_with(ctx, pr, head, &policy, clock, statuses).await?;
    // GitHub's list of pulls leaves `mergeable` out: the pull request itself says.
    let full;
    let pr = if decision == Decision::MergeabilityUnknown {
        full = ctx.forge.get_pull(n).await?;
        decision = merging::look_again(ctx, &full, head, &policy, clock, statuses).await?;
        &full
    } else {
        pr
    };
    if let Decision::VetoWindow { until } = decision {
        tracing::info!("PR #{n} merges at {until} unless someone objects (veto window)");
        if announced.get(&n) != Some(&until) {
            // Once per window across restarts too: the window's start is
            // its latest review, so the same text since then is this one's.
            let start = until - TimeDelta::from_std(policy.delay).unwrap_or_default();
            ctx.comment_once(n.0, &prompt::merge_window(until, false), start)
                .await?;
            announced.insert(n, until);
        }
        return Ok(Considered::NotReady { until: Some(until) });
    }
    if decision != Decision::Merge {
        return Ok(Considered::NotReady { until: None });
    }
    let mirrors = match merging::merge_and_finish(ctx, pr, head, &linked).await? {
        Merged::Conflict(why) => {
            tracing::info!("PR #{n} not merged: {why}");
            return Ok(Considered::NotReady { until: None });
        }
        Merged::Done { mirrors, .. } => mirrors,
    };
    for issue in linked {
        // No restart resumes an issue whose PR is merged.
        let done = ctx
            .store
            .claim(ctx.name(), issue.0)
            .await?
            .map(|c| c.status)
            == Some(ClaimStatus::Done);
        if !done {
            reconcile::settle_claim(ctx, issue.0, Stage::Done).await?;
        }
    }
    Ok(Considered::Merged(mirrors))
}

static CLOSING_KEYWORD: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b(?:fix(?:es|ed)?|close[sd]?|resolve[sd]?):?\s+#(\d+)\b")
        .expect("valid regex")
});

/// The issues a PR fixes: its head branch `fix/issue-<key>` (forgehand's own
/// naming; `issue_for_key` is the forge's, so a local plan named `7` is not
/// taken for issue #7) first, then every `Fixes #N` / `Closes #N` /
/// `Resolves #N` in its body; without duplicates.
pub fn linked_issues(
    head_ref: &str,
    body: &str,
    issue_for_key: impl Fn(&str) -> Option<IssueNumber>,
) -> Vec<IssueNumber> {
    let mut issues = Vec::new();
    if let Some(n) = head_ref.strip_prefix("fix/issue-").and_then(issue_for_key) {
        issues.push(n);
    }
    for cap in CLOSING_KEYWORD.captures_iter(body) {
        if let Ok(n) = cap[1].parse() {
            let n = IssueNumber(n);
            if !issues.contains(&n) {
                issues.push(n);
            }
        }
    }
    issues
}
