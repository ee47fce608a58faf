//! Matrix: one thread per issue in the project's room, escalations that
//! mention a human, and the human's replies read back from those threads.
//!
//! `MatrixNotifier` is two tokio tasks behind a plain handle (no actor: they
//! have no messages to answer, only a queue to drain and a room to read):
//!
//! - the **sender** drains an unbounded queue in order (so one issue's
//!   messages never overtake each other). Each item gets its transaction id
//!   when queued and keeps it across retries, so a send that reached the
//!   homeserver before the connection broke is not posted twice. Failures are
//!   logged and retried with exponential backoff, forever: an outage delays
//!   messages, it never loses them or stops anything.
//! - the **syncer** long-polls `/sync` filtered to the room and records every
//!   message in a known issue thread from someone other than the bot as a
//!   `ChatReply`, journals it and calls `on_reply(project, issue)`. The sync
//!   token is kept in SQLite so a restart reads on from where it stopped.
//!
//! Both tasks stop when the notifier is dropped (the sender first finishes
//! what is queued if the homeserver answers).

mod connect;
pub mod message;
mod sync;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context;
use matrix_sdk::Client;
use matrix_sdk::ruma::api::client::message::send_message_event;
use matrix_sdk::ruma::serde::Raw;
use matrix_sdk::ruma::{OwnedRoomId, OwnedTransactionId};
use serde_json::Value;
use tokio::sync::{mpsc, watch};
use tracing::Instrument;

use crate::config::MatrixConfig;
use crate::notify::{Notice, Notifier, Subject};
use crate::redact::Redactor;
use crate::store::Store;

use connect::Connector;

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

/// One queued send.
enum Outgoing {
    Notice {
        subject: Subject,
        notice: Notice,
        txn: String,
    },
    Reaction {
        event_id: String,
        txn: String,
    },
}

pub struct MatrixNotifier {
    queue: mpsc::UnboundedSender<Outgoing>,
    /// How many queued items are not sent yet, for `flush`.
    unsent: watch::Sender<usize>,
    /// Set on drop: the syncer stops, the sender stops retrying.
    shutdown: watch::Sender<bool>,
    /// Transaction ids must be unique per access token across restarts (the
    /// homeserver answers a reused one with the old event), hence the start
    /// time in the prefix.
    txn_prefix: String,
    txn_counter: AtomicU64,
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
            args.token,
        ));
        let (queue, rx) = mpsc::unbounded_channel();
        let (unsent, _) = watch::channel(0usize);
        let (shutdown, shutdown_rx) = watch::channel(false);
        let span = tracing::info_span!("matrix", project = %args.project);
        let sender = Sender {
            connector: connector.clone(),
            room: room.clone(),
            store: args.store.clone(),
            redactor: args.redactor,
            mention: args.config.mention_user.clone(),
            timing: args.timing,
            unsent: unsent.clone(),
            shutdown: shutdown_rx.clone(),
        };
        tokio::spawn(sender.run(rx).instrument(span.clone()));
        let syncer = sync::Syncer {
            connector,
            room,
            bot: args.config.user_id.clone(),
            project: args.project,
            store: args.store,
            on_reply: args.on_reply,
            timing: args.timing,
            shutdown: shutdown_rx,
        };
        tokio::spawn(syncer.run().instrument(span));
        Ok(MatrixNotifier {
            queue,
            unsent,
            shutdown,
            txn_prefix: format!("fh{}", chrono::Utc::now().timestamp_micros()),
            txn_counter: AtomicU64::new(0),
        })
    }

    /// Wait until everything queued so far has been sent; `false` on timeout.
    pub async fn flush(&self, timeout: Duration) -> bool {
        let mut rx = self.unsent.subscribe();
        tokio::time::timeout(timeout, rx.wait_for(|n| *n == 0))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    fn enqueue(&self, item: impl FnOnce(String) -> Outgoing) {
        let n = self.txn_counter.fetch_add(1, Ordering::Relaxed);
        self.unsent.send_modify(|u| *u += 1);
        if self
            .queue
            .send(item(format!("{}-{n}", self.txn_prefix)))
            .is_err()
        {
            // Only after the sender task died (a panic): say so, don't crash
            // the dev actor that called.
            self.unsent.send_modify(|u| *u -= 1);
            tracing::error!("the Matrix sender has stopped; a message is lost");
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
        let subject = subject.clone();
        self.enqueue(|txn| Outgoing::Notice {
            subject,
            notice,
            txn,
        });
    }

    fn acknowledge(&self, _project: &str, _issue: u64, event_id: &str) {
        let event_id = event_id.to_string();
        self.enqueue(|txn| Outgoing::Reaction { event_id, txn });
    }
}

/// The task that drains the queue.
struct Sender {
    connector: Arc<Connector>,
    room: OwnedRoomId,
    store: Arc<Store>,
    redactor: Redactor,
    mention: Option<String>,
    timing: MatrixTiming,
    unsent: watch::Sender<usize>,
    shutdown: watch::Receiver<bool>,
}

impl Sender {
    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Outgoing>) {
        while let Some(item) = rx.recv().await {
            let mut delay = self.timing.retry_initial;
            let mut attempt = 1u32;
            loop {
                match self.deliver(&item).await {
                    Ok(()) => break,
                    Err(e) => {
                        tracing::warn!(
                            "sending to Matrix failed (attempt {attempt}), retrying in {delay:?}: {e:#}"
                        );
                        let stopped = tokio::select! {
                            _ = tokio::time::sleep(delay) => false,
                            _ = self.shutdown.wait_for(|s| *s) => true,
                        };
                        if stopped {
                            tracing::warn!(
                                "stopping with {} Matrix message(s) unsent",
                                *self.unsent.borrow()
                            );
                            return;
                        }
                        delay = (delay * 2).min(self.timing.retry_max);
                        attempt += 1;
                    }
                }
            }
            self.unsent.send_modify(|u| *u = u.saturating_sub(1));
        }
    }

    async fn deliver(&self, item: &Outgoing) -> anyhow::Result<()> {
        let client = self.connector.client().await?;
        match item {
            Outgoing::Notice {
                subject,
                notice,
                txn,
            } => {
                let (project, issue) = (subject.project.as_str(), subject.issue);
                let root = self.store.matrix_thread(project, issue).await?;
                let mention = self.mention.as_deref();
                let rendered = match &root {
                    Some(_) => message::in_thread(subject, notice, &self.redactor, mention),
                    None => message::root(subject, notice, &self.redactor, mention),
                };
                let content = message::content(&rendered, notice.needs_human(), root.as_deref());
                let event_id = self
                    .send(&client, "m.room.message", content, txn)
                    .await
                    .with_context(|| format!("posting \"{notice}\" for {project}#{issue}"))?;
                if root.is_none() {
                    // A failure here retries the same transaction: the
                    // homeserver answers with the same event, stored then.
                    self.store
                        .set_matrix_thread(project, issue, &event_id)
                        .await?;
                }
            }
            Outgoing::Reaction { event_id, txn } => {
                self.send(&client, "m.reaction", message::reaction(event_id), txn)
                    .await
                    .with_context(|| format!("reacting to {event_id}"))?;
            }
        }
        Ok(())
    }

    async fn send(
        &self,
        client: &Client,
        event_type: &str,
        content: Value,
        txn: &str,
    ) -> anyhow::Result<String> {
        let raw = serde_json::value::to_raw_value(&content).context("encoding the event")?;
        let request = send_message_event::v3::Request::new_raw(
            self.room.clone(),
            OwnedTransactionId::from(txn),
            event_type.into(),
            Raw::from_json(raw),
        );
        let response = client
            .send(request)
            .await
            .with_context(|| format!("sending an {event_type} event to {}", self.room))?;
        Ok(response.event_id.to_string())
    }
}
