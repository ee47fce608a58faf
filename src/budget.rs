//! Budgets: what an agent's tokens cost, and the limits that stop spending
//! (`[budget]` in the project file). Pure: the dev actor and the poller ask
//! these functions with the spend the store recorded and the time passed in.
//!
//! Cost is counted in millionths of a US dollar (`cost_micros`), so spends
//! add up exactly and the persisted state compares equal after a reload.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::store::TokenUsage;

/// Tokens by the model that used them; the model is `unknown` when the
/// agent's records do not say.
pub type ModelUsage = BTreeMap<String, TokenUsage>;

/// The model name used when a usage record names none.
pub const UNKNOWN_MODEL: &str = "unknown";

/// One model's prices in US dollars per million tokens.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Price {
    pub input: f64,
    pub output: f64,
    /// Writing the prompt cache.
    pub cache_write: f64,
    /// Reading the prompt cache.
    pub cache_read: f64,
}

impl Price {
    fn cost_micros(&self, u: &TokenUsage) -> u64 {
        // Dollars per million tokens is micro-dollars per token.
        let micros = u.input as f64 * self.input
            + u.output as f64 * self.output
            + u.cache_creation as f64 * self.cache_write
            + u.cache_read as f64 * self.cache_read;
        micros.round().max(0.0) as u64
    }
}

/// Model-name prefix → price. The longest matching prefix wins; a model no
/// prefix matches is priced as `default`.
#[derive(Debug, Clone, PartialEq)]
pub struct Prices {
    pub by_prefix: BTreeMap<String, Price>,
}

/// The key of the price for models no other entry matches.
pub const DEFAULT_PRICE_KEY: &str = "default";

const fn price(input: f64, output: f64, cache_write: f64, cache_read: f64) -> Price {
    Price {
        input,
        output,
        cache_write,
        cache_read,
    }
}

/// The built-in table (Anthropic's list prices per million tokens, with the
/// five-minute cache write): used where `[budget.prices]` names no entry.
/// `default` is Sonnet's, so an unknown model is neither free nor priced as
/// the dearest.
pub const DEFAULT_PRICES: &[(&str, Price)] = &[
    ("claude-opus-4-5", price(5.0, 25.0, 6.25, 0.50)),
    ("claude-opus", price(15.0, 75.0, 18.75, 1.50)),
    ("claude-sonnet", price(3.0, 15.0, 3.75, 0.30)),
    ("claude-haiku-4", price(1.0, 5.0, 1.25, 0.10)),
    ("claude-3-5-haiku", price(0.80, 4.0, 1.0, 0.08)),
    (DEFAULT_PRICE_KEY, price(3.0, 15.0, 3.75, 0.30)),
];

impl Default for Prices {
    fn default() -> Prices {
        Prices {
            by_prefix: DEFAULT_PRICES
                .iter()
                .map(|(k, p)| (k.to_string(), *p))
                .collect(),
        }
    }
}

impl Prices {
    /// The built-in table with the project's entries over it.
    pub fn with_overrides(overrides: BTreeMap<String, Price>) -> Prices {
        let mut prices = Prices::default();
        prices.by_prefix.extend(overrides);
        prices
    }

    pub fn price_of(&self, model: &str) -> Price {
        self.by_prefix
            .iter()
            .filter(|(prefix, _)| {
                prefix.as_str() != DEFAULT_PRICE_KEY && model.starts_with(*prefix)
            })
            .max_by_key(|(prefix, _)| prefix.len())
            .or_else(|| self.by_prefix.get_key_value(DEFAULT_PRICE_KEY))
            .map_or(DEFAULT_PRICES[DEFAULT_PRICES.len() - 1].1, |(_, p)| *p)
    }

    /// What `usage` cost.
    pub fn spend(&self, usage: &ModelUsage) -> Spend {
        usage.iter().fold(Spend::default(), |acc, (model, u)| {
            acc + Spend {
                tokens: u.total(),
                cost_micros: self.price_of(model).cost_micros(u),
            }
        })
    }
}

/// Tokens and what they cost.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Spend {
    pub tokens: u64,
    pub cost_micros: u64,
}

impl std::ops::Add for Spend {
    type Output = Spend;
    fn add(self, o: Spend) -> Spend {
        Spend {
            tokens: self.tokens.saturating_add(o.tokens),
            cost_micros: self.cost_micros.saturating_add(o.cost_micros),
        }
    }
}

impl fmt::Display for Spend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} tokens ({})", self.tokens, dollars(self.cost_micros))
    }
}

/// `$1.23` for micro-dollars.
pub fn dollars(micros: u64) -> String {
    format!("${:.2}", micros as f64 / 1e6)
}

/// Dollars as written in the project file, in micro-dollars.
pub fn micros(dollars: f64) -> u64 {
    (dollars * 1e6).round().max(0.0) as u64
}

/// `[budget]`: every limit optional; none set means no limit.
#[derive(Debug, Clone, PartialEq)]
pub struct BudgetConfig {
    /// Per issue (one claim): tokens, cost, and wall-clock time since the claim.
    pub issue: Limit,
    pub issue_time: Option<Duration>,
    /// How long the agent has to wrap up once the issue reached its budget.
    pub grace: Duration,
    /// Per project per UTC day and per UTC calendar month.
    pub day: Limit,
    pub month: Limit,
    /// Issues claimed per project per UTC day.
    pub runs_per_day: Option<u32>,
    pub prices: Prices,
    /// The whole daemon's per UTC month, over every project
    /// (`projects/_budget.toml`, set by the daemon at start).
    pub daemon_month: Limit,
}

impl Default for BudgetConfig {
    /// No limits, the default grace and the built-in prices.
    fn default() -> BudgetConfig {
        BudgetConfig {
            issue: Limit::default(),
            issue_time: None,
            grace: DEFAULT_GRACE,
            day: Limit::default(),
            month: Limit::default(),
            runs_per_day: None,
            prices: Prices::default(),
            daemon_month: Limit::default(),
        }
    }
}

/// The default `[budget] grace`.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(10 * 60);

/// A token and/or cost limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Limit {
    pub tokens: Option<u64>,
    pub cost_micros: Option<u64>,
}

impl Limit {
    pub fn is_set(&self) -> bool {
        self.tokens.is_some() || self.cost_micros.is_some()
    }

    /// What `spend` reached, in words, or `None` while under the limit.
    pub fn reached(&self, spend: Spend) -> Option<String> {
        if let Some(max) = self.tokens
            && spend.tokens >= max
        {
            return Some(format!("{max} tokens"));
        }
        if let Some(max) = self.cost_micros
            && spend.cost_micros >= max
        {
            return Some(dollars(max));
        }
        None
    }
}

/// What the project spent, as the poller needs it to decide whether to claim.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProjectSpend {
    pub today: Spend,
    pub month: Spend,
    pub runs_today: u32,
}

impl BudgetConfig {
    /// The limits under their `[budget]` names (costs in dollars, the time
    /// as written in a project file), `null` where none is set; the
    /// daemon's monthly cap as `daemon_month_*`.
    pub fn limits_json(&self) -> serde_json::Value {
        let cost = |micros: Option<u64>| micros.map(|m| m as f64 / 1e6);
        serde_json::json!({
            "issue_tokens": self.issue.tokens,
            "issue_cost": cost(self.issue.cost_micros),
            "issue_time": self.issue_time.map(crate::actors::dev::machine::humanize),
            "day_tokens": self.day.tokens,
            "day_cost": cost(self.day.cost_micros),
            "month_tokens": self.month.tokens,
            "month_cost": cost(self.month.cost_micros),
            "runs_per_day": self.runs_per_day,
            "daemon_month_tokens": self.daemon_month.tokens,
            "daemon_month_cost": cost(self.daemon_month.cost_micros),
        })
    }

    /// Why no new issue may be claimed now, or `None` when one may.
    pub fn picking_stop(&self, spent: &ProjectSpend) -> Option<String> {
        if let Some(what) = self.day.reached(spent.today) {
            return Some(format!(
                "the day's budget of {what} is reached (spent today: {}); picking resumes at 00:00 UTC",
                spent.today
            ));
        }
        if let Some(what) = self.month.reached(spent.month) {
            return Some(format!(
                "the month's budget of {what} is reached (spent this month: {}); picking resumes on the 1st",
                spent.month
            ));
        }
        if let Some(max) = self.runs_per_day
            && spent.runs_today >= max
        {
            return Some(format!(
                "{} issues were claimed today, the most `runs_per_day` allows; picking resumes at 00:00 UTC",
                spent.runs_today
            ));
        }
        None
    }

    /// Why the issue is over its own budget after `spent` and `elapsed`
    /// since its claim, or `None`.
    pub fn issue_over(&self, spent: Spend, elapsed: Duration) -> Option<String> {
        if let Some(what) = self.issue.reached(spent) {
            return Some(format!("its budget of {what}"));
        }
        match self.issue_time {
            Some(max) if elapsed >= max => Some(format!(
                "its time budget of {}",
                crate::actors::dev::machine::humanize(max)
            )),
            _ => None,
        }
    }
}
