//! Whether the homeserver answers, as the sender and the syncer both find
//! out: an outage is journaled once (`homeserver unreachable since …`) and
//! its end once, like a forge outage, however many calls fail meanwhile.

use std::sync::{Arc, Mutex};

use chrono::Utc;
use matrix_sdk::HttpError;
use matrix_sdk::ruma::api::client::uiaa::UiaaResponse;
use matrix_sdk::ruma::api::error::FromHttpResponseError;

use crate::actors::outage::Outage;
use crate::redact::Redactor;
use crate::store::{EventKind, Store};

use super::MatrixTiming;

/// An answer that says the homeserver is not there (a 5xx from before the
/// Matrix client exists, say); the message is what it said.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Unreachable(pub String);

/// What the homeserver made of a call that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// No answer, a 5xx or a rate limit: it is away, try again later.
    Unreachable,
    /// It answered that this request is wrong (a 400, a 413): sending the
    /// same again will never work.
    Rejected,
    /// Anything else (a 403 before the bot is in the room, an unreadable
    /// answer): try again, it may pass once someone acts.
    Other,
}

/// How a failed call is taken, from its error chain.
pub fn classify(e: &anyhow::Error) -> Failure {
    for cause in e.chain() {
        if let Some(http) = cause.downcast_ref::<HttpError>() {
            return classify_http(http);
        }
        if cause.downcast_ref::<reqwest::Error>().is_some()
            || cause.downcast_ref::<Unreachable>().is_some()
        {
            return Failure::Unreachable;
        }
    }
    Failure::Other
}

fn classify_http(e: &HttpError) -> Failure {
    match e {
        HttpError::Reqwest(_) => Failure::Unreachable,
        HttpError::Cached(inner) => classify_http(inner),
        HttpError::Api(api) => match api.as_ref() {
            FromHttpResponseError::Server(UiaaResponse::MatrixError(m)) => {
                let status = m.status_code.as_u16();
                match status {
                    429 | 500.. => Failure::Unreachable,
                    400 | 413 => Failure::Rejected,
                    _ => Failure::Other,
                }
            }
            _ => Failure::Other,
        },
        _ => Failure::Other,
    }
}

/// The homeserver's reachability as this project's notifier sees it.
pub struct Reach {
    project: String,
    store: Arc<Store>,
    redactor: Redactor,
    outage: Mutex<Outage>,
}

impl Reach {
    pub fn new(
        project: &str,
        store: Arc<Store>,
        redactor: Redactor,
        timing: MatrixTiming,
    ) -> Reach {
        Reach {
            project: project.to_string(),
            store,
            redactor,
            outage: Mutex::new(Outage::of(
                "homeserver",
                timing.retry_initial,
                timing.retry_max,
            )),
        }
    }

    /// A call failed with `e`: journaled when it starts an outage.
    pub fn failed(&self, e: &anyhow::Error) {
        if classify(e) != Failure::Unreachable {
            return;
        }
        let line = self.lock().failed(Utc::now(), e).0;
        if let Some(line) = line {
            self.journal(EventKind::Error, &line);
        }
    }

    /// A call got an answer: journaled when it ends an outage.
    pub fn answered(&self) {
        let line = self.lock().recovered(Utc::now());
        if let Some(line) = line {
            self.journal(EventKind::Daemon, &line);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Outage> {
        self.outage.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn journal(&self, kind: EventKind, line: &str) {
        let line = self.redactor.redact(line);
        tracing::warn!("{line}");
        if let Err(e) = self.store.journal(&self.project, None, kind, &line) {
            tracing::error!("{e:#}");
        }
    }
}
