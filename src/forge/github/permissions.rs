//! Who may write to the repository: the GitHub client's answer to
//! `Forge::can_write` and to whether a review is official, from
//! `GET …/collaborators/{username}/permission`, kept a while per login so the
//! reviews and comments of one issue cost one request per person.

use reqwest::Method;

use super::GithubClient;
use super::wire::WirePermission;
use crate::forge::ForgeResult;
use crate::forge::rights::permission_refused;
use crate::http::retry::Replay;

impl GithubClient {
    pub(super) async fn may_write(&self, login: &str) -> ForgeResult<bool> {
        // Something GitHub wrote without naming its author: nobody to ask about.
        if login.is_empty() {
            return Ok(false);
        }
        if let Some(may) = self.permissions.cached(login) {
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
            // Not a collaborator, or no such account (a bot, a ghost): no.
            Err(e) => {
                let status = e.status();
                let error = self.api.error(e, &token);
                permission_refused(status, error, login, &self.api.repo_name())?
            }
        };
        self.permissions.remember(login, may);
        Ok(may)
    }
}
