//! The retry policy every HTTP call of forgehand goes through (forges and the CI
//! server alike, DESIGN §7): `perform_retryable` sends a request, classifies the
//! outcome (retry, give up, success) and waits with jittered exponential
//! backoff, honouring the server's rate-limit headers (`Retry-After`,
//! `X-RateLimit-*`, GitHub's secondary limits); a quota spent for longer than
//! the policy lets a call wait fails at once as rate limited, for the caller to
//! back off. `perform_checked` does the same for a request that must not
//! land twice, looking for an attempt that may have landed before sending it
//! again. What a call that failed for good looks like is `error.rs`'s; what it
//! means to a forge is `forge::from_http`'s.

use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::header::HeaderMap;
use reqwest::{Method, RequestBuilder, StatusCode};

use super::error::{HttpError, HttpErrorKind};

/// How hard to try before a forge call fails.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Total attempts per call, the first included; 1 disables retries.
    pub max_attempts: u32,
    /// Wait after the first failed attempt; doubles after each further failure.
    pub initial_backoff: Duration,
    /// Ceiling of the doubling, so a long outage is probed at a steady pace.
    pub max_backoff: Duration,
    /// Time allowed for one attempt (connect, send and read the whole body).
    pub request_timeout: Duration,
    /// A forge asking us to wait longer than this is waited on for this long only:
    /// a daemon handler must not sleep for an hour on a bad header.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            request_timeout: Duration::from_secs(30),
            max_retry_after: Duration::from_secs(300),
        }
    }
}

impl RetryPolicy {
    /// The wait after failed attempt `attempt` (1-based): exponential, capped, with
    /// "equal jitter" (half fixed, half random) so that many actors hitting the same
    /// outage do not come back in lockstep.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let exp = attempt.saturating_sub(1).min(31);
        let base = self
            .initial_backoff
            .saturating_mul(1u32 << exp)
            .min(self.max_backoff);
        let half = base / 2;
        let jitter_nanos = if half.is_zero() {
            0
        } else {
            random_u64() % (half.as_nanos() as u64).max(1)
        };
        half + Duration::from_nanos(jitter_nanos)
    }
}

/// A random number without a dependency: every `RandomState` is freshly keyed.
fn random_u64() -> u64 {
    RandomState::new().build_hasher().finish()
}

/// Whether sending a request again could make the forge act twice.
///
/// Retrying is decided per call from this value and `perform_checked`'s check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replay {
    /// Sending it twice has the effect of sending it once (GET, PATCH to a state,
    /// DELETE, adding a label), or the forge refuses the repeat with an answer the
    /// caller maps to the outcome (a second merge gets 405, a second PR 409):
    /// retried on any transient failure.
    Safe,
    /// Must not be applied twice and cannot be looked for: sent again only when the
    /// forge most likely did not act on it: the connection was never made, or the
    /// forge or its gateway answered 429/502/503/504.
    OnlyIfNotApplied,
    /// Must not be applied twice, but the caller can look for it (a comment, a
    /// label): after a failure that may have landed, `perform_checked`'s check runs
    /// before anything is sent again. Without a check it behaves as
    /// `OnlyIfNotApplied` minus the gateway retries.
    Checked,
}

/// What is being attempted, for the retry decision, log lines and error messages.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub method: Method,
    /// Path and query below the host, never the host's credentials.
    pub path: String,
    pub replay: Replay,
    /// Shown the headers of every answer, whatever its status.
    pub observe: Option<Observer>,
}

impl Attempt {
    /// The same attempt, its answers' headers shown to `observer`.
    pub fn observed(mut self, observer: Observer) -> Attempt {
        self.observe = Some(observer);
        self
    }
}

/// Sees the headers of every answer a call gets, retried attempts, errors and
/// `304`s included: how a client keeps account of a quota the server reports on
/// each answer (GitHub's `X-RateLimit-*`), which the call's result alone would
/// only show for the last, successful answer.
#[derive(Clone)]
pub struct Observer(pub Arc<dyn Fn(&HeaderMap) + Send + Sync>);

impl fmt::Debug for Observer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Observer")
    }
}

/// A 2xx answer, decoded.
#[derive(Debug)]
pub struct Reply<T> {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub value: T,
}

/// One attempt's outcome, before the call's `Replay` decides what follows.
enum Outcome<T> {
    Done(Reply<T>),
    /// The forge did not act on it: no connection, or a rate limit refused it.
    Refused {
        err: HttpErrorKind,
        wait: Option<Duration>,
    },
    /// A gateway (502/503/504) answered: the forge most likely did not act on it,
    /// but a request that reached it before the gateway gave up may have landed.
    Gateway {
        err: HttpErrorKind,
        wait: Option<Duration>,
    },
    /// It may have landed: a timeout or reset after sending, another 5xx, a 2xx
    /// whose body could not be read or decoded.
    Unsure(HttpErrorKind),
    /// An answer that repeating will not change (4xx).
    Final(HttpErrorKind),
}

/// What to do after a failed attempt.
enum Next {
    Retry {
        err: HttpErrorKind,
        wait: Option<Duration>,
    },
    /// Look for the attempt with the call's check before sending again.
    CheckThenRetry {
        err: HttpErrorKind,
        wait: Option<Duration>,
    },
    Fail(HttpErrorKind),
}

impl Replay {
    fn next<T>(self, outcome: Outcome<T>) -> Result<Reply<T>, Next> {
        Err(match (outcome, self) {
            (Outcome::Done(reply), _) => return Ok(reply),
            (Outcome::Final(err), _) => Next::Fail(err),
            (Outcome::Refused { err, wait }, _) => Next::Retry { err, wait },
            (Outcome::Gateway { err, wait }, Replay::Safe | Replay::OnlyIfNotApplied) => {
                Next::Retry { err, wait }
            }
            (Outcome::Gateway { err, wait }, Replay::Checked) => Next::CheckThenRetry { err, wait },
            (Outcome::Unsure(err), Replay::Safe) => Next::Retry { err, wait: None },
            (Outcome::Unsure(err), Replay::OnlyIfNotApplied) => Next::Fail(err),
            (Outcome::Unsure(err), Replay::Checked) => Next::CheckThenRetry { err, wait: None },
        })
    }
}

/// Sends the request `send` builds (a fresh builder per attempt: bodies are
/// consumed) until it succeeds, fails for good or the policy's attempts run out.
/// `decode` turns a 2xx body into `T`; an empty body is handed over as is.
pub async fn perform_retryable<T>(
    policy: &RetryPolicy,
    attempt: &Attempt,
    send: impl Fn() -> RequestBuilder,
    decode: impl Fn(&[u8]) -> serde_json::Result<T>,
) -> Result<Reply<T>, HttpError> {
    perform(policy, attempt, send, decode, None::<fn() -> NoCheck<T>>)
        .await
        .map_err(|e| match e {
            CheckedError::Request(e) => e,
            CheckedError::Check(never) => match never {},
        })
}

type NoCheck<T> = std::future::Ready<Result<Option<T>, std::convert::Infallible>>;

/// Why a `perform_checked` call failed.
#[derive(Debug)]
pub enum CheckedError<E> {
    /// The request failed for good and the check found nothing.
    Request(HttpError),
    /// Looking for an attempt that may have landed failed: whether it did is unknown.
    Check(E),
}

/// `perform_retryable` for a `Replay::Checked` request: after an attempt that may
/// have landed, `landed` looks for its effect on the forge (itself retrying as it
/// needs). What it finds is the call's answer; when it finds nothing, the request is
/// sent again. It runs after the last attempt too, so a request that landed on the
/// final try is not reported as failed.
pub async fn perform_checked<T, E, F: Future<Output = Result<Option<T>, E>>>(
    policy: &RetryPolicy,
    attempt: &Attempt,
    send: impl Fn() -> RequestBuilder,
    decode: impl Fn(&[u8]) -> serde_json::Result<T>,
    landed: impl Fn() -> F,
) -> Result<Reply<T>, CheckedError<E>> {
    perform(policy, attempt, send, decode, Some(landed)).await
}

async fn perform<T, E, F: Future<Output = Result<Option<T>, E>>>(
    policy: &RetryPolicy,
    attempt: &Attempt,
    send: impl Fn() -> RequestBuilder,
    decode: impl Fn(&[u8]) -> serde_json::Result<T>,
    landed: Option<impl Fn() -> F>,
) -> Result<Reply<T>, CheckedError<E>> {
    let give_up = |n, kind| CheckedError::Request(fail(attempt, n, kind));
    let max = policy.max_attempts.max(1);
    let mut n = 0;
    loop {
        n += 1;
        let outcome = classify(
            policy,
            send().timeout(policy.request_timeout),
            &decode,
            attempt.observe.as_ref(),
        )
        .await;
        let (err, wait, check) = match attempt.replay.next(outcome) {
            Ok(reply) => return Ok(reply),
            Err(Next::Fail(kind)) => return Err(give_up(n, kind)),
            Err(Next::Retry { err, wait }) => (err, wait, None),
            Err(Next::CheckThenRetry { err, wait }) => match &landed {
                // Without a way to look, an attempt that may have landed is final.
                None => return Err(give_up(n, err)),
                Some(landed) => (err, wait, Some(landed)),
            },
        };
        // Nothing to look for and no attempt left: give up at once.
        if check.is_none() && n >= max {
            return Err(give_up(n, err));
        }
        let backoff = policy.backoff(n);
        let delay = match wait {
            Some(w) => w.min(policy.max_retry_after).max(backoff),
            None => backoff,
        };
        let reason = fail(attempt, n, err);
        tracing::warn!(
            method = %attempt.method,
            path = %attempt.path,
            attempt = n,
            delay_ms = delay.as_millis() as u64,
            reason = %reason,
            looking = check.is_some(),
            "forge request failed, retrying"
        );
        // Waited before looking too: a request the forge is still working on (behind
        // a gateway that gave up) gets the time to land, rather than being missed.
        tokio::time::sleep(delay).await;
        if let Some(landed) = check {
            if let Some(value) = landed().await.map_err(CheckedError::Check)? {
                return Ok(Reply {
                    status: StatusCode::OK,
                    headers: HeaderMap::new(),
                    value,
                });
            }
            if n >= max {
                return Err(CheckedError::Request(reason));
            }
        }
    }
}

fn fail(attempt: &Attempt, attempts: u32, kind: HttpErrorKind) -> HttpError {
    HttpError {
        method: attempt.method.clone(),
        path: attempt.path.clone(),
        attempts,
        kind,
    }
}

async fn classify<T>(
    policy: &RetryPolicy,
    request: RequestBuilder,
    decode: &impl Fn(&[u8]) -> serde_json::Result<T>,
    observe: Option<&Observer>,
) -> Outcome<T> {
    let response = request.send().await;
    super::metrics::record(response.as_ref().ok().map(|r| r.status().as_u16()));
    let response = match response {
        Ok(r) => r,
        // A connect error means the request never left; anything else (timeout,
        // reset mid-way) may have reached the forge.
        Err(e) if e.is_connect() => {
            return Outcome::Refused {
                err: HttpErrorKind::Transport(e),
                wait: None,
            };
        }
        Err(e) => return Outcome::Unsure(HttpErrorKind::Transport(e)),
    };
    let status = response.status();
    let headers = response.headers().clone();
    if let Some(observe) = observe {
        (observe.0)(&headers);
    }
    let body = match response.bytes().await {
        Ok(b) => b,
        Err(e) => return Outcome::Unsure(HttpErrorKind::Transport(e)),
    };

    // A redirect reaches here only from a client told not to follow them (GitHub's
    // log download, which takes the `Location` itself so that its token stays on
    // the API's host); a `304` is the conditional requests' business.
    let redirect = status.is_redirection() && status != StatusCode::NOT_MODIFIED;
    if redirect {
        return match decode(&body) {
            Ok(value) => Outcome::Done(Reply {
                status,
                headers,
                value,
            }),
            Err(e) => Outcome::Final(HttpErrorKind::Decode(e)),
        };
    }
    if status.is_success() {
        if header_str(&headers, "content-type")
            .is_some_and(|t| t.trim_start().to_ascii_lowercase().starts_with("text/html"))
        {
            // A 200 page from a proxy says nothing about what the forge did, even
            // for calls that only look at the status.
            return Outcome::Unsure(HttpErrorKind::Html);
        }
        return match decode(&body) {
            Ok(value) => Outcome::Done(Reply {
                status,
                headers,
                value,
            }),
            // The forge said yes, but what it made is unknown.
            Err(e) => Outcome::Unsure(HttpErrorKind::Decode(e)),
        };
    }

    let message = forge_message(&body);
    let secondary = is_secondary_limit(status, message.as_deref());
    let rate_limited = status == StatusCode::TOO_MANY_REQUESTS
        || (status == StatusCode::FORBIDDEN && has_rate_limit_headers(&headers))
        || secondary;
    let wait = server_wait(&headers).or_else(|| secondary.then_some(SECONDARY_LIMIT_WAIT));
    // A spent quota that comes back only after longer than we may wait: waiting
    // the cap and asking again would be refused the same way, so the caller
    // hears of the rate limit at once and backs off on its own terms.
    let spent_beyond_cap =
        rate_limited && quota_spent(&headers) && wait.is_some_and(|w| w > policy.max_retry_after);
    let err = HttpErrorKind::Status {
        status,
        message,
        rate_limited,
        retry_after: wait,
    };
    if spent_beyond_cap {
        return Outcome::Final(err);
    }
    let retry_after = wait.map(|w| w.min(policy.max_retry_after));
    let gateway = matches!(
        status,
        StatusCode::BAD_GATEWAY | StatusCode::SERVICE_UNAVAILABLE | StatusCode::GATEWAY_TIMEOUT
    );
    if rate_limited {
        Outcome::Refused {
            err,
            wait: retry_after,
        }
    } else if gateway {
        Outcome::Gateway {
            err,
            wait: retry_after,
        }
    } else if status.is_server_error() {
        Outcome::Unsure(err)
    } else {
        Outcome::Final(err)
    }
}

fn has_rate_limit_headers(headers: &HeaderMap) -> bool {
    headers.contains_key("retry-after") || quota_spent(headers)
}

/// `X-RateLimit-Remaining: 0`: the primary quota is used up until `X-RateLimit-Reset`.
fn quota_spent(headers: &HeaderMap) -> bool {
    header_str(headers, "x-ratelimit-remaining").is_some_and(|v| v.trim() == "0")
}

/// How long GitHub asks to wait after a secondary rate limit that names no time:
/// "at least one minute", its documentation says.
const SECONDARY_LIMIT_WAIT: Duration = Duration::from_secs(60);

/// GitHub's secondary rate limits (too many requests at once, too much CPU) are a
/// 403 or 429 whose message says so, with or without `Retry-After`.
fn is_secondary_limit(status: StatusCode, message: Option<&str>) -> bool {
    matches!(
        status,
        StatusCode::FORBIDDEN | StatusCode::TOO_MANY_REQUESTS
    ) && message.is_some_and(|m| m.to_ascii_lowercase().contains("secondary rate limit"))
}

fn header_str<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// How long the server asks us to wait: `Retry-After` (seconds or an HTTP date), or
/// the `X-RateLimit-Reset` epoch second when the quota is spent. Not capped: the
/// caller decides how much of it to wait.
fn server_wait(headers: &HeaderMap) -> Option<Duration> {
    let now = Utc::now();
    let until = |at: DateTime<Utc>| (at - now).to_std().unwrap_or(Duration::ZERO);
    if let Some(v) = header_str(headers, "retry-after") {
        let v = v.trim();
        match v.parse::<u64>() {
            Ok(secs) => Some(Duration::from_secs(secs)),
            Err(_) => DateTime::parse_from_rfc2822(v)
                .ok()
                .map(|at| until(at.with_timezone(&Utc))),
        }
    } else if quota_spent(headers) {
        header_str(headers, "x-ratelimit-reset")
            .and_then(|v| v.trim().parse::<i64>().ok())
            .and_then(|secs| DateTime::from_timestamp(secs, 0))
            .map(until)
    } else {
        None
    }
}

/// The `message` of the forge's error body (Forgejo's `APIError`, GitHub's
/// `basic-error`), followed by what GitHub's `validation-error` lists in
/// `errors` (which field, what is wrong), when there is one: "Validation Failed"
/// alone does not tell a missing branch from an existing pull request.
fn forge_message(body: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct ApiError {
        message: Option<String>,
        #[serde(default)]
        errors: Vec<serde_json::Value>,
    }
    let e = serde_json::from_slice::<ApiError>(body).ok()?;
    let details: Vec<String> = e.errors.iter().filter_map(error_detail).collect();
    let message = e.message.filter(|m| !m.is_empty());
    match (message, details.is_empty()) {
        (Some(m), true) => Some(m),
        (Some(m), false) => Some(format!("{m}: {}", details.join("; "))),
        (None, false) => Some(details.join("; ")),
        (None, true) => None,
    }
}

/// One entry of GitHub's `errors`: a text of its own, or `resource.field code`.
fn error_detail(e: &serde_json::Value) -> Option<String> {
    if let Some(text) = e.as_str() {
        return Some(text.to_string());
    }
    let field = |k: &str| e.get(k).and_then(serde_json::Value::as_str);
    if let Some(m) = field("message").filter(|m| !m.is_empty()) {
        return Some(m.to_string());
    }
    let what = match (field("resource"), field("field")) {
        (Some(r), Some(f)) => format!("{r}.{f}"),
        (Some(x), None) | (None, Some(x)) => x.to_string(),
        (None, None) => String::new(),
    };
    match field("code") {
        Some(code) if what.is_empty() => Some(code.to_string()),
        Some(code) => Some(format!("{what} {code}")),
        None => (!what.is_empty()).then_some(what),
    }
}
