//! A scripted Anthropic Messages API on 127.0.0.1 for driving the real Claude
//! Code CLI: `POST /v1/messages` answered as streaming SSE (`message_start`,
//! `content_block_start`/`delta`/`stop` with text or `tool_use` +
//! `input_json_delta`, `message_delta`, `message_stop`) or as one JSON message,
//! by scenario rules on the last user message. Every request is recorded;
//! unknown endpoints are logged and answered with an empty success.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// How the model answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// Do the task (named by `task_marker`), fix CI failures and review
    /// changes, acknowledge CI passing; each through a Bash tool call.
    Work { task_marker: String },
    /// Every call fails with this HTTP status (401, 429), marked not to retry.
    Fail(u16),
    /// Answer every message with text only: never a phase.
    Chat,
}

/// One recorded `POST /v1/messages`.
#[derive(Debug, Clone)]
pub struct Call {
    /// The text of the last user message (tool results shown as `[tool_result]`).
    pub user_text: String,
}

struct Shared {
    mode: Mode,
    calls: Vec<Call>,
    unknown: Vec<String>,
    fixes: u32,
    messages: u64,
}

pub struct ModelServer {
    url: String,
    shared: Arc<Mutex<Shared>>,
    task: tokio::task::JoinHandle<()>,
}

impl ModelServer {
    pub async fn start(mode: Mode) -> ModelServer {
        let shared = Arc::new(Mutex::new(Shared {
            mode,
            calls: Vec::new(),
            unknown: Vec::new(),
            fixes: 0,
            messages: 0,
        }));
        let app = Router::new().fallback(handle).with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding the model server");
        let url = format!("http://{}", listener.local_addr().expect("its address"));
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("model server");
        });
        ModelServer { url, shared, task }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn calls(&self) -> Vec<Call> {
        self.shared.lock().unwrap().calls.clone()
    }

    /// Requests to endpoints the server does not script.
    pub fn unknown(&self) -> Vec<String> {
        self.shared.lock().unwrap().unknown.clone()
    }

    /// Wait until a user message containing `needle` reached the model.
    pub async fn wait_for_user_text(&self, needle: &str, timeout: Duration) -> String {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let calls = self.calls();
            if let Some(c) = calls.iter().find(|c| c.user_text.contains(needle)) {
                return c.user_text.clone();
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the model never received {needle:?}; it received: {calls:#?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for ModelServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn handle(
    State(shared): State<Arc<Mutex<Shared>>>,
    method: Method,
    uri: Uri,
    _headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_string();
    if method != Method::POST || !path.starts_with("/v1/messages") {
        shared
            .lock()
            .unwrap()
            .unknown
            .push(format!("{method} {uri}"));
        return if method == Method::GET || method == Method::HEAD {
            StatusCode::NOT_FOUND.into_response()
        } else {
            axum::Json(json!({})).into_response()
        };
    }
    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    if path.ends_with("/count_tokens") {
        return axum::Json(json!({ "input_tokens": 100 })).into_response();
    }
    let user_text = last_user_text(&request);
    let (mode, fixes, id) = {
        let mut s = shared.lock().unwrap();
        s.calls.push(Call {
            user_text: user_text.clone(),
        });
        s.messages += 1;
        (s.mode.clone(), s.fixes, s.messages)
    };
    let answer = match mode {
        Mode::Fail(status) => return error(status),
        Mode::Chat => Answer::Text("I believe I am finished.".into()),
        Mode::Work { task_marker } => {
            let answer = work(&user_text, &task_marker, fixes);
            if matches!(answer, Answer::Fix(_)) {
                shared.lock().unwrap().fixes += 1;
            }
            answer
        }
    };
    let model = request["model"]
        .as_str()
        .unwrap_or("claude-test")
        .to_string();
    let blocks = answer.blocks(id);
    if request["stream"].as_bool() == Some(true) {
        stream(&model, id, &blocks)
    } else {
        axum::Json(message(&model, id, &blocks)).into_response()
    }
}

enum Answer {
    Text(String),
    /// A Bash command, with a sentence before it.
    Bash(String),
    /// A Bash command that makes a fix commit.
    Fix(String),
}

const GIT: &str = "git -c user.name=Claude -c user.email=claude@example.com";

/// Feedback first: Claude Code hands a message that arrived during a tool
/// call to the model together with that call's result.
fn work(text: &str, task_marker: &str, fixes: u32) -> Answer {
    if text.contains(task_marker) && !text.contains("[tool_result]") {
        return Answer::Bash(format!(
            "echo 'Hello, world!' > greeting.txt && {GIT} add greeting.txt && \
             {GIT} commit -q -m 'Add a greeting' && \
             printf 'Adds greeting.txt.\\n' > \"$FORGEHAND_SUMMARY_FILE\" && \
             printf 'PHASE:awaiting_ci\\n' > \"$FORGEHAND_PHASE_FILE\""
        ));
    }
    if text.contains("CI failed") || text.contains("requested changes") {
        let n = fixes + 1;
        return Answer::Fix(format!(
            "echo 'fix {n}' >> greeting.txt && {GIT} commit -q -a -m 'Address feedback {n}' && \
             printf 'PHASE:awaiting_ci\\n' > \"$FORGEHAND_PHASE_FILE\""
        ));
    }
    if text.contains("CI passed") {
        return Answer::Bash(
            "printf 'PHASE:awaiting_review\\n' > \"$FORGEHAND_PHASE_FILE\"".into(),
        );
    }
    if text.contains("[tool_result]") {
        return Answer::Text("Done; forgehand has my phase.".into());
    }
    Answer::Text("Noted.".into())
}

impl Answer {
    fn blocks(&self, id: u64) -> Vec<Value> {
        match self {
            Answer::Text(t) => vec![json!({"type": "text", "text": t})],
            Answer::Bash(cmd) | Answer::Fix(cmd) => vec![
                json!({"type": "text", "text": "Running the change."}),
                json!({
                    "type": "tool_use",
                    "id": format!("toolu_{id:04}"),
                    "name": "Bash",
                    "input": {"command": cmd, "description": "Make the change and report the phase"},
                }),
            ],
        }
    }
}

/// The text of the last message a user wrote (Claude Code also sends
/// `system` entries among the messages).
fn last_user_text(request: &Value) -> String {
    let Some(messages) = request["messages"].as_array() else {
        return String::new();
    };
    let Some(last) = messages.iter().rev().find(|m| m["role"] == "user") else {
        return String::new();
    };
    match &last["content"] {
        Value::String(s) => s.clone(),
        Value::Array(blocks) => blocks
            .iter()
            .map(|b| match b["type"].as_str() {
                Some("text") => b["text"].as_str().unwrap_or_default().to_string(),
                Some("tool_result") => "[tool_result]".to_string(),
                _ => String::new(),
            })
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

fn usage() -> Value {
    json!({
        "input_tokens": 120,
        "output_tokens": 30,
        "cache_creation_input_tokens": 7,
        "cache_read_input_tokens": 11,
    })
}

fn stop_reason(blocks: &[Value]) -> &'static str {
    if blocks.iter().any(|b| b["type"] == "tool_use") {
        "tool_use"
    } else {
        "end_turn"
    }
}

fn message(model: &str, id: u64, blocks: &[Value]) -> Value {
    json!({
        "id": format!("msg_{id:04}"),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": blocks,
        "stop_reason": stop_reason(blocks),
        "stop_sequence": null,
        "usage": usage(),
    })
}

fn stream(model: &str, id: u64, blocks: &[Value]) -> Response {
    let mut start = message(model, id, &[]);
    start["stop_reason"] = Value::Null;
    start["usage"]["output_tokens"] = json!(1);
    let mut events = vec![(
        "message_start",
        json!({"type": "message_start", "message": start}),
    )];
    for (i, block) in blocks.iter().enumerate() {
        let (empty, delta) = if block["type"] == "tool_use" {
            let mut empty = block.clone();
            empty["input"] = json!({});
            let partial = block["input"].to_string();
            (
                empty,
                json!({"type": "input_json_delta", "partial_json": partial}),
            )
        } else {
            let text = block["text"].clone();
            (
                json!({"type": "text", "text": ""}),
                json!({"type": "text_delta", "text": text}),
            )
        };
        events.push((
            "content_block_start",
            json!({"type": "content_block_start", "index": i, "content_block": empty}),
        ));
        events.push((
            "content_block_delta",
            json!({"type": "content_block_delta", "index": i, "delta": delta}),
        ));
        events.push((
            "content_block_stop",
            json!({"type": "content_block_stop", "index": i}),
        ));
    }
    events.push((
        "message_delta",
        json!({
            "type": "message_delta",
            "delta": {"stop_reason": stop_reason(blocks), "stop_sequence": null},
            "usage": {"output_tokens": usage()["output_tokens"]},
        }),
    ));
    events.push(("message_stop", json!({"type": "message_stop"})));
    let body: String = events
        .into_iter()
        .map(|(name, data)| format!("event: {name}\ndata: {data}\n\n"))
        .collect();
    ([("content-type", "text/event-stream")], body).into_response()
}

/// An API error Claude Code must not retry, so the turn fails at once.
fn error(status: u16) -> Response {
    let kind = match status {
        401 => "authentication_error",
        429 => "rate_limit_error",
        529 => "overloaded_error",
        _ => "api_error",
    };
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        status,
        [("x-should-retry", "false"), ("retry-after", "1")],
        axum::Json(json!({"type": "error", "error": {"type": kind, "message": format!("scripted {kind}")}})),
    )
        .into_response()
}
