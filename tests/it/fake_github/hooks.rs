//! The repository's webhooks and their deliveries, as a test sets them up
//! (`add_hook`, `add_delivery`): what `forgehand doctor` reads.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::FakeGithub;
use super::json::time;
use super::paging::paginate;
use super::routes::{Reply, Req};
use super::state::GithubState;

type Handled = Result<Reply, Reply>;

#[derive(Debug, Clone)]
pub struct FakeHook {
    pub id: u64,
    pub url: String,
    pub active: bool,
    /// Newest last: (when, HTTP status, GitHub's word for it).
    pub deliveries: Vec<(DateTime<Utc>, u16, String)>,
}

fn hook_json(state: &GithubState, h: &FakeHook) -> Value {
    let api = format!("{}/hooks/{}", state.api_repo_url(), h.id);
    let last = h.deliveries.last();
    json!({
        "type": "Repository",
        "id": h.id,
        "name": "web",
        "active": h.active,
        "events": ["issues", "issue_comment", "pull_request", "pull_request_review", "status", "check_run"],
        "config": {"content_type": "json", "insecure_ssl": "0", "url": h.url},
        "created_at": "2026-11-01T12:00:00Z",
        "updated_at": "2026-11-01T12:00:00Z",
        "url": api,
        "test_url": format!("{api}/test"),
        "ping_url": format!("{api}/pings"),
        "deliveries_url": format!("{api}/deliveries"),
        "last_response": {
            "code": last.map(|d| d.1),
            "status": last.map_or("unused".to_owned(), |d| d.2.clone()),
            "message": null,
        },
    })
}

pub fn list_hooks(state: &mut GithubState, req: &Req) -> Handled {
    let hooks: Vec<Value> = state.hooks.iter().map(|h| hook_json(state, h)).collect();
    Ok(paginate(state, req, hooks))
}

pub fn list_deliveries(state: &mut GithubState, req: &Req) -> Handled {
    let id = req.number("hook_id")?;
    let hook = state
        .hooks
        .iter()
        .find(|h| h.id == id)
        .ok_or_else(|| Reply::error(404, "Not Found"))?;
    let per_page = req
        .q("per_page")
        .and_then(|p| p.parse().ok())
        .unwrap_or(30usize);
    let items: Vec<Value> = hook
        .deliveries
        .iter()
        .enumerate()
        .rev()
        .take(per_page)
        .map(|(i, (at, code, status))| {
            json!({
                "id": i + 1,
                "guid": format!("0b989ba4-242f-11e5-81e1-c7b6966d2{i:03}"),
                "delivered_at": time(*at),
                "redelivery": false,
                "duration": 0.03,
                "status": status,
                "status_code": code,
                "event": "issues",
                "action": "opened",
                "installation_id": null,
                "repository_id": 1,
            })
        })
        .collect();
    Ok(Reply::json(200, Value::Array(items)))
}

impl FakeGithub {
    /// Adds a repository webhook delivering to `url`; its id.
    pub fn add_hook(&self, url: &str, active: bool) -> u64 {
        self.with_state(|s| {
            let id = s.hooks.len() as u64 + 1;
            s.hooks.push(FakeHook {
                id,
                url: url.to_owned(),
                active,
                deliveries: Vec::new(),
            });
            id
        })
    }

    /// Records a delivery of hook `id` answered with `code` (`status` as
    /// GitHub words it: `OK`, `Invalid HTTP Response: 502`).
    pub fn add_delivery(&self, id: u64, code: u16, status: &str) {
        self.with_state(|s| {
            if let Some(h) = s.hooks.iter_mut().find(|h| h.id == id) {
                h.deliveries.push((Utc::now(), code, status.to_owned()));
            }
        });
    }
}
