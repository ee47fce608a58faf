//! Mirror pushes (DESIGN §4 `[mirrors]`): after every merge the primary branch
//! goes to each mirror URL. A mirror that is down must never hold up a merge,
//! so the pushes run in a task of their own and failed ones are retried there
//! with backoff, then given up on (the next merge, or the daemon's next
//! start, pushes again anyway).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::task::{JoinHandle, JoinSet};
use tracing::Instrument;

use crate::git::url_for_display;
use crate::store::EventKind;

use super::ProjectCtx;

/// Attempts per mirror, the first included.
const ATTEMPTS: u32 = 5;
/// Wait before the first retry; doubles after each failure.
const FIRST_RETRY: Duration = Duration::from_secs(2);
/// A push hanging longer than this (an unreachable host, a stuck ssh) counts as
/// failed; git is killed when its future is dropped.
const PUSH_TIMEOUT: Duration = Duration::from_secs(120);

/// Pushes the project's primary branch to every `[mirrors]` URL in the
/// background and returns at once; the handle ends when every mirror was
/// pushed or given up on (callers may ignore it).
pub fn push_mirrors(ctx: &Arc<ProjectCtx>) -> JoinHandle<()> {
    let span = tracing::info_span!("mirrors", project = %ctx.name());
    let ctx = ctx.clone();
    tokio::spawn(
        async move {
            // Side by side: a slow or failing mirror does not delay the others.
            let mut pushes = JoinSet::new();
            for (name, url) in ctx.project.mirrors.clone() {
                let ctx = ctx.clone();
                pushes.spawn(
                    async move { push_with_retries(&ctx, &name, &url).await }.in_current_span(),
                );
            }
            while pushes.join_next().await.is_some() {}
        }
        .instrument(span),
    )
}

async fn push_with_retries(ctx: &ProjectCtx, name: &str, url: &str) {
    let mut delay = FIRST_RETRY;
    for attempt in 1..=ATTEMPTS {
        match push_once(ctx, url).await {
            Ok(()) => {
                tracing::info!(
                    mirror = name,
                    "pushed {} to {}",
                    ctx.project.primary_branch,
                    url_for_display(url)
                );
                return;
            }
            Err(e) => {
                let next = if attempt < ATTEMPTS {
                    format!("retrying in {}s", delay.as_secs())
                } else {
                    "giving up until the next merge".to_string()
                };
                ctx.journal(
                    None,
                    EventKind::Error,
                    &format!("mirror {name}: push {attempt} of {ATTEMPTS} failed ({next}): {e:#}"),
                );
                if attempt < ATTEMPTS {
                    tokio::time::sleep(delay).await;
                    delay = delay.saturating_mul(2);
                }
            }
        }
    }
}

/// A lock per mirror URL: two pushes to one mirror at once (the start's and
/// a merge's, or two merges') would race for its ref and one would fail.
#[derive(Default)]
pub struct MirrorLocks(Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>);

impl MirrorLocks {
    fn of(&self, url: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.0.lock().unwrap_or_else(|e| e.into_inner());
        locks.entry(url.to_string()).or_default().clone()
    }
}

/// Fetch (so the push carries the merge just made), then push. Each attempt
/// fetches again, so a retry sends the newest primary branch.
async fn push_once(ctx: &ProjectCtx, url: &str) -> anyhow::Result<()> {
    let lock = ctx.mirror_locks.of(url);
    let _one_push_at_a_time = lock.lock().await;
    // Only the fetch changes the clone; the push merely reads a ref, so it
    // runs without the lock and a slow mirror never stalls a dev actor.
    ctx.fresh_clone().await?;
    let repo_dir = ctx.paths.repo_dir(ctx.name());
    tokio::time::timeout(
        PUSH_TIMEOUT,
        ctx.git
            .push_mirror(&repo_dir, url, &ctx.project.primary_branch),
    )
    .await
    .map_err(|_| anyhow::anyhow!("no answer within {}s", PUSH_TIMEOUT.as_secs()))?
}
