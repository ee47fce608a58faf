//! Handlers for labels, issues, issue labels, comments and dependencies.
//!
//! Where Forgejo is lenient in ways that hide client bugs (unknown labels silently
//! ignored, duplicate label names accepted), the fake answers like Forgejo but records a
//! `Suspicious` violation so the test notices.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::log::ViolationKind;
use super::routes::{Reply, Req, paginate};
use super::state::ForgeState;

type Handled = Result<Reply, Reply>;

/// Colour of labels created without one.
pub use crate::fake_server::DEFAULT_LABEL_COLOR as DEFAULT_COLOR;

pub fn list_labels(state: &mut ForgeState, req: &Req) -> Handled {
    let labels: Vec<Value> = state.labels.iter().map(|l| state.label_json(l)).collect();
    Ok(paginate(&state.base_url, req, labels))
}

pub fn create_label(state: &mut ForgeState, req: &Req) -> Handled {
    let name = req.str_field("name").unwrap_or_default().to_owned();
    if name.is_empty() {
        return Err(Reply::error(422, "[Name]: Required"));
    }
    let color = req.str_field("color").unwrap_or(DEFAULT_COLOR).to_owned();
    let color_ok = {
        let hex = color.trim_start_matches('#');
        hex.len() == 6 && hex.chars().all(|c| c.is_ascii_hexdigit())
    };
    if !color_ok {
        return Err(Reply::error(422, format!("invalid color {color:?}")));
    }
    if state.label_by_name(&name).is_some() {
        state.violation(
            ViolationKind::Suspicious,
            req.method,
            req.path,
            format!("label {name:?} created again (Forgejo allows duplicates)"),
        );
    }
    let description = req.str_field("description").unwrap_or_default().to_owned();
    let id = state.new_label(&name, &color, &description);
    let label = state.created_label(id);
    Ok(Reply::json(201, state.label_json(&label)))
}

fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

pub fn list_issues(state: &mut ForgeState, req: &Req) -> Handled {
    let Some(then) = state.lists_as_of.take() else {
        return list_issues_now(state, req);
    };
    let now = std::mem::replace(&mut state.issues, then);
    let listed = list_issues_now(state, req);
    state.lists_as_of = Some(std::mem::replace(&mut state.issues, now));
    listed
}

fn list_issues_now(state: &mut ForgeState, req: &Req) -> Handled {
    let wanted_state = req.q("state").unwrap_or("open");
    // The swagger says "any of these labels", but Forgejo's indexer requires all of them;
    // names that do not exist are dropped, and if none is left there is no label filter.
    let label_filter: Option<Vec<&str>> = req.q("labels").filter(|l| !l.is_empty()).and_then(|l| {
        let known: Vec<&str> = l
            .split(',')
            .map(str::trim)
            .filter(|n| state.label_by_name(n).is_some())
            .collect();
        (!known.is_empty()).then_some(known)
    });
    if label_filter.is_none() && req.q("labels").is_some_and(|l| !l.is_empty()) {
        let detail = "filtering by labels none of which exist: Forgejo then lists every issue";
        state.violation(ViolationKind::Suspicious, req.method, req.path, detail);
    }
    let since = req.q("since").and_then(parse_time);
    let before = req.q("before").and_then(parse_time);
    let text = req.q("q").map(str::to_lowercase);
    let mut issues: Vec<_> = state
        .issues
        .values()
        .filter(|i| wanted_state == "all" || i.state == wanted_state)
        .filter(|i| match req.q("type") {
            Some("issues") => !i.is_pull,
            Some("pulls") => i.is_pull,
            _ => true,
        })
        .filter(|i| {
            label_filter
                .as_ref()
                .is_none_or(|names| names.iter().all(|n| i.has_label(n)))
        })
        .filter(|i| req.q("created_by").is_none_or(|u| u == i.user))
        .filter(|i| since.is_none_or(|t| i.updated_at >= t))
        .filter(|i| before.is_none_or(|t| i.updated_at <= t))
        .filter(|i| {
            text.as_ref().is_none_or(|t| {
                i.title.to_lowercase().contains(t) || i.body.to_lowercase().contains(t)
            })
        })
        .map(|i| (i.number, i.created_at, i.updated_at))
        .collect();
    match req.q("sort").unwrap_or("latest") {
        "oldest" => issues.sort_by_key(|(n, created, _)| (*created, *n)),
        "recentupdate" => issues.sort_by_key(|(n, _, updated)| std::cmp::Reverse((*updated, *n))),
        "leastupdate" => issues.sort_by_key(|(n, _, updated)| (*updated, *n)),
        _ => issues.sort_by_key(|(n, created, _)| std::cmp::Reverse((*created, *n))),
    }
    let json: Vec<Value> = issues
        .into_iter()
        .map(|(n, _, _)| state.issue_json(n))
        .collect();
    Ok(paginate(&state.base_url, req, json))
}

pub fn create_issue(state: &mut ForgeState, req: &Req) -> Handled {
    let title = req.str_field("title").unwrap_or_default().to_owned();
    if title.trim().is_empty() {
        return Err(Reply::error(422, "[Title]: Required"));
    }
    let bot = state.bot_login.clone();
    let n = state.new_issue(
        &title,
        req.str_field("body").unwrap_or_default(),
        &bot,
        false,
    );
    state.attach_label_ids(n, &req.body);
    if req.body.get("closed").and_then(Value::as_bool) == Some(true) {
        state.set_issue_state(n, "closed");
    }
    Ok(Reply::json(201, state.issue_json(n)))
}

/// The issue number of the request, which must exist.
fn existing_issue(state: &ForgeState, req: &Req) -> Result<u64, Reply> {
    let n = req.number("index")?;
    if state.issues.contains_key(&n) {
        Ok(n)
    } else {
        Err(Reply::error(404, format!("issue #{n} does not exist")))
    }
}

pub fn get_issue(state: &mut ForgeState, req: &Req) -> Handled {
    let n = existing_issue(state, req)?;
    Ok(Reply::json(200, state.issue_json(n)))
}

/// PATCH: `state`, `title`, `body`; Forgejo answers 201 with the issue.
pub fn edit_issue(state: &mut ForgeState, req: &Req) -> Handled {
    let n = existing_issue(state, req)?;
    if let Some(new_state) = req.str_field("state") {
        if new_state != "open" && new_state != "closed" {
            return Err(Reply::error(422, format!("invalid state {new_state:?}")));
        }
        if new_state == "open" && state.pulls.get(&n).is_some_and(|p| p.merged) {
            return Err(Reply::error(
                412,
                "a merged pull request cannot be reopened",
            ));
        }
        let open_blockers = state.issues[&n]
            .depends_on
            .iter()
            .any(|b| state.issues.get(b).is_some_and(|i| i.is_open()));
        if new_state == "closed" && open_blockers {
            return Err(Reply::error(
                412,
                "cannot close this issue because it still has open dependencies",
            ));
        }
        state.set_issue_state(n, new_state);
    }
    state.edit_text(n, req.str_field("title"), req.str_field("body"));
    Ok(Reply::json(201, state.issue_json(n)))
}

fn labels_of(state: &ForgeState, n: u64) -> Vec<Value> {
    state.issues[&n]
        .labels
        .iter()
        .filter_map(|name| state.label_by_name(name))
        .map(|l| state.label_json(l))
        .collect()
}

pub fn get_labels(state: &mut ForgeState, req: &Req) -> Handled {
    let n = existing_issue(state, req)?;
    Ok(Reply::json(200, Value::Array(labels_of(state, n))))
}

/// POST `{"labels": [...]}` with label ids (numbers) or names (strings); answers the
/// issue's full label list.
pub fn add_labels(state: &mut ForgeState, req: &Req) -> Handled {
    let n = existing_issue(state, req)?;
    let wanted: Vec<Value> = req
        .body
        .get("labels")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for item in wanted {
        let name = match &item {
            Value::Number(id) => state
                .labels
                .iter()
                .find(|l| Some(l.id) == id.as_u64())
                .map(|l| l.name.clone()),
            Value::String(name) => state.label_by_name(name).map(|l| l.name.clone()),
            _ => None,
        };
        match name {
            Some(name) => state.attach_label(n, &name),
            None => state.violation(
                ViolationKind::Suspicious,
                req.method,
                req.path,
                format!("label {item} does not exist; Forgejo silently ignores it"),
            ),
        }
    }
    Ok(Reply::json(200, Value::Array(labels_of(state, n))))
}

pub fn remove_label(state: &mut ForgeState, req: &Req) -> Handled {
    let n = existing_issue(state, req)?;
    let id = req
        .number("id")
        .map_err(|_| Reply::error(422, "label id is not a number"))?;
    let Some(name) = state
        .labels
        .iter()
        .find(|l| l.id == id)
        .map(|l| l.name.clone())
    else {
        return Err(Reply::error(422, format!("label {id} does not exist")));
    };
    let issue = state.issues.get_mut(&n).expect("issue exists");
    if issue.labels.contains(&name) {
        issue.labels.retain(|l| *l != name);
        issue.updated_at = Utc::now();
    }
    Ok(Reply::empty(204))
}

pub fn list_comments(state: &mut ForgeState, req: &Req) -> Handled {
    let n = existing_issue(state, req)?;
    let since = req.q("since").and_then(parse_time);
    let before = req.q("before").and_then(parse_time);
    let comments: Vec<_> = state
        .comments(n)
        .filter(|c| since.is_none_or(|t| c.created_at >= t))
        .filter(|c| before.is_none_or(|t| c.created_at <= t))
        .cloned()
        .collect();
    let json = comments.iter().map(|c| state.comment_json(c)).collect();
    Ok(Reply::json(200, Value::Array(json)))
}

pub fn create_comment(state: &mut ForgeState, req: &Req) -> Handled {
    let n = existing_issue(state, req)?;
    let body = req.str_field("body").unwrap_or_default();
    if body.is_empty() {
        return Err(Reply::error(422, "[Body]: Required"));
    }
    let bot = state.bot_login.clone();
    let id = state.new_comment(n, &bot, body);
    let comment = state.created_comment(id);
    Ok(Reply::json(201, state.comment_json(&comment)))
}

/// The issues that block issue `{index}`.
pub fn list_dependencies(state: &mut ForgeState, req: &Req) -> Handled {
    let n = existing_issue(state, req)?;
    let blockers: Vec<u64> = state.issues[&n]
        .depends_on
        .iter()
        .copied()
        .filter(|b| state.issues.contains_key(b))
        .collect();
    let json = blockers.into_iter().map(|b| state.issue_json(b)).collect();
    Ok(paginate(&state.base_url, req, json))
}
