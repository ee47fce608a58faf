//! The request path: every HTTP request enters [`serve`], which checks it against GitHub's
//! OpenAPI description (refusing it, recorded as a violation, if the description does not
//! allow it), plays the fault injected into it, authenticates it, applies the rate limit,
//! dispatches it by template to a handler in `issues.rs`, `pulls.rs` or `checks.rs`,
//! answers `304` to a matching `If-None-Match`, adds the rate-limit headers every GitHub
//! answer carries, checks the answer against the description, and logs it.
//!
//! Pagination (`per_page`, `page`, `Link`) is in `paging.rs`. The only path outside
//! the API is `/_blobs/…`, where the logs redirect points (GitHub sends clients to its
//! blob storage, another host that needs no token).

use axum::http::header;
use chrono::Utc;
use serde_json::{Value, json};

use super::auth::{self, Actor};
use super::behaviour::settle;
use super::state::GithubState;
use super::{checks, issues, pulls};
use crate::fake_forge::{Fault, RequestRecord, ViolationKind};
use crate::fake_server::{
    self, Answer, Delivery, FaultLook, Incoming, apply_with_fault, judge, with_etag,
};
use crate::openapi::{self, Route};

pub use crate::fake_server::Reply;

/// Where job logs are served from, outside the API.
pub const BLOB_PREFIX: &str = "/_blobs/job-logs/";
const DOCS: &str = "https://docs.github.com/rest";

/// How GitHub looks when a fault is played on it: a 403 or 429 is its secondary rate
/// limit, an HTML page its unicorn.
const FAULTS: FaultLook = FaultLook {
    status_message: |status| {
        if matches!(status, 403 | 429) {
            "You have exceeded a secondary rate limit. Please wait a few minutes before you try again. If you reach out to GitHub Support for help, please include the request ID."
        } else {
            "Server Error"
        }
    },
    html_page: "<html><body><h1>Unicorn!</h1><p>This page is taking too long to load.</p></body></html>",
};

/// GitHub's error body: `{"message", "documentation_url", "status"}`.
fn error_body(status: u16, message: &str) -> Value {
    json!({"message": message, "documentation_url": DOCS, "status": status.to_string()})
}

impl Reply {
    /// A 422 `Validation Failed` with one error entry, as GitHub lists what was wrong.
    pub fn invalid(resource: &str, field: &str, code: &str, message: Option<&str>) -> Self {
        let mut error = json!({"resource": resource, "field": field, "code": code});
        if let Some(m) = message {
            error["message"] = json!(m);
        }
        Self::json(
            422,
            json!({"message": "Validation Failed", "errors": [error], "documentation_url": DOCS, "status": "422"}),
        )
    }
}

/// Who an authenticated request comes from.
#[derive(Debug)]
pub struct Caller {
    pub actor: Actor,
    /// The login the request acts as (the token's user, or the app's bot).
    pub login: String,
}

/// One routed, authenticated request, as handlers see it.
pub type Req<'a> = fake_server::Req<'a, Caller>;

impl Req<'_> {
    /// An integer path parameter; the OpenAPI check has already flagged non-integers,
    /// which GitHub answers with 404.
    pub fn number(&self, name: &str) -> Result<u64, Reply> {
        self.param(name)
            .parse()
            .map_err(|_| Reply::error(404, "Not Found"))
    }
}

/// Handles one request under the state lock; the caller wakes waiters afterwards and
/// plays the delivery. `fault` was taken for this request by the caller (a plain
/// `Delay` has already been waited out).
pub fn serve(state: &mut GithubState, incoming: Incoming, fault: Option<&Fault>) -> Answer {
    let (method, path, headers, body) = (
        incoming.method,
        incoming.path,
        incoming.headers,
        incoming.body,
    );
    let query = incoming.query();
    let authorization = incoming.authorization();
    if let Some(job) = path.strip_prefix(BLOB_PREFIX) {
        let reply = checks::serve_log(state, job, &query);
        return finish(state, &incoming.record(), reply, Delivery::Now, false);
    }
    let api_path = if state.api_prefix.is_empty() {
        Some(path)
    } else {
        path.strip_prefix(state.api_prefix.as_str())
            .filter(|rest| rest.starts_with('/'))
    };
    let checked = match api_path {
        Some(p) => openapi::github().check(method, p, &query, body),
        None => openapi::Checked {
            route: Route::UnknownPath,
            problems: vec![format!(
                "{path} is outside the API prefix {}",
                state.api_prefix
            )],
        },
    };
    let template = judge(&mut state.forge, &checked, method, path);
    let refused = !checked.problems.is_empty();
    let mut authorized = false;

    let user_agent = headers.get(header::USER_AGENT).is_some();
    let mut apply = |state: &mut GithubState| -> Reply {
        // GitHub turns away requests without a User-Agent before looking at anything else,
        // and an HTTP client library sends none unless told to.
        if !user_agent {
            state.forge.violation(
                ViolationKind::MissingHeader,
                method,
                path,
                "no User-Agent header: GitHub refuses the request with 403",
            );
            return Reply::error(
                403,
                "Request forbidden by administrative rules. Please make sure your request has a User-Agent header",
            );
        }
        let actor = match auth::authenticate(state, authorization) {
            Ok(actor) => actor,
            Err(refusal) => {
                state
                    .forge
                    .violation(ViolationKind::Unauthorized, method, path, refusal.detail);
                return Reply::error(401, refusal.message);
            }
        };
        let Route::Matched { template, params } = checked.route.clone() else {
            return Reply::error(404, "Not Found");
        };
        // What the description refuses, GitHub would not do: the request is not applied.
        if refused {
            return Reply::error(
                422,
                "the request does not fit GitHub's API description (see the fake's violations)",
            );
        }
        let app_only = template.starts_with("/app");
        if app_only != (actor == Actor::App) {
            let detail = if app_only {
                "the /app endpoints take the app's JWT"
            } else {
                "an app JWT only authenticates /app and installation tokens"
            };
            state
                .forge
                .violation(ViolationKind::Unauthorized, method, path, detail);
            return Reply::error(401, "A JSON web token could not be decoded");
        }
        authorized = true;
        let now = Utc::now();
        state.rate.roll(now);
        let free = template == "/rate_limit";
        if state.rate.remaining == 0 && !free {
            return Reply::error(
                403,
                "API rate limit exceeded for user ID 1. If you reach out to GitHub Support for help, please include the request ID.",
            );
        }
        let login = actor.login(state);
        let req = Req::new(&incoming, params, query.clone(), Caller { actor, login });
        settle(state);
        let reply = dispatch(state, &template, &req);
        settle(state);
        if (200..300).contains(&reply.status) || reply.status == 302 {
            let value = reply.json_body().cloned().unwrap_or(Value::Null);
            for problem in openapi::github().check_response(method, &template, reply.status, &value)
            {
                state
                    .shape_problems
                    .push(format!("{method} {path} -> {}: {problem}", reply.status));
            }
        }
        let reply = if method == "GET" {
            with_etag(reply, headers, true)
        } else {
            reply
        };
        // A 304 costs no quota, and neither does asking for the quota.
        if reply.status != 304 && !free {
            state.rate.remaining = state.rate.remaining.saturating_sub(1);
            state.rate.used += 1;
        }
        reply
    };
    let (reply, delivery) = apply_with_fault(fault, &FAULTS, || apply(state));
    let mut record = incoming.record();
    record.authorized = authorized;
    record.template = template;
    record.fault = fault.cloned();
    finish(state, &record, reply, delivery, true)
}

/// Adds the rate-limit headers, logs the request and builds the response.
fn finish(
    state: &mut GithubState,
    record: &RequestRecord,
    reply: Reply,
    delivery: Delivery,
    api: bool,
) -> Answer {
    let reply = if api {
        let rate = &state.rate;
        reply
            .with_header("x-ratelimit-limit", rate.limit.to_string())
            .with_header("x-ratelimit-remaining", rate.remaining.to_string())
            .with_header("x-ratelimit-reset", rate.reset.timestamp().to_string())
            .with_header("x-ratelimit-used", rate.used.to_string())
            .with_header("x-ratelimit-resource", "core")
    } else {
        reply
    };
    let mut record = record.clone();
    record.at = Utc::now();
    record.status = if delivery == Delivery::Reset {
        0
    } else {
        reply.status
    };
    state.forge.requests.push(record);
    Answer {
        response: reply.into_response(error_body),
        delivery,
    }
}

fn dispatch(state: &mut GithubState, template: &str, req: &Req) -> Reply {
    if template.starts_with("/repos/{owner}/{repo}")
        && !(req.param("owner").eq_ignore_ascii_case(&state.forge.owner)
            && req.param("repo").eq_ignore_ascii_case(&state.forge.repo))
    {
        return Reply::error(404, "Not Found");
    }
    let route = template.trim_start_matches("/repos/{owner}/{repo}");
    let handled = match (req.method, route) {
        ("GET", "/user") => issues::get_user(state, req),
        ("GET", "/rate_limit") => Ok(Reply::json(200, state.rate_limit_json())),
        ("GET", "/app") => issues::get_app(state, req),
        ("POST", "/app/installations/{installation_id}/access_tokens") => {
            issues::create_installation_token(state, req)
        }
        ("GET", "") => Ok(Reply::json(200, state.full_repo_json())),
        ("GET", "/collaborators/{username}/permission") => issues::permission(state, req),
        ("GET", "/collaborators/{username}") => issues::is_collaborator(state, req),
        ("GET", "/labels") => issues::list_labels(state, req),
        ("GET", "/hooks") => super::hooks::list_hooks(state, req),
        ("GET", "/hooks/{hook_id}/deliveries") => super::hooks::list_deliveries(state, req),
        ("POST", "/labels") => issues::create_label(state, req),
        ("GET", "/labels/{name}") => issues::get_label(state, req),
        ("GET", "/issues") => issues::list_issues(state, req),
        ("POST", "/issues") => issues::create_issue(state, req),
        ("GET", "/issues/{issue_number}") => issues::get_issue(state, req),
        ("PATCH", "/issues/{issue_number}") => issues::edit_issue(state, req),
        ("GET", "/issues/{issue_number}/labels") => issues::get_labels(state, req),
        ("POST", "/issues/{issue_number}/labels") => issues::add_labels(state, req, false),
        ("PUT", "/issues/{issue_number}/labels") => issues::add_labels(state, req, true),
        ("DELETE", "/issues/{issue_number}/labels") => issues::clear_labels(state, req),
        ("DELETE", "/issues/{issue_number}/labels/{name}") => issues::remove_label(state, req),
        ("GET", "/issues/{issue_number}/comments") => issues::list_comments(state, req),
        ("POST", "/issues/{issue_number}/comments") => issues::create_comment(state, req),
        ("GET", "/issues/comments") => issues::list_repo_comments(state, req),
        ("GET", "/issues/comments/{comment_id}") => issues::get_comment(state, req),
        ("PATCH", "/issues/comments/{comment_id}") => issues::edit_comment(state, req),
        ("DELETE", "/issues/comments/{comment_id}") => issues::delete_comment(state, req),
        ("GET", "/issues/{issue_number}/dependencies/blocked_by") => issues::blocked_by(state, req),
        ("POST", "/issues/{issue_number}/dependencies/blocked_by") => {
            issues::add_blocker(state, req)
        }
        ("DELETE", "/issues/{issue_number}/dependencies/blocked_by/{issue_id}") => {
            issues::remove_blocker(state, req)
        }
        ("GET", "/issues/{issue_number}/dependencies/blocking") => issues::blocking(state, req),
        ("GET", "/pulls") => pulls::list_pulls(state, req),
        ("POST", "/pulls") => pulls::create_pull(state, req),
        ("GET", "/pulls/{pull_number}") => pulls::get_pull(state, req),
        ("PATCH", "/pulls/{pull_number}") => pulls::edit_pull(state, req),
        ("GET", "/pulls/{pull_number}/reviews") => pulls::list_reviews(state, req),
        ("GET", "/pulls/{pull_number}/reviews/{review_id}/comments") => {
            pulls::review_comments(state, req)
        }
        ("GET", "/pulls/{pull_number}/comments") => pulls::pull_comments(state, req),
        ("PUT", "/pulls/{pull_number}/merge") => pulls::merge(state, req),
        ("GET", "/pulls/{pull_number}/merge") => pulls::is_merged(state, req),
        ("GET", "/branches/{branch}") => pulls::get_branch(state, req),
        ("GET", "/git/ref/{ref}") => pulls::get_ref(state, req),
        ("POST", "/git/refs") => pulls::create_ref(state, req),
        ("PATCH", "/git/refs/{ref}") => pulls::update_ref(state, req),
        ("DELETE", "/git/refs/{ref}") => pulls::delete_ref(state, req),
        ("POST", "/statuses/{sha}") => checks::create_status(state, req),
        ("GET", "/commits/{ref}/status") => checks::combined_status(state, req),
        ("GET", "/commits/{ref}/statuses") => checks::list_statuses(state, req),
        ("GET", "/commits/{ref}/check-runs") => checks::list_check_runs(state, req),
        ("GET", "/commits/{ref}/check-suites") => checks::list_check_suites(state, req),
        ("GET", "/check-runs/{check_run_id}") => checks::get_check_run(state, req),
        ("GET", "/check-suites/{check_suite_id}") => checks::get_check_suite(state, req),
        ("GET", "/check-suites/{check_suite_id}/check-runs") => {
            checks::suite_check_runs(state, req)
        }
        ("GET", "/actions/runs") => checks::list_runs(state, req),
        ("GET", "/actions/runs/{run_id}") => checks::get_run(state, req),
        ("GET", "/actions/runs/{run_id}/jobs") => checks::list_jobs(state, req),
        ("POST", "/actions/runs/{run_id}/rerun") => checks::rerun(state, req, false),
        ("POST", "/actions/runs/{run_id}/rerun-failed-jobs") => checks::rerun(state, req, true),
        ("GET", "/actions/jobs/{job_id}") => checks::get_job(state, req),
        ("POST", "/actions/jobs/{job_id}/rerun") => checks::rerun_job(state, req),
        ("GET", "/actions/jobs/{job_id}/logs") => checks::job_logs(state, req),
        _ => {
            state.forge.violation(
                ViolationKind::Unimplemented,
                req.method,
                req.path,
                format!(
                    "{} {template} is real GitHub API the fake does not serve",
                    req.method
                ),
            );
            Err(Reply::error(501, "not implemented by the fake GitHub"))
        }
    };
    handled.unwrap_or_else(|reply| reply)
}
