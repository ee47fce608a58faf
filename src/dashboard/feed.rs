//! Keeping the pages live. The overview is built once for all viewers, again
//! whenever the store reports a change (at most every [`MIN_GAP`], and not
//! at all while nobody watches), and sent to each page as a server-sent
//! event. An issue's page gets its own stream: its row and journal when the
//! store changes, and its pane captured again when the pane's log grows.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::response::sse::Event;
use futures_util::stream::Stream;
use tokio::sync::{Notify, watch};

use super::{App, view};
use crate::paths::PANE_LOG;
use crate::redact::Redactor;

/// Writes come in bursts (a claim saved, then its journal line): one
/// rebuild for the burst.
const MIN_GAP: Duration = Duration::from_millis(300);

/// After a failed rebuild, the next try waits this long.
const RETRY: Duration = Duration::from_secs(5);

/// Finished issues shown beside the ones in hand.
const FINISHED_SHOWN: usize = 25;

/// Journal entries per issue on the overview, and on an issue's page.
const RECENT_ON_OVERVIEW: usize = 3;
const RECENT_ON_PAGE: usize = 200;

/// How often an issue's page looks for changes; the pane is captured when
/// its log has grown, or every [`PANE_REFRESH`] ticks at the least (a full
/// screen redraw need not grow the log by much, a resize not at all).
const TICK: Duration = Duration::from_millis(400);
const PANE_REFRESH: u32 = 10;

/// Lines of the pane shown: a screen and some history.
const PANE_LINES: u32 = 120;

/// The shared overview, as JSON text; empty until first built.
pub(super) struct Feed {
    overview: watch::Sender<Arc<str>>,
    /// A viewer arrived: an overview skipped while nobody watched is due.
    wanted: Notify,
}

impl Feed {
    pub(super) fn new() -> Feed {
        Feed {
            overview: watch::Sender::new(Arc::from("")),
            wanted: Notify::new(),
        }
    }

    pub(super) fn subscribe(&self) -> watch::Receiver<Arc<str>> {
        let rx = self.overview.subscribe();
        self.wanted.notify_one();
        rx
    }
}

/// Rebuild the overview whenever the store changed and someone watches.
pub(super) async fn keep_fresh(app: Arc<App>) {
    let mut changes = app.store.changes();
    let mut stale = true;
    loop {
        if stale && app.feed.overview.receiver_count() > 0 {
            match app.store.overview(FINISHED_SHOWN, RECENT_ON_OVERVIEW).await {
                Ok(o) => {
                    let json: Arc<str> = view::overview(&app.projects, &o).to_string().into();
                    app.feed.overview.send_if_modified(|current| {
                        let changed = **current != *json;
                        if changed {
                            *current = json;
                        }
                        changed
                    });
                    stale = false;
                    tokio::time::sleep(MIN_GAP).await;
                }
                Err(e) => {
                    tracing::warn!("dashboard: reading the overview: {e:#}");
                    tokio::time::sleep(RETRY).await;
                    continue;
                }
            }
        }
        tokio::select! {
            changed = changes.changed() => match changed {
                Ok(()) => stale = true,
                // The store is gone: the daemon is stopping.
                Err(_) => return,
            },
            () = app.feed.wanted.notified() => {}
        }
    }
}

/// The server's clock travels with each event, so a page on another
/// machine shows how long an issue has been in its stage by this one's.
fn event(name: &str, payload: &str) -> Result<Event, Infallible> {
    let now = serde_json::to_string(&chrono::Utc::now()).unwrap_or_else(|_| "null".into());
    Ok(Event::default()
        .event(name)
        .data(format!("{{\"now\":{now},\"data\":{payload}}}")))
}

/// The overview as it is now, then each time it changes.
pub(super) fn overview_stream(
    rx: watch::Receiver<Arc<str>>,
) -> impl Stream<Item = Result<Event, Infallible>> {
    futures_util::stream::unfold((rx, true), |(mut rx, first)| async move {
        if !first {
            rx.changed().await.ok()?;
        }
        loop {
            let current = rx.borrow_and_update().clone();
            if !current.is_empty() {
                return Some((event("overview", &current), (rx, false)));
            }
            rx.changed().await.ok()?;
        }
    })
}

/// One issue's page: its row with the journal (`issue`) and its pane
/// (`pane`), each sent when it differs from what was sent last.
pub(super) fn issue_stream(
    app: Arc<App>,
    project: String,
    session: String,
) -> impl Stream<Item = Result<Event, Infallible>> {
    let watcher = IssueWatch {
        changes: app.store.changes(),
        tick: tokio::time::interval(TICK),
        app,
        project,
        session,
        issue_due: true,
        pane_due: true,
        known: false,
        sent_issue: String::new(),
        sent_pane: String::new(),
        pane_mark: None,
        ticks: 0,
    };
    futures_util::stream::unfold(watcher, |mut w| async move {
        let event = w.next().await?;
        Some((event, w))
    })
}

struct IssueWatch {
    app: Arc<App>,
    project: String,
    session: String,
    changes: watch::Receiver<u64>,
    tick: tokio::time::Interval,
    issue_due: bool,
    pane_due: bool,
    /// The session is a claim's: only then is its pane shown, so the page
    /// cannot be pointed at any other tmux session of the daemon's user.
    known: bool,
    sent_issue: String,
    sent_pane: String,
    /// The pane log's size and modification time when last captured.
    pane_mark: Option<(u64, Option<SystemTime>)>,
    /// Ticks since the pane was last captured.
    ticks: u32,
}

impl IssueWatch {
    /// The next event to send; `None` ends the stream (the daemon stops).
    async fn next(&mut self) -> Option<Result<Event, Infallible>> {
        loop {
            if std::mem::take(&mut self.issue_due)
                && let Some((known, json)) = self.issue_json().await
            {
                self.known = known;
                if json != self.sent_issue {
                    self.sent_issue = json;
                    return Some(event("issue", &self.sent_issue));
                }
            }
            if std::mem::take(&mut self.pane_due) {
                self.ticks = 0;
                let json = self.pane_json().await;
                if json != self.sent_pane {
                    self.sent_pane = json;
                    return Some(event("pane", &self.sent_pane));
                }
            }
            self.tick.tick().await;
            self.ticks += 1;
            match self.changes.has_changed() {
                Ok(changed) => {
                    self.changes.borrow_and_update();
                    self.issue_due = changed;
                }
                Err(_) => return None,
            }
            let mark = self.pane_log_mark().await;
            if mark != self.pane_mark || self.ticks >= PANE_REFRESH {
                self.pane_mark = mark;
                self.pane_due = true;
            }
        }
    }

    async fn issue_json(&self) -> Option<(bool, String)> {
        issue_json(&self.app, &self.project, &self.session).await
    }

    async fn pane_json(&self) -> String {
        pane_json(&self.app, &self.project, &self.session, self.known).await
    }

    async fn pane_log_mark(&self) -> Option<(u64, Option<SystemTime>)> {
        let log = self.app.paths.session_dir(&self.session).join(PANE_LOG);
        let meta = tokio::fs::symlink_metadata(&log).await.ok()?;
        Some((meta.len(), meta.modified().ok()))
    }
}

/// Whether a claim holds the session, and its row with the journal; `None`
/// when the store could not be read.
async fn issue_json(app: &App, project: &str, session: &str) -> Option<(bool, String)> {
    match app
        .store
        .issue_by_session(project, session, RECENT_ON_PAGE)
        .await
    {
        Ok(Some(v)) => {
            let config = app.projects.iter().find(|p| p.name == project);
            let default = Redactor::default();
            let redactor = config.map_or(&default, |p| &p.redactor);
            Some((true, view::issue(config, redactor, &v).to_string()))
        }
        Ok(None) => Some((false, serde_json::json!({ "missing": true }).to_string())),
        Err(e) => {
            tracing::warn!("dashboard: reading {session}: {e:#}");
            None
        }
    }
}

/// The pane of a session a claim holds (`known`), redacted.
async fn pane_json(app: &App, project: &str, session: &str, known: bool) -> String {
    let captured = match known {
        true => app.tmux.capture_pane(session, PANE_LINES).await,
        false => Err(anyhow::anyhow!("no claim holds {session}")),
    };
    let body = match captured {
        Ok(text) => {
            let redactor = app
                .projects
                .iter()
                .find(|p| p.name == project)
                .map(|p| p.redactor.clone())
                .unwrap_or_default();
            serde_json::json!({ "live": true, "text": view::pane(&redactor, &text) })
        }
        Err(_) => serde_json::json!({ "live": false, "text": "" }),
    };
    body.to_string()
}

/// What a page shows before its first event: the same messages the events
/// carry, by event name, so the page is whole once loaded (for a reader
/// that does not wait for events: `chromium --dump-dom`, a slow link).
pub(super) async fn first_paint(app: &App, page: FirstPaint<'_>) -> String {
    let mut messages = Vec::new();
    match page {
        FirstPaint::Overview => {
            match app.store.overview(FINISHED_SHOWN, RECENT_ON_OVERVIEW).await {
                Ok(o) => messages.push(("overview", view::overview(&app.projects, &o).to_string())),
                Err(e) => tracing::warn!("dashboard: reading the overview: {e:#}"),
            }
        }
        FirstPaint::Issue { project, session } => {
            if let Some((known, issue)) = issue_json(app, project, session).await {
                messages.push(("issue", issue));
                messages.push(("pane", pane_json(app, project, session, known).await));
            }
        }
    }
    let now = serde_json::to_string(&chrono::Utc::now()).unwrap_or_else(|_| "null".into());
    let fields: Vec<String> = messages
        .iter()
        .map(|(name, data)| format!("\"{name}\":{{\"now\":{now},\"data\":{data}}}"))
        .collect();
    format!("{{{}}}", fields.join(","))
}

/// Which page is being served.
pub(super) enum FirstPaint<'a> {
    Overview,
    Issue { project: &'a str, session: &'a str },
}
