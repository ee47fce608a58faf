//! Fetches into forgehand's one clone of a project, shared. A burst of
//! session starts (or rebases, or mirror pushes) needs the clone fetched
//! after it asked, not one fetch each: every caller waits for a fetch that
//! began after its request, and one fetch serves all who waited for it.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Context;

use super::ProjectCtx;
use crate::git::RemoteRefs;

/// The fetch count of one clone.
#[derive(Debug, Default)]
pub struct Fetches {
    /// Fetches begun (each under the clone's lock).
    begun: AtomicU64,
    /// The number of the last fetch that succeeded.
    done: AtomicU64,
}

impl Fetches {
    /// Runs `fetch` under `lock`, unless a fetch that began after this call
    /// succeeded while this call waited for the lock.
    pub async fn fresh<F, Fut>(&self, lock: &tokio::sync::Mutex<()>, fetch: F) -> anyhow::Result<()>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = anyhow::Result<()>>,
    {
        let wanted = self.begun.load(Ordering::SeqCst) + 1;
        let _one_at_a_time = lock.lock().await;
        if self.done.load(Ordering::SeqCst) >= wanted {
            return Ok(());
        }
        let number = self.begun.fetch_add(1, Ordering::SeqCst) + 1;
        fetch().await?;
        self.done.store(number, Ordering::SeqCst);
        Ok(())
    }
}

impl ProjectCtx {
    /// forgehand's clone of the project, set up if need be and fetched
    /// after this call (by this call or one that shares its fetch); its
    /// remote-tracking refs as read right after that fetch (or a later one).
    pub async fn fresh_clone(&self) -> anyhow::Result<Arc<RemoteRefs>> {
        let repo_dir = self.paths.repo_dir(self.name());
        let url = &self.project.clone_url;
        self.fetches
            .fresh(&self.repo_lock, || async {
                self.git
                    .ensure_clone(url, &repo_dir)
                    .await
                    .with_context(|| format!("updating forgehand's clone of {url}"))?;
                let refs = self.git.remote_refs(&repo_dir).await?;
                *self.clone_refs.lock().unwrap_or_else(|e| e.into_inner()) = Arc::new(refs);
                Ok(())
            })
            .await?;
        Ok(self
            .clone_refs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone())
    }
}
