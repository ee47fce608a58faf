//! What every HTTP API client of forgehand (the forge clients in `forge/`, the
//! CI client in `ci/`) shares: the API's base address (credentials and queries
//! stripped, so they never reach an error message), the HTTP client itself,
//! the `Authorization` header, and one retry policy (`retry`) whose failures
//! are described by `error` and whose answers are counted in `metrics`.

mod error;
pub mod metrics;
pub mod retry;

pub use error::{HttpError, HttpErrorKind, redact};

use anyhow::{Context, bail};
use reqwest::header::HeaderValue;
use reqwest::{Method, Url};

use retry::{Attempt, Replay, RetryPolicy};

/// `<url>/<segments…>` for a service the user names by its web address.
/// `what` names the setting in messages ("forge url", "woodpecker url").
pub fn api_base(url: &str, what: &str, segments: &[&str]) -> anyhow::Result<Url> {
    let mut api = Url::parse(url.trim()).with_context(|| format!("{what} {url:?} is not a URL"))?;
    if !matches!(api.scheme(), "http" | "https") || api.cannot_be_a_base() {
        bail!("{what} {url:?} must be an http(s) address");
    }
    // Credentials in the URL would end up in error messages and compete with the token.
    let _ = api.set_username("");
    let _ = api.set_password(None);
    api.set_query(None);
    api.set_fragment(None);
    api.path_segments_mut()
        .map_err(|()| anyhow::anyhow!("{what} {url:?} cannot be a base"))?
        .pop_if_empty()
        .extend(segments);
    Ok(api)
}

/// Refuse a token that cannot travel in an `Authorization` header, without
/// echoing it: it is a secret even when malformed.
pub fn check_token(scheme: &str, token: &str, what: &str) -> anyhow::Result<()> {
    if HeaderValue::from_str(&format!("{scheme} {token}")).is_err() {
        bail!("the {what} token contains characters not allowed in an HTTP header");
    }
    Ok(())
}

pub fn client(policy: &RetryPolicy) -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        .user_agent(concat!("forgehand/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(policy.request_timeout)
        .build()
        .context("building the HTTP client")
}

/// The `Authorization` header for `scheme token`, marked sensitive so it is
/// never printed. The token was checked by `check_token`.
pub fn auth_header(scheme: &str, token: &str) -> HeaderValue {
    let mut auth =
        HeaderValue::from_str(&format!("{scheme} {token}")).expect("checked by check_token");
    auth.set_sensitive(true);
    auth
}

/// What the retry policy knows of a request: its method and its path with
/// the query (never the host, which may have held credentials).
pub fn attempt(method: &Method, url: &Url, replay: Replay) -> Attempt {
    let path = match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_string(),
    };
    Attempt {
        method: method.clone(),
        path,
        replay,
        observe: None,
    }
}
