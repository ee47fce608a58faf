//! What agents spent, for budgets (issue 15's migration): each issue's
//! current run in `token_usage` (tokens and `cost_micros`), each project's
//! spend and claims per UTC day in `spend_daily`, and why a poller claims
//! nothing right now in `picking_stops`, for `forgehand status`.

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use rusqlite::{OptionalExtension, params};

use anyhow::Context;

use super::{Db, Store, TokenUsage, parse_time};
use crate::budget::{ProjectSpend, Spend};

/// Why a project's poller claims nothing, as recorded.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PickingStop {
    pub project: String,
    pub reason: String,
    pub since: DateTime<Utc>,
}

fn day_key(day: NaiveDate) -> String {
    day.format("%Y-%m-%d").to_string()
}

fn spend_of(tokens: i64, cost: i64) -> Spend {
    Spend {
        tokens: tokens.max(0) as u64,
        cost_micros: cost.max(0) as u64,
    }
}

impl Db {
    /// Record the totals of the issue's current run (`usage`, costing
    /// `spend`) and add what is new since the last record to the project's
    /// spend on `day`. Totals that went down belong to a new run (a new
    /// worktree): all of it is new.
    pub fn save_spend(
        &self,
        project: &str,
        issue: u64,
        usage: &TokenUsage,
        spend: Spend,
        day: NaiveDate,
    ) -> anyhow::Result<()> {
        let what = || format!("saving the spend of {project}#{issue}");
        let tx = self.conn().unchecked_transaction().with_context(what)?;
        let before: Option<(i64, i64)> = tx
            .query_row(
                "SELECT input + output + cache_creation + cache_read, cost_micros
                 FROM token_usage WHERE project = ?1 AND issue = ?2",
                params![project, issue as i64],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .with_context(what)?;
        let before = before.map_or(Spend::default(), |(t, c)| spend_of(t, c));
        let new = if spend.tokens >= before.tokens && spend.cost_micros >= before.cost_micros {
            Spend {
                tokens: spend.tokens - before.tokens,
                cost_micros: spend.cost_micros - before.cost_micros,
            }
        } else {
            spend
        };
        tx.execute(
            "INSERT INTO token_usage (project, issue, input, output, cache_creation, cache_read, cost_micros, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
             ON CONFLICT (project, issue) DO UPDATE SET
                input = excluded.input, output = excluded.output,
                cache_creation = excluded.cache_creation, cache_read = excluded.cache_read,
                cost_micros = excluded.cost_micros, updated_at = excluded.updated_at",
            params![
                project,
                issue as i64,
                usage.input as i64,
                usage.output as i64,
                usage.cache_creation as i64,
                usage.cache_read as i64,
                spend.cost_micros as i64,
                Utc::now().to_rfc3339()
            ],
        )
        .with_context(what)?;
        if new != Spend::default() {
            tx.execute(
                "INSERT INTO spend_daily (project, day, tokens, cost_micros) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (project, day) DO UPDATE SET
                    tokens = tokens + excluded.tokens, cost_micros = cost_micros + excluded.cost_micros",
                params![project, day_key(day), new.tokens as i64, new.cost_micros as i64],
            )
            .with_context(what)?;
        }
        tx.commit().with_context(what)
    }

    /// What the issue's current run cost so far.
    pub fn issue_spend(&self, project: &str, issue: u64) -> anyhow::Result<Spend> {
        if !self.has_spend() {
            return Ok(Spend::default());
        }
        let row: Option<(i64, i64)> = self
            .conn()
            .query_row(
                "SELECT input + output + cache_creation + cache_read, cost_micros
                 FROM token_usage WHERE project = ?1 AND issue = ?2",
                params![project, issue as i64],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .with_context(|| format!("reading the spend of {project}#{issue}"))?;
        Ok(row.map_or(Spend::default(), |(t, c)| spend_of(t, c)))
    }

    /// One more issue claimed by `project` on `day`.
    pub fn count_run(&self, project: &str, day: NaiveDate) -> anyhow::Result<()> {
        self.conn()
            .execute(
                "INSERT INTO spend_daily (project, day, runs) VALUES (?1, ?2, 1)
                 ON CONFLICT (project, day) DO UPDATE SET runs = runs + 1",
                params![project, day_key(day)],
            )
            .with_context(|| format!("counting a claim of {project}"))?;
        Ok(())
    }

    /// What `project` spent on `today` and in its month, and how many issues
    /// it claimed today.
    pub fn project_spend(&self, project: &str, today: NaiveDate) -> anyhow::Result<ProjectSpend> {
        if !self.has_spend() {
            return Ok(ProjectSpend::default());
        }
        let what = || format!("reading the spend of {project}");
        let (tokens, cost, runs): (i64, i64, i64) = self
            .conn()
            .query_row(
                "SELECT coalesce(sum(tokens), 0), coalesce(sum(cost_micros), 0), coalesce(sum(runs), 0)
                 FROM spend_daily WHERE project = ?1 AND day = ?2",
                params![project, day_key(today)],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .with_context(what)?;
        let month = format!("{:04}-{:02}-%", today.year(), today.month());
        let (m_tokens, m_cost): (i64, i64) = self
            .conn()
            .query_row(
                "SELECT coalesce(sum(tokens), 0), coalesce(sum(cost_micros), 0)
                 FROM spend_daily WHERE project = ?1 AND day LIKE ?2",
                params![project, month],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .with_context(what)?;
        Ok(ProjectSpend {
            today: spend_of(tokens, cost),
            month: spend_of(m_tokens, m_cost),
            runs_today: runs.max(0) as u32,
        })
    }

    /// What every project spent in the month of `today`.
    pub fn daemon_month_spend(&self, today: NaiveDate) -> anyhow::Result<Spend> {
        if !self.has_spend() {
            return Ok(Spend::default());
        }
        let month = format!("{:04}-{:02}-%", today.year(), today.month());
        let (tokens, cost): (i64, i64) = self
            .conn()
            .query_row(
                "SELECT coalesce(sum(tokens), 0), coalesce(sum(cost_micros), 0)
                 FROM spend_daily WHERE day LIKE ?1",
                params![month],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .context("reading the daemon's spend this month")?;
        Ok(spend_of(tokens, cost))
    }

    /// Record why `project` claims nothing (`Some`), or that it may again
    /// (`None`). Returns whether that changed, so a caller journals once.
    pub fn set_picking_stop(&self, project: &str, reason: Option<&str>) -> anyhow::Result<bool> {
        let what = || format!("recording whether {project} may claim");
        let changed = match reason {
            Some(reason) => self
                .conn()
                .execute(
                    "INSERT INTO picking_stops (project, reason, since) VALUES (?1, ?2, ?3)
                     ON CONFLICT (project) DO UPDATE SET reason = excluded.reason
                     WHERE reason <> excluded.reason",
                    params![project, reason, Utc::now().to_rfc3339()],
                )
                .with_context(what)?,
            None => self
                .conn()
                .execute(
                    "DELETE FROM picking_stops WHERE project = ?1",
                    params![project],
                )
                .with_context(what)?,
        };
        Ok(changed > 0)
    }

    /// Every project that claims nothing now, and why.
    pub fn picking_stops(&self) -> anyhow::Result<Vec<PickingStop>> {
        if !self.has_spend() {
            return Ok(Vec::new());
        }
        let mut stmt = self
            .conn()
            .prepare("SELECT project, reason, since FROM picking_stops ORDER BY project")?;
        let rows = stmt
            .query_map([], |r| {
                Ok(PickingStop {
                    project: r.get(0)?,
                    reason: r.get(1)?,
                    since: parse_time(&r.get::<_, String>(2)?),
                })
            })?
            .collect::<Result<Vec<_>, _>>()
            .context("reading why projects claim nothing")?;
        Ok(rows)
    }
}

impl Db {
    /// Record the `[budget]` limits of every configured project (`limits`:
    /// name and JSON), forgetting those of projects no longer configured.
    pub fn save_budget_limits(&self, limits: &[(String, serde_json::Value)]) -> anyhow::Result<()> {
        let what = "recording the projects' budget limits";
        let tx = self.conn().unchecked_transaction().context(what)?;
        tx.execute("DELETE FROM budget_limits", []).context(what)?;
        let now = Utc::now().to_rfc3339();
        for (project, json) in limits {
            tx.execute(
                "INSERT INTO budget_limits (project, limits, updated_at) VALUES (?1, ?2, ?3)",
                params![project, json.to_string(), now],
            )
            .context(what)?;
        }
        tx.commit().context(what)
    }

    /// Each project's `[budget]` limits as last recorded, by name.
    pub fn budget_limits(&self) -> anyhow::Result<Vec<(String, serde_json::Value)>> {
        if !self.has_limits() {
            return Ok(Vec::new());
        }
        let mut stmt = self
            .conn()
            .prepare("SELECT project, limits FROM budget_limits ORDER BY project")?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?
            .collect::<Result<Vec<_>, _>>()
            .context("reading the projects' budget limits")?;
        Ok(rows
            .into_iter()
            .map(|(p, json)| (p, serde_json::from_str(&json).unwrap_or_default()))
            .collect())
    }

    /// Every project that ever spent or claimed anything.
    pub fn spending_projects(&self) -> anyhow::Result<Vec<String>> {
        if !self.has_spend() {
            return Ok(Vec::new());
        }
        let mut stmt = self
            .conn()
            .prepare("SELECT DISTINCT project FROM spend_daily ORDER BY project")?;
        let rows = stmt
            .query_map([], |r| r.get(0))?
            .collect::<Result<Vec<_>, _>>()
            .context("reading which projects spent")?;
        Ok(rows)
    }
}

/// The same, for the daemon's async callers: run on the store thread.
impl Store {
    pub async fn save_budget_limits(
        &self,
        limits: Vec<(String, serde_json::Value)>,
    ) -> anyhow::Result<()> {
        self.call(move |db| db.save_budget_limits(&limits)).await
    }

    pub async fn save_spend(
        &self,
        project: &str,
        issue: u64,
        usage: TokenUsage,
        spend: Spend,
        day: NaiveDate,
    ) -> anyhow::Result<()> {
        let project = project.to_string();
        self.call(move |db| db.save_spend(&project, issue, &usage, spend, day))
            .await
    }

    pub async fn issue_spend(&self, project: &str, issue: u64) -> anyhow::Result<Spend> {
        let project = project.to_string();
        self.call(move |db| db.issue_spend(&project, issue)).await
    }

    pub async fn count_run(&self, project: &str, day: NaiveDate) -> anyhow::Result<()> {
        let project = project.to_string();
        self.call(move |db| db.count_run(&project, day)).await
    }

    pub async fn project_spend(
        &self,
        project: &str,
        today: NaiveDate,
    ) -> anyhow::Result<ProjectSpend> {
        let project = project.to_string();
        self.call(move |db| db.project_spend(&project, today)).await
    }

    pub async fn daemon_month_spend(&self, today: NaiveDate) -> anyhow::Result<Spend> {
        self.call(move |db| db.daemon_month_spend(today)).await
    }

    pub async fn set_picking_stop(
        &self,
        project: &str,
        reason: Option<String>,
    ) -> anyhow::Result<bool> {
        let project = project.to_string();
        self.call(move |db| db.set_picking_stop(&project, reason.as_deref()))
            .await
    }
}
