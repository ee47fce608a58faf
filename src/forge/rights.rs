//! What the forge clients decide alike about labels and people: the colour of
//! a label forgehand creates, and who may write to a repository — asked of
//! the forge once per login and trusted for [`PERMISSION_TTL`], so the
//! reviews and comments of one issue cost one request per person.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use reqwest::StatusCode;

use super::{ForgeError, ForgeResult};

/// How long an answer is trusted. Rights change rarely, and a revoked right
/// is noticed within this long.
pub const PERMISSION_TTL: Duration = Duration::from_secs(600);

/// Login → whether it may write, and when that was asked.
#[derive(Debug, Default)]
pub struct Permissions(Mutex<HashMap<String, (bool, Instant)>>);

impl Permissions {
    /// The answer for `login`, if one was given within [`PERMISSION_TTL`].
    pub fn cached(&self, login: &str) -> Option<bool> {
        let cache = self.0.lock().expect("permission cache poisoned");
        cache
            .get(login)
            .filter(|(_, at)| at.elapsed() < PERMISSION_TTL)
            .map(|(may, _)| *may)
    }

    pub fn remember(&self, login: &str, may: bool) {
        self.0
            .lock()
            .expect("permission cache poisoned")
            .insert(login.to_string(), (may, Instant::now()));
    }
}

/// What a failed permission look-up means. No such account, or not a
/// collaborator: no write access. A 403 means forgehand's own credentials may
/// not read others' rights (that takes a repository admin): then nobody's
/// review counts and nobody's comment gets through, and the log says why for
/// each. Anything else (an outage) is the caller's error.
pub fn permission_refused(
    status: Option<StatusCode>,
    error: ForgeError,
    login: &str,
    repo: &str,
) -> ForgeResult<bool> {
    match (status, error) {
        (_, ForgeError::NotFound(_)) => Ok(false),
        (Some(StatusCode::FORBIDDEN), ForgeError::Unauthorized(why)) => {
            tracing::warn!(
                "cannot read {login}'s rights on {repo}, taken as no write access: {why}"
            );
            Ok(false)
        }
        (_, e) => Err(e),
    }
}

/// A colour for a label forgehand creates, as six hex digits: by role when
/// the name says it, grey otherwise.
pub fn label_color(name: &str) -> &'static str {
    let name = name.to_ascii_lowercase();
    if name.contains("block") {
        "b60205"
    } else if name.contains("progress") {
        "fbca04"
    } else if name.contains("priority") {
        "d93f0b"
    } else if name.contains("backlog") {
        "0075ca"
    } else if name.contains("underspecified") {
        "5319e7"
    } else {
        "cccccc"
    }
}
