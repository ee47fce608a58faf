//! What the fake remembers about the traffic it saw: the request log, the contract
//! violations a test asserts to be empty, and the queue of faults to inject.

use chrono::{DateTime, Utc};

/// One received request, as the fake saw it.
#[derive(Debug, Clone)]
pub struct RequestRecord {
    pub at: DateTime<Utc>,
    pub method: String,
    /// Raw (percent-encoded) path, including `/api/v1`.
    pub path: String,
    /// Raw query string without `?` (empty when none).
    pub query: String,
    /// Body as text (lossy UTF-8); empty when none.
    pub body: String,
    /// Whether an `Authorization` header was sent at all.
    pub token_present: bool,
    /// Whether it carried the right token.
    pub authorized: bool,
    /// The swagger template the request was routed to, if any.
    pub template: Option<String>,
    /// HTTP status of the answer.
    pub status: u16,
}

impl RequestRecord {
    /// Parses the body as JSON, for assertions on what forgehand sent.
    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_str(&self.body).ok()
    }
}

/// Why a request broke the contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ViolationKind {
    /// No token, or the wrong one.
    Unauthorized,
    /// Not a path of the swagger description (or outside `/api/v1`).
    UnknownPath,
    /// A swagger path, but not with this method.
    MethodNotAllowed,
    /// A query parameter, path parameter or body that the operation does not declare
    /// or whose value does not fit its declared type.
    NotInSwagger,
    /// A real Forgejo endpoint this fake does not serve (extend the fake, or don't call it).
    Unimplemented,
    /// Allowed by the API but almost certainly a forgehand bug (e.g. a duplicate label).
    Suspicious,
}

/// One contract violation, tied to the request that caused it.
#[derive(Debug, Clone)]
pub struct Violation {
    pub kind: ViolationKind,
    pub method: String,
    pub path: String,
    pub detail: String,
}

/// A failure the fake plays instead of answering normally (see [`FaultRule`]).
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// Answer with this status and a Forgejo-style JSON error; `retry_after` (seconds) adds
    /// a `Retry-After` header, as for 429.
    Status {
        status: u16,
        retry_after: Option<u64>,
    },
    /// Answer with an HTML page (what a reverse proxy sends when Forgejo is down).
    Html { status: u16 },
}

/// A queued fault: applied to the next `times` requests that match.
#[derive(Debug, Clone)]
pub struct FaultRule {
    /// Only requests with this method (`"GET"`, …); any when `None`.
    pub method: Option<String>,
    /// Only requests whose path contains this text; any when `None`.
    pub path_contains: Option<String>,
    pub fault: Fault,
    /// How many matching requests get the fault before the rule is used up.
    pub times: u32,
}

impl FaultRule {
    /// A rule for any request, applied once.
    pub fn once(fault: Fault) -> Self {
        Self {
            method: None,
            path_contains: None,
            fault,
            times: 1,
        }
    }

    fn matches(&self, method: &str, path: &str) -> bool {
        self.times > 0
            && self
                .method
                .as_deref()
                .is_none_or(|m| m.eq_ignore_ascii_case(method))
            && self
                .path_contains
                .as_deref()
                .is_none_or(|p| path.contains(p))
    }
}

/// Takes the fault for this request from the queue, if a rule matches: the single place
/// in the request path where injected failures are decided.
pub fn take_fault(rules: &mut Vec<FaultRule>, method: &str, path: &str) -> Option<Fault> {
    let index = rules.iter().position(|r| r.matches(method, path))?;
    let rule = &mut rules[index];
    rule.times -= 1;
    let fault = rule.fault.clone();
    if rule.times == 0 {
        rules.remove(index);
    }
    Some(fault)
}
