//! Who may write to the repository: the GitHub client's answer to
//! `Forge::can_write` and to whether a review is official, from
//! `GET …/collaborators/{username}/permission`, kept a while per login so the
//! reviews and comments of one issue cost one request per person.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};

use super::GithubClient;
use super::wire::WirePermission;
use crate::forge::{ForgeError, ForgeResult};
use crate::http::retry::Replay;

/// How long an answer is trusted. Rights change rarely, and a revoked right
/// is noticed within this long.
const PERMISSION_TTL: Duration = Duration::from_secs(600);

impl GithubClient {
    pub(super) async fn may_write(&self, login: &str) -> ForgeResult<bool> {
        // Something GitHub wrote without naming its author: nobody to ask about.
        if login.is_empty() {
            return Ok(false);
        }
        if let Some(may) = self.cached_permission(login) {
            return Ok(may);
        }
        let url = self
            .api
            .repo_url(&["collaborators", login, "permission"], &[]);
        let token = self.api.token().await?;
        let may = match self
            .api
            .json::<WirePermission>(&token, Method::GET, url, None, Replay::Safe)
            .await
        {
            Ok(permission) => permission.may_write(),
            Err(e) => match (e.status(), self.api.error(e, &token)) {
                // Not a collaborator, or no such account (a bot, a ghost).
                (_, ForgeError::NotFound(_)) => false,
                // forgehand's own credentials may not read others' rights: then
                // nobody's review counts and nobody's comment gets through.
                (Some(StatusCode::FORBIDDEN), ForgeError::Unauthorized(why)) => {
                    tracing::warn!(
                        "cannot read {login}'s rights on {}, taken as no write access: {why}",
                        self.api.repo_name()
                    );
                    false
                }
                (_, e) => return Err(e),
            },
        };
        self.permissions
            .lock()
            .expect("permission cache poisoned")
            .insert(login.to_string(), (may, Instant::now()));
        Ok(may)
    }

    fn cached_permission(&self, login: &str) -> Option<bool> {
        let cache = self.permissions.lock().expect("permission cache poisoned");
        cache
            .get(login)
            .filter(|(_, at)| at.elapsed() < PERMISSION_TTL)
            .map(|(may, _)| *may)
    }
}
