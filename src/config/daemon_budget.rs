//! `projects/_budget.toml`: the daemon's own monthly budget over every
//! project (`month_tokens`, `month_cost` in US dollars), read once at start.
//! Optional; the name starts with `_` so it is never taken for a project.

use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

use super::error::{ConfigError, line_col};
use crate::budget::{self, Limit};

/// The file's name in the projects folder.
pub const DAEMON_BUDGET_FILE: &str = "_budget.toml";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDaemonBudget {
    month_tokens: Option<Spanned<u64>>,
    month_cost: Option<Spanned<f64>>,
}

/// The limit in `dir/_budget.toml`; no limit when there is no such file.
pub fn load_daemon_budget(dir: &Path) -> Result<Limit, Vec<ConfigError>> {
    let file = dir.join(DAEMON_BUDGET_FILE);
    let src = match std::fs::read_to_string(&file) {
        Ok(src) => src,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Limit::default()),
        Err(e) => {
            return Err(vec![ConfigError::without_position(
                &file,
                DAEMON_BUDGET_FILE,
                format!("cannot read: {e}"),
            )]);
        }
    };
    let at = |offset: usize, field: &str, message: String| {
        let (line, col) = line_col(&src, offset);
        ConfigError {
            file: file.clone(),
            line,
            col,
            field: field.to_string(),
            message,
        }
    };
    let raw: RawDaemonBudget = toml::from_str(&src).map_err(|e| {
        let offset = e.span().map_or(0, |s| s.start);
        vec![at(offset, DAEMON_BUDGET_FILE, e.message().to_string())]
    })?;
    let mut errors = Vec::new();
    let tokens = raw.month_tokens.and_then(|t| match *t.get_ref() {
        0 => {
            errors.push(at(
                t.span().start,
                "month_tokens",
                "must be at least 1 (leave the key out for no limit)".into(),
            ));
            None
        }
        n => Some(n),
    });
    let cost_micros = raw.month_cost.and_then(|c| {
        let v = *c.get_ref();
        if v.is_finite() && v > 0.0 {
            Some(budget::micros(v))
        } else {
            errors.push(at(
                c.span().start,
                "month_cost",
                format!("{v} is not an amount of US dollars above 0"),
            ));
            None
        }
    });
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(Limit {
        tokens,
        cost_micros,
    })
}
