//! Who may write to the repository: the Forgejo client's answer to
//! `Forge::can_write`, from `GET …/collaborators/{login}/permission`, kept a
//! while per login so the comments of one issue cost one request per commenter.

use reqwest::Method;

use super::ForgejoClient;
use super::wire::WirePermission;
use crate::forge::ForgeResult;
use crate::forge::rights::permission_refused;
use crate::http::retry::Replay;

impl ForgejoClient {
    pub(super) async fn may_write(&self, login: &str) -> ForgeResult<bool> {
        // A comment whose author the forge did not name: nobody to ask about.
        if login.is_empty() {
            return Ok(false);
        }
        if let Some(may) = self.permissions.cached(login) {
            return Ok(may);
        }
        let url = self.repo_url(&["collaborators", login, "permission"], &[]);
        let may = match self
            .json::<WirePermission>(Method::GET, url, None, Replay::Safe)
            .await
        {
            Ok(reply) => reply.value.may_write(),
            Err(e) => {
                let repo = format!("{}/{}", self.owner, self.repo);
                permission_refused(e.status(), self.error(e), login, &repo)?
            }
        };
        self.permissions.remember(login, may);
        Ok(may)
    }
}
