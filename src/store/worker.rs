//! [`Store`]: the daemon's handle on the database. A thread of its own owns
//! the one connection and runs the calls sent to it, in the order they were
//! sent; async callers await the answer, so no runtime thread ever waits on
//! SQLite (see the module's `//!` in `mod.rs` for why a thread).

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread::JoinHandle;

use anyhow::{Context, anyhow};

use super::{ClaimRow, ClaimStatus, Db, EventKind, EventRow, Runner};

/// A call for the store thread.
type Job = Box<dyn FnOnce(&Db) + Send>;

pub struct Store {
    /// `None` only while dropping: closing it ends the thread's loop.
    jobs: Option<mpsc::Sender<Job>>,
    /// SQLite's count of rows changed through the connection, published
    /// after each call that changed any: how the dashboard learns of a
    /// change without asking again and again.
    changes: tokio::sync::watch::Receiver<u64>,
    thread: Option<JoinHandle<()>>,
    /// For errors that name the database.
    path: PathBuf,
}

impl Store {
    /// Open (creating if needed) and migrate the database, then hand it to
    /// the store thread. This blocks: call it before the runtime, or from
    /// `spawn_blocking`.
    pub fn open(path: &Path) -> anyhow::Result<Store> {
        let db = Db::open(path)?;
        let (jobs, queue) = mpsc::channel::<Job>();
        let (changed, changes) = tokio::sync::watch::channel(db.conn().total_changes());
        let thread = std::thread::Builder::new()
            .name("forgehand-store".into())
            .spawn(move || run(db, queue, changed))
            .context("starting the store thread")?;
        Ok(Store {
            jobs: Some(jobs),
            changes,
            thread: Some(thread),
            path: path.to_path_buf(),
        })
    }

    /// Queue `job` behind every call sent before it.
    pub(super) fn send(&self, job: Job) -> anyhow::Result<()> {
        self.jobs
            .as_ref()
            .and_then(|jobs| jobs.send(job).ok())
            .ok_or_else(|| anyhow!("the store thread of {} has stopped", self.path.display()))
    }

    /// Run `f` on the store thread and wait for its answer. The call runs
    /// even if the caller stops waiting: a write asked for is made.
    pub(super) async fn call<R: Send + 'static>(
        &self,
        f: impl FnOnce(&Db) -> anyhow::Result<R> + Send + 'static,
    ) -> anyhow::Result<R> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.send(Box::new(move |db| {
            let _ = reply.send(f(db));
        }))?;
        answer.await.map_err(|_| {
            anyhow!(
                "no answer from the store thread of {} (the call panicked or the thread stopped)",
                self.path.display()
            )
        })?
    }

    /// Marked changed whenever a call has changed the database.
    pub fn changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changes.clone()
    }

    /// Wait until every call sent so far has been run (queued journal
    /// lines included): before the daemon exits.
    pub async fn flush(&self) -> anyhow::Result<()> {
        self.call(|_| Ok(())).await
    }

    /// Queue a journal line without waiting for it: usable from sync code,
    /// and still written before any later call, so a later read sees it. A
    /// failing write is logged by the store thread, never the caller's
    /// problem, since the action it describes has already happened; an
    /// error here only means the store thread is gone.
    pub fn journal(
        &self,
        project: &str,
        issue: Option<u64>,
        kind: EventKind,
        detail: &str,
    ) -> anyhow::Result<()> {
        let (project, detail) = (project.to_string(), detail.to_string());
        self.send(Box::new(move |db| {
            if let Err(e) = db.journal(&project, issue, kind, &detail) {
                tracing::error!(project, issue, "journal write failed: {e:#}");
            }
        }))
    }

    pub async fn journaled(
        &self,
        project: &str,
        issue: Option<u64>,
        kind: EventKind,
        detail: &str,
    ) -> anyhow::Result<bool> {
        let (project, detail) = (project.to_string(), detail.to_string());
        self.call(move |db| db.journaled(&project, issue, kind, &detail))
            .await
    }

    pub async fn events(&self, project: &str, issue: Option<u64>) -> anyhow::Result<Vec<EventRow>> {
        let project = project.to_string();
        self.call(move |db| db.events(&project, issue)).await
    }

    /// Nobody works on any claim: the daemon starts, or has stopped.
    pub async fn clear_runners(&self) -> anyhow::Result<()> {
        self.call(|db| db.clear_runners()).await
    }

    /// Record who works on a claim now (the supervisor's part of `runner`).
    pub async fn set_runner(
        &self,
        project: &str,
        issue: u64,
        runner: Option<Runner>,
    ) -> anyhow::Result<()> {
        let project = project.to_string();
        self.call(move |db| db.set_runner(&project, issue, runner))
            .await
    }

    /// Insert or replace a claim row; durable once this returns.
    pub async fn save_claim(&self, row: &ClaimRow) -> anyhow::Result<()> {
        let row = row.clone();
        self.call(move |db| db.save_claim(&row)).await
    }

    pub async fn claim(&self, project: &str, issue: u64) -> anyhow::Result<Option<ClaimRow>> {
        let project = project.to_string();
        self.call(move |db| db.claim(&project, issue)).await
    }

    /// Claims, newest first; `None` for every project.
    pub async fn claims(
        &self,
        project: Option<&str>,
        status: Option<ClaimStatus>,
    ) -> anyhow::Result<Vec<ClaimRow>> {
        let project = project.map(str::to_string);
        self.call(move |db| db.claims(project.as_deref(), status))
            .await
    }

    /// The active claim whose dev actor opened pull request `pr`.
    pub async fn claim_holding_pr(
        &self,
        project: &str,
        pr: u64,
    ) -> anyhow::Result<Option<ClaimRow>> {
        let project = project.to_string();
        self.call(move |db| db.claim_holding_pr(&project, pr)).await
    }

    /// The active claim whose dev actor last pushed `sha`.
    pub async fn claim_holding_head(
        &self,
        project: &str,
        sha: &str,
    ) -> anyhow::Result<Option<ClaimRow>> {
        let (project, sha) = (project.to_string(), sha.to_string());
        self.call(move |db| db.claim_holding_head(&project, &sha))
            .await
    }
}

/// The store thread: runs each job in turn until every handle is gone. A
/// job that panics fails its own caller (its reply is dropped), not the
/// calls queued behind it.
fn run(db: Db, queue: mpsc::Receiver<Job>, changed: tokio::sync::watch::Sender<u64>) {
    for job in queue {
        if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(&db))).is_err() {
            tracing::error!("a store call panicked");
        }
        let total = db.conn().total_changes();
        changed.send_if_modified(|seen| std::mem::replace(seen, total) != total);
    }
}

impl Drop for Store {
    /// Closing the queue lets the thread finish the calls already sent;
    /// waiting for it means a dropped store has written everything.
    fn drop(&mut self) {
        self.jobs = None;
        if let Some(thread) = self.thread.take()
            && thread.thread().id() != std::thread::current().id()
        {
            let _ = thread.join();
        }
    }
}
