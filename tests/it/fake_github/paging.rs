//! GitHub's pagination: `per_page` (30 by default, at most 100) and `page`, with a `Link`
//! header to the `next`, `last`, `first` and `prev` pages that repeats the request's own
//! path and query, so a client can follow it verbatim.

use serde_json::{Value, json};

use super::routes::{Reply, Req};
use super::state::GithubState;

/// GitHub's page size when `per_page` is absent, and its cap.
const DEFAULT_PER_PAGE: usize = 30;
const MAX_PER_PAGE: usize = 100;

/// The page `per_page`/`page` ask for (GitHub: 30 by default, at most 100), and the
/// `Link` header to the other pages (`next`, `last`, `first`, `prev`).
fn page_of<T>(state: &GithubState, req: &Req, items: Vec<T>) -> (Vec<T>, Option<String>) {
    let total = items.len();
    let per_page = match req.q("per_page").and_then(|l| l.parse::<usize>().ok()) {
        None | Some(0) => DEFAULT_PER_PAGE,
        Some(l) => l.min(MAX_PER_PAGE),
    };
    let page = req
        .q("page")
        .and_then(|p| p.parse::<usize>().ok())
        .filter(|p| *p > 0)
        .unwrap_or(1);
    let last = total.div_ceil(per_page).max(1);
    let chunk: Vec<T> = items
        .into_iter()
        .skip((page - 1) * per_page)
        .take(per_page)
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
            "<{}{}?{}>; rel=\"{rel}\"",
            state.forge.base_url,
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
    (chunk, (!links.is_empty()).then(|| links.join(", ")))
}

/// One page of a plain JSON array.
pub fn paginate(state: &GithubState, req: &Req, items: Vec<Value>) -> Reply {
    let (chunk, link) = page_of(state, req, items);
    with_link(Reply::json(200, Value::Array(chunk)), link)
}

/// One page of a list GitHub wraps in an object (`{"total_count": N, key: [...]}`).
pub fn paginate_wrapped(state: &GithubState, req: &Req, key: &str, items: Vec<Value>) -> Reply {
    let total = items.len();
    let (chunk, link) = page_of(state, req, items);
    with_link(
        Reply::json(200, json!({"total_count": total, key: chunk})),
        link,
    )
}

fn with_link(reply: Reply, link: Option<String>) -> Reply {
    match link {
        Some(link) => reply.with_header("link", link),
        None => reply,
    }
}

/// Percent-encodes a query component (unreserved characters stay as they are).
pub fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
