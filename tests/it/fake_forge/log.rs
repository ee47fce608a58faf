//! What the fake remembers about the traffic it saw: the request log, the contract
//! violations a test asserts to be empty, and the queue of faults to inject.

use std::time::Duration;

use chrono::{DateTime, Utc};

/// One received request, as the fake saw it.
#[derive(Debug, Clone)]
pub struct RequestRecord {
    /// When the answer was ready (after handling, under the state lock).
    pub at: DateTime<Utc>,
    /// When the request reached the fake, before any lock or injected delay: the
    /// moment a latency benchmark measures to.
    pub received: DateTime<Utc>,
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
    /// HTTP status of the answer the client got; 0 when the connection was reset.
    pub status: u16,
    /// The fault injected into this request, if any.
    pub fault: Option<Fault>,
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
    /// A header the real server insists on is missing (GitHub refuses requests without
    /// a `User-Agent`).
    MissingHeader,
}

/// One contract violation, tied to the request that caused it.
#[derive(Debug, Clone)]
pub struct Violation {
    pub kind: ViolationKind,
    pub method: String,
    pub path: String,
    pub detail: String,
}

/// A failure the fake plays instead of answering normally (see [`FaultRule`], [`Chaos`]).
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
    /// Wait this long, then handle the request normally. Past the client's request
    /// timeout this is a timeout; whether the request is then still applied depends on
    /// whether the server notices the client leaving, as with a real overloaded forge,
    /// so on requests that change state use `AfterApply(Delay(..))` instead.
    Delay(Duration),
    /// Close the connection without any HTTP answer; the request is not applied.
    Reset,
    /// Apply the request to the state first, then answer with the inner fault instead of
    /// the real answer: a request that landed but whose answer was lost.
    /// `AfterApply(Delay(d))` sends the real answer, `d` late.
    AfterApply(Box<Fault>),
}

impl Fault {
    /// This fault, played after the request has been applied.
    pub fn after_apply(self) -> Fault {
        Fault::AfterApply(Box::new(self))
    }
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

    /// A rule for requests with this method whose path contains `path`, applied once.
    pub fn on(method: &str, path: &str, fault: Fault) -> Self {
        Self {
            method: Some(method.to_owned()),
            path_contains: Some(path.to_owned()),
            ..Self::once(fault)
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

/// Random faults for chaos tests: each request gets one of `faults` with probability
/// `rate`, drawn from a generator seeded with `seed`, so a failing run can be replayed
/// (as far as the order of requests is the same).
#[derive(Debug, Clone)]
pub struct Chaos {
    /// Fraction of requests that get a fault, from 0.0 to 1.0.
    pub rate: f64,
    pub seed: u64,
    /// The faults to pick from, uniformly.
    pub faults: Vec<Fault>,
}

/// Every source of injected faults, consulted once per request.
#[derive(Debug, Default)]
pub struct Faults {
    /// Queued rules; they take precedence over chaos.
    pub rules: Vec<FaultRule>,
    chaos: Option<(Chaos, XorShift)>,
    /// How many requests got a fault so far (rules and chaos).
    pub injected: u64,
}

impl Faults {
    pub fn set_chaos(&mut self, chaos: Option<Chaos>) {
        self.chaos = chaos.map(|c| {
            let rng = XorShift::new(c.seed);
            (c, rng)
        });
    }

    /// The fault for this request, if any: the single place in the request path where
    /// injected failures are decided.
    pub fn take(&mut self, method: &str, path: &str) -> Option<Fault> {
        let fault = take_fault(&mut self.rules, method, path).or_else(|| {
            let (chaos, rng) = self.chaos.as_mut()?;
            if chaos.faults.is_empty() || rng.unit() >= chaos.rate {
                return None;
            }
            let index = (rng.next() % chaos.faults.len() as u64) as usize;
            Some(chaos.faults[index].clone())
        })?;
        self.injected += 1;
        Some(fault)
    }
}

/// Takes the fault for this request from the queue, if a rule matches.
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

/// Marsaglia's xorshift64*: plenty for picking faults, and no dependency.
#[derive(Debug)]
struct XorShift(u64);

impl XorShift {
    fn new(seed: u64) -> Self {
        // The state must never be zero; mixing keeps nearby seeds apart.
        Self((seed ^ 0x9E37_79B9_7F4A_7C15).max(1))
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `[0, 1)`.
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}
