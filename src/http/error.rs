//! How an HTTP call that failed for good is described: what was asked, how
//! often, and what came back. Each client maps it to the error its callers
//! branch on (`ForgeError::from_http` for forges); log lines use `Display`,
//! which leaves out everything the server wrote back.

use std::fmt;
use std::time::Duration;

use reqwest::{Method, StatusCode};

/// A call that failed for good, with what a caller needs to map it to its own
/// error (`ForgeError::from_http` for forges).
#[derive(Debug)]
pub struct HttpError {
    pub method: Method,
    pub path: String,
    pub attempts: u32,
    pub kind: HttpErrorKind,
}

#[derive(Debug)]
pub enum HttpErrorKind {
    /// The forge answered with a non-2xx status that is final or kept recurring.
    Status {
        status: StatusCode,
        /// The forge's `message` field when the body was JSON.
        message: Option<String>,
        /// 429, or 403 with rate-limit headers.
        rate_limited: bool,
        retry_after: Option<Duration>,
    },
    /// No usable answer: connect error, timeout, broken body.
    Transport(reqwest::Error),
    /// A 2xx whose body is not what the API describes (e.g. a proxy's HTML page).
    Decode(serde_json::Error),
    /// A 2xx web page: a proxy or login page answered, not the API, whatever the
    /// status says (the API never answers HTML).
    Html,
}

impl HttpError {
    pub fn status(&self) -> Option<StatusCode> {
        match &self.kind {
            HttpErrorKind::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    pub fn message(&self) -> Option<&str> {
        match &self.kind {
            HttpErrorKind::Status { message, .. } => message.as_deref(),
            _ => None,
        }
    }
}

/// A one-line summary for log lines. It leaves out what the forge wrote back
/// (which could echo request headers) and the URL (which could carry the host's
/// credentials); `ForgeError::from_http` gives the full, redacted story.
impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: ", self.method, self.path)?;
        match &self.kind {
            HttpErrorKind::Status { status, .. } => write!(f, "HTTP {status}"),
            HttpErrorKind::Transport(e) if e.is_timeout() => f.write_str("timed out"),
            HttpErrorKind::Transport(e) if e.is_connect() => f.write_str("could not connect"),
            HttpErrorKind::Transport(_) => f.write_str("connection failed"),
            HttpErrorKind::Decode(_) => f.write_str("the answer is not the expected JSON"),
            HttpErrorKind::Html => f.write_str("an HTML page answered, not the API"),
        }
    }
}

/// `text` with every occurrence of `secret` replaced by a marker.
pub fn redact(text: &str, secret: &str) -> String {
    if secret.is_empty() {
        text.to_string()
    } else {
        text.replace(secret, "[REDACTED]")
    }
}
