//! A failed HTTP call (`http::HttpError`, after the retry policy gave up) as
//! the `ForgeError` callers branch on: which statuses mean "not found",
//! "conflict", "unauthorized", a rate limit or an outage.

use reqwest::StatusCode;

use super::ForgeError;
use crate::http::{HttpError, HttpErrorKind, redact};

impl ForgeError {
    /// The error callers branch on. `secret` (the API token) is cut out of every
    /// text the forge sent back, in case a proxy echoes request headers.
    pub fn from_http(e: HttpError, secret: &str) -> ForgeError {
        let what = format!("{} {}", e.method, e.path);
        let redact = |text: &str| redact(text, secret);
        let tries = if e.attempts > 1 {
            format!(" (after {} attempts)", e.attempts)
        } else {
            String::new()
        };
        match e.kind {
            HttpErrorKind::Status {
                status,
                message,
                rate_limited,
                retry_after,
            } => {
                let detail = match &message {
                    Some(m) => format!("{what}: HTTP {status}{tries}: {}", redact(m)),
                    None => format!("{what}: HTTP {status}{tries}"),
                };
                if rate_limited {
                    return ForgeError::RateLimited { retry_after };
                }
                match status {
                    StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                        ForgeError::Unauthorized(detail)
                    }
                    StatusCode::NOT_FOUND => ForgeError::NotFound(detail),
                    StatusCode::CONFLICT => ForgeError::Conflict(detail),
                    s if s.is_server_error() || s == StatusCode::REQUEST_TIMEOUT => {
                        ForgeError::Unavailable(detail)
                    }
                    _ => ForgeError::Other(anyhow::anyhow!(detail)),
                }
            }
            HttpErrorKind::Transport(e) => {
                // The URL may carry credentials of the host; the path is in `what`.
                let e = e.without_url();
                let msg = redact(&format!("{:#}", anyhow::Error::new(e)));
                ForgeError::Unavailable(format!("{what}{tries}: {msg}"))
            }
            HttpErrorKind::Decode(e) => ForgeError::Other(anyhow::anyhow!(
                "{what}{tries}: the forge's answer is not the expected JSON: {e}"
            )),
            HttpErrorKind::Html => ForgeError::Other(anyhow::anyhow!(
                "{what}{tries}: an HTML page answered instead of the forge's API"
            )),
        }
    }
}
