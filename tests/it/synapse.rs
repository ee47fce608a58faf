//! A real Synapse homeserver on 127.0.0.1 for the Matrix tests: a temp dir,
//! a generated `homeserver.yaml` (SQLite, no TLS, no rate limits, no open
//! registration), a bot `forgehand` and a human `alice` registered with the
//! shared secret and logged in, and a room the bot created and alice joined.
//! Synapse comes from the venv `FORGEHAND_SYNAPSE_VENV` (default
//! `$HOME/.cache/forgehand/synapse-venv`, made by `.ci/run`); it is stopped
//! (its whole process group) on drop.

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tempfile::TempDir;

pub const SERVER_NAME: &str = "localhost";
const SHARED_SECRET: &str = "synapse-shared-5ecret";
const READY_TIMEOUT: Duration = Duration::from_secs(90);

/// A registered, logged-in user.
#[derive(Debug, Clone)]
pub struct User {
    pub user_id: String,
    pub token: String,
}

pub struct Synapse {
    dir: TempDir,
    venv: PathBuf,
    pub url: String,
    child: Option<Child>,
    pub bot: User,
    pub alice: User,
    pub room_id: String,
    http: reqwest::Client,
}

/// Where Synapse is installed; a missing venv fails the test (never a silent skip).
fn venv() -> PathBuf {
    let venv = match std::env::var_os("FORGEHAND_SYNAPSE_VENV") {
        Some(v) => PathBuf::from(v),
        None => PathBuf::from(std::env::var_os("HOME").expect("HOME is set"))
            .join(".cache/forgehand/synapse-venv"),
    };
    assert!(
        venv.join("bin/synapse_homeserver").exists(),
        "no Synapse in {} (set FORGEHAND_SYNAPSE_VENV or run .ci/run, which installs \
         matrix-synapse into that venv)",
        venv.display()
    );
    venv
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("binding a free port")
        .port()
}

fn config(dir: &Path, port: u16) -> String {
    let d = dir.display();
    let unlimited = "{per_second: 100000, burst_count: 100000}";
    format!(
        r#"server_name: "{SERVER_NAME}"
pid_file: {d}/homeserver.pid
listeners:
  - port: {port}
    bind_addresses: ['127.0.0.1']
    type: http
    tls: false
    x_forwarded: false
    resources:
      - names: [client]
        compress: false
database:
  name: sqlite3
  args:
    database: {d}/homeserver.db
media_store_path: {d}/media
signing_key_path: {d}/signing.key
registration_shared_secret: "{SHARED_SECRET}"
macaroon_secret_key: "macaroon-test-secret"
form_secret: "form-test-secret"
report_stats: false
enable_registration: false
trusted_key_servers: []
suppress_key_server_warning: true
presence:
  enabled: false
rc_message: {unlimited}
rc_registration: {unlimited}
rc_login:
  address: {unlimited}
  account: {unlimited}
  failed_attempts: {unlimited}
rc_joins:
  local: {unlimited}
  remote: {unlimited}
rc_invites:
  per_room: {unlimited}
  per_user: {unlimited}
  per_issuer: {unlimited}
"#
    )
}

impl Synapse {
    /// A daemon harness (`max_sessions = 1`) whose project posts to this
    /// homeserver's room as the bot, mentioning alice.
    pub async fn harness(&self) -> crate::harness::Harness {
        let sections = format!(
            "[matrix]\nhomeserver = \"{}\"\nroom_id = \"{}\"\nuser_id = \"{}\"\ntoken_env = \"MATRIX_TOKEN\"\nmention_user = \"{}\"\n",
            self.url, self.room_id, self.bot.user_id, self.alice.user_id
        );
        let mut h = crate::harness::Harness::new("max_sessions = 1", &sections).await;
        h.env.push(("MATRIX_TOKEN".into(), self.bot.token.clone()));
        h
    }

    /// Start Synapse and set up the bot, alice and the room.
    pub async fn start() -> Synapse {
        let venv = venv();
        let dir = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        std::fs::write(dir.path().join("homeserver.yaml"), config(dir.path(), port))
            .expect("writing homeserver.yaml");
        let status = Command::new(venv.join("bin/generate_signing_key"))
            .arg("-o")
            .arg(dir.path().join("signing.key"))
            .status()
            .expect("running generate_signing_key");
        assert!(status.success(), "generate_signing_key failed");
        let mut s = Synapse {
            dir,
            venv,
            url: format!("http://127.0.0.1:{port}"),
            child: None,
            bot: User {
                user_id: String::new(),
                token: String::new(),
            },
            alice: User {
                user_id: String::new(),
                token: String::new(),
            },
            room_id: String::new(),
            http: reqwest::Client::new(),
        };
        s.resume().await;
        s.bot = s.register("forgehand").await;
        s.alice = s.register("alice").await;
        let created = s
            .call(
                &s.bot,
                reqwest::Method::POST,
                "/_matrix/client/v3/createRoom",
                json!({"preset": "private_chat", "invite": [s.alice.user_id]}),
            )
            .await;
        s.room_id = created["room_id"].as_str().expect("room_id").to_string();
        let join = format!("/_matrix/client/v3/rooms/{}/join", enc(&s.room_id));
        s.call(&s.alice, reqwest::Method::POST, &join, json!({}))
            .await;
        s
    }

    /// Start (again) the Synapse process and wait until it answers.
    pub async fn resume(&mut self) {
        assert!(self.child.is_none(), "Synapse is already running");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("synapse.log"))
            .expect("opening synapse.log");
        let child = Command::new(self.venv.join("bin/python"))
            .args(["-m", "synapse.app.homeserver", "-c"])
            .arg(self.dir.path().join("homeserver.yaml"))
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log)
            // Its own group, so stopping it takes every child with it.
            .process_group(0)
            .spawn()
            .expect("starting Synapse");
        self.child = Some(child);
        let deadline = Instant::now() + READY_TIMEOUT;
        let versions = format!("{}/_matrix/client/versions", self.url);
        loop {
            if let Ok(r) = self.http.get(&versions).send().await
                && r.status().is_success()
            {
                return;
            }
            if let Some(Ok(Some(status))) = self.child.as_mut().map(|c| c.try_wait()) {
                panic!("Synapse exited ({status}) while starting:\n{}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "Synapse did not answer within {READY_TIMEOUT:?}:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Stop the Synapse process (its data stays, `resume` starts it again).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let group = nix::unistd::Pid::from_raw(child.id() as i32);
            let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL);
            let _ = child.wait();
        }
    }

    pub fn log(&self) -> String {
        let text = std::fs::read_to_string(self.dir.path().join("synapse.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    async fn register(&self, name: &str) -> User {
        let password = format!("pw-{name}-123");
        let out = Command::new(self.venv.join("bin/register_new_matrix_user"))
            .args([
                "-u",
                name,
                "-p",
                &password,
                "--no-admin",
                "-k",
                SHARED_SECRET,
            ])
            .arg(&self.url)
            .output()
            .expect("running register_new_matrix_user");
        assert!(
            out.status.success(),
            "registering {name} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let login: Value = self
            .http
            .post(format!("{}/_matrix/client/v3/login", self.url))
            .json(&json!({
                "type": "m.login.password",
                "identifier": {"type": "m.id.user", "user": name},
                "password": password,
            }))
            .send()
            .await
            .expect("logging in")
            .json()
            .await
            .expect("login answer");
        User {
            user_id: login["user_id"].as_str().expect("user_id").to_string(),
            token: login["access_token"]
                .as_str()
                .expect("access_token")
                .to_string(),
        }
    }

    /// One client-server API call as `user`; panics unless it succeeds.
    pub async fn call(
        &self,
        user: &User,
        method: reqwest::Method,
        path: &str,
        body: Value,
    ) -> Value {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(&user.token);
        if !body.is_null() {
            request = request.json(&body);
        }
        let response = request.send().await.expect("calling Synapse");
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        assert!(status.is_success(), "{path} answered {status}: {text}");
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    /// Every event of the room as `user` sees it, oldest first.
    pub async fn events(&self, user: &User) -> Vec<Value> {
        let path = format!(
            "/_matrix/client/v3/rooms/{}/messages?dir=b&limit=1000",
            enc(&self.room_id)
        );
        let answer = self
            .call(user, reqwest::Method::GET, &path, Value::Null)
            .await;
        let mut events = answer["chunk"].as_array().cloned().unwrap_or_default();
        events.reverse();
        events
    }

    /// The room's events (as alice) once `done` holds for them, or panic
    /// after `timeout`.
    pub async fn wait_events(
        &self,
        what: &str,
        timeout: Duration,
        done: impl Fn(&[Value]) -> bool,
    ) -> Vec<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let events = self.events(&self.alice).await;
            if done(&events) {
                return events;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; the room holds:\n{}",
                serde_json::to_string_pretty(&events).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Send a message as alice; returns its event id.
    pub async fn send_as_alice(&self, content: Value) -> String {
        let txn = format!(
            "alice-{}",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or_default()
        );
        let path = format!(
            "/_matrix/client/v3/rooms/{}/send/m.room.message/{txn}",
            enc(&self.room_id)
        );
        let answer = self
            .call(&self.alice, reqwest::Method::PUT, &path, content)
            .await;
        answer["event_id"].as_str().expect("event_id").to_string()
    }
}

impl Drop for Synapse {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Percent-encode a path segment (room ids hold `!` and `:`).
pub fn enc(segment: &str) -> String {
    let mut out = String::new();
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
