//! GitHub's pagination: `per_page` (30 by default, at most 100) and `page`, with a `Link`
//! header to the `next`, `last`, `first` and `prev` pages that repeats the request's own
//! path and query, so a client can follow it verbatim.

use serde_json::{Value, json};

use super::routes::{Reply, Req};
use super::state::GithubState;
use crate::fake_server::{self, Paging};

/// GitHub's paging: `per_page` 30 when absent or 0, at most 100.
const PAGING: Paging = Paging {
    size_param: "per_page",
    default_size: 30,
    max_size: 100,
    link_separator: ", ",
};

/// The page `per_page`/`page` ask for, and the `Link` header to the other pages.
fn page_of<T>(state: &GithubState, req: &Req, items: Vec<T>) -> (Vec<T>, Option<String>) {
    fake_server::page_of(&PAGING, &state.forge.base_url, req.path, &req.query, items)
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
