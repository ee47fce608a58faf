//! The optional webhook listener: forge events, verified by their HMAC
//! signature and de-duplicated by delivery id (or, without one, by the hash of
//! the body), become [`Nudge`]s so the right actor looks at the forge now
//! instead of at its next poll. The listener never changes state itself; a lost
//! or refused hook only costs latency.

mod payload;
pub(crate) mod serve;
mod signature;

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;
use tokio::sync::mpsc::UnboundedSender;

use crate::forge;
use crate::store::{DeliveryKey, Store};

pub use payload::{Nudge, PayloadError, nudge_for};
pub use serve::Limits;
pub use signature::{sign, verify};

/// Forges cap their payloads well below this; anything larger is not a hook.
pub const DEFAULT_MAX_BODY: usize = 5 * 1024 * 1024;

/// One project's webhooks: deliveries about `repo` signed with `secret`
/// nudge the actors of `project`.
#[derive(Clone)]
pub struct HookTarget {
    pub project: String,
    /// `owner/name`, compared with the payload's `repository.full_name`
    /// without regard to case (forges do not distinguish them either).
    pub repo: String,
    /// The shared secret configured on the forge's webhook; empty refuses all.
    pub secret: String,
}

impl std::fmt::Debug for HookTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HookTarget")
            .field("project", &self.project)
            .field("repo", &self.repo)
            .field("secret", &"[REDACTED]")
            .finish()
    }
}

/// What the listener needs beyond its collaborators.
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    /// Every project that accepts webhooks; one listener serves them all.
    pub targets: Vec<HookTarget>,
    /// Bodies larger than this are refused with 413 before being buffered.
    pub max_body: usize,
    /// Timeouts and the connection cap that keep hostile clients bounded.
    pub limits: Limits,
}

impl WebhookConfig {
    pub fn new(targets: Vec<HookTarget>) -> WebhookConfig {
        WebhookConfig {
            targets,
            max_body: DEFAULT_MAX_BODY,
            limits: Limits::default(),
        }
    }
}

/// Where verified nudges go: (project, what changed), as `daemon::Nudges`.
pub type NudgeSender = UnboundedSender<(String, forge::Nudge)>;

/// The headers one forge family signs and labels its deliveries with, in
/// order of preference (Forgejo sends both its own and Gitea's).
struct Dialect {
    name: &'static str,
    signature: &'static [&'static str],
    /// Stripped from the signature header's value (GitHub's `sha256=`).
    signature_prefix: &'static str,
    delivery: &'static [&'static str],
    event: &'static [&'static str],
}

const FORGEJO: Dialect = Dialect {
    name: "forgejo",
    signature: &["x-forgejo-signature", "x-gitea-signature"],
    signature_prefix: "",
    delivery: &["x-forgejo-delivery", "x-gitea-delivery"],
    event: &["x-forgejo-event", "x-gitea-event"],
};

const GITHUB: Dialect = Dialect {
    name: "github",
    signature: &["x-hub-signature-256"],
    signature_prefix: "sha256=",
    delivery: &["x-github-delivery"],
    event: &["x-github-event"],
};

struct Hooks {
    targets: Vec<HookTarget>,
    store: Arc<Store>,
    nudges: NudgeSender,
    limits: Limits,
}

/// Serves `POST /hooks/forgejo` (Forgejo and Gitea) and `POST /hooks/github`
/// on `listener` within `cfg.limits`, until the future is dropped.
pub async fn serve(
    listener: TcpListener,
    cfg: WebhookConfig,
    store: Arc<Store>,
    nudges: NudgeSender,
) {
    let limits = cfg.limits;
    serve::serve(listener, router(cfg, store, nudges), limits, "webhook").await
}

fn router(cfg: WebhookConfig, store: Arc<Store>, nudges: NudgeSender) -> Router {
    let hooks = Arc::new(Hooks {
        targets: cfg.targets,
        store,
        nudges,
        limits: cfg.limits,
    });
    Router::new()
        .route(
            "/hooks/forgejo",
            post(|State(h), request| receive(h, &FORGEJO, request)),
        )
        .route(
            "/hooks/github",
            post(|State(h), request| receive(h, &GITHUB, request)),
        )
        // `Bytes` reads through this limit and answers 413 past it, so an
        // oversized body is never held in memory whole.
        .layer(DefaultBodyLimit::max(cfg.max_body))
        .with_state(hooks)
}

/// Reads the body within `limits.body_read`, then handles the delivery.
async fn receive(hooks: Arc<Hooks>, dialect: &'static Dialect, request: Request) -> Response {
    let headers = request.headers().clone();
    // The header timeout stops once the headers are in: without this one a
    // body sent a byte at a time would hold its connection slot for ever.
    let body = tokio::time::timeout(hooks.limits.body_read, Bytes::from_request(request, &()));
    match body.await {
        Ok(Ok(body)) => handle(&hooks, dialect, &headers, body)
            .await
            .into_response(),
        // Over the body limit (413) or a broken body.
        Ok(Err(rejection)) => rejection.into_response(),
        Err(_) => {
            tracing::warn!(
                forge = dialect.name,
                "webhook refused: the body did not arrive within {:?}",
                hooks.limits.body_read
            );
            // Hyper closes the connection after this answer, the rest of the
            // body unread.
            (StatusCode::REQUEST_TIMEOUT, "body too slow\n").into_response()
        }
    }
}

async fn handle(
    hooks: &Hooks,
    dialect: &'static Dialect,
    headers: &HeaderMap,
    body: Bytes,
) -> (StatusCode, &'static str) {
    let header = |names: &[&str]| {
        names
            .iter()
            .find_map(|n| headers.get(*n).and_then(|v| v.to_str().ok()))
            .map(str::to_string)
    };
    // The signature is checked before the body is even parsed: only the
    // holder of a configured secret gets anything looked at. Each secret is
    // tried, so a listener shared by projects needs no unsigned routing hint.
    let signature = header(dialect.signature)
        .and_then(|s| s.strip_prefix(dialect.signature_prefix).map(str::to_string));
    let signed_by: Vec<&HookTarget> = match &signature {
        Some(sig) => hooks
            .targets
            .iter()
            .filter(|t| verify(t.secret.as_bytes(), &body, sig))
            .collect(),
        None => Vec::new(),
    };
    if signed_by.is_empty() {
        tracing::warn!(
            forge = dialect.name,
            "webhook refused: missing or wrong signature"
        );
        return (StatusCode::UNAUTHORIZED, "bad signature\n");
    }
    let event = header(dialect.event).unwrap_or_default();
    // GitHub's greeting when a hook is made or tested: signed, so the secret
    // is right, and nothing to look at.
    if event == "ping" {
        tracing::info!(forge = dialect.name, "webhook ping answered");
        return (StatusCode::OK, "pong\n");
    }
    let nudge = match nudge_for(&event, &body) {
        Ok(Some(nudge)) => nudge,
        Ok(None) => {
            tracing::debug!(forge = dialect.name, event, "webhook event ignored");
            return (StatusCode::OK, "ignored\n");
        }
        Err(e) => {
            tracing::warn!(forge = dialect.name, event, error = %e, "webhook payload refused");
            return (StatusCode::BAD_REQUEST, "bad payload\n");
        }
    };
    // A secret only vouches for its own project's repository.
    let projects: Vec<String> = signed_by
        .iter()
        .filter(|t| t.repo.eq_ignore_ascii_case(nudge.repo()))
        .map(|t| t.project.clone())
        .collect();
    if projects.is_empty() {
        let ours = hooks
            .targets
            .iter()
            .any(|t| t.repo.eq_ignore_ascii_case(nudge.repo()));
        tracing::warn!(
            forge = dialect.name,
            repo = nudge.repo(),
            "webhook refused: no project takes this repository with this secret"
        );
        return if ours {
            (StatusCode::UNAUTHORIZED, "bad signature\n")
        } else {
            (StatusCode::NOT_FOUND, "unknown repository\n")
        };
    }
    if hooks.nudges.is_closed() {
        // Shutting down: let the forge retry rather than recording a delivery
        // nobody acted on.
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n");
    }
    let delivery = delivery_key(dialect, header(dialect.delivery), &body);
    match hooks.store.record_delivery(&delivery).await {
        Ok(true) => {}
        Ok(false) => {
            tracing::debug!(forge = dialect.name, ?delivery, "webhook delivery replayed");
            return (StatusCode::OK, "already seen\n");
        }
        Err(e) => {
            tracing::error!(
                forge = dialect.name,
                ?delivery,
                error = format!("{e:#}"),
                "recording a webhook delivery"
            );
            return (StatusCode::INTERNAL_SERVER_ERROR, "store error\n");
        }
    }
    tracing::info!(
        forge = dialect.name,
        event,
        ?nudge,
        ?projects,
        "webhook nudge"
    );
    let nudge = nudge.into_forge();
    for project in projects {
        if hooks.nudges.send((project, nudge.clone())).is_err() {
            return (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n");
        }
    }
    (StatusCode::OK, "ok\n")
}

/// What recognises a delivery when it comes again: the forge's delivery id, or
/// for a sender that gives none (a proxy, a hand-made hook) the SHA-256 of the
/// body, so a retried delivery still nudges once.
fn delivery_key(dialect: &Dialect, id: Option<String>, body: &[u8]) -> DeliveryKey {
    match id.filter(|id| !id.trim().is_empty()) {
        Some(id) => DeliveryKey::Id(format!("{}:{id}", dialect.name)),
        None => {
            let hash: String = Sha256::digest(body)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            DeliveryKey::Body(format!("{}:{hash}", dialect.name))
        }
    }
}
