//! Token use per issue, as the agent's own records report it (migration 4).
//! The row holds the latest total for the issue's current worktree.

use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use anyhow::Context;

use super::Db;

/// Tokens an agent used, by the Anthropic API's four counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct TokenUsage {
    pub input: u64,
    pub output: u64,
    pub cache_creation: u64,
    pub cache_read: u64,
}

impl TokenUsage {
    /// Every token counted, for a one-number summary.
    pub fn total(&self) -> u64 {
        self.input + self.output + self.cache_creation + self.cache_read
    }
}

impl std::ops::Add for TokenUsage {
    type Output = TokenUsage;
    fn add(self, o: TokenUsage) -> TokenUsage {
        TokenUsage {
            input: self.input + o.input,
            output: self.output + o.output,
            cache_creation: self.cache_creation + o.cache_creation,
            cache_read: self.cache_read + o.cache_read,
        }
    }
}

impl std::iter::Sum for TokenUsage {
    fn sum<I: Iterator<Item = TokenUsage>>(iter: I) -> TokenUsage {
        iter.fold(TokenUsage::default(), |a, b| a + b)
    }
}

impl Db {
    /// `None` when unknown, or when the schema predates token use.
    pub fn usage(&self, project: &str, issue: u64) -> anyhow::Result<Option<TokenUsage>> {
        if !self.has_usage() {
            return Ok(None);
        }
        let row = self
            .conn()
            .query_row(
                "SELECT input, output, cache_creation, cache_read FROM token_usage
                 WHERE project = ?1 AND issue = ?2",
                params![project, issue as i64],
                |r| {
                    Ok(TokenUsage {
                        input: r.get::<_, i64>(0)? as u64,
                        output: r.get::<_, i64>(1)? as u64,
                        cache_creation: r.get::<_, i64>(2)? as u64,
                        cache_read: r.get::<_, i64>(3)? as u64,
                    })
                },
            )
            .optional()
            .with_context(|| format!("reading the token use of {project}#{issue}"))?;
        Ok(row)
    }
}
