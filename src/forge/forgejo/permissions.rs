//! Who may write to the repository: the Forgejo client's answer to
//! `Forge::can_write`, from `GET …/collaborators/{login}/permission`, kept a
//! while per login so the comments of one issue cost one request per commenter.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};

use super::ForgejoClient;
use super::wire::WirePermission;
use crate::forge::{ForgeError, ForgeResult};
use crate::http::retry::Replay;

/// How long an answer is trusted. Every look at an issue's comments asks
/// about each commenter; rights change rarely, and a revoked right is
/// noticed within this long.
const PERMISSION_TTL: Duration = Duration::from_secs(600);

impl ForgejoClient {
    pub(super) async fn may_write(&self, login: &str) -> ForgeResult<bool> {
        // A comment whose author the forge did not name: nobody to ask about.
        if login.is_empty() {
            return Ok(false);
        }
        if let Some(may) = self.cached_permission(login) {
            return Ok(may);
        }
        let url = self.repo_url(&["collaborators", login, "permission"], &[]);
        let may = match self
            .json::<WirePermission>(Method::GET, url, None, Replay::Safe)
            .await
        {
            Ok(reply) => reply.value.may_write(),
            Err(e) => match (e.status(), self.error(e)) {
                // No such account (any more).
                (_, ForgeError::NotFound(_)) => false,
                // Forgejo answers 403 when forgehand's own account may not read
                // others' rights (that takes a repository admin): then nobody's
                // comments get through, and the journal says so for each one.
                (Some(StatusCode::FORBIDDEN), ForgeError::Unauthorized(why)) => {
                    tracing::warn!(
                        "cannot read {login}'s rights on {}/{}, taken as no write access: {why}",
                        self.owner,
                        self.repo
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
