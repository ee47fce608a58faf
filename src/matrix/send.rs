//! The sender: drains the project's chat outbox into the room, oldest first.
//! A row is deleted only once the homeserver accepted it (or it is given up
//! on, with a journal line), and is sent under the transaction id derived
//! from it, so a crash between the send and the delete posts nothing twice.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use chrono::Utc;
use matrix_sdk::Client;
use matrix_sdk::ruma::api::client::message::send_message_event;
use matrix_sdk::ruma::serde::Raw;
use matrix_sdk::ruma::{OwnedRoomId, OwnedTransactionId};
use serde_json::Value;
use tokio::sync::{Notify, watch};

use super::connect::Connector;
use super::reach::{Failure, Reach, classify};
use super::{MatrixTiming, Outgoing, message, transaction_id};
use crate::actors::dev::machine::humanize;
use crate::redact::Redactor;
use crate::store::{EventKind, OutboxRow, Store};

pub struct Sender {
    pub connector: Arc<Connector>,
    pub room: OwnedRoomId,
    pub project: String,
    pub store: Arc<Store>,
    pub redactor: Redactor,
    pub mention: Option<String>,
    /// `[matrix] outbox_max_age`.
    pub max_age: Duration,
    pub timing: MatrixTiming,
    pub reach: Arc<Reach>,
    pub wake: Arc<Notify>,
    pub progress: watch::Sender<u64>,
    pub shutdown: watch::Receiver<bool>,
}

/// What became of one attempt at the oldest row.
enum Attempt {
    /// Accepted, or given up on: the row goes.
    Done,
    /// Try again after a backoff.
    Later(anyhow::Error),
}

impl Sender {
    pub async fn run(mut self) {
        let mut delay = self.timing.retry_initial;
        loop {
            let attempt = match self.store.outbox_next(&self.project).await {
                Ok(None) => {
                    // `notify_one` keeps a wake-up sent before this wait.
                    tokio::select! {
                        _ = self.wake.notified() => continue,
                        _ = self.shutdown.wait_for(|s| *s) => return,
                    }
                }
                Ok(Some(row)) => self.attempt(&row).await.map(|a| (row.id, a)),
                Err(e) => Err(e),
            };
            let error = match attempt {
                Ok((id, Attempt::Done)) => match self.store.outbox_remove(id).await {
                    Ok(()) => {
                        delay = self.timing.retry_initial;
                        self.progress.send_modify(|n| *n += 1);
                        continue;
                    }
                    Err(e) => e,
                },
                Ok((_, Attempt::Later(e))) | Err(e) => e,
            };
            tracing::warn!("sending to Matrix failed, retrying in {delay:?}: {error:#}");
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = self.shutdown.wait_for(|s| *s) => return,
            }
            delay = (delay * 2).min(self.timing.retry_max);
        }
    }

    /// One try at `row`; an error only when the store fails.
    async fn attempt(&self, row: &OutboxRow) -> anyhow::Result<Attempt> {
        let item = match serde_json::from_str::<Outgoing>(&row.payload) {
            Ok(item) => item,
            Err(e) => {
                self.dropped(row, &format!("unreadable ({e})"), "a message");
                return Ok(Attempt::Done);
            }
        };
        let age = (Utc::now() - row.created_at).to_std().unwrap_or_default();
        if age > self.max_age {
            let why = format!(
                "not accepted by the homeserver within [matrix] outbox_max_age ({})",
                humanize(self.max_age)
            );
            self.dropped(row, &why, &describe(&item));
            return Ok(Attempt::Done);
        }
        match self.deliver(row, &item).await {
            Ok(()) => {
                self.reach.answered();
                Ok(Attempt::Done)
            }
            Err(e) => {
                self.reach.failed(&e);
                if classify(&e) == Failure::Rejected {
                    // It answered, and will answer the same again.
                    self.reach.answered();
                    self.dropped(
                        row,
                        &format!("refused by the homeserver: {e:#}"),
                        &describe(&item),
                    );
                    return Ok(Attempt::Done);
                }
                Ok(Attempt::Later(e))
            }
        }
    }

    /// Journal that `row` is given up on: never silently.
    fn dropped(&self, row: &OutboxRow, why: &str, what: &str) {
        let line = self.redactor.redact(&format!(
            "chat message dropped ({why}), written {}: {what}",
            row.created_at.format("%Y-%m-%d %H:%M:%S UTC")
        ));
        tracing::warn!(issue = row.issue, "{line}");
        if let Err(e) = self
            .store
            .journal(&row.project, Some(row.issue), EventKind::Error, &line)
        {
            tracing::error!("{e:#}");
        }
    }

    async fn deliver(&self, row: &OutboxRow, item: &Outgoing) -> anyhow::Result<()> {
        let client = self.connector.client().await?;
        let txn = transaction_id(row);
        match item {
            Outgoing::Notice { subject, notice } => {
                let (project, issue) = (subject.project.as_str(), subject.issue);
                let root = self.store.matrix_thread(project, issue).await?;
                let mention = self.mention.as_deref();
                let rendered = match &root {
                    Some(_) => message::in_thread(subject, notice, &self.redactor, mention),
                    None => message::root(subject, notice, &self.redactor, mention),
                };
                let content = message::content(&rendered, notice.needs_human(), root.as_deref());
                let event_id = self
                    .send(&client, "m.room.message", content, &txn)
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
            Outgoing::Reaction { event_id } => {
                self.send(&client, "m.reaction", message::reaction(event_id), &txn)
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

/// What a message was, for the journal line that drops it.
fn describe(item: &Outgoing) -> String {
    match item {
        Outgoing::Notice { subject, notice } => {
            format!("\"{notice}\" for {}#{}", subject.project, subject.issue)
        }
        Outgoing::Reaction { event_id } => format!("✅ on {event_id}"),
    }
}
