//! The project file as written: serde structs that reject unknown keys at
//! every level and keep spans where validation needs a position. Every key is
//! optional here; `validate` decides what is required and applies defaults,
//! so a missing key gets a message that names it.
//!
//! To add a key: add a field to its section struct here, then read it in the
//! section's function in `validate`. To add a section: a struct here, a field
//! in `RawTop`, and a call in `validate::project`.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, IgnoredAny, Visitor};
use serde::{Deserialize, Deserializer};
use toml::Spanned;

type Field<T> = Option<Spanned<T>>;

/// A duration as written (`"90s"`). Parsed during validation rather than
/// here, so every bad duration in a section is reported, not only the first;
/// this type exists so a non-string gets a message saying what is expected.
pub struct DurationText(pub String);

impl<'de> Deserialize<'de> for DurationText {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Text;
        impl Visitor<'_> for Text {
            type Value = DurationText;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(r#"a duration string such as "90s", "30m" or "2h""#)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<DurationText, E> {
                Ok(DurationText(v.to_string()))
            }
        }
        deserializer.deserialize_str(Text)
    }
}

/// The top level. Sections are only named here, so an unknown top-level key is
/// still rejected with the full list of allowed keys; each section is then
/// deserialized on its own so an error in one does not hide errors in others.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[expect(
    dead_code,
    reason = "the section fields exist only to be accepted as keys"
)]
pub struct RawTop {
    pub name: Field<String>,
    pub repo: Field<String>,
    pub primary_branch: Field<String>,
    pub clone_url: Field<String>,
    pub poll_interval: Field<DurationText>,
    pub forge: Option<IgnoredAny>,
    pub labels: Option<IgnoredAny>,
    pub agent: Option<IgnoredAny>,
    pub ci: Option<IgnoredAny>,
    pub review: Option<IgnoredAny>,
    pub merge: Option<IgnoredAny>,
    pub matrix: Option<IgnoredAny>,
    pub mirrors: Option<IgnoredAny>,
    pub budget: Option<IgnoredAny>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawForge {
    pub kind: Field<String>,
    pub url: Field<String>,
    pub token_env: Field<String>,
    pub webhook_secret_env: Field<String>,
    /// GitHub App sign-in (`kind = "github"` only), instead of `token_env`.
    pub app_id: Field<u64>,
    pub installation_id: Field<u64>,
    pub private_key_file: Field<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawLabels {
    pub backlog: Field<String>,
    pub priority: Field<String>,
    pub in_progress: Field<String>,
    pub blocked: Field<String>,
    pub underspecified: Field<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawAgent {
    pub command: Field<String>,
    pub ready_pattern: Field<String>,
    pub max_sessions: Field<u32>,
    pub idle_timeout: Field<DurationText>,
    pub escalation_timeout: Field<DurationText>,
    pub pass_env: Option<Vec<Spanned<String>>>,
    pub kind: Field<String>,
    pub sandbox: Field<String>,
    pub sandbox_rw: Option<Vec<Spanned<String>>>,
    pub sandbox_ro: Option<Vec<Spanned<String>>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawCi {
    pub required: Option<bool>,
    pub max_fix_attempts: Option<u32>,
    pub timeout: Field<DurationText>,
    pub command: Field<String>,
    pub woodpecker_url: Field<String>,
    pub woodpecker_repo_id: Field<u64>,
    pub woodpecker_token_env: Field<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawReview {
    pub required_approvals: Option<u32>,
    pub max_rounds: Field<u32>,
    pub timeout: Field<DurationText>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawMerge {
    pub method: Field<String>,
    pub delete_branch: Option<bool>,
    pub delay: Field<DurationText>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawMatrix {
    pub homeserver: Field<String>,
    pub room_id: Field<String>,
    pub user_id: Field<String>,
    pub token_env: Field<String>,
    pub mention_user: Field<String>,
    pub outbox_max_age: Field<DurationText>,
}

/// `[mirrors]`: any key, each a push URL.
pub type RawMirrors = BTreeMap<String, Spanned<String>>;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawBudget {
    pub issue_tokens: Field<u64>,
    pub issue_cost: Field<f64>,
    pub issue_time: Field<DurationText>,
    pub grace: Field<DurationText>,
    pub day_tokens: Field<u64>,
    pub day_cost: Field<f64>,
    pub month_tokens: Field<u64>,
    pub month_cost: Field<f64>,
    pub runs_per_day: Field<u32>,
    /// Model-name prefix → price per million tokens.
    pub prices: Option<BTreeMap<String, Spanned<RawPrice>>>,
}

/// One `[budget.prices."<model prefix>"]` entry, US dollars per million tokens.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPrice {
    pub input: Spanned<f64>,
    pub output: Spanned<f64>,
    pub cache_write: Option<Spanned<f64>>,
    pub cache_read: Option<Spanned<f64>>,
}
