//! Reading the room: `/sync` long-polls filtered to the project's room and
//! its messages; a message in a known issue thread from anyone but the bot is
//! a human's answer for that issue's agent.

use std::sync::Arc;

use anyhow::Context;
use matrix_sdk::config::RequestConfig;
use matrix_sdk::ruma::api::client::filter::{FilterDefinition, RoomEventFilter};
use matrix_sdk::ruma::api::client::sync::sync_events::v3 as sync_events;
use matrix_sdk::ruma::{OwnedRoomId, UInt};
use serde_json::Value;
use tokio::sync::watch;

use super::connect::Connector;
use super::reach::Reach;
use super::{MatrixTiming, OnReply, message};
use crate::store::{EventKind, Store};

/// How many events one sync returns per room at most: enough that an
/// outage's worth of replies comes back in one answer.
const TIMELINE_LIMIT: u32 = 200;

pub struct Syncer {
    pub connector: Arc<Connector>,
    pub room: OwnedRoomId,
    /// The bot's user id: its own messages are not replies.
    pub bot: String,
    pub project: String,
    pub store: Arc<Store>,
    pub on_reply: OnReply,
    pub timing: MatrixTiming,
    pub reach: Arc<Reach>,
    pub shutdown: watch::Receiver<bool>,
}

impl Syncer {
    pub async fn run(self) {
        let mut shutdown = self.shutdown.clone();
        let mut delay = self.timing.retry_initial;
        loop {
            let outcome = tokio::select! {
                r = self.once() => r,
                _ = shutdown.wait_for(|s| *s) => return,
            };
            match outcome {
                Ok(()) => {
                    self.reach.answered();
                    delay = self.timing.retry_initial;
                }
                Err(e) => {
                    self.reach.failed(&e);
                    tracing::warn!("reading the Matrix room failed, retrying in {delay:?}: {e:#}");
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = shutdown.wait_for(|s| *s) => return,
                    }
                    delay = (delay * 2).min(self.timing.retry_max);
                }
            }
        }
    }

    /// The sync token's key: one position per project and room.
    fn key(&self) -> String {
        format!("{}|{}", self.project, self.room)
    }

    async fn once(&self) -> anyhow::Result<()> {
        let client = self.connector.client().await?;
        let since = self.store.matrix_sync_token(&self.key()).await?;
        let mut request = sync_events::Request::new();
        request.filter = Some(sync_events::Filter::FilterDefinition(self.filter()));
        // The first sync (no token yet) only finds the position: it answers at
        // once, and there are no threads to read replies from before it.
        request.timeout = since.as_ref().map(|_| self.timing.sync_timeout);
        request.since = since;
        let config = RequestConfig::new()
            .disable_retry()
            .timeout(self.timing.sync_timeout + std::time::Duration::from_secs(30));
        let response = client
            .send(request)
            .with_request_config(config)
            .await
            .with_context(|| format!("syncing {}", self.room))?;
        if let Some(joined) = response.rooms.join.get(&self.room) {
            if joined.timeline.limited {
                tracing::warn!("the Matrix sync skipped part of the room's history (gap)");
            }
            for raw in &joined.timeline.events {
                match serde_json::from_str::<Value>(raw.json().get()) {
                    Ok(event) => self.consider(&event).await?,
                    Err(e) => tracing::warn!("skipping an unreadable Matrix event: {e}"),
                }
            }
        }
        // Replies are recorded before the position moves on: a crash in
        // between reads them again, and the event id de-duplicates them.
        self.store
            .set_matrix_sync_token(&self.key(), &response.next_batch)
            .await?;
        Ok(())
    }

    fn filter(&self) -> FilterDefinition {
        let mut filter = FilterDefinition::ignore_all();
        filter.room.rooms = Some(vec![self.room.clone()]);
        // Only the timeline's messages: no state, receipts or typing.
        filter.room.state = RoomEventFilter::ignore_all();
        filter.room.ephemeral = RoomEventFilter::ignore_all();
        filter.room.account_data = RoomEventFilter::ignore_all();
        filter.room.timeline.types = Some(vec!["m.room.message".to_string()]);
        filter.room.timeline.limit = Some(UInt::from(TIMELINE_LIMIT));
        filter
    }

    /// Record `event` if it is a human's message in one of our issue threads.
    async fn consider(&self, event: &Value) -> anyhow::Result<()> {
        let text = |v: &Value| v.as_str().map(str::to_string);
        if event["type"] != "m.room.message" {
            return Ok(());
        }
        let (Some(sender), Some(event_id)) = (text(&event["sender"]), text(&event["event_id"]))
        else {
            return Ok(());
        };
        if sender == self.bot {
            return Ok(());
        }
        let content = &event["content"];
        let relation = &content["m.relates_to"];
        // A thread message, or a plain reply to the root from a client
        // without threads.
        let root = if relation["rel_type"] == "m.thread" {
            text(&relation["event_id"])
        } else {
            text(&relation["m.in_reply_to"]["event_id"])
        };
        let Some(root) = root else { return Ok(()) };
        let Some(issue) = self.store.matrix_thread_issue(&self.project, &root).await? else {
            return Ok(());
        };
        let body = message::strip_reply_fallback(content["body"].as_str().unwrap_or_default());
        if body.is_empty() {
            return Ok(());
        }
        if self
            .store
            .add_chat_reply(&self.project, issue, &sender, &body, &event_id)
            .await?
        {
            tracing::info!(
                issue,
                "reply from {sender} in the Matrix thread ({event_id})"
            );
            self.store.journal(
                &self.project,
                Some(issue),
                EventKind::ChatReply,
                &format!("reply from {sender} in the Matrix thread ({event_id})"),
            )?;
            (self.on_reply)(&self.project, issue);
        }
        Ok(())
    }
}
