//! Who may look at the dashboard. Bound to a loopback address it is open to
//! the machine's users, unless a token is set; bound anywhere else it needs
//! `FORGEHAND_DASHBOARD_TOKEN`, given as `Authorization: Bearer <token>` (for
//! scrapers and scripts) or once in the login form, which sets a cookie
//! derived from the token (the token itself is never stored in the browser).
//! Every comparison takes the same time whatever the guess: both sides are
//! hashed first, then compared without an early exit.

use std::net::IpAddr;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// The variable holding the token.
pub const TOKEN_ENV: &str = "FORGEHAND_DASHBOARD_TOKEN";

/// Shorter tokens can be guessed over the network.
pub const MIN_TOKEN_LEN: usize = 16;

/// The cookie the login form sets.
pub(super) const COOKIE: &str = "forgehand_dashboard";

/// How requests are let in.
#[derive(Clone)]
pub enum Access {
    /// Loopback without a token: anyone on this machine. Requests must name
    /// the machine itself as their `Host`, so a web page elsewhere cannot
    /// read the dashboard through a DNS name rebound to 127.0.0.1.
    Loopback,
    /// The token, as a bearer header or the login form's cookie.
    Token(Arc<TokenCheck>),
}

impl std::fmt::Debug for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Access::Loopback => "Access::Loopback",
            Access::Token(_) => "Access::Token([REDACTED])",
        })
    }
}

/// What a presented token or cookie is checked against: digests only.
pub struct TokenCheck {
    token: [u8; 32],
    cookie: [u8; 32],
    /// The cookie's value, to hand out after a login.
    cookie_value: String,
}

impl TokenCheck {
    fn new(token: &str) -> TokenCheck {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(token.as_bytes()).expect("HMAC takes any key length");
        mac.update(b"forgehand dashboard session");
        let cookie_value: String = mac
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        TokenCheck {
            token: digest(token),
            cookie: digest(&cookie_value),
            cookie_value,
        }
    }

    pub(super) fn token_matches(&self, candidate: &str) -> bool {
        same(&digest(candidate), &self.token)
    }

    fn cookie_matches(&self, candidate: &str) -> bool {
        same(&digest(candidate), &self.cookie)
    }

    pub(super) fn cookie_value(&self) -> &str {
        &self.cookie_value
    }
}

fn digest(text: &str) -> [u8; 32] {
    Sha256::digest(text.as_bytes()).into()
}

/// Equal digests, looked at whole whatever differs.
fn same(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The access rule for a dashboard bound to `ip` with `token` (the
/// variable's value, if set); an error says why the dashboard cannot start.
/// A token, once set, is required on loopback too.
pub fn access(ip: IpAddr, token: Option<&str>) -> Result<Access, String> {
    match token {
        None if ip.is_loopback() => Ok(Access::Loopback),
        None => Err(format!(
            "the dashboard listens on {ip}, which is not a loopback address: set {TOKEN_ENV} \
             (at least {MIN_TOKEN_LEN} characters) so that only people with the token can see it"
        )),
        Some(t) if t.trim() != t || t.is_empty() => Err(format!(
            "{TOKEN_ENV} starts or ends with white space, or is empty"
        )),
        Some(t) if t.chars().count() < MIN_TOKEN_LEN => Err(format!(
            "{TOKEN_ENV} is too short: at least {MIN_TOKEN_LEN} characters"
        )),
        Some(t) if !t.chars().all(|c| c.is_ascii_graphic()) => Err(format!(
            "{TOKEN_ENV} may hold only visible ASCII characters (it travels in an HTTP header)"
        )),
        Some(t) => Ok(Access::Token(Arc::new(TokenCheck::new(t)))),
    }
}

/// Paths anyone may fetch: the login form and the static files it uses,
/// none of which holds anything about the factory.
fn public(path: &str) -> bool {
    path == "/login" || path.starts_with("/assets/")
}

/// The middleware in front of every route.
pub(super) async fn guard(State(access): State<Access>, request: Request, next: Next) -> Response {
    let allowed = match &access {
        Access::Loopback => local_host(request.headers()),
        Access::Token(check) => public(request.uri().path()) || presented(check, request.headers()),
    };
    if allowed {
        return next.run(request).await;
    }
    match access {
        Access::Loopback => (
            StatusCode::FORBIDDEN,
            "this dashboard answers only to requests for the local machine \
             (http://127.0.0.1:PORT/ or http://localhost:PORT/)\n",
        )
            .into_response(),
        Access::Token(_) => refuse(&request),
    }
}

/// A browser asking for a page is sent to the login form; anything else
/// (scripts, the live feed, a scraper) gets 401.
fn refuse(request: &Request) -> Response {
    let wants_page = request.method() == Method::GET
        && request
            .headers()
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|a| a.contains("text/html"));
    if wants_page {
        return (
            StatusCode::SEE_OTHER,
            [(header::LOCATION, HeaderValue::from_static("/login"))],
        )
            .into_response();
    }
    (
        StatusCode::UNAUTHORIZED,
        [(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"forgehand dashboard\""),
        )],
        "the dashboard needs its token: Authorization: Bearer <FORGEHAND_DASHBOARD_TOKEN>\n",
    )
        .into_response()
}

/// The bearer header or the login cookie carries the token.
fn presented(check: &TokenCheck, headers: &HeaderMap) -> bool {
    let bearer = headers
        .get_all(header::AUTHORIZATION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.strip_prefix("Bearer "))
        .any(|t| check.token_matches(t.trim()));
    bearer
        || headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .any(|(name, value)| name == COOKIE && check.cookie_matches(value))
}

/// The `Host` names this machine: a loopback address or `localhost`, with
/// or without a port.
fn local_host(headers: &HeaderMap) -> bool {
    let Some(host) = headers.get(header::HOST).and_then(|v| v.to_str().ok()) else {
        // HTTP/1.0 without Host cannot have come through a rebound name.
        return true;
    };
    let name = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => host.rsplit_once(':').map_or(host, |(name, _)| name),
    };
    name.eq_ignore_ascii_case("localhost")
        || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}
