//! Handlers for the account and the app (`/user`, `/app`, installation tokens), the
//! repository, collaborators, labels, issues (whose list includes pull requests, as on
//! GitHub), issue labels, comments and issue dependencies.
//!
//! Where GitHub is lenient in ways that hide client bugs (a label added by a name that
//! does not exist is created with a default colour), the fake answers like GitHub but
//! records a `Suspicious` violation so the test notices.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::json::ISSUE_ID_BASE;
use super::paging::paginate;
use super::routes::{Reply, Req};
use super::state::GithubState;
use crate::fake_forge::ViolationKind;

type Handled = Result<Reply, Reply>;

/// Colour of labels created without one.
pub use crate::fake_server::DEFAULT_LABEL_COLOR as DEFAULT_COLOR;

fn not_found() -> Reply {
    Reply::error(404, "Not Found")
}

fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

pub fn get_user(state: &mut GithubState, req: &Req) -> Handled {
    if matches!(req.caller.actor, super::auth::Actor::Installation(_)) {
        state.forge.violation(
            ViolationKind::Suspicious,
            req.method,
            req.path,
            "GET /user with an installation token: GitHub answers 403; an app learns its login from GET /app",
        );
        return Err(Reply::error(403, "Resource not accessible by integration"));
    }
    let login = req.caller.login.clone();
    Ok(Reply::json(200, state.private_user_json(&login)))
}

pub fn get_app(state: &mut GithubState, _req: &Req) -> Handled {
    let slug = state
        .app
        .as_ref()
        .map(|a| a.slug.clone())
        .ok_or_else(not_found)?;
    Ok(Reply::json(200, state.app_json(&slug)))
}

/// `POST /app/installations/{installation_id}/access_tokens`, with the app's JWT.
pub fn create_installation_token(state: &mut GithubState, req: &Req) -> Handled {
    let app = state.app.clone().ok_or_else(not_found)?;
    if req.number("installation_id")? != app.installation_id {
        return Err(not_found());
    }
    let token = state.issue_token(app.token_lifetime);
    Ok(Reply::json(
        201,
        json!({
            "token": token.token,
            "expires_at": super::json::time(token.expires_at),
            "permissions": {"issues": "write", "pull_requests": "write", "contents": "write", "checks": "read", "statuses": "read", "actions": "write", "metadata": "read"},
            "repository_selection": "selected",
        }),
    ))
}

/// Every login is a real account here; its role comes from the permission table.
pub fn permission(state: &mut GithubState, req: &Req) -> Handled {
    let login = req.param("username").to_owned();
    Ok(Reply::json(200, state.permission_json(&login)))
}

pub fn is_collaborator(state: &mut GithubState, req: &Req) -> Handled {
    let login = req.param("username");
    match state.forge.permissions.get(login).map(String::as_str) {
        Some("none") | None => Err(Reply::empty(404)),
        Some(_) => Ok(Reply::empty(204)),
    }
}

pub fn list_labels(state: &mut GithubState, req: &Req) -> Handled {
    let labels: Vec<Value> = state
        .forge
        .labels
        .iter()
        .map(|l| state.label_json(l))
        .collect();
    Ok(paginate(state, req, labels))
}

pub fn create_label(state: &mut GithubState, req: &Req) -> Handled {
    let name = req.str_field("name").unwrap_or_default().to_owned();
    if name.is_empty() {
        return Err(Reply::invalid("Label", "name", "missing_field", None));
    }
    if state
        .forge
        .labels
        .iter()
        .any(|l| l.name.eq_ignore_ascii_case(&name))
    {
        return Err(Reply::invalid("Label", "name", "already_exists", None));
    }
    // GitHub takes the colour without `#`; with one it strips it.
    let color = req
        .str_field("color")
        .unwrap_or(DEFAULT_COLOR)
        .trim_start_matches('#')
        .to_owned();
    if color.len() != 6 || !color.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(Reply::invalid("Label", "color", "invalid", None));
    }
    let description = req.str_field("description").unwrap_or_default().to_owned();
    let id = state.forge.new_label(&name, &color, &description);
    let label = state.forge.created_label(id);
    Ok(Reply::json(201, state.label_json(&label)))
}

pub fn get_label(state: &mut GithubState, req: &Req) -> Handled {
    let label = state
        .forge
        .labels
        .iter()
        .find(|l| l.name.eq_ignore_ascii_case(req.param("name")))
        .cloned()
        .ok_or_else(not_found)?;
    Ok(Reply::json(200, state.label_json(&label)))
}

/// `GET /issues`: issues *and pull requests*, `state`, `labels` (all of them),
/// `creator`, `since` (updated at or after), `sort` and `direction`.
pub fn list_issues(state: &mut GithubState, req: &Req) -> Handled {
    let wanted = req.q("state").unwrap_or("open");
    let labels: Vec<&str> = req
        .q("labels")
        .map(|l| {
            l.split(',')
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .collect()
        })
        .unwrap_or_default();
    let since = req.q("since").and_then(parse_time);
    let mut issues: Vec<_> = state
        .forge
        .issues()
        .filter(|i| wanted == "all" || i.state == wanted)
        .filter(|i| {
            labels
                .iter()
                .all(|l| i.labels.iter().any(|have| have.eq_ignore_ascii_case(l)))
        })
        .filter(|i| {
            req.q("creator")
                .is_none_or(|c| c.eq_ignore_ascii_case(&i.user))
        })
        .filter(|i| since.is_none_or(|t| i.updated_at >= t))
        .map(|i| {
            (
                i.number,
                i.created_at,
                i.updated_at,
                state.forge.comments(i.number).count(),
            )
        })
        .collect();
    match req.q("sort").unwrap_or("created") {
        "updated" => issues.sort_by_key(|(n, _, updated, _)| (*updated, *n)),
        "comments" => issues.sort_by_key(|(n, _, _, comments)| (*comments, *n)),
        _ => issues.sort_by_key(|(n, created, _, _)| (*created, *n)),
    }
    if req.q("direction").unwrap_or("desc") == "desc" {
        issues.reverse();
    }
    let json = issues
        .into_iter()
        .map(|(n, _, _, _)| state.issue_json(n))
        .collect();
    Ok(paginate(state, req, json))
}

/// Label names from a request's `labels` (strings or `{"name": …}` objects), creating
/// the ones that do not exist as GitHub does, flagged as suspicious.
fn label_names(state: &mut GithubState, req: &Req, items: &[Value]) -> Vec<String> {
    let mut names = Vec::new();
    for item in items {
        let name = match item {
            Value::String(s) => s.clone(),
            Value::Object(o) => o
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            _ => continue,
        };
        let existing = state
            .forge
            .labels
            .iter()
            .find(|l| l.name.eq_ignore_ascii_case(&name))
            .map(|l| l.name.clone());
        let name = match existing {
            Some(n) => n,
            None => {
                state.forge.violation(
                    ViolationKind::Suspicious,
                    req.method,
                    req.path,
                    format!("label {name:?} did not exist; GitHub creates it with colour {DEFAULT_COLOR}"),
                );
                state.forge.new_label(&name, DEFAULT_COLOR, "");
                name
            }
        };
        names.push(name);
    }
    names
}

pub fn create_issue(state: &mut GithubState, req: &Req) -> Handled {
    let title = req.str_field("title").unwrap_or_default().to_owned();
    if title.trim().is_empty() {
        return Err(Reply::invalid("Issue", "title", "missing_field", None));
    }
    let n = state.forge.new_issue(
        &title,
        req.str_field("body").unwrap_or_default(),
        &req.caller.login,
        false,
    );
    let items = req
        .body
        .get("labels")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for name in label_names(state, req, &items) {
        state.forge.attach_label(n, &name);
    }
    Ok(Reply::json(201, state.issue_json(n)))
}

/// The issue number of the request, which must exist.
fn existing_issue(state: &GithubState, req: &Req) -> Result<u64, Reply> {
    let n = req.number("issue_number")?;
    state.forge.try_issue(n).map(|_| n).ok_or_else(not_found)
}

pub fn get_issue(state: &mut GithubState, req: &Req) -> Handled {
    let n = existing_issue(state, req)?;
    Ok(Reply::json(200, state.issue_json(n)))
}

/// PATCH: `state` (and `state_reason`), `title`, `body`, `labels` (replacing them).
pub fn edit_issue(state: &mut GithubState, req: &Req) -> Handled {
    let n = existing_issue(state, req)?;
    if let Some(new_state) = req.str_field("state") {
        if new_state == "open" && state.forge.pulls.get(&n).is_some_and(|p| p.merged) {
            return Err(Reply::invalid(
                "Issue",
                "state",
                "invalid",
                Some("A merged pull request cannot be reopened"),
            ));
        }
        state.forge.set_issue_state(n, new_state);
    }
    if let Some(items) = req.body.get("labels").and_then(Value::as_array).cloned() {
        let names = label_names(state, req, &items);
        state
            .forge
            .issues
            .get_mut(&n)
            .expect("issue exists")
            .labels
            .clear();
        for name in names {
            state.forge.attach_label(n, &name);
        }
    }
    state
        .forge
        .edit_text(n, req.str_field("title"), req.str_field("body"));
    Ok(Reply::json(200, state.issue_json(n)))
}

pub fn get_labels(state: &mut GithubState, req: &Req) -> Handled {
    let n = existing_issue(state, req)?;
    let labels = state.issue_labels_json(n);
    Ok(paginate(state, req, labels))
}

/// POST adds, PUT replaces; the body is `{"labels": [...]}`, a bare array, or a string.
pub fn add_labels(state: &mut GithubState, req: &Req, replace: bool) -> Handled {
    let n = existing_issue(state, req)?;
    let items: Vec<Value> = match &req.body {
        Value::Array(items) => items.clone(),
        Value::String(s) => vec![json!(s)],
        body => body
            .get("labels")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default(),
    };
    let names = label_names(state, req, &items);
    if replace {
        state
            .forge
            .issues
            .get_mut(&n)
            .expect("issue exists")
            .labels
            .clear();
    }
    for name in names {
        state.forge.attach_label(n, &name);
    }
    Ok(Reply::json(200, Value::Array(state.issue_labels_json(n))))
}

pub fn clear_labels(state: &mut GithubState, req: &Req) -> Handled {
    let n = existing_issue(state, req)?;
    let issue = state.forge.issues.get_mut(&n).expect("issue exists");
    issue.labels.clear();
    issue.updated_at = Utc::now();
    Ok(Reply::empty(204))
}

/// `DELETE …/labels/{name}`: 404 when the issue does not have it; otherwise the labels left.
pub fn remove_label(state: &mut GithubState, req: &Req) -> Handled {
    let n = existing_issue(state, req)?;
    let name = req.param("name");
    let issue = state.forge.issues.get_mut(&n).expect("issue exists");
    let before = issue.labels.len();
    issue.labels.retain(|l| !l.eq_ignore_ascii_case(name));
    if issue.labels.len() == before {
        return Err(Reply::error(404, "Label does not exist"));
    }
    issue.updated_at = Utc::now();
    Ok(Reply::json(200, Value::Array(state.issue_labels_json(n))))
}

pub fn list_comments(state: &mut GithubState, req: &Req) -> Handled {
    let n = existing_issue(state, req)?;
    let since = req.q("since").and_then(parse_time);
    let comments: Vec<_> = state
        .forge
        .comments(n)
        .filter(|c| since.is_none_or(|t| c.created_at >= t))
        .cloned()
        .collect();
    let json = comments.iter().map(|c| state.comment_json(c)).collect();
    Ok(paginate(state, req, json))
}

/// `GET /issues/comments`: every comment of the repository (`since`, `sort`, `direction`).
pub fn list_repo_comments(state: &mut GithubState, req: &Req) -> Handled {
    let since = req.q("since").and_then(parse_time);
    let mut comments: Vec<_> = state
        .forge
        .comments
        .iter()
        .filter(|c| since.is_none_or(|t| c.created_at >= t))
        .cloned()
        .collect();
    if req.q("direction") == Some("desc") {
        comments.reverse();
    }
    let json = comments.iter().map(|c| state.comment_json(c)).collect();
    Ok(paginate(state, req, json))
}

pub fn create_comment(state: &mut GithubState, req: &Req) -> Handled {
    let n = existing_issue(state, req)?;
    let body = req.str_field("body").unwrap_or_default();
    if body.is_empty() {
        return Err(Reply::invalid(
            "IssueComment",
            "body",
            "missing_field",
            None,
        ));
    }
    let id = state.forge.new_comment(n, &req.caller.login, body);
    let comment = state.forge.created_comment(id);
    Ok(Reply::json(201, state.comment_json(&comment)))
}

fn existing_comment(state: &GithubState, req: &Req) -> Result<usize, Reply> {
    let id = req.number("comment_id")?;
    state
        .forge
        .comments
        .iter()
        .position(|c| c.id == id)
        .ok_or_else(not_found)
}

pub fn get_comment(state: &mut GithubState, req: &Req) -> Handled {
    let i = existing_comment(state, req)?;
    let comment = state.forge.comments[i].clone();
    Ok(Reply::json(200, state.comment_json(&comment)))
}

pub fn edit_comment(state: &mut GithubState, req: &Req) -> Handled {
    let i = existing_comment(state, req)?;
    state.forge.comments[i].body = req.str_field("body").unwrap_or_default().to_owned();
    let comment = state.forge.comments[i].clone();
    Ok(Reply::json(200, state.comment_json(&comment)))
}

pub fn delete_comment(state: &mut GithubState, req: &Req) -> Handled {
    let i = existing_comment(state, req)?;
    state.forge.comments.remove(i);
    Ok(Reply::empty(204))
}

/// The issues blocking `{issue_number}`.
pub fn blocked_by(state: &mut GithubState, req: &Req) -> Handled {
    let n = existing_issue(state, req)?;
    let blockers: Vec<u64> = state
        .forge
        .issue(n)
        .depends_on
        .iter()
        .copied()
        .filter(|b| state.forge.try_issue(*b).is_some())
        .collect();
    let json = blockers.into_iter().map(|b| state.issue_json(b)).collect();
    Ok(paginate(state, req, json))
}

/// The issues `{issue_number}` blocks.
pub fn blocking(state: &mut GithubState, req: &Req) -> Handled {
    let n = existing_issue(state, req)?;
    let blocked: Vec<u64> = state
        .forge
        .issues()
        .filter(|i| i.depends_on.contains(&n))
        .map(|i| i.number)
        .collect();
    let json = blocked.into_iter().map(|b| state.issue_json(b)).collect();
    Ok(paginate(state, req, json))
}

/// The issue number behind an issue *id* (GitHub's dependency API takes ids).
fn number_of_id(state: &GithubState, id: u64) -> Option<u64> {
    id.checked_sub(ISSUE_ID_BASE)
        .filter(|n| state.forge.try_issue(*n).is_some())
}

/// POST `{"issue_id": <id of the blocking issue>}`.
pub fn add_blocker(state: &mut GithubState, req: &Req) -> Handled {
    let n = existing_issue(state, req)?;
    let id = req
        .body
        .get("issue_id")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    let Some(blocker) = number_of_id(state, id) else {
        if state.forge.try_issue(id).is_some() {
            state.forge.violation(
                ViolationKind::Suspicious,
                req.method,
                req.path,
                format!(
                    "issue_id {id} is an issue number; the dependency API takes the issue's id"
                ),
            );
        }
        return Err(Reply::invalid(
            "IssueDependency",
            "issue_id",
            "invalid",
            None,
        ));
    };
    let issue = state.forge.issues.get_mut(&n).expect("issue exists");
    if !issue.depends_on.contains(&blocker) {
        issue.depends_on.push(blocker);
    }
    Ok(Reply::json(201, state.issue_json(blocker)))
}

pub fn remove_blocker(state: &mut GithubState, req: &Req) -> Handled {
    let n = existing_issue(state, req)?;
    let id = req.number("issue_id")?;
    let blocker = number_of_id(state, id).ok_or_else(not_found)?;
    let issue = state.forge.issues.get_mut(&n).expect("issue exists");
    if !issue.depends_on.contains(&blocker) {
        return Err(not_found());
    }
    issue.depends_on.retain(|b| *b != blocker);
    Ok(Reply::json(200, state.issue_json(blocker)))
}
