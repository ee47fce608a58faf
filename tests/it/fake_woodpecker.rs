//! A stateful fake Woodpecker server, written from Woodpecker 3.x's swagger: the test adds
//! pipelines (workflows of steps with exit codes and logs), the client reads them, and
//! restarts create new pipelines. Every request is recorded and judged against the swagger
//! (method, path template, declared query parameters) and the bearer token; what breaks
//! the contract is listed by [`FakeWoodpecker::violations`].
//!
//! ```ignore
//! let ci = FakeWoodpecker::start(7, "tok");
//! let n = ci.add_pipeline("abc123", vec![FakeStep::new("test", "commands", 1, log)]);
//! // … the client under test reads `ci.url()` …
//! assert!(ci.violations().is_empty(), "{:#?}", ci.violations());
//! ```
//!
//! The server runs on its own thread and runtime (like the fake forge), so a test may
//! block its own runtime; dropping the fake stops it.

// The API serves tests written elsewhere; not every item is used by this crate's tests.
#![allow(dead_code)]

use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde_json::{Value, json};
use tokio::sync::oneshot;

use crate::swagger::{self, Route, parse_query};

/// Woodpecker's page size when `perPage` is absent.
const DEFAULT_PER_PAGE: usize = 50;
/// Log entry type of an output line (`LogEntryStdout`) and of the exit code record.
const ENTRY_STDOUT: i64 = 0;
const ENTRY_EXIT_CODE: i64 = 2;

/// One step as the test describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeStep {
    pub name: String,
    /// Woodpecker's step `type`: `clone`, `commands`, `plugin`, `service`, `cache`.
    pub kind: String,
    pub exit_code: i64,
    /// Output lines, served as one base64 log entry each.
    pub log: Vec<String>,
}

impl FakeStep {
    pub fn new(name: &str, kind: &str, exit_code: i64, log: Vec<String>) -> Self {
        Self {
            name: name.to_owned(),
            kind: kind.to_owned(),
            exit_code,
            log,
        }
    }

    /// A `commands` step that succeeds with a one-line log.
    pub fn ok(name: &str) -> Self {
        Self::new(name, "commands", 0, vec![format!("{name}: ok")])
    }

    /// Woodpecker's state for the step: any non-zero exit code is a failure.
    fn state(&self) -> &'static str {
        if self.exit_code == 0 {
            "success"
        } else {
            "failure"
        }
    }
}

/// One workflow (pipeline file) as the test describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeWorkflow {
    pub name: String,
    pub steps: Vec<FakeStep>,
}

impl FakeWorkflow {
    pub fn new(name: &str, steps: Vec<FakeStep>) -> Self {
        Self {
            name: name.to_owned(),
            steps,
        }
    }
}

/// One received request.
#[derive(Debug, Clone)]
pub struct FakeRequest {
    pub method: String,
    /// Raw path, including `/api`.
    pub path: String,
    /// Raw query string without `?`.
    pub query: String,
    /// Whether it carried `Authorization: Bearer <the token>`.
    pub authorized: bool,
    pub status: u16,
}

impl FakeRequest {
    /// The decoded value of query parameter `key`.
    pub fn param(&self, key: &str) -> Option<String> {
        parse_query(&self.query)
            .into_iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }
}

/// A restart the fake received: pipeline `from` was run again as pipeline `to`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Restart {
    pub from: u64,
    pub to: u64,
}

/// A stored pipeline: workflows and steps carry the ids the server gave them.
#[derive(Debug, Clone)]
struct Pipeline {
    id: u64,
    number: u64,
    commit: String,
    /// The pipeline this one restarts (0 for none), as Woodpecker's `parent`.
    parent: u64,
    workflows: Vec<(u64, FakeWorkflow, Vec<u64>)>,
}

impl Pipeline {
    fn status(&self) -> &'static str {
        let failed = self
            .workflows
            .iter()
            .flat_map(|(_, w, _)| &w.steps)
            .any(|s| s.exit_code != 0);
        if failed { "failure" } else { "success" }
    }

    fn step(&self, id: u64) -> Option<&FakeStep> {
        self.workflows.iter().find_map(|(_, w, ids)| {
            let index = ids.iter().position(|i| *i == id)?;
            w.steps.get(index)
        })
    }
}

#[derive(Debug)]
struct FakeState {
    repo_id: u64,
    token: String,
    /// Ids of pipelines, workflows and steps share one sequence, so a step id is never
    /// mistaken for a pipeline number by accident.
    next_id: u64,
    pipelines: Vec<Pipeline>,
    /// The workflows a restart runs; `None`: the restarted pipeline's own.
    on_restart: Option<Vec<FakeWorkflow>>,
    restarts: Vec<Restart>,
    requests: Vec<FakeRequest>,
    violations: Vec<String>,
}

impl FakeState {
    fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    fn add(&mut self, commit: &str, workflows: Vec<FakeWorkflow>, parent: u64) -> u64 {
        let number = self.pipelines.iter().map(|p| p.number).max().unwrap_or(0) + 1;
        let id = self.id();
        let workflows = workflows
            .into_iter()
            .map(|w| {
                let wid = self.id();
                let ids = w.steps.iter().map(|_| self.id()).collect();
                (wid, w, ids)
            })
            .collect();
        self.pipelines.push(Pipeline {
            id,
            number,
            commit: commit.to_owned(),
            parent,
            workflows,
        });
        number
    }

    fn pipeline(&self, number: &str) -> Option<&Pipeline> {
        let number: u64 = number.parse().ok()?;
        self.pipelines.iter().find(|p| p.number == number)
    }
}

/// A running fake Woodpecker; stops when dropped.
pub struct FakeWoodpecker {
    state: Arc<Mutex<FakeState>>,
    url: String,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl FakeWoodpecker {
    /// Binds `127.0.0.1:0` and serves repository `repo_id` under `/api`, accepting only
    /// `Authorization: Bearer <token>`.
    pub fn start(repo_id: u64, token: &str) -> FakeWoodpecker {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("binding the fake woodpecker to 127.0.0.1:0");
        listener
            .set_nonblocking(true)
            .expect("making the fake woodpecker listener non-blocking");
        let url = format!(
            "http://{}",
            listener.local_addr().expect("fake woodpecker address")
        );
        let state = Arc::new(Mutex::new(FakeState {
            repo_id,
            token: token.to_owned(),
            next_id: 1000,
            pipelines: Vec::new(),
            on_restart: None,
            restarts: Vec::new(),
            requests: Vec::new(),
            violations: Vec::new(),
        }));
        let app = Router::new()
            .fallback(handle)
            .with_state(Arc::clone(&state));
        let (shutdown, stopped) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("fake-woodpecker".to_owned())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("building the fake woodpecker runtime");
                runtime.block_on(async move {
                    let listener = tokio::net::TcpListener::from_std(listener)
                        .expect("fake woodpecker listener");
                    tokio::select! {
                        served = axum::serve(listener, app) => served.expect("fake woodpecker server"),
                        _ = stopped => {}
                    }
                });
                // Open keep-alive connections must not hold the test up.
                runtime.shutdown_background();
            })
            .expect("spawning the fake woodpecker thread");
        FakeWoodpecker {
            state,
            url,
            shutdown: Some(shutdown),
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:PORT`, the `woodpecker_url` for forgehand.
    pub fn url(&self) -> &str {
        &self.url
    }

    fn lock(&self) -> MutexGuard<'_, FakeState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds a pipeline on commit `sha` with one workflow, `ci`, and returns its number.
    pub fn add_pipeline(&self, sha: &str, steps: Vec<FakeStep>) -> u64 {
        self.add_pipeline_workflows(sha, vec![FakeWorkflow::new("ci", steps)])
    }

    /// Adds a pipeline on commit `sha` with these workflows and returns its number
    /// (numbers count up from 1, so a later pipeline is a newer one).
    pub fn add_pipeline_workflows(&self, sha: &str, workflows: Vec<FakeWorkflow>) -> u64 {
        self.lock().add(sha, workflows, 0)
    }

    /// What the pipelines that restarts create will run (e.g. a passing clone step);
    /// without it, a restart runs the restarted pipeline's workflows again.
    pub fn on_restart(&self, workflows: Vec<FakeWorkflow>) {
        self.lock().on_restart = Some(workflows);
    }

    pub fn restarts(&self) -> Vec<Restart> {
        self.lock().restarts.clone()
    }

    pub fn requests(&self) -> Vec<FakeRequest> {
        self.lock().requests.clone()
    }

    /// Requests outside the swagger, without the right token, or to endpoints this fake
    /// does not serve; a test asserts this is empty.
    pub fn violations(&self) -> Vec<String> {
        self.lock().violations.clone()
    }
}

impl Drop for FakeWoodpecker {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn handle(
    State(state): State<Arc<Mutex<FakeState>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut state = state.lock().unwrap_or_else(|e| e.into_inner());
    let (method, path) = (method.as_str(), uri.path());
    let raw_query = uri.query().unwrap_or("");
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let authorized = auth == format!("Bearer {}", state.token);

    let query = parse_query(raw_query);
    let checked = swagger::woodpecker().check(method, path, &query, &body);
    for problem in &checked.problems {
        state.violations.push(format!("{method} {path}: {problem}"));
    }
    let (status, reply) = if !authorized {
        state.violations.push(format!(
            "{method} {path}: no valid bearer token (Authorization {:?})",
            if auth.is_empty() { "absent" } else { "wrong" }
        ));
        // The worst a server or proxy could do: echo the credentials back.
        let message = format!("invalid credentials: {auth}");
        (401, json!({ "message": message }))
    } else {
        match checked.route {
            Route::Matched { template, params } => {
                let param = |name: &str| params.get(name).map_or("", String::as_str);
                let (status, reply) = route(&mut state, method, &template, param, &query);
                if status == 501 {
                    state
                        .violations
                        .push(format!("{method} {template}: not served by the fake"));
                }
                (status, reply)
            }
            Route::MethodNotAllowed { .. } => (405, json!("method not allowed")),
            Route::UnknownPath => (404, json!("not found")),
        }
    };
    state.requests.push(FakeRequest {
        method: method.to_owned(),
        path: path.to_owned(),
        query: raw_query.to_owned(),
        authorized,
        status,
    });
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, axum::Json(reply)).into_response()
}

/// Serves one authorised request routed to a swagger `template`.
fn route<'p>(
    state: &mut FakeState,
    method: &str,
    template: &str,
    param: impl Fn(&str) -> &'p str,
    query: &[(String, String)],
) -> (u16, Value) {
    if param("repo_id") != state.repo_id.to_string() {
        return (404, json!("repo not found"));
    }
    match (method, template) {
        ("GET", "/repos/{repo_id}") => (
            200,
            json!({
                "id": state.repo_id,
                "forge_remote_id": "1",
                "owner": "acme",
                "name": "widget",
                "full_name": "acme/widget",
                "forge_url": "https://forge.example/acme/widget",
                "clone_url": "https://forge.example/acme/widget.git",
                "default_branch": "main",
                "active": true,
                "private": false,
            }),
        ),
        ("GET", "/repos/{repo_id}/pipelines") => {
            let number = |name: &str, default: usize| {
                query
                    .iter()
                    .find(|(k, _)| k == name)
                    .and_then(|(_, v)| v.parse::<usize>().ok())
                    .filter(|n| *n > 0)
                    .unwrap_or(default)
            };
            let (page, per_page) = (number("page", 1), number("perPage", DEFAULT_PER_PAGE));
            let mut newest_first: Vec<&Pipeline> = state.pipelines.iter().collect();
            newest_first.sort_by_key(|p| std::cmp::Reverse(p.number));
            let items: Vec<Value> = newest_first
                .into_iter()
                .skip((page - 1) * per_page)
                .take(per_page)
                .map(|p| pipeline_json(p, false))
                .collect();
            (200, Value::Array(items))
        }
        ("GET", "/repos/{repo_id}/pipelines/{pipeline_number}") => {
            match state.pipeline(param("pipeline_number")) {
                Some(p) => (200, pipeline_json(p, true)),
                None => (404, json!("pipeline not found")),
            }
        }
        ("POST", "/repos/{repo_id}/pipelines/{pipeline_number}") => {
            let Some(old) = state.pipeline(param("pipeline_number")).cloned() else {
                return (404, json!("pipeline not found"));
            };
            let workflows = state
                .on_restart
                .clone()
                .unwrap_or_else(|| old.workflows.iter().map(|(_, w, _)| w.clone()).collect());
            let to = state.add(&old.commit, workflows, old.number);
            state.restarts.push(Restart {
                from: old.number,
                to,
            });
            let new = state.pipeline(&to.to_string()).expect("just added");
            (200, pipeline_json(new, true))
        }
        ("GET", "/repos/{repo_id}/logs/{pipeline_number}/{step_id}") => {
            let step = state.pipeline(param("pipeline_number")).and_then(|p| {
                let id: u64 = param("step_id").parse().ok()?;
                p.step(id).map(|s| (id, s))
            });
            match step {
                Some((id, s)) => (200, log_json(id, s)),
                None => (404, json!("step not found")),
            }
        }
        _ => (501, json!("not implemented by the fake")),
    }
}

/// A pipeline as Woodpecker sends it: the list leaves `workflows` out.
fn pipeline_json(p: &Pipeline, with_workflows: bool) -> Value {
    let mut value = json!({
        "id": p.id,
        "number": p.number,
        "parent": p.parent,
        "commit": p.commit,
        "branch": "main",
        "ref": "refs/heads/main",
        "event": "push",
        "status": p.status(),
        "errors": null,
    });
    if with_workflows {
        let workflows: Vec<Value> = p
            .workflows
            .iter()
            .enumerate()
            .map(|(i, (wid, w, ids))| {
                let children: Vec<Value> = w
                    .steps
                    .iter()
                    .zip(ids)
                    .enumerate()
                    .map(|(j, (s, id))| {
                        json!({
                            "id": id,
                            "pipeline_id": p.id,
                            "pid": j + 2,
                            "ppid": i + 1,
                            "name": s.name,
                            "type": s.kind,
                            "state": s.state(),
                            "exit_code": s.exit_code,
                        })
                    })
                    .collect();
                let failed = w.steps.iter().any(|s| s.exit_code != 0);
                json!({
                    "id": wid,
                    "pipeline_id": p.id,
                    "pid": i + 1,
                    "name": w.name,
                    "state": if failed { "failure" } else { "success" },
                    "children": children,
                })
            })
            .collect();
        value["workflows"] = Value::Array(workflows);
    }
    value
}

/// A step's log: one base64 stdout entry per line, then the exit code record.
fn log_json(step_id: u64, step: &FakeStep) -> Value {
    let b64 = |text: &str| base64::engine::general_purpose::STANDARD.encode(text);
    let mut entries: Vec<Value> = step
        .log
        .iter()
        .enumerate()
        .map(|(i, line)| {
            json!({
                "id": step_id * 10_000 + i as u64,
                "step_id": step_id,
                "line": i,
                "time": i,
                "type": ENTRY_STDOUT,
                "data": b64(&format!("{line}\n")),
            })
        })
        .collect();
    entries.push(json!({
        "id": step_id * 10_000 + step.log.len() as u64,
        "step_id": step_id,
        "line": step.log.len(),
        "time": step.log.len(),
        "type": ENTRY_EXIT_CODE,
        "data": b64(&step.exit_code.to_string()),
    }));
    Value::Array(entries)
}
