//! `/metrics`: the Prometheus text format (version 0.0.4). The database's
//! counts, the HTTP layer's answers by status code and the live tmux
//! sessions, each family with its `HELP` and `TYPE`, label values escaped.

use std::fmt::Display;
use std::fmt::Write as _;

use crate::http::metrics::Answer;
use crate::store::Counts;

/// Everything one scrape reports.
pub(super) struct Scrape<'a> {
    /// Configured projects, so every project has its series even at zero.
    pub projects: &'a [String],
    pub counts: &'a Counts,
    pub requests: &'a [(Answer, u64)],
    /// Names of the tmux sessions that exist.
    pub live_sessions: &'a [String],
}

pub(super) const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

pub(super) fn render(s: &Scrape<'_>) -> String {
    let mut out = Out::default();
    let c = s.counts;

    out.family(
        "forgehand_issues",
        "gauge",
        "Issues forgehand holds or held, by project, claim status and stage.",
    );
    for (project, status, stage, n) in &c.issues {
        out.sample(
            "forgehand_issues",
            &[("project", project), ("status", status), ("stage", stage)],
            n,
        );
    }

    out.family(
        "forgehand_merges_total",
        "counter",
        "Pull requests forgehand merged, by project.",
    );
    for project in s.projects {
        let n = lookup(&c.merges, project).unwrap_or(0);
        out.sample("forgehand_merges_total", &[("project", project)], n);
    }

    out.family(
        "forgehand_ci_attempts",
        "gauge",
        "CI runs that failed and were handed back to the agent, summed over the project's issues.",
    );
    for project in s.projects {
        let n = c.rounds.iter().find(|r| &r.0 == project).map_or(0, |r| r.1);
        out.sample("forgehand_ci_attempts", &[("project", project)], n);
    }
    out.family(
        "forgehand_review_rounds",
        "gauge",
        "Reviews that requested changes, summed over the project's issues.",
    );
    for project in s.projects {
        let n = c.rounds.iter().find(|r| &r.0 == project).map_or(0, |r| r.2);
        out.sample("forgehand_review_rounds", &[("project", project)], n);
    }

    out.family(
        "forgehand_forge_requests_total",
        "counter",
        "HTTP requests to forges and CI servers since the daemon started, by the status code \
         they were answered with (\"none\": no answer).",
    );
    for (answer, n) in s.requests {
        let code = match answer {
            Answer::Status(code) => code.to_string(),
            Answer::None => "none".to_string(),
        };
        out.sample("forgehand_forge_requests_total", &[("code", &code)], n);
    }

    out.family(
        "forgehand_forge_quota_remaining",
        "gauge",
        "Requests the forge allows until its quota resets, as it last reported (GitHub).",
    );
    for q in &c.quotas {
        out.sample(
            "forgehand_forge_quota_remaining",
            &[("project", &q.project)],
            q.remaining,
        );
    }
    out.family(
        "forgehand_forge_quota_limit",
        "gauge",
        "Requests the forge allows per quota window, as it last reported.",
    );
    for q in &c.quotas {
        if let Some(limit) = q.limit {
            out.sample(
                "forgehand_forge_quota_limit",
                &[("project", &q.project)],
                limit,
            );
        }
    }
    out.family(
        "forgehand_forge_quota_reset_timestamp_seconds",
        "gauge",
        "When the forge's quota resets, in seconds since the Unix epoch.",
    );
    for q in &c.quotas {
        out.sample(
            "forgehand_forge_quota_reset_timestamp_seconds",
            &[("project", &q.project)],
            q.reset_at.timestamp(),
        );
    }

    out.family(
        "forgehand_tokens",
        "gauge",
        "Tokens the agents used, by project and kind, as their own records report.",
    );
    for project in s.projects {
        let t = c
            .tokens
            .iter()
            .find(|t| &t.0 == project)
            .map(|t| t.1)
            .unwrap_or_default();
        for (kind, n) in [
            ("input", t.input),
            ("output", t.output),
            ("cache_creation", t.cache_creation),
            ("cache_read", t.cache_read),
        ] {
            out.sample(
                "forgehand_tokens",
                &[("project", project), ("kind", kind)],
                n,
            );
        }
    }

    out.family(
        "forgehand_cost_dollars",
        "gauge",
        "What the agents cost by project, every day added up, at the [budget] prices.",
    );
    for project in s.projects {
        let micros = c.cost.iter().find(|t| &t.0 == project).map_or(0, |t| t.1);
        out.sample(
            "forgehand_cost_dollars",
            &[("project", project)],
            micros as f64 / 1e6,
        );
    }

    out.family(
        "forgehand_sessions",
        "gauge",
        "Agent sessions alive in tmux for the project's active issues.",
    );
    for project in s.projects {
        let n = c
            .sessions
            .iter()
            .filter(|(p, session)| p == project && s.live_sessions.contains(session))
            .count();
        out.sample("forgehand_sessions", &[("project", project)], n);
    }
    out.0
}

fn lookup(rows: &[(String, u64)], project: &str) -> Option<u64> {
    rows.iter().find(|(p, _)| p == project).map(|(_, n)| *n)
}

#[derive(Default)]
struct Out(String);

impl Out {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let help = help.replace('\\', "\\\\").replace('\n', "\\n");
        let _ = writeln!(self.0, "# HELP {name} {help}");
        let _ = writeln!(self.0, "# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl Display) {
        self.0.push_str(name);
        if !labels.is_empty() {
            let labels: Vec<String> = labels
                .iter()
                .map(|(k, v)| format!("{k}=\"{}\"", escape_label(v)))
                .collect();
            let _ = write!(self.0, "{{{}}}", labels.join(","));
        }
        let _ = writeln!(self.0, " {value}");
    }
}

/// A label value as the format wants it: backslash, quote and newline escaped.
fn escape_label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
