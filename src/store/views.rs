//! What people look at, read in one go: the rows of `forgehand status
//! --json` (also the dashboard's `/api/status`), the dashboard's overview of
//! every issue, and the counts behind `/metrics`. Each is one call on the
//! store thread, so what it shows is one consistent moment.

use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use anyhow::Context;

use super::db::event_from_row;
use super::{ClaimRow, ClaimStatus, Db, EventRow, ForgeQuota, Store, TokenUsage};

/// One issue as the dashboard shows it.
#[derive(Debug, Clone, Serialize)]
pub struct IssueView {
    pub claim: ClaimRow,
    pub tokens: Option<TokenUsage>,
    /// What its current run cost, in millionths of a dollar (`[budget]`
    /// prices), when known.
    pub cost_micros: Option<u64>,
    /// Why it is blocked, or what its agent asked, from the journal.
    pub reason: Option<String>,
    /// Its latest journal entries, oldest first.
    pub recent: Vec<EventRow>,
}

/// Every issue worth showing, and each project's forge quota.
#[derive(Debug, Clone, Serialize)]
pub struct Overview {
    pub issues: Vec<IssueView>,
    pub quotas: Vec<ForgeQuota>,
}

/// The numbers `/metrics` reports from the database.
#[derive(Debug, Clone, Default)]
pub struct Counts {
    /// (project, status, stage, issues).
    pub issues: Vec<(String, String, String, u64)>,
    /// (project, PRs merged), from the journal.
    pub merges: Vec<(String, u64)>,
    /// (project, CI attempts, review rounds), summed over its claims.
    pub rounds: Vec<(String, u64, u64)>,
    /// (project, tokens its agents used).
    pub tokens: Vec<(String, TokenUsage)>,
    /// (project, what its agents cost in millionths of a dollar, every day
    /// added up).
    pub cost: Vec<(String, u64)>,
    pub quotas: Vec<ForgeQuota>,
    /// The tmux session of every active claim, by project.
    pub sessions: Vec<(String, String)>,
}

impl Db {
    /// `forgehand status --json`: `issues`, each claim as stored plus the
    /// tokens its agent used and what they cost (null when unknown);
    /// `projects`, each project's spend today and this month (UTC), its
    /// `[budget]` limits as the daemon last read them and why it picks
    /// nothing now; `daemon`, every project's spend this month.
    pub fn status_json(&self, project: Option<&str>) -> anyhow::Result<serde_json::Value> {
        let issues = self
            .claims(project, None)?
            .iter()
            .map(|c| {
                let mut row = serde_json::to_value(c)?;
                row["tokens"] = serde_json::to_value(self.usage(&c.project, c.issue)?)?;
                let cost = self.run_cost(&c.project, c.issue)?;
                row["cost_micros"] = serde_json::to_value(cost)?;
                row["cost"] = serde_json::to_value(cost.map(|m| m as f64 / 1e6))?;
                Ok(row)
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let today = chrono::Utc::now().date_naive();
        let limits = self.budget_limits()?;
        let stops = self.picking_stops()?;
        let mut names: Vec<String> = limits.iter().map(|(p, _)| p.clone()).collect();
        names.extend(self.spending_projects()?);
        names.extend(stops.iter().map(|s| s.project.clone()));
        names.extend(
            issues
                .iter()
                .filter_map(|i| i["project"].as_str().map(String::from)),
        );
        names.sort();
        names.dedup();
        names.retain(|n| project.is_none_or(|p| p == n));
        let projects = names
            .iter()
            .map(|name| {
                let spent = self.project_spend(name, today)?;
                Ok(serde_json::json!({
                    "project": name,
                    "today": spend_json(spent.today, Some(spent.runs_today)),
                    "month": spend_json(spent.month, None),
                    "limits": limits.iter().find(|(p, _)| p == name).map(|(_, l)| l),
                    "not_picking": stops.iter().find(|s| s.project == *name).map(|s| {
                        serde_json::json!({"reason": s.reason, "since": s.since})
                    }),
                }))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(serde_json::json!({
            "issues": issues,
            "projects": projects,
            "daemon": {"month": spend_json(self.daemon_month_spend(today)?, None)},
        }))
    }

    /// Every claim still in hand (active or blocked) and the `finished` most
    /// recently claimed of the others, newest first, each with its last
    /// `recent` journal entries.
    pub fn overview(&self, finished: usize, recent: usize) -> anyhow::Result<Overview> {
        let mut left = finished;
        let mut issues = Vec::new();
        for claim in self.claims(None, None)? {
            let held = matches!(claim.status, ClaimStatus::Active | ClaimStatus::Blocked);
            if !held {
                if left == 0 {
                    continue;
                }
                left -= 1;
            }
            issues.push(self.issue_view(claim, recent)?);
        }
        Ok(Overview {
            issues,
            quotas: self.forge_quotas()?,
        })
    }

    /// The claim of `project` whose session is `session`, with its last
    /// `recent` journal entries.
    pub fn issue_by_session(
        &self,
        project: &str,
        session: &str,
        recent: usize,
    ) -> anyhow::Result<Option<IssueView>> {
        let claim = self
            .claims(Some(project), None)?
            .into_iter()
            .find(|c| c.session == session);
        claim.map(|c| self.issue_view(c, recent)).transpose()
    }

    fn issue_view(&self, claim: ClaimRow, recent: usize) -> anyhow::Result<IssueView> {
        let tokens = self.usage(&claim.project, claim.issue)?;
        let cost_micros = self.run_cost(&claim.project, claim.issue)?;
        let reason = self.reason(&claim)?;
        let recent = self.last_events(&claim.project, claim.issue, recent)?;
        Ok(IssueView {
            claim,
            tokens,
            cost_micros,
            reason,
            recent,
        })
    }

    /// What the current run of an issue cost, in millionths of a dollar.
    fn run_cost(&self, project: &str, issue: u64) -> anyhow::Result<Option<u64>> {
        if !self.has_spend() {
            return Ok(None);
        }
        self.conn()
            .query_row(
                "SELECT cost_micros FROM token_usage WHERE project = ?1 AND issue = ?2",
                params![project, issue as i64],
                |r| r.get::<_, i64>(0).map(|c| c.max(0) as u64),
            )
            .optional()
            .with_context(|| format!("reading the cost of {project}#{issue}"))
    }

    /// Why a blocked claim was blocked (`blocked: …`, as `reconcile::block`
    /// journals it), or the reason of the escalation an active claim waits
    /// on (`PHASE:escalate (Reason: …)`, as the dev actor journals it).
    fn reason(&self, claim: &ClaimRow) -> anyhow::Result<Option<String>> {
        let (kind, prefix) = match (claim.status, claim.waiting) {
            (ClaimStatus::Blocked, _) => ("error", "blocked: "),
            (ClaimStatus::Active, Some(super::Waiting::Answer)) => ("phase_seen", "PHASE:escalate"),
            _ => return Ok(None),
        };
        let detail: Option<String> = self
            .conn()
            .query_row(
                "SELECT detail FROM events WHERE project = ?1 AND issue = ?2 AND kind = ?3
                 AND substr(detail, 1, length(?4)) = ?4 ORDER BY id DESC LIMIT 1",
                params![claim.project, claim.issue, kind, prefix],
                |r| r.get(0),
            )
            .optional()
            .with_context(|| format!("reading why {}#{} waits", claim.project, claim.issue))?;
        Ok(detail.map(|d| {
            let rest = &d[prefix.len()..];
            match rest.trim_start().strip_prefix("(Reason: ") {
                Some(reason) => reason.strip_suffix(')').unwrap_or(reason).to_string(),
                None => rest.trim().to_string(),
            }
        }))
    }

    /// The last `n` journal entries of an issue, oldest first.
    pub fn last_events(
        &self,
        project: &str,
        issue: u64,
        n: usize,
    ) -> anyhow::Result<Vec<EventRow>> {
        let mut stmt = self.conn().prepare(
            "SELECT id, at, project, issue, kind, detail FROM events
             WHERE project = ?1 AND issue = ?2 ORDER BY id DESC LIMIT ?3",
        )?;
        let mut rows = stmt
            .query_map(params![project, issue, n as i64], event_from_row)?
            .collect::<Result<Vec<_>, _>>()
            .with_context(|| format!("reading the journal of {project}#{issue}"))?;
        rows.reverse();
        Ok(rows)
    }

    pub fn counts(&self) -> anyhow::Result<Counts> {
        let conn = self.conn();
        let issues = conn
            .prepare(
                "SELECT project, status, stage, count(*) FROM claims
                 GROUP BY project, status, stage ORDER BY project, status, stage",
            )?
            .query_map([], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get::<_, i64>(3)? as u64))
            })?
            .collect::<Result<Vec<_>, _>>()
            .context("counting the claims")?;
        // The merge's own line, not the "not merged" ones of the same kind.
        let merges = conn
            .prepare(
                "SELECT project, count(*) FROM events
                 WHERE kind = 'merged' AND substr(detail, 1, 11) = 'merged PR #'
                 GROUP BY project ORDER BY project",
            )?
            .query_map([], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as u64)))?
            .collect::<Result<Vec<_>, _>>()
            .context("counting the merges")?;
        let rounds = conn
            .prepare(
                "SELECT project, sum(ci_attempts), sum(review_rounds) FROM claims
                 GROUP BY project ORDER BY project",
            )?
            .query_map([], |r| {
                Ok((
                    r.get(0)?,
                    r.get::<_, i64>(1)? as u64,
                    r.get::<_, i64>(2)? as u64,
                ))
            })?
            .collect::<Result<Vec<_>, _>>()
            .context("counting CI attempts and review rounds")?;
        let tokens = if self.has_usage() {
            conn.prepare(
                "SELECT project, sum(input), sum(output), sum(cache_creation), sum(cache_read)
                 FROM token_usage GROUP BY project ORDER BY project",
            )?
            .query_map([], |r| {
                Ok((
                    r.get(0)?,
                    TokenUsage {
                        input: r.get::<_, i64>(1)? as u64,
                        output: r.get::<_, i64>(2)? as u64,
                        cache_creation: r.get::<_, i64>(3)? as u64,
                        cache_read: r.get::<_, i64>(4)? as u64,
                    },
                ))
            })?
            .collect::<Result<Vec<_>, _>>()
            .context("adding up the tokens")?
        } else {
            Vec::new()
        };
        let cost = if self.has_spend() {
            conn.prepare(
                "SELECT project, sum(cost_micros) FROM spend_daily GROUP BY project ORDER BY project",
            )?
            .query_map([], |r| Ok((r.get(0)?, r.get::<_, i64>(1)?.max(0) as u64)))?
            .collect::<Result<Vec<_>, _>>()
            .context("adding up the cost")?
        } else {
            Vec::new()
        };
        let sessions = conn
            .prepare("SELECT project, session FROM claims WHERE status = 'active'")?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<Vec<_>, _>>()
            .context("reading the sessions of active claims")?;
        Ok(Counts {
            issues,
            merges,
            rounds,
            tokens,
            cost,
            quotas: self.forge_quotas()?,
            sessions,
        })
    }
}

/// The same, for the daemon's async callers: run on the store thread.
impl Store {
    pub async fn status_json(&self, project: Option<&str>) -> anyhow::Result<serde_json::Value> {
        let project = project.map(str::to_string);
        self.call(move |db| db.status_json(project.as_deref()))
            .await
    }

    pub async fn overview(&self, finished: usize, recent: usize) -> anyhow::Result<Overview> {
        self.call(move |db| db.overview(finished, recent)).await
    }

    pub async fn issue_by_session(
        &self,
        project: &str,
        session: &str,
        recent: usize,
    ) -> anyhow::Result<Option<IssueView>> {
        let (project, session) = (project.to_string(), session.to_string());
        self.call(move |db| db.issue_by_session(&project, &session, recent))
            .await
    }

    pub async fn counts(&self) -> anyhow::Result<Counts> {
        self.call(|db| db.counts()).await
    }
}

/// Tokens and their cost (in dollars and in millionths), with the day's
/// claims when given.
fn spend_json(spend: crate::budget::Spend, runs: Option<u32>) -> serde_json::Value {
    let mut json = serde_json::json!({
        "tokens": spend.tokens,
        "cost_micros": spend.cost_micros,
        "cost": spend.cost_micros as f64 / 1e6,
    });
    if let Some(runs) = runs {
        json["runs"] = runs.into();
    }
    json
}
