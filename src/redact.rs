//! The secret redactor every outgoing text passes (comments, Matrix, logs of
//! pane output): known secret values from the configuration and the daemon's
//! environment, plus the shapes of common credentials.

use std::sync::OnceLock;

use regex::Regex;

const MASK: &str = "[REDACTED]";

/// Secrets shorter than this are not masked by value: masking "1" or "yes"
/// everywhere would wreck the text and protect nothing.
const MIN_SECRET_LEN: usize = 6;

#[derive(Clone, Default)]
pub struct Redactor {
    /// Longest first, so a secret containing another is masked whole.
    values: Vec<String>,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Redactor({} values)", self.values.len())
    }
}

impl Redactor {
    pub fn new(values: impl IntoIterator<Item = String>) -> Redactor {
        let mut values: Vec<String> = values
            .into_iter()
            .filter(|v| v.chars().count() >= MIN_SECRET_LEN)
            .collect();
        values.sort_by_key(|v| std::cmp::Reverse(v.len()));
        values.dedup();
        Redactor { values }
    }

    /// The given values plus those of every variable in `env` whose name says
    /// it holds a secret (`*TOKEN*`, `*SECRET*`, `*PASSWORD*`, `*_KEY`, …).
    pub fn with_env(
        values: impl IntoIterator<Item = String>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Redactor {
        let from_env = env
            .into_iter()
            .filter(|(name, _)| looks_secret(name))
            .map(|(_, value)| value);
        Redactor::new(values.into_iter().chain(from_env))
    }

    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_string();
        for v in &self.values {
            if out.contains(v.as_str()) {
                out = out.replace(v.as_str(), MASK);
            }
        }
        for re in patterns() {
            out = re
                .replace_all(&out, |c: &regex::Captures<'_>| {
                    let part = |name| c.name(name).map_or("", |m| m.as_str());
                    format!("{}{MASK}{}", part("keep"), part("tail"))
                })
                .into_owned();
        }
        out
    }
}

fn looks_secret(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    [
        "TOKEN",
        "SECRET",
        "PASSWORD",
        "PASSWD",
        "API_KEY",
        "APIKEY",
        "PRIVATE_KEY",
        "CREDENTIAL",
    ]
    .iter()
    .any(|w| upper.contains(w))
        || upper.ends_with("_KEY")
}

fn patterns() -> &'static [Regex] {
    static PATTERNS: OnceLock<Vec<Regex>> = OnceLock::new();
    PATTERNS.get_or_init(|| {
        [
            // PEM private keys, whole block.
            r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----",
            // GitHub, GitLab, Slack, Anthropic/OpenAI-style, AWS access keys.
            r"\b(?:gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,})",
            r"\bglpat-[A-Za-z0-9_\-]{20,}",
            r"\bxox[abposr]-[A-Za-z0-9\-]{10,}",
            r"\bsk-(?:ant-)?[A-Za-z0-9_\-]{20,}",
            r"\bAKIA[0-9A-Z]{16}\b",
            // Credentials in headers and URLs: keep the label, mask the value.
            r"(?i)(?P<keep>\bauthorization:\s*(?:token|bearer|basic)\s+)[^\s'\x22]+",
            r"(?i)(?P<keep>\b(?:bearer|token)\s+)[A-Za-z0-9_\-\.=]{20,}",
            r"(?P<keep>://[^/\s:@]+:)[^@\s/]+(?P<tail>@)",
            r"(?i)(?P<keep>\b[a-z0-9_]*(?:token|secret|password|api_key|apikey)[a-z0-9_]*\s*[=:]\s*)[^\s'\x22]{6,}",
        ]
        .iter()
        .map(|p| Regex::new(p).expect("redaction patterns are valid"))
        .collect()
    })
}
