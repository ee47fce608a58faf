//! Counts of the answers every forge and CI call got, by HTTP status code,
//! since the daemon started: the dashboard's `/metrics` shows them. Counted
//! where every request is sent (`retry::classify`), retried attempts
//! included, so a flaky forge shows up as the 5xx it answers.

use std::sync::atomic::{AtomicU64, Ordering};

/// Status codes are three digits from 100 to 599 (RFC 9110 §15).
const FIRST: u16 = 100;
const LAST: u16 = 599;

static BY_STATUS: [AtomicU64; (LAST - FIRST + 1) as usize] =
    [const { AtomicU64::new(0) }; (LAST - FIRST + 1) as usize];
/// Requests that got no answer at all (connection refused, timeout, reset).
static NO_ANSWER: AtomicU64 = AtomicU64::new(0);

/// One request's outcome: the status it was answered with, or `None` when
/// no answer came.
pub fn record(status: Option<u16>) {
    match status {
        Some(code @ FIRST..=LAST) => {
            BY_STATUS[usize::from(code - FIRST)].fetch_add(1, Ordering::Relaxed);
        }
        // hyper refuses codes outside the range; an answer nonetheless.
        Some(_) | None => {
            NO_ANSWER.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// What an answer count is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    Status(u16),
    None,
}

/// Every outcome seen so far with its count, status codes in order, then
/// the requests that got no answer.
pub fn requests_by_answer() -> Vec<(Answer, u64)> {
    let mut counts: Vec<(Answer, u64)> = BY_STATUS
        .iter()
        .zip(FIRST..)
        .map(|(n, code)| (Answer::Status(code), n.load(Ordering::Relaxed)))
        .filter(|(_, n)| *n > 0)
        .collect();
    let none = NO_ANSWER.load(Ordering::Relaxed);
    if none > 0 {
        counts.push((Answer::None, none));
    }
    counts
}
