//! The request path: every HTTP request enters [`serve`], which logs it, checks it
//! against the swagger, plays the fault injected into it (if any), authenticates it, and
//! dispatches it by swagger template to a handler in `issues.rs` or `pulls.rs`.

use chrono::Utc;
use serde_json::Value;

use super::behaviour::settle;
use super::log::{Fault, RequestRecord, ViolationKind};
use super::state::ForgeState;
use super::{issues, pulls};
use crate::fake_server::{
    self, Answer, Delivery, FaultLook, Incoming, Paging, apply_with_fault, judge, page_of,
    with_etag,
};
use crate::swagger::{self, Route};

pub use crate::fake_server::Reply;

/// Forgejo's paging: `limit` 30 when absent or 0, capped at 50 (`MAX_RESPONSE_ITEMS`).
const PAGING: Paging = Paging {
    size_param: "limit",
    default_size: 30,
    max_size: 50,
    link_separator: ",",
};

/// How Forgejo (behind its proxy) looks when a fault is played on it.
const FAULTS: FaultLook = FaultLook {
    status_message: |_| "injected fault",
    html_page: "<html><body><h1>502 Bad Gateway</h1></body></html>",
};

/// One routed request, as handlers see it.
pub type Req<'a> = fake_server::Req<'a>;

impl Req<'_> {
    /// The `{index}` (or another integer) path parameter; the swagger check has already
    /// flagged non-integers, which Forgejo answers with 404 here.
    pub fn number(&self, name: &str) -> Result<u64, Reply> {
        self.param(name).parse().map_err(|_| {
            Reply::error(
                404,
                format!("{name} {:?} is not a number", self.param(name)),
            )
        })
    }
}

/// Handles one request under the state lock; the caller wakes waiters afterwards and
/// plays the delivery. `fault` was taken for this request by the caller (a plain
/// `Delay` has already been waited out).
pub fn serve(state: &mut ForgeState, incoming: Incoming, fault: Option<&Fault>) -> Answer {
    let (method, path) = (incoming.method, incoming.path);
    let query = incoming.query();
    let auth = incoming.authorization();
    let authorized = auth.is_some_and(|a| {
        let a = a.trim();
        a.strip_prefix("token ")
            .or_else(|| a.strip_prefix("Bearer "))
            == Some(state.token.as_str())
    });
    let checked = swagger::forgejo().check(method, path, &query, incoming.body);
    let template = judge(state, &checked, method, path);

    let apply = || {
        if !authorized {
            let detail = if auth.is_some() {
                "wrong token"
            } else {
                "no Authorization header"
            };
            state.violation(ViolationKind::Unauthorized, method, path, detail);
            return Reply::error(401, "token is required");
        }
        match checked.route {
            Route::UnknownPath => Reply::error(404, "not found"),
            Route::MethodNotAllowed { .. } => Reply::error(405, "method not allowed"),
            Route::Matched { template, params } => {
                let req = Req::new(&incoming, params, query, ());
                settle(state);
                let reply = dispatch(state, &template, &req);
                settle(state);
                reply
            }
        }
    };
    let conditional = method == "GET" && template.as_deref().is_some_and(sends_etag);
    let (reply, delivery) = apply_with_fault(fault, &FAULTS, || {
        let reply = apply();
        if conditional {
            with_etag(reply, incoming.headers, false)
        } else {
            reply
        }
    });
    state.requests.push(RequestRecord {
        at: Utc::now(),
        authorized,
        template,
        status: if delivery == Delivery::Reset {
            0
        } else {
            reply.status
        },
        fault: fault.cloned(),
        ..incoming.record()
    });
    let base_url = &state.base_url;
    Answer {
        response: reply.into_response(|_, message| super::json::error(base_url, message)),
        delivery,
    }
}

/// The list endpoints every poll reads: the fake sends an `ETag` with them and
/// answers `304` to a matching `If-None-Match`, as a forge behind a caching
/// proxy would (Forgejo itself sends no `ETag` on its JSON API).
fn sends_etag(template: &str) -> bool {
    matches!(
        template,
        "/repos/{owner}/{repo}/issues" | "/repos/{owner}/{repo}/pulls"
    )
}

fn dispatch(state: &mut ForgeState, template: &str, req: &Req) -> Reply {
    if template.starts_with("/repos/{owner}/{repo}")
        && !(req.param("owner").eq_ignore_ascii_case(&state.owner)
            && req.param("repo").eq_ignore_ascii_case(&state.repo))
    {
        return Reply::error(404, "repository does not exist");
    }
    let result = match (
        req.method,
        template.trim_start_matches("/repos/{owner}/{repo}"),
    ) {
        ("GET", "/user") => {
            let bot = state.bot_login.clone();
            Ok(Reply::json(200, state.user_json(&bot)))
        }
        // Every login is a real account here; its rights come from the table.
        ("GET", "/collaborators/{collaborator}/permission") => {
            let login = req.param("collaborator").to_owned();
            Ok(Reply::json(200, state.permission_json(&login)))
        }
        ("GET", "/labels") => issues::list_labels(state, req),
        ("GET", "/hooks") => Ok(paginate(&state.base_url, req, state.hooks.clone())),
        ("POST", "/labels") => issues::create_label(state, req),
        ("GET", "/issues") => issues::list_issues(state, req),
        ("POST", "/issues") => issues::create_issue(state, req),
        ("GET", "/issues/{index}") => issues::get_issue(state, req),
        ("PATCH", "/issues/{index}") => issues::edit_issue(state, req),
        ("GET", "/issues/{index}/labels") => issues::get_labels(state, req),
        ("POST", "/issues/{index}/labels") => issues::add_labels(state, req),
        ("DELETE", "/issues/{index}/labels/{id}") => issues::remove_label(state, req),
        ("GET", "/issues/{index}/comments") => issues::list_comments(state, req),
        ("POST", "/issues/{index}/comments") => issues::create_comment(state, req),
        ("GET", "/issues/{index}/dependencies") => issues::list_dependencies(state, req),
        ("GET", "/pulls") => pulls::list_pulls(state, req),
        ("POST", "/pulls") => pulls::create_pull(state, req),
        ("GET", "/pulls/{index}") => pulls::get_pull(state, req),
        ("GET", "/pulls/{index}/reviews") => pulls::list_reviews(state, req),
        ("GET", "/pulls/{index}/reviews/{id}/comments") => pulls::review_comments(state, req),
        ("POST", "/pulls/{index}/merge") => pulls::merge(state, req),
        ("GET", "/commits/{ref}/status") => pulls::combined_status(state, req),
        ("GET", "/commits/{ref}/statuses") => pulls::list_statuses(state, req),
        ("POST", "/statuses/{sha}") => pulls::create_status(state, req),
        ("GET", "/branches/{branch}") => pulls::get_branch(state, req),
        ("DELETE", "/branches/{branch}") => pulls::delete_branch(state, req),
        _ => {
            state.violation(
                ViolationKind::Unimplemented,
                req.method,
                req.path,
                format!(
                    "{} {template} is real Forgejo API the fake does not serve",
                    req.method
                ),
            );
            Err(Reply::error(501, "not implemented by the fake forge"))
        }
    };
    result.unwrap_or_else(|reply| reply)
}

/// Cuts one page out of `items` as Forgejo does (`page` from 1, `limit` defaulting to 30
/// and capped at 50) and adds `X-Total-Count` and `Link` headers.
pub fn paginate(base_url: &str, req: &Req, items: Vec<Value>) -> Reply {
    let total = items.len();
    let (chunk, link) = page_of(&PAGING, base_url, req.path, &req.query, items);
    let reply =
        Reply::json(200, Value::Array(chunk)).with_header("x-total-count", total.to_string());
    match link {
        Some(link) => reply.with_header("link", link),
        None => reply,
    }
}
