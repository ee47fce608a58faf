//! What the poller knows of the issues others depend on, so that a poll costs
//! what changed rather than the size of the backlog: sixty issues that all
//! say `Depends on #99` cost one look at #99, not sixty.
//!
//! - An issue in this poll's open list needs no look-up: it is open.
//! - Each dependency is asked about at most once per poll.
//! - What was learnt is kept across polls and asked again only when a nudge
//!   names the issue (`forget`), when a dependent's list entry changed
//!   (`Look::Edited`), or as the safety net once it is older than the
//!   recheck interval: a share of such looks per poll (`periodic::
//!   safety_net_share`), so that knowledge learnt in one poll does not come
//!   due in one spike.
//!
//! `run --dry-run` decides with the same `Round`: what a round asks goes
//! through `Reads`, which can only read, so a dry run cannot write.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use async_trait::async_trait;

use crate::actors::ProjectCtx;
use crate::actors::dev::machine::DevState;
use crate::forge::{ForgeError, ForgeResult, Issue, IssueNumber, IssueState};
use crate::picking;
use crate::store::{ClaimRow, ClaimStatus};

/// What deciding whether an issue is ready reads, and nothing else.
#[async_trait]
pub trait Reads: Send + Sync {
    async fn issue(&self, n: IssueNumber) -> ForgeResult<Issue>;
    /// The forge's dependency links of `n` (`Forge::issue_dependencies`).
    async fn linked(&self, n: IssueNumber) -> ForgeResult<Vec<Issue>>;
    /// The issues an agent said `n` waits for when it refused it
    /// (`waiting_for` of its claim).
    async fn refused_for(&self, n: IssueNumber) -> anyhow::Result<Vec<IssueNumber>>;
}

/// The poller reads the forge and the store.
#[async_trait]
impl Reads for ProjectCtx {
    async fn issue(&self, n: IssueNumber) -> ForgeResult<Issue> {
        self.forge.get_issue(n).await
    }

    async fn linked(&self, n: IssueNumber) -> ForgeResult<Vec<Issue>> {
        self.forge.issue_dependencies(n).await
    }

    async fn refused_for(&self, n: IssueNumber) -> anyhow::Result<Vec<IssueNumber>> {
        waiting_for(self.store.claim(self.name(), n.0).await?)
    }
}

/// Issues an agent said its issue waits for when it refused it
/// (`unmet_dependency`): it is not picked again until they are closed.
pub fn waiting_for(claim: Option<ClaimRow>) -> anyhow::Result<Vec<IssueNumber>> {
    let Some(claim) = claim else {
        return Ok(Vec::new());
    };
    if claim.status != ClaimStatus::Released {
        return Ok(Vec::new());
    }
    let state: DevState = serde_json::from_str(&claim.state_json)?;
    Ok(state.waiting_for)
}

/// What a dependency was found to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DepState {
    Open,
    Closed,
    /// The forge does not know it: waited for (a typo is a person's to fix),
    /// with a warning when asked.
    Missing,
}

struct Learnt {
    state: DepState,
    at: Instant,
}

/// Dependencies learnt in earlier polls, by issue number.
#[derive(Default)]
pub struct Dependencies {
    known: HashMap<IssueNumber, Learnt>,
}

impl Dependencies {
    /// A nudge named `n`: what was learnt about it may be wrong now.
    pub fn forget(&mut self, n: IssueNumber) {
        self.known.remove(&n);
    }

    /// How many dependencies are known.
    pub fn known(&self) -> usize {
        self.known.len()
    }

    /// A poll over `listed` (the open issues it just listed), which may
    /// spend `safety_net` requests on knowledge that is only old, not known
    /// to be stale: the rest waits for the next poll.
    pub fn round<'a>(
        &'a mut self,
        listed: &[Issue],
        recheck: Duration,
        safety_net: usize,
    ) -> Round<'a> {
        Round {
            listed: listed.iter().map(|i| i.number).collect(),
            asked: HashSet::new(),
            safety_net_left: safety_net,
            recheck,
            deps: self,
        }
    }

    /// Drop what is old and no waiting issue needs, so the map does not grow
    /// with every dependency ever seen.
    pub fn prune(&mut self, needed: &HashSet<IssueNumber>, recheck: Duration) {
        self.known
            .retain(|n, l| l.at.elapsed() < recheck || needed.contains(n));
    }
}

/// Why an issue is looked at in this poll.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Look {
    /// Not checked before (or a nudge made the check stale): what is known
    /// of its dependencies is used, the rest asked.
    Fresh,
    /// Its list entry changed (its `Depends on` lines may have): its
    /// dependencies are asked again.
    Edited,
    /// Checked long ago and nothing said it changed: the safety net, within
    /// the poll's budget.
    SafetyNet,
}

/// What `Round::check` found.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Every dependency is closed.
    Ready,
    /// These are still open (the first one found may be all of them).
    Waiting(Vec<IssueNumber>),
    /// The safety net's budget for this poll is spent: unchanged, look next poll.
    Postponed,
}

/// One poll's use of the knowledge.
pub struct Round<'a> {
    deps: &'a mut Dependencies,
    listed: HashSet<IssueNumber>,
    /// Asked in this poll: never asked twice.
    asked: HashSet<IssueNumber>,
    safety_net_left: usize,
    recheck: Duration,
}

impl Round<'_> {
    /// Whether any of `on` (what an unchanged issue was found waiting for)
    /// is still open, as far as is known; old knowledge is refreshed within
    /// the safety net's budget.
    pub async fn any_open(
        &mut self,
        reads: &dyn Reads,
        on: &[IssueNumber],
    ) -> anyhow::Result<bool> {
        for &dep in on {
            if self.state(reads, dep, false).await? != DepState::Closed {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Whether the safety net may spend one more request in this poll.
    pub fn safety_net(&mut self) -> bool {
        let go = self.safety_net_left > 0;
        self.safety_net_left = self.safety_net_left.saturating_sub(1);
        go
    }

    /// The dependencies of `issue` still open. Both kinds must be closed:
    /// `Depends on #N` / `Blocked by #N` lines (and what an agent said it
    /// waits for when it refused the issue) and the forge's own dependency
    /// links. The first open one found is enough to say "not ready".
    pub async fn check(
        &mut self,
        reads: &dyn Reads,
        issue: &Issue,
        look: Look,
    ) -> anyhow::Result<Verdict> {
        let mut deps = picking::body_dependencies(&issue.body);
        for dep in reads.refused_for(issue.number).await? {
            if !deps.contains(&dep) {
                deps.push(dep);
            }
        }
        let force = look == Look::Edited;
        // What is known to be open settles it without a request.
        if !force && let Some(&dep) = deps.iter().find(|d| self.known_open(**d)) {
            return Ok(Verdict::Waiting(vec![dep]));
        }
        for dep in deps {
            if self.state(reads, dep, force).await? != DepState::Closed {
                tracing::debug!("#{} waits for #{dep}", issue.number);
                return Ok(Verdict::Waiting(vec![dep]));
            }
        }
        if look == Look::SafetyNet && !self.safety_net() {
            return Ok(Verdict::Postponed);
        }
        let linked = match reads.linked(issue.number).await {
            Ok(linked) => linked,
            // Dependencies may be disabled on the repository.
            Err(ForgeError::NotFound(_)) => Vec::new(),
            Err(e) => return Err(e.into()),
        };
        let mut open = Vec::new();
        for dep in linked {
            let state = match dep.state {
                IssueState::Open => DepState::Open,
                IssueState::Closed => DepState::Closed,
            };
            self.learn(dep.number, state);
            if state == DepState::Open {
                open.push(dep.number);
            }
        }
        Ok(if open.is_empty() {
            Verdict::Ready
        } else {
            Verdict::Waiting(open)
        })
    }

    /// Listed in this poll, or learnt open recently enough.
    fn known_open(&self, dep: IssueNumber) -> bool {
        self.listed.contains(&dep)
            || self
                .deps
                .known
                .get(&dep)
                .is_some_and(|l| l.state != DepState::Closed && l.at.elapsed() < self.recheck)
    }

    /// What `dep` is: from this poll's list, from what was learnt (asked
    /// again when `force`d, or when old and the budget allows), else asked.
    async fn state(
        &mut self,
        reads: &dyn Reads,
        dep: IssueNumber,
        force: bool,
    ) -> anyhow::Result<DepState> {
        if self.listed.contains(&dep) {
            return Ok(DepState::Open);
        }
        if let Some(learnt) = self.deps.known.get(&dep) {
            let state = learnt.state;
            let old = learnt.at.elapsed() >= self.recheck;
            if self.asked.contains(&dep) || (!force && (!old || !self.safety_net())) {
                return Ok(state);
            }
        }
        let state = match reads.issue(dep).await {
            Ok(d) if d.state == IssueState::Closed => DepState::Closed,
            Ok(_) => DepState::Open,
            Err(ForgeError::NotFound(_)) => {
                tracing::warn!("#{dep} is named as a dependency but does not exist");
                DepState::Missing
            }
            Err(e) => return Err(e.into()),
        };
        self.learn(dep, state);
        Ok(state)
    }

    fn learn(&mut self, dep: IssueNumber, state: DepState) {
        self.asked.insert(dep);
        let at = Instant::now();
        self.deps.known.insert(dep, Learnt { state, at });
    }
}
