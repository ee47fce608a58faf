//! Where a forge credential comes from when it is needed: a fixed token from
//! the environment, or one that expires and is renewed (a GitHub App's
//! installation token). The forge clients and git's pushes and fetches ask for
//! it per request or per command, so a renewed token is used at once and no
//! token is ever kept anywhere but in this process's memory.

use std::fmt;

use async_trait::async_trait;

use super::ForgeResult;

/// A source of the token to send to the forge now.
#[async_trait]
pub trait TokenSource: Send + Sync {
    /// The token to use for the next request or git command; renewed first when
    /// it is about to expire. Fetching a new one can fail like any forge call
    /// (`ForgeError::Unavailable` during an outage, so callers wait it out).
    async fn token(&self) -> ForgeResult<String>;
}

/// A token that never changes (a personal access token from `token_env`).
#[derive(Clone)]
pub struct StaticToken(String);

impl StaticToken {
    pub fn new(token: String) -> StaticToken {
        StaticToken(token)
    }
}

impl fmt::Debug for StaticToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StaticToken([REDACTED])")
    }
}

#[async_trait]
impl TokenSource for StaticToken {
    async fn token(&self) -> ForgeResult<String> {
        Ok(self.0.clone())
    }
}
