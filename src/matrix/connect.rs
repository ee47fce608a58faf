//! The Matrix client, built from the access token alone: `whoami` tells which
//! device the token belongs to, and the session is restored on it, so no
//! login ever happens and no new device appears per start. Built lazily and
//! shared, so a homeserver that is down at start only delays the first send;
//! the room is joined on the first call after that (and on later calls until
//! a join works: an invitation may come after forgehand started).

use std::time::Duration;

use anyhow::Context;
use matrix_sdk::authentication::matrix::MatrixSession;
use matrix_sdk::config::RequestConfig;
use matrix_sdk::ruma::api::client::membership::join_room_by_id;
use matrix_sdk::ruma::{OwnedDeviceId, OwnedRoomId, OwnedUserId};
use matrix_sdk::{Client, SessionMeta, SessionTokens};
use serde::Deserialize;
use tokio::sync::OnceCell;

use super::reach::{Failure, Unreachable, classify};

/// How long one ordinary request may take before it counts as failed.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Holds the token; `Debug` never prints it.
pub struct Connector {
    homeserver: String,
    user_id: String,
    room: OwnedRoomId,
    token: String,
    client: OnceCell<Client>,
    /// Set once a join of `room` succeeded (or found the bot a member).
    joined: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for Connector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Connector({} on {})", self.user_id, self.homeserver)
    }
}

#[derive(Deserialize)]
struct JoinedRooms {
    joined_rooms: Vec<String>,
}

#[derive(Deserialize)]
struct WhoAmI {
    user_id: String,
    device_id: Option<String>,
}

impl Connector {
    pub fn new(homeserver: &str, user_id: &str, room: OwnedRoomId, token: String) -> Connector {
        Connector {
            homeserver: homeserver.trim_end_matches('/').to_string(),
            user_id: user_id.to_string(),
            room,
            token,
            client: OnceCell::new(),
            joined: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// The client, connecting first if needed, in the room; an error leaves
    /// it unbuilt so the next call tries again.
    pub async fn client(&self) -> anyhow::Result<Client> {
        let client = self
            .client
            .get_or_try_init(|| self.connect())
            .await
            .cloned()?;
        self.join(&client).await?;
        Ok(client)
    }

    /// Join the room unless done already. Joining a room the bot is in
    /// changes nothing; one it may not join (no invitation yet) is only
    /// warned about, since the calls that need it fail and retry anyway.
    async fn join(&self, client: &Client) -> anyhow::Result<()> {
        use std::sync::atomic::Ordering;
        if self.joined.load(Ordering::Relaxed) {
            return Ok(());
        }
        let request = join_room_by_id::v3::Request::new(self.room.clone());
        match client.send(request).await {
            Ok(_) => {
                self.joined.store(true, Ordering::Relaxed);
                Ok(())
            }
            Err(e) => {
                let e = anyhow::Error::new(e).context(format!("joining {}", self.room));
                if classify(&e) == Failure::Unreachable {
                    return Err(e);
                }
                tracing::warn!("{e:#}");
                Ok(())
            }
        }
    }

    async fn connect(&self) -> anyhow::Result<Client> {
        let who = self.whoami().await?;
        if who.user_id != self.user_id {
            anyhow::bail!(
                "[matrix] user_id is {} but the token belongs to {}",
                self.user_id,
                who.user_id
            );
        }
        let user_id: OwnedUserId = who
            .user_id
            .parse()
            .with_context(|| format!("parsing the user id {}", who.user_id))?;
        // A token without a device (an appservice's) still sends and syncs;
        // the device id only matters for encryption, which is off.
        let device_id: OwnedDeviceId = who.device_id.unwrap_or_else(|| "FORGEHAND".into()).into();
        let client = Client::builder()
            .homeserver_url(&self.homeserver)
            // Retries are ours (same transaction id, backoff, logged); the
            // SDK's own would hide an outage.
            .request_config(
                RequestConfig::new()
                    .disable_retry()
                    .timeout(REQUEST_TIMEOUT),
            )
            .build()
            .await
            .with_context(|| format!("building the Matrix client for {}", self.homeserver))?;
        client
            .restore_session(MatrixSession {
                meta: SessionMeta { user_id, device_id },
                tokens: SessionTokens {
                    access_token: self.token.clone(),
                    refresh_token: None,
                },
            })
            .await
            .context("restoring the Matrix session from the access token")?;
        tracing::info!(user = %self.user_id, homeserver = %self.homeserver, "connected to Matrix");
        Ok(client)
    }

    /// For `forgehand doctor`: the token is `user_id`'s and the room is
    /// joined (two reads: `whoami` and the joined rooms; nothing is joined).
    pub async fn check(&self) -> anyhow::Result<()> {
        let who = self.whoami().await?;
        if who.user_id != self.user_id {
            anyhow::bail!(
                "the token belongs to {}, not to [matrix] user_id {}: fix one of them",
                who.user_id,
                self.user_id
            );
        }
        let rooms: JoinedRooms = self
            .get("/_matrix/client/v3/joined_rooms", "the joined rooms")
            .await?;
        if !rooms.joined_rooms.iter().any(|r| *r == self.room.as_str()) {
            anyhow::bail!(
                "{} has not joined {}: invite it there (the daemon joins when it next sends) or join it yourself",
                self.user_id,
                self.room
            );
        }
        Ok(())
    }

    async fn whoami(&self) -> anyhow::Result<WhoAmI> {
        self.get(
            "/_matrix/client/v3/account/whoami",
            "who the Matrix token belongs to",
        )
        .await
    }

    /// `GET path` with the token; `what` says what was asked, for errors.
    async fn get<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        what: &str,
    ) -> anyhow::Result<T> {
        let url = format!("{}{path}", self.homeserver);
        let response = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .build()
            .context("building an HTTP client")?
            .get(&url)
            .bearer_auth(&self.token)
            .send()
            .await
            .with_context(|| format!("asking {url} {what}"))?;
        let status = response.status();
        if !status.is_success() {
            let text = response.text().await.unwrap_or_default();
            let message = format!("{url} answered {status}: {}", text.trim());
            if status.is_server_error() || status.as_u16() == 429 {
                return Err(Unreachable(message).into());
            }
            anyhow::bail!(message);
        }
        response
            .json()
            .await
            .with_context(|| format!("reading the answer of {url}"))
    }
}
