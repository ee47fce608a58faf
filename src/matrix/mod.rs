//! Matrix: one thread per issue in the project's room, escalations that
//! mention a human, and the human's replies read back from those threads.
//!
//! `MatrixNotifier` is two tokio tasks behind a plain handle (no actor: they
//! have no messages to answer, only an outbox to drain and a room to read):
//!
//! - the **sender** (`send.rs`) drains the project's chat outbox in the
//!   store, oldest first (so one issue's messages never overtake each
//!   other). `notify` only writes the message there, so nothing forgehand
//!   owes the chat is lost to an outage or a restart. A row stays until the
//!   homeserver has accepted it, and its transaction id comes from the row,
//!   so a resend after a crash between the send and the delete is the same
//!   transaction, which the homeserver answers with the event it already
//!   has. Failures are retried with exponential backoff; a message not
//!   accepted within `[matrix] outbox_max_age` is dropped with a journal line.
//! - the **syncer** long-polls `/sync` filtered to the room and records every
//!   message in a known issue thread from someone other than the bot as a
//!   `ChatReply`, journals it and calls `on_reply(project, issue)`. The sync
//!   token is kept in SQLite so a restart reads on from where it stopped.
//!
//! Neither waits at start: the client (`connect.rs`) is built, and the room
//! joined, on the first call that gets an answer. A homeserver outage is
//! journaled once (`reach.rs`). Both tasks stop when the notifier is dropped.

mod connect;
pub mod message;
mod reach;
mod send;
mod sync;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use matrix_sdk::ruma::OwnedRoomId;
use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, watch};
use tracing::Instrument;

use crate::config::MatrixConfig;
use crate::notify::{Notice, Notifier, Subject};
use crate::redact::Redactor;
use crate::store::{OutboxRow, Store};

pub use connect::Connector;
use reach::Reach;

/// Called with (project, issue) when a new chat reply has been recorded.
pub type OnReply = Arc<dyn Fn(&str, u64) + Send + Sync>;

/// Timings; the defaults suit a daemon, tests shorten them.
#[derive(Debug, Clone, Copy)]
pub struct MatrixTiming {
    /// First wait after a failed send or sync; doubles up to `retry_max`.
    pub retry_initial: Duration,
    pub retry_max: Duration,
    /// How long one `/sync` long-poll waits for new events.
    pub sync_timeout: Duration,
}

impl Default for MatrixTiming {
    fn default() -> Self {
        MatrixTiming {
            retry_initial: Duration::from_secs(1),
            retry_max: Duration::from_secs(60),
            sync_timeout: Duration::from_secs(30),
        }
    }
}

pub struct MatrixArgs {
    /// The project whose issue threads this notifier posts and reads.
    pub project: String,
    pub config: MatrixConfig,
    /// The access token (`[matrix] token_env`); never logged.
    pub token: String,
    pub store: Arc<Store>,
    /// The project's redactor: every message passes it.
    pub redactor: Redactor,
    pub on_reply: OnReply,
    pub timing: MatrixTiming,
}

/// One message owed to the room, as kept in the outbox (JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Outgoing {
    Notice {
        subject: Subject,
        notice: Notice,
    },
    /// ✅ on a human's reply that reached the agent.
    Reaction {
        event_id: String,
    },
}

impl Outgoing {
    /// The outbox payload.
    pub fn to_payload(&self) -> String {
        serde_json::to_string(self).expect("an outgoing message always encodes")
    }
}

/// The transaction id of an outbox row: the same for every attempt and
/// every restart, and never another row's (its id is never reused, and the
/// creation time tells it from a row of an older database the same access
/// token once sent from).
pub fn transaction_id(row: &OutboxRow) -> String {
    format!("fh{}-{}", row.created_at.timestamp_micros(), row.id)
}

pub struct MatrixNotifier {
    project: String,
    store: Arc<Store>,
    /// Tells the sender a message was written to the outbox.
    wake: Arc<Notify>,
    /// Bumped by the sender whenever a message leaves the outbox, for `flush`.
    progress: watch::Receiver<u64>,
    /// Set on drop: the syncer and the sender stop.
    shutdown: watch::Sender<bool>,
}

impl MatrixNotifier {
    /// Validate the settings and start the tasks (inside a tokio runtime). No
    /// network happens here: a homeserver that is down only delays messages.
    pub fn start(args: MatrixArgs) -> anyhow::Result<MatrixNotifier> {
        let room: OwnedRoomId = args
            .config
            .room_id
            .parse()
            .with_context(|| format!("[matrix] room_id {:?}", args.config.room_id))?;
        let connector = Arc::new(Connector::new(
            &args.config.homeserver,
            &args.config.user_id,
            room.clone(),
            args.token,
        ));
        let reach = Arc::new(Reach::new(
            &args.project,
            args.store.clone(),
            args.redactor.clone(),
            args.timing,
        ));
        let wake = Arc::new(Notify::new());
        let (progress_tx, progress) = watch::channel(0u64);
        let (shutdown, shutdown_rx) = watch::channel(false);
        let span = tracing::info_span!("matrix", project = %args.project);
        let sender = send::Sender {
            connector: connector.clone(),
            room: room.clone(),
            project: args.project.clone(),
            store: args.store.clone(),
            redactor: args.redactor,
            mention: args.config.mention_user.clone(),
            max_age: args.config.outbox_max_age,
            timing: args.timing,
            reach: reach.clone(),
            wake: wake.clone(),
            progress: progress_tx,
            shutdown: shutdown_rx.clone(),
        };
        tokio::spawn(sender.run().instrument(span.clone()));
        let syncer = sync::Syncer {
            connector,
            room,
            bot: args.config.user_id.clone(),
            project: args.project.clone(),
            store: args.store.clone(),
            on_reply: args.on_reply,
            timing: args.timing,
            reach,
            shutdown: shutdown_rx,
        };
        tokio::spawn(syncer.run().instrument(span));
        Ok(MatrixNotifier {
            project: args.project,
            store: args.store,
            wake,
            progress,
            shutdown,
        })
    }

    /// Wait until the project's outbox is empty (every message accepted or
    /// dropped); `false` on timeout.
    pub async fn flush(&self, timeout: Duration) -> bool {
        let mut progress = self.progress.clone();
        let empty = async {
            loop {
                progress.borrow_and_update();
                match self.store.outbox_next(&self.project).await {
                    Ok(None) => return true,
                    Ok(Some(_)) => {}
                    Err(e) => {
                        tracing::warn!("{e:#}");
                        return false;
                    }
                }
                if progress.changed().await.is_err() {
                    return false;
                }
            }
        };
        tokio::time::timeout(timeout, empty).await.unwrap_or(false)
    }

    fn enqueue(&self, issue: u64, item: Outgoing) {
        match self
            .store
            .queue_outbox(&self.project, issue, item.to_payload())
        {
            Ok(()) => self.wake.notify_one(),
            // Only once the store thread is gone (the daemon is stopping):
            // say so, don't crash the dev actor that called.
            Err(e) => tracing::error!("a Matrix message is lost: {e:#}"),
        }
    }
}

impl Drop for MatrixNotifier {
    fn drop(&mut self) {
        self.shutdown.send_replace(true);
    }
}

impl Notifier for MatrixNotifier {
    fn notify(&self, subject: &Subject, notice: Notice) {
        tracing::info!(project = %subject.project, issue = subject.issue, "notice: {notice}");
        self.enqueue(
            subject.issue,
            Outgoing::Notice {
                subject: subject.clone(),
                notice,
            },
        );
    }

    fn acknowledge(&self, _project: &str, issue: u64, event_id: &str) {
        let event_id = event_id.to_string();
        self.enqueue(issue, Outgoing::Reaction { event_id });
    }
}
