//! `forgehand run --dry-run`: one poll per project that changes nothing. It
//! asks the forge only what the poller would read (the ready list, each
//! candidate's dependencies, decided by the poller's own `Round`, which can
//! only read), reads the database read-only (when there is one) for the
//! sessions running and the budget, starts no session and writes nothing
//! anywhere; it prints, in picking order, what would be claimed and why each
//! other ready-labelled issue would not be.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use async_trait::async_trait;
use chrono::Utc;

use crate::actors::periodic::RECHECK_CYCLES;
use crate::actors::poller::dependencies::{self, Dependencies, Look, Reads, Verdict};
use crate::config::{ForgeConfig, Project};
use crate::forge::forgejo::ForgejoClient;
use crate::forge::local::{LocalArgs, LocalForge};
use crate::forge::{Forge, ForgeResult, Issue, IssueNumber};
use crate::http::retry::RetryPolicy;
use crate::paths::StatePaths;
use crate::picking;
use crate::store::{ClaimStatus, Db};
use crate::text::escape_line;

/// The report for every project, one line per ready-labelled issue.
pub async fn report(projects: &[Project], state_dir: &Path) -> anyhow::Result<String> {
    let paths = StatePaths::new(state_dir);
    let db_path = paths.db();
    // No database yet is a daemon that never ran: nothing held, nothing spent.
    let db = match db_path.exists() {
        true => Some(Db::open_read_only(&db_path)?),
        false => None,
    };
    let mut out = String::new();
    if !paths.dev_active().exists() {
        let _ = writeln!(
            out,
            "picking is switched off ({} is absent: `forgehand enable`); were it on:",
            paths.dev_active().display()
        );
    }
    for project in projects {
        let forge = forge_client(project)?;
        project_report(project, forge.as_ref(), db.as_ref(), &mut out)
            .await
            .with_context(|| format!("dry run of project {}", project.name))?;
    }
    Ok(out)
}

/// The client the daemon would use, minus what only a running daemon needs
/// (the local backend's CI sandbox and journal).
pub(crate) fn forge_client(project: &Project) -> anyhow::Result<Arc<dyn Forge>> {
    Ok(match &project.forge {
        ForgeConfig::Forgejo(f) | ForgeConfig::Gitea(f) => Arc::new(ForgejoClient::new(
            &f.url,
            &project.repo,
            project.secrets.forge_token.clone().unwrap_or_default(),
            RetryPolicy::default(),
        )?),
        ForgeConfig::Github(config) => Arc::new(crate::daemon::github_client(project, config)?),
        ForgeConfig::Local(local) => Arc::new(LocalForge::open(LocalArgs::from_project(
            project, local, None,
        ))?),
    })
}

async fn project_report(
    project: &Project,
    forge: &dyn Forge,
    db: Option<&Db>,
    out: &mut String,
) -> anyhow::Result<()> {
    let name = &project.name;
    let labels = &project.labels;
    let running = match db {
        Some(db) => db.claims(Some(name), Some(ClaimStatus::Active))?.len(),
        None => 0,
    };
    let spent = match db {
        Some(db) => db.project_spend(name, Utc::now().date_naive())?,
        None => Default::default(),
    };
    let budget_stop = project.budget.picking_stop(&spent);
    let max = project.agent.max_sessions as usize;
    let mut free = max.saturating_sub(running);
    let issues = forge.list_open_issues(&labels.backlog).await?;
    let mut refused = HashMap::new();
    for issue in &issues {
        let claim = db.map(|db| db.claim(name, issue.number.0)).transpose()?;
        refused.insert(issue.number, dependencies::waiting_for(claim.flatten())?);
    }
    let reads = DryReads { forge, refused };
    let mut known = Dependencies::default();
    let recheck = project.poll_interval.saturating_mul(RECHECK_CYCLES);
    // A first poll's round: everything fresh, no safety net to spend.
    let mut round = known.round(&issues, recheck, 0);
    let mut line = |n: IssueNumber, title: &str, verdict: &str| {
        let _ = writeln!(out, "{name}: #{n} {}: {verdict}", escape_line(title));
    };
    let ordered = picking::order(&issues, labels);
    for issue in &ordered {
        let (n, title) = (issue.number, issue.title.as_str());
        if let Some(why) = &budget_stop {
            line(n, title, &format!("not claimed: budget: {why}"));
            continue;
        }
        if free == 0 {
            line(
                n,
                title,
                &format!("not claimed: slots: max_sessions = {max}, all taken"),
            );
            continue;
        }
        match round.check(&reads, issue, Look::Fresh).await? {
            Verdict::Waiting(open) => {
                let dep = open.first().map_or(String::new(), |d| format!(" #{d}"));
                line(n, title, &format!("not claimed: open dependency{dep}"));
            }
            Verdict::Ready => {
                free -= 1;
                line(n, title, "would be claimed");
            }
            // Only a safety-net look is postponed, and this one is fresh.
            Verdict::Postponed => line(n, title, "not claimed: not checked in this poll"),
        }
    }
    // Ready-labelled, but another label keeps it out of the picking.
    for issue in issues
        .iter()
        .filter(|i| !ordered.iter().any(|o| o.number == i.number))
    {
        let other = [&labels.in_progress, &labels.blocked, &labels.underspecified]
            .into_iter()
            .find(|l| issue.has_label(l))
            .map_or("?", |l| l.as_str());
        line(
            issue.number,
            &issue.title,
            &format!(
                "not claimed: label: it is labelled `{}`",
                escape_line(other)
            ),
        );
    }
    if issues.is_empty() {
        let _ = writeln!(out, "{name}: no open issue labelled `{}`", labels.backlog);
    }
    Ok(())
}

/// What the dry run's round reads: the forge, and what the database
/// (read before, as it is not shared between threads) says listed issues
/// wait for.
struct DryReads<'a> {
    forge: &'a dyn Forge,
    refused: HashMap<IssueNumber, Vec<IssueNumber>>,
}

#[async_trait]
impl Reads for DryReads<'_> {
    async fn issue(&self, n: IssueNumber) -> ForgeResult<Issue> {
        self.forge.get_issue(n).await
    }

    async fn linked(&self, n: IssueNumber) -> ForgeResult<Vec<Issue>> {
        self.forge.issue_dependencies(n).await
    }

    async fn refused_for(&self, n: IssueNumber) -> anyhow::Result<Vec<IssueNumber>> {
        Ok(self.refused.get(&n).cloned().unwrap_or_default())
    }
}
