//! `ConfigError`: one problem in a project file, located as `file:line:col`
//! and named by the TOML path a user reads (`[agent] idle_timeout`), plus the
//! helpers that turn byte spans and toml errors into that form.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use toml::de::{DeTable, DeValue};

/// Field name for errors the TOML parser reports before any key is known.
pub const SYNTAX_FIELD: &str = "TOML syntax";

/// One problem in a project file (or its directory). `line` and `col` are
/// 1-based; both are 0 when the problem has no position (I/O errors).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: PathBuf,
    pub line: usize,
    pub col: usize,
    /// The TOML path as a user reads it: `name`, `[agent] idle_timeout`, `[matrix]`.
    pub field: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}: {}",
            self.file.display(),
            self.line,
            self.col,
            self.field,
            self.message
        )
    }
}

impl std::error::Error for ConfigError {}

impl ConfigError {
    /// A problem with no position in a file: unreadable file, missing directory.
    pub fn without_position(file: &Path, field: &str, message: impl Into<String>) -> Self {
        ConfigError {
            file: file.to_path_buf(),
            line: 0,
            col: 0,
            field: field.to_string(),
            message: message.into(),
        }
    }
}

/// 1-based line and column (in characters) of a byte offset in `src`.
pub fn line_col(src: &str, offset: usize) -> (usize, usize) {
    let offset = floor_char_boundary(src, offset.min(src.len()));
    let before = &src[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let col = before[line_start..].chars().count() + 1;
    (line, col)
}

fn floor_char_boundary(src: &str, mut offset: usize) -> usize {
    while !src.is_char_boundary(offset) {
        offset -= 1;
    }
    offset
}

/// The key path (`["agent", "pass_env"]`) whose key or value covers byte
/// `pos`, the deepest one when several do. Empty when nothing covers it.
pub fn path_at(doc: &DeTable<'_>, pos: usize) -> Vec<String> {
    let mut best = Vec::new();
    walk(doc, pos, &mut Vec::new(), &mut best);
    best
}

fn walk(table: &DeTable<'_>, pos: usize, prefix: &mut Vec<String>, best: &mut Vec<String>) {
    for (key, value) in table.iter() {
        prefix.push(key.get_ref().to_string());
        let covers = |span: Range<usize>| span.start <= pos && pos < span.end;
        if (covers(key.span()) || covers(value.span())) && prefix.len() > best.len() {
            best.clone_from(prefix);
        }
        // Keep walking even when this key does not cover `pos`: a `[a.b]`
        // header table's span is only its header line, not its body.
        walk_value(value.get_ref(), pos, prefix, best);
        prefix.pop();
    }
}

fn walk_value(value: &DeValue<'_>, pos: usize, prefix: &mut Vec<String>, best: &mut Vec<String>) {
    match value {
        DeValue::Table(table) => walk(table, pos, prefix, best),
        DeValue::Array(items) => {
            for item in items.iter() {
                walk_value(item.get_ref(), pos, prefix, best);
            }
        }
        _ => {}
    }
}

/// How a user reads a key path: `name` at the top level, `[agent]` for a
/// section, `[agent] idle_timeout` inside one.
pub fn field_name(doc: &DeTable<'_>, path: &[String]) -> String {
    match path {
        [] => String::new(),
        [key] => {
            let is_table = doc
                .iter()
                .find(|(k, _)| k.get_ref() == key)
                .is_some_and(|(_, v)| v.get_ref().is_table());
            if is_table {
                format!("[{key}]")
            } else {
                key.clone()
            }
        }
        [section, rest @ ..] => format!("[{section}] {}", rest.join(".")),
    }
}

/// Rewords serde's "unknown field `x`, expected one of `a`, `b`" as a user
/// of a TOML file reads it; other messages are kept as they are.
pub fn reword(message: &str) -> String {
    let Some(rest) = message.strip_prefix("unknown field ") else {
        return message.to_string();
    };
    match rest.split_once(", expected ") {
        Some((key, allowed)) => {
            let allowed = allowed.strip_prefix("one of ").unwrap_or(allowed);
            format!("unknown key {key}; allowed keys: {allowed}")
        }
        None => match rest.split_once(", there are no fields") {
            Some((key, _)) => format!("unknown key {key}; this table takes no keys"),
            None => format!("unknown key {rest}"),
        },
    }
}
