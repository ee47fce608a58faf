//! `[budget]`: the limits on what agents spend and the price table
//! (`crate::budget`). Every key is optional; a file without the section has
//! no limits.

use std::collections::BTreeMap;

use toml::Spanned;

use super::Checker;
use crate::budget::{self, BudgetConfig, Limit, Price, Prices};
use crate::config::raw::{RawBudget, RawPrice};

impl Checker<'_> {
    pub(super) fn budget(&mut self) -> BudgetConfig {
        let raw = self
            .section::<RawBudget>("budget")
            .map(Spanned::into_inner)
            .unwrap_or_default();
        let mut prices = BTreeMap::new();
        for (model, entry) in raw.prices.unwrap_or_default() {
            let field = format!("[budget.prices] \"{model}\"");
            if model.trim().is_empty() {
                self.push(
                    entry.span(),
                    &field,
                    "a model name prefix must not be empty",
                );
                continue;
            }
            prices.insert(model, self.price(entry.into_inner(), &field));
        }
        BudgetConfig {
            issue: Limit {
                tokens: self.positive(raw.issue_tokens, "[budget] issue_tokens"),
                cost_micros: self.dollars(raw.issue_cost, "[budget] issue_cost"),
            },
            issue_time: raw
                .issue_time
                .map(|t| self.duration(Some(t), "[budget] issue_time", budget::DEFAULT_GRACE)),
            grace: self.duration(raw.grace, "[budget] grace", budget::DEFAULT_GRACE),
            day: Limit {
                tokens: self.positive(raw.day_tokens, "[budget] day_tokens"),
                cost_micros: self.dollars(raw.day_cost, "[budget] day_cost"),
            },
            month: Limit {
                tokens: self.positive(raw.month_tokens, "[budget] month_tokens"),
                cost_micros: self.dollars(raw.month_cost, "[budget] month_cost"),
            },
            runs_per_day: raw.runs_per_day.and_then(|r| {
                let at = r.span();
                let n = self.positive(
                    Some(Spanned::new(at, u64::from(*r.get_ref()))),
                    "[budget] runs_per_day",
                );
                n.map(|_| r.into_inner())
            }),
            prices: Prices::with_overrides(prices),
            // Not the project file's: `projects/_budget.toml`, read by the daemon.
            daemon_month: Limit::default(),
        }
    }

    /// A count that must be at least 1 (0 would stop everything: leave the
    /// key out for no limit, or `forgehand disable` to stop).
    fn positive(&mut self, raw: Option<Spanned<u64>>, field: &str) -> Option<u64> {
        let raw = raw?;
        if *raw.get_ref() == 0 {
            self.push(
                raw.span(),
                field,
                "must be at least 1 (leave the key out for no limit)",
            );
            return None;
        }
        Some(raw.into_inner())
    }

    /// US dollars: a finite amount above zero, in micro-dollars.
    fn dollars(&mut self, raw: Option<Spanned<f64>>, field: &str) -> Option<u64> {
        let raw = raw?;
        let v = *raw.get_ref();
        if !v.is_finite() || v <= 0.0 {
            let message = format!(
                "{v} is not an amount of US dollars above 0 (leave the key out for no limit)"
            );
            self.push(raw.span(), field, message);
            return None;
        }
        Some(budget::micros(v))
    }

    /// A price per million tokens: finite and not negative.
    fn rate(&mut self, raw: Spanned<f64>, field: &str) -> f64 {
        let v = *raw.get_ref();
        if !v.is_finite() || v < 0.0 {
            let message =
                format!("{v} is not a price in US dollars per million tokens (0 or more)");
            self.push(raw.span(), field, message);
            return 0.0;
        }
        v
    }

    /// One price entry; cache prices default to Anthropic's ratios to the
    /// input price (writes 1.25×, reads 0.1×).
    fn price(&mut self, raw: RawPrice, field: &str) -> Price {
        let input = self.rate(raw.input, &format!("{field} input"));
        let output = self.rate(raw.output, &format!("{field} output"));
        let cache_write = match raw.cache_write {
            Some(v) => self.rate(v, &format!("{field} cache_write")),
            None => input * 1.25,
        };
        let cache_read = match raw.cache_read {
            Some(v) => self.rate(v, &format!("{field} cache_read")),
            None => input * 0.1,
        };
        Price {
            input,
            output,
            cache_write,
            cache_read,
        }
    }
}
