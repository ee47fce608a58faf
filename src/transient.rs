//! Telling a passing outage from a real failure (issue lifecycle, DESIGN §5):
//! a forge answering 5xx, not answering, refusing connections or rate
//! limiting, and a git command that cannot reach the forge, are transient:
//! the effect is tried again later, the state is kept, and nothing
//! counts towards giving the issue up. Everything else is a real failure.

use crate::forge::ForgeError;

/// A git command could not reach its remote (or did not finish in time).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Unreachable(pub String);

/// Whether `e`, or anything it was caused by, is a passing outage.
pub fn is_transient(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        cause
            .downcast_ref::<ForgeError>()
            .is_some_and(ForgeError::is_transient)
            || cause.is::<Unreachable>()
    })
}

/// What git prints when the network, not the request, failed. An HTTP 4xx
/// (a rejected token, a missing repository) is the request's fault.
pub fn git_network_failure(stderr: &str) -> bool {
    const SIGNS: &[&str] = &[
        "Could not resolve host",
        "Failed to connect",
        "Connection refused",
        "Connection reset",
        "Connection timed out",
        "Operation timed out",
        "Empty reply from server",
        "RPC failed",
        "early EOF",
        "remote end hung up unexpectedly",
        "SSL_read",
        "GnuTLS recv error",
        "returned error: 5",
        "returned error: 408",
        "returned error: 429",
    ];
    SIGNS.iter().any(|s| stderr.contains(s))
}
