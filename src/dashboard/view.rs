//! What the pages are sent: the store's overview and issue views turned into
//! JSON, every text that came from a forge, an agent or the journal passed
//! through the project's redactor with its control characters escaped. The
//! pages put these strings into the document as text, never as HTML.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::config::ForgeConfig;
use crate::redact::Redactor;
use crate::store::{EventRow, ForgeQuota, IssueView, Overview};
use crate::text::{escape_line, escape_lines};

use super::DashboardProject;

/// The overview: every configured project, with the issues it holds, in
/// the order of the project files; issues of a project no longer
/// configured come after, under their own name.
pub(super) fn overview(projects: &[DashboardProject], overview: &Overview) -> Value {
    let mut issues: BTreeMap<&str, Vec<&IssueView>> = BTreeMap::new();
    for view in &overview.issues {
        issues.entry(&view.claim.project).or_default().push(view);
    }
    let mut out = Vec::new();
    for p in projects {
        let held = issues.remove(p.name.as_str()).unwrap_or_default();
        let quota = overview.quotas.iter().find(|q| q.project == p.name);
        out.push(project(&p.name, Some(p), quota, &held));
    }
    for (name, held) in issues {
        out.push(project(name, None, None, &held));
    }
    json!({ "projects": out })
}

fn project(
    name: &str,
    config: Option<&DashboardProject>,
    quota: Option<&ForgeQuota>,
    held: &[&IssueView],
) -> Value {
    let default = Redactor::default();
    let redactor = config.map_or(&default, |p| &p.redactor);
    json!({
        "name": name,
        "forge": config.map(|p| p.forge_kind),
        "quota": quota.map(|q| json!({
            "remaining": q.remaining,
            "limit": q.limit,
            "reset_at": q.reset_at,
            "updated_at": q.updated_at,
        })),
        "issues": held.iter().map(|v| issue(config, redactor, v)).collect::<Vec<_>>(),
    })
}

/// One issue's row; `key` is what its page's address names.
pub(super) fn issue(
    config: Option<&DashboardProject>,
    redactor: &Redactor,
    view: &IssueView,
) -> Value {
    let c = &view.claim;
    let key = c
        .session
        .strip_prefix(&format!("dev-{}-", c.project))
        .unwrap_or(&c.session);
    json!({
        "project": c.project,
        "issue": c.issue,
        "key": key,
        "title": line(redactor, &c.title),
        "status": c.status,
        "stage": c.stage,
        "waiting": c.waiting,
        "runner": c.runner,
        "pr": c.pr,
        "pr_url": c.pr.and_then(|n| config.and_then(|p| p.pr_url(n))),
        "ci_attempts": c.ci_attempts,
        "review_rounds": c.review_rounds,
        "tokens": view.tokens,
        "cost_usd": view.cost_micros.map(|m| m as f64 / 1e6),
        "reason": view.reason.as_deref().map(|r| lines(redactor, r)),
        "session": c.session,
        "claimed_at": c.claimed_at,
        "stage_since": c.stage_since,
        "updated_at": c.updated_at,
        "recent": journal(redactor, &view.recent),
    })
}

pub(super) fn journal(redactor: &Redactor, events: &[EventRow]) -> Vec<Value> {
    events
        .iter()
        .map(|e| {
            json!({
                "at": e.at,
                "kind": line(redactor, &e.kind),
                "detail": lines(redactor, &e.detail),
            })
        })
        .collect()
}

/// Pane text as shown: secrets cut out, controls escaped.
pub(super) fn pane(redactor: &Redactor, text: &str) -> String {
    lines(redactor, text)
}

fn line(redactor: &Redactor, text: &str) -> String {
    escape_line(&redactor.redact(text)).into_owned()
}

fn lines(redactor: &Redactor, text: &str) -> String {
    escape_lines(&redactor.redact(text)).into_owned()
}

/// The web address of pull request `n` on the project's forge; none for
/// the local backend, whose pull requests live in files.
pub(super) fn pr_url(forge: &ForgeConfig, repo: &str, n: u64) -> Option<String> {
    match forge {
        ForgeConfig::Forgejo(f) | ForgeConfig::Gitea(f) => {
            Some(format!("{}/{repo}/pulls/{n}", f.url.trim_end_matches('/')))
        }
        ForgeConfig::Github(g) => {
            let clone = crate::forge::github::default_clone_url(&g.url, repo);
            Some(format!("{}/pull/{n}", clone.trim_end_matches(".git")))
        }
        ForgeConfig::Local(_) => None,
    }
}

/// `forgehand status --json` with every text of its issues passed through
/// their project's redactor: the same JSON, minus any secret a title holds.
pub(super) fn status_json(projects: &[DashboardProject], mut status: Value) -> Value {
    let default = Redactor::default();
    let rows = status["issues"].as_array_mut().into_iter().flatten();
    for row in rows {
        let project = row["project"].as_str().unwrap_or_default().to_string();
        let redactor = projects
            .iter()
            .find(|p| p.name == project)
            .map_or(&default, |p| &p.redactor);
        if let Some(fields) = row.as_object_mut() {
            for value in fields.values_mut() {
                if let Value::String(text) = value {
                    *text = redactor.redact(text);
                }
            }
        }
    }
    status
}
