//! What the supervisor's children (pollers, merge scanners) may ask of it,
//! and the typed handle they ask through. It lives apart from the
//! supervisor, so children never import their parent: the supervisor hands
//! each child a `Parent` made from its own reference (ractor's derived
//! references convert `ToParent` into the supervisor's message type).

use std::time::Duration;

use anyhow::Context;
use ractor::{DerivedActorRef, RpcReplyPort};

use crate::forge::IssueNumber;

/// A child's request to the supervisor.
pub enum ToParent {
    /// Ready issues of a project, in picking order.
    Candidates {
        project: String,
        issues: Vec<(IssueNumber, String)>,
    },
    /// How many more dev actors the project may start now.
    FreeSlots {
        project: String,
        reply: RpcReplyPort<usize>,
    },
    /// Issues of the project whose dev actor runs or is being restarted:
    /// the merge scanner leaves their PRs to them.
    Owned {
        project: String,
        reply: RpcReplyPort<Vec<u64>>,
    },
    /// A poller finished its one cycle (`--once`).
    PollDone { project: String },
    /// A merge scanner finished its one scan (`--once`).
    ScanDone { project: String },
}

/// How a child reaches the supervisor.
#[derive(Clone)]
pub struct Parent {
    inner: DerivedActorRef<ToParent>,
}

impl Parent {
    pub fn new(inner: DerivedActorRef<ToParent>) -> Parent {
        Parent { inner }
    }

    pub fn candidates(
        &self,
        project: &str,
        issues: Vec<(IssueNumber, String)>,
    ) -> anyhow::Result<()> {
        self.send(ToParent::Candidates {
            project: project.to_string(),
            issues,
        })
    }

    pub async fn free_slots(&self, project: &str, timeout: Duration) -> anyhow::Result<usize> {
        let project = project.to_string();
        self.ask(timeout, |reply| ToParent::FreeSlots { project, reply })
            .await
    }

    pub async fn owned(&self, project: &str, timeout: Duration) -> anyhow::Result<Vec<u64>> {
        let project = project.to_string();
        self.ask(timeout, |reply| ToParent::Owned { project, reply })
            .await
    }

    pub fn poll_done(&self, project: &str) -> anyhow::Result<()> {
        self.send(ToParent::PollDone {
            project: project.to_string(),
        })
    }

    pub fn scan_done(&self, project: &str) -> anyhow::Result<()> {
        self.send(ToParent::ScanDone {
            project: project.to_string(),
        })
    }

    fn send(&self, msg: ToParent) -> anyhow::Result<()> {
        self.inner
            .send_message(msg)
            .map_err(|_| anyhow::anyhow!("the supervisor is gone"))
    }

    async fn ask<T: Send + 'static>(
        &self,
        timeout: Duration,
        msg: impl FnOnce(RpcReplyPort<T>) -> ToParent,
    ) -> anyhow::Result<T> {
        let (tx, rx) = ractor::concurrency::oneshot();
        self.send(msg(tx.into()))?;
        tokio::time::timeout(timeout, rx)
            .await
            .with_context(|| format!("the supervisor did not answer within {timeout:?}"))?
            .map_err(|_| anyhow::anyhow!("the supervisor dropped the question"))
    }
}
