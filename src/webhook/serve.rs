//! The listener's accept loop: hyper's HTTP/1 server driven by hand, because
//! `axum::serve` offers neither a header timeout nor a cap on connections, and
//! the listener faces anyone who can reach its port. The dashboard serves
//! through it too. A slow or idle client
//! costs one of a fixed number of slots for a bounded time, never more.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

/// What one client may take of the listener, in time and in connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// A request's headers must be complete this long after the connection
    /// opened or the previous response went out, else the connection is
    /// dropped: a client trickling headers (slowloris) or idling on a
    /// keep-alive connection gives its slot back.
    pub header_read: Duration,
    /// The whole body must have arrived this long after the headers, else the
    /// request is answered 408 and the connection closed. Forges send their
    /// few kilobytes at once; only a hostile client trickles.
    pub body_read: Duration,
    /// Connections served at once. Further ones wait in the kernel's accept
    /// queue (itself bounded by the listen backlog) until a slot frees, so a
    /// burst of deliveries is delayed rather than refused, and a flood cannot
    /// grow the daemon's tasks or memory.
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            header_read: Duration::from_secs(10),
            body_read: Duration::from_secs(30),
            max_connections: 64,
        }
    }
}

/// Serves `app` on `listener` within `limits` until the future is dropped;
/// dropping it also drops every open connection. `what` names the server in
/// log lines.
pub(crate) async fn serve(listener: TcpListener, app: Router, limits: Limits, what: &'static str) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read);
    // Owned here so that aborting the listener aborts its connections too.
    let mut connections = JoinSet::new();
    loop {
        // Finished connections are reaped before each accept, so the set
        // holds at most `max_connections` tasks.
        while connections.try_join_next().is_some() {}
        // A slot before the accept: beyond the limit a client waits in the
        // backlog instead of being accepted and held in memory.
        let slot = slots
            .clone()
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                drop(slot);
                accept_failed(e, what).await;
                continue;
            }
        };
        let connection =
            http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(app.clone()));
        connections.spawn(async move {
            let _slot = slot;
            // Timeouts, resets and malformed requests end here; each only
            // concerns that client.
            if let Err(e) = connection.await {
                tracing::debug!(%peer, error = %e, "{what} connection closed");
            }
        });
    }
}

/// Errors about one connection are that client's; others (out of file
/// descriptors) would repeat at once, so the loop pauses before retrying.
async fn accept_failed(e: io::Error, what: &str) {
    use io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        e.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        return;
    }
    tracing::error!(error = %e, "accepting a {what} connection");
    tokio::time::sleep(Duration::from_secs(1)).await;
}
