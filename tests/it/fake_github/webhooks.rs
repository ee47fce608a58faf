//! Webhook deliveries for forgehand's `POST /hooks/github`: GitHub's real example payloads
//! (`tests/api/github-webhook-examples.json`) with the repository rewritten to the test's,
//! signed the way GitHub signs them (`X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the
//! body>`) and given a delivery id, so webhook tests replay what GitHub would send.

use std::path::PathBuf;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering};

use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::{Digest, Sha256};

static EXAMPLES: LazyLock<Value> = LazyLock::new(|| {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/api/github-webhook-examples.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()))
});

/// One delivery, ready to POST.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// `X-GitHub-Event`: `issues`, `pull_request`, `check_run`, …
    pub event: String,
    /// The payload's `action`, when it has one (`opened`, `completed`, …).
    pub action: Option<String>,
    /// `X-GitHub-Delivery`: a GUID, unique per delivery.
    pub id: String,
    /// The exact bytes that were signed.
    pub body: Vec<u8>,
    /// `X-Hub-Signature-256`: `sha256=<hex>`.
    pub signature: String,
}

impl Delivery {
    /// Signs `payload` with `secret` as a delivery of `event`.
    pub fn new(event: &str, payload: &Value, secret: &str) -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let body = serde_json::to_vec(payload).expect("a JSON value serialises");
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let digest = Sha256::digest(format!("{}-{n}-{event}", std::process::id()));
        let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
        let id = format!(
            "{}-{}-{}-{}-{}",
            &hex[..8],
            &hex[8..12],
            &hex[12..16],
            &hex[16..20],
            &hex[20..32]
        );
        Self {
            event: event.to_owned(),
            action: payload["action"].as_str().map(str::to_owned),
            id,
            signature: sign(secret, &body),
            body,
        }
    }

    /// The payload, parsed back.
    pub fn payload(&self) -> Value {
        serde_json::from_slice(&self.body).expect("the body is the JSON it was made from")
    }

    /// The headers GitHub sends with a delivery.
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        vec![
            ("content-type", "application/json".to_owned()),
            ("user-agent", "GitHub-Hookshot/fake".to_owned()),
            ("x-github-event", self.event.clone()),
            ("x-github-delivery", self.id.clone()),
            ("x-github-hook-id", "1".to_owned()),
            ("x-hub-signature-256", self.signature.clone()),
        ]
    }

    /// A request for `url` carrying this delivery.
    pub fn request(&self, client: &reqwest::Client, url: &str) -> reqwest::RequestBuilder {
        let mut request = client.post(url).body(self.body.clone());
        for (name, value) in self.headers() {
            request = request.header(name, value);
        }
        request
    }
}

/// `sha256=<hex HMAC-SHA256 of body under secret>`, GitHub's `X-Hub-Signature-256`.
pub fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    mac.update(body);
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256={hex}")
}

/// Event names with examples (`issues`, `issue_comment`, `pull_request`, …).
pub fn events() -> Vec<String> {
    EXAMPLES
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["name"].as_str().map(str::to_owned))
        .collect()
}

/// GitHub's example payloads of `event`, unchanged; panics for an event without any.
pub fn examples(event: &str) -> Vec<Value> {
    let entry = EXAMPLES
        .as_array()
        .into_iter()
        .flatten()
        .find(|e| e["name"] == event)
        .unwrap_or_else(|| panic!("no webhook examples for {event:?} (have {:?})", events()));
    entry["examples"].as_array().cloned().unwrap_or_default()
}

/// The examples of `event`, rewritten to `owner/repo` and signed with `secret`, each
/// with its own delivery id.
pub fn deliveries(event: &str, owner: &str, repo: &str, secret: &str) -> Vec<Delivery> {
    examples(event)
        .into_iter()
        .map(|mut payload| {
            retarget(&mut payload, owner, repo);
            Delivery::new(event, &payload, secret)
        })
        .collect()
}

/// The first example of `event` whose `action` is `action` (any when `None`), rewritten
/// and signed; panics if there is none.
pub fn delivery(
    event: &str,
    action: Option<&str>,
    owner: &str,
    repo: &str,
    secret: &str,
) -> Delivery {
    deliveries(event, owner, repo, secret)
        .into_iter()
        .find(|d| action.is_none() || d.action.as_deref() == action)
        .unwrap_or_else(|| panic!("no {event} example with action {action:?}"))
}

/// Rewrites the payload's repository to `owner/repo`: `repository.full_name`, `name` and
/// `owner.login`, and every other repository object of the same repository in it (a
/// PR's `base.repo` and `head.repo`, a check suite's `repository`, …).
pub fn retarget(payload: &mut Value, owner: &str, repo: &str) {
    let Some(original) = payload["repository"]["full_name"]
        .as_str()
        .map(str::to_owned)
    else {
        return;
    };
    rewrite(payload, &original, owner, repo);
}

fn rewrite(value: &mut Value, original: &str, owner: &str, repo: &str) {
    match value {
        Value::Object(object) => {
            if object.get("full_name").and_then(Value::as_str) == Some(original) {
                object.insert(
                    "full_name".to_owned(),
                    Value::from(format!("{owner}/{repo}")),
                );
                object.insert("name".to_owned(), Value::from(repo));
                if let Some(o) = object.get_mut("owner").and_then(Value::as_object_mut) {
                    o.insert("login".to_owned(), Value::from(owner));
                }
            }
            for child in object.values_mut() {
                rewrite(child, original, owner, repo);
            }
        }
        Value::Array(items) => {
            for item in items {
                rewrite(item, original, owner, repo);
            }
        }
        _ => {}
    }
}
