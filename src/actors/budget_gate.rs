//! Whether a project's budget lets its poller claim another issue
//! (`[budget]` day and month limits, `runs_per_day`). The answer is kept in
//! the store, so `forgehand status` can say why nothing is picked, and
//! journaled when it changes.

use chrono::{DateTime, Utc};

use super::ProjectCtx;
use crate::store::EventKind;

/// `Some(reason)` when the project may claim nothing at `now`. Running
/// sessions are not touched: they may finish.
pub async fn picking_stopped(
    ctx: &ProjectCtx,
    now: DateTime<Utc>,
) -> anyhow::Result<Option<String>> {
    let budget = &ctx.project.budget;
    let today = now.date_naive();
    let mut stop = None;
    if budget.daemon_month.is_set() {
        let spent = ctx.store.daemon_month_spend(today).await?;
        stop = budget.daemon_month.reached(spent).map(|what| {
            format!("the daemon's monthly budget of {what} is reached (spent this month: {spent}); picking resumes on the 1st")
        });
    }
    if stop.is_none()
        && (budget.day.is_set() || budget.month.is_set() || budget.runs_per_day.is_some())
    {
        let spent = ctx.store.project_spend(ctx.name(), today).await?;
        stop = budget.picking_stop(&spent);
    }
    if ctx.store.set_picking_stop(ctx.name(), stop.clone()).await? {
        let line = match &stop {
            Some(reason) => format!("not picking: {reason}"),
            None => "picking again: the budget allows it".to_string(),
        };
        ctx.journal(None, EventKind::Daemon, &line);
    }
    Ok(stop)
}
