//! The request path: every HTTP request enters [`serve`], which logs it, checks it
//! against the swagger, plays the fault injected into it (if any), authenticates it, and
//! dispatches it by swagger template to a handler in `issues.rs` or `pulls.rs`.

use std::collections::HashMap;
use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde_json::Value;

use super::behaviour::settle;
use super::log::{Fault, RequestRecord, ViolationKind};
use super::state::ForgeState;
use super::{issues, pulls};
use crate::swagger::{self, Route, parse_query};

/// Forgejo's page size when `limit` is absent or 0, and its cap (`MAX_RESPONSE_ITEMS`).
const DEFAULT_LIMIT: usize = 30;
const MAX_LIMIT: usize = 50;

/// What a handler answers, turned into an HTTP response by [`Reply::into_response`].
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    body: ReplyBody,
    headers: Vec<(&'static str, String)>,
}

#[derive(Debug)]
enum ReplyBody {
    Json(Value),
    /// Forgejo's APIError with this message.
    Error(String),
    Html(String),
    Empty,
}

impl Reply {
    pub fn json(status: u16, value: Value) -> Self {
        Self {
            status,
            body: ReplyBody::Json(value),
            headers: Vec::new(),
        }
    }

    pub fn error(status: u16, message: impl Into<String>) -> Self {
        Self {
            status,
            body: ReplyBody::Error(message.into()),
            headers: Vec::new(),
        }
    }

    pub fn empty(status: u16) -> Self {
        Self {
            status,
            body: ReplyBody::Empty,
            headers: Vec::new(),
        }
    }

    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    fn into_response(self, base_url: &str) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = match self.body {
            ReplyBody::Json(v) => (status, axum::Json(v)).into_response(),
            ReplyBody::Error(m) => {
                (status, axum::Json(super::json::error(base_url, &m))).into_response()
            }
            ReplyBody::Html(h) => (
                status,
                [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
                h,
            )
                .into_response(),
            ReplyBody::Empty => status.into_response(),
        };
        for (name, value) in self.headers {
            if let Ok(value) = HeaderValue::from_str(&value) {
                response.headers_mut().insert(name, value);
            }
        }
        response
    }
}

/// One routed request, as handlers see it.
#[derive(Debug)]
pub struct Req<'a> {
    pub method: &'a str,
    /// Raw request path (for pagination links).
    pub path: &'a str,
    /// Percent-decoded path parameters by swagger name.
    pub params: HashMap<String, String>,
    pub query: Vec<(String, String)>,
    /// The JSON body, `Null` when absent or not JSON.
    pub body: Value,
}

impl Req<'_> {
    pub fn param(&self, name: &str) -> &str {
        self.params.get(name).map_or("", String::as_str)
    }

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

    /// The first value of a query parameter.
    pub fn q(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of a repeated query parameter (`labels=1&labels=2`).
    pub fn q_all(&self, name: &str) -> Vec<&str> {
        self.query
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    pub fn str_field(&self, name: &str) -> Option<&str> {
        self.body.get(name).and_then(Value::as_str)
    }
}

/// How an answer reaches the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    Now,
    /// After this long (the state lock released meanwhile).
    After(Duration),
    /// Not at all: the connection is cut.
    Reset,
}

/// A handled request: the response and how to deliver it.
pub struct Answer {
    pub response: Response,
    pub delivery: Delivery,
}

/// Handles one request under the state lock; the caller wakes waiters afterwards and
/// plays the delivery. `fault` was taken for this request by the caller (a plain
/// `Delay` has already been waited out).
#[allow(clippy::too_many_arguments)]
pub fn serve(
    state: &mut ForgeState,
    token: &str,
    method: &str,
    path: &str,
    raw_query: &str,
    headers: &HeaderMap,
    body: &[u8],
    fault: Option<&Fault>,
    received: chrono::DateTime<Utc>,
) -> Answer {
    let query = parse_query(raw_query);
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let authorized = auth.is_some_and(|a| {
        let a = a.trim();
        a.strip_prefix("token ")
            .or_else(|| a.strip_prefix("Bearer "))
            == Some(token)
    });
    let checked = swagger::forgejo().check(method, path, &query, body);
    let kind = match checked.route {
        Route::Matched { .. } => ViolationKind::NotInSwagger,
        Route::MethodNotAllowed { .. } => ViolationKind::MethodNotAllowed,
        Route::UnknownPath => ViolationKind::UnknownPath,
    };
    for problem in &checked.problems {
        state.violation(kind, method, path, problem.clone());
    }
    let template = match &checked.route {
        Route::Matched { template, .. } | Route::MethodNotAllowed { template } => {
            Some(template.clone())
        }
        Route::UnknownPath => None,
    };

    // Injected failures are played after the contract check, so a faulty request is
    // still judged; only `AfterApply` lets the request change the state first.
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
                let req = Req {
                    method,
                    path,
                    params,
                    query,
                    body: serde_json::from_slice(body).unwrap_or(Value::Null),
                };
                settle(state);
                let reply = dispatch(state, &template, &req);
                settle(state);
                reply
            }
        }
    };
    let conditional = method == "GET" && template.as_deref().is_some_and(sends_etag);
    let apply = || {
        let reply = apply();
        if conditional {
            with_etag(reply, headers)
        } else {
            reply
        }
    };
    let (reply, delivery) = match fault {
        None | Some(Fault::Delay(_)) => (apply(), Delivery::Now),
        Some(Fault::AfterApply(inner)) => {
            let real = apply();
            play(inner, Some(real))
        }
        Some(other) => play(other, None),
    };
    state.requests.push(RequestRecord {
        at: Utc::now(),
        received,
        method: method.to_owned(),
        path: path.to_owned(),
        query: raw_query.to_owned(),
        body: String::from_utf8_lossy(body).into_owned(),
        token_present: auth.is_some(),
        authorized,
        template,
        status: if delivery == Delivery::Reset {
            0
        } else {
            reply.status
        },
        fault: fault.cloned(),
    });
    Answer {
        response: reply.into_response(&state.base_url),
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

/// A 200 list answer tagged with a hash of everything it says; `304` without a
/// body when the client already holds that tag.
fn with_etag(reply: Reply, request: &HeaderMap) -> Reply {
    use std::hash::{Hash, Hasher};
    let ReplyBody::Json(value) = &reply.body else {
        return reply;
    };
    if reply.status != 200 {
        return reply;
    }
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    value.to_string().hash(&mut hasher);
    reply.headers.hash(&mut hasher);
    let etag = format!("\"{:016x}\"", hasher.finish());
    let held = request
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
    if held {
        Reply::empty(304).with_header("etag", etag)
    } else {
        reply.with_header("etag", etag)
    }
}

/// What the client gets for `fault`; `real` is the answer of a request already
/// applied (`AfterApply`), `None` when the fault replaces handling it.
fn play(fault: &Fault, real: Option<Reply>) -> (Reply, Delivery) {
    match fault {
        Fault::Status {
            status,
            retry_after,
        } => {
            let reply = Reply::error(*status, "injected fault");
            let reply = match retry_after {
                Some(secs) => reply.with_header("retry-after", secs.to_string()),
                None => reply,
            };
            (reply, Delivery::Now)
        }
        Fault::Html { status } => (
            Reply {
                status: *status,
                body: ReplyBody::Html(
                    "<html><body><h1>502 Bad Gateway</h1></body></html>".to_owned(),
                ),
                headers: Vec::new(),
            },
            Delivery::Now,
        ),
        Fault::Reset => (Reply::empty(500), Delivery::Reset),
        // Only reached after applying: a plain delay is waited out before `serve`.
        Fault::Delay(wait) => (
            real.unwrap_or_else(|| Reply::error(500, "delay without an answer")),
            Delivery::After(*wait),
        ),
        Fault::AfterApply(inner) => play(inner, real),
    }
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
    let limit = match req.q("limit").and_then(|l| l.parse::<usize>().ok()) {
        None | Some(0) => DEFAULT_LIMIT,
        Some(l) => l.min(MAX_LIMIT),
    };
    let page = req
        .q("page")
        .and_then(|p| p.parse::<usize>().ok())
        .filter(|p| *p > 0)
        .unwrap_or(1);
    let last = total.div_ceil(limit).max(1);
    let chunk: Vec<Value> = items
        .into_iter()
        .skip((page - 1) * limit)
        .take(limit)
        .collect();
    let link = |p: usize, rel: &str| {
        let mut pairs: Vec<String> = req
            .query
            .iter()
            .filter(|(k, _)| k != "page")
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect();
        pairs.push(format!("page={p}"));
        format!(
            "<{base_url}{}?{}>; rel=\"{rel}\"",
            req.path,
            pairs.join("&")
        )
    };
    let mut links = Vec::new();
    if page < last {
        links.push(link(page + 1, "next"));
        links.push(link(last, "last"));
    }
    if page > 1 {
        links.push(link(1, "first"));
        links.push(link(page - 1, "prev"));
    }
    let reply =
        Reply::json(200, Value::Array(chunk)).with_header("x-total-count", total.to_string());
    if links.is_empty() {
        reply
    } else {
        reply.with_header("link", links.join(","))
    }
}

/// Percent-encodes a query component (unreserved characters stay as they are).
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
