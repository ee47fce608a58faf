//! A real headless Chromium (Debian's `chromium`, installed by `.ci/run`)
//! driven over the DevTools protocol on a pipe: `--remote-debugging-pipe`
//! reads commands on the browser's fd 3 and writes answers and events on its
//! fd 4, each a JSON message ended by a NUL byte, so no WebSocket client is
//! needed. Waiting for something on a page is a promise in the page that a
//! `MutationObserver` resolves, awaited with a timeout: no polling.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::sync::mpsc;

/// One browser with one page (tab) attached.
pub struct Browser {
    child: Child,
    commands: File,
    /// Answers (with an `id`) and events (with a `method`), in order.
    messages: mpsc::UnboundedReceiver<Value>,
    /// Events read while waiting for an answer, for `wait_event`.
    events: Vec<Value>,
    next_id: u64,
    session: String,
    _profile: TempDir,
}

/// The browser's program: `$FORGEHAND_CHROMIUM`, else `chromium`.
fn program() -> String {
    std::env::var("FORGEHAND_CHROMIUM").unwrap_or_else(|_| "chromium".into())
}

impl Browser {
    /// Start Chromium and open a blank page of `width`×`height`.
    pub async fn start(width: u32, height: u32) -> Browser {
        let profile = tempfile::tempdir().expect("a profile folder");
        let (to_browser_read, to_browser_write) =
            nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).expect("a pipe");
        let (from_browser_read, from_browser_write) =
            nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).expect("a pipe");
        let mut command = Command::new(program());
        command
            .args([
                "--headless",
                "--remote-debugging-pipe",
                // The tests may run as root, where Chromium's sandbox refuses to start;
                // the pages are the test's own.
                "--no-sandbox",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--disable-extensions",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--hide-scrollbars",
                "--mute-audio",
                &format!("--window-size={width},{height}"),
                &format!("--user-data-dir={}", profile.path().display()),
                "about:blank",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let (to_fd, from_fd) = (to_browser_read.as_raw_fd(), from_browser_write.as_raw_fd());
        // SAFETY: between fork and exec only async-signal-safe calls (dup2,
        // fcntl) on descriptors this process owns.
        unsafe {
            command.pre_exec(move || {
                for (fd, target) in [(to_fd, 3), (from_fd, 4)] {
                    if fd == target {
                        nix::fcntl::fcntl(
                            std::os::fd::BorrowedFd::borrow_raw(fd),
                            nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::empty()),
                        )?;
                    } else if nix::libc::dup2(fd, target) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
        let child = command.spawn().unwrap_or_else(|e| {
            panic!(
                "starting {} (is chromium installed? .ci/run installs it): {e}",
                program()
            )
        });
        drop(to_browser_read);
        drop(from_browser_write);
        let messages = read_messages(from_browser_read);
        let mut browser = Browser {
            child,
            commands: File::from(to_browser_write),
            messages,
            events: Vec::new(),
            next_id: 0,
            session: String::new(),
            _profile: profile,
        };
        let target = browser
            .call_browser("Target.createTarget", json!({ "url": "about:blank" }))
            .await;
        let target = target["targetId"]
            .as_str()
            .expect("a target id")
            .to_string();
        let attached = browser
            .call_browser(
                "Target.attachToTarget",
                json!({ "targetId": target, "flatten": true }),
            )
            .await;
        browser.session = attached["sessionId"]
            .as_str()
            .expect("a session id")
            .to_string();
        browser.call("Page.enable", json!({})).await;
        browser.call("Runtime.enable", json!({})).await;
        browser
    }

    async fn send(&mut self, method: &str, params: Value, session: Option<String>) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut message = json!({ "id": id, "method": method, "params": params });
        if let Some(session) = session {
            message["sessionId"] = json!(session);
        }
        let mut bytes = serde_json::to_vec(&message).expect("JSON");
        bytes.push(0);
        self.commands
            .write_all(&bytes)
            .expect("writing to the browser");
        let answer = tokio::time::timeout(ANSWER, async {
            loop {
                let message = self.next_message().await;
                if message["id"] == json!(id) {
                    return message;
                }
                if message.get("method").is_some() {
                    self.events.push(message);
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("no answer from the browser to {method}"));
        if let Some(error) = answer.get("error") {
            panic!("the browser refused {method}: {error}");
        }
        answer["result"].clone()
    }

    async fn next_message(&mut self) -> Value {
        self.messages
            .recv()
            .await
            .expect("the browser closed its pipe")
    }

    async fn call_browser(&mut self, method: &str, params: Value) -> Value {
        self.send(method, params, None).await
    }

    /// A command to the page.
    pub async fn call(&mut self, method: &str, params: Value) -> Value {
        let session = self.session.clone();
        self.send(method, params, Some(session)).await
    }

    /// Load `url` and wait for its `load` event.
    pub async fn goto(&mut self, url: &str) {
        self.events.clear();
        let nav = self.call("Page.navigate", json!({ "url": url })).await;
        assert!(
            nav.get("errorText").is_none(),
            "loading {url}: {}",
            nav["errorText"]
        );
        self.wait_event("Page.loadEventFired").await;
    }

    /// Run `expression`, which submits a form or otherwise leaves the page,
    /// and wait for the next page's `load` event.
    pub async fn submit(&mut self, expression: &str) {
        self.events.clear();
        self.eval(expression).await;
        self.wait_event("Page.loadEventFired").await;
    }

    /// Wait for the page's event `method` (one that came during a command counts).
    pub async fn wait_event(&mut self, method: &str) -> Value {
        if let Some(i) = self.events.iter().position(|e| e["method"] == method) {
            return self.events.remove(i);
        }
        tokio::time::timeout(ANSWER, async {
            loop {
                let message = self.next_message().await;
                if message["method"] == method {
                    return message;
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("no {method} from the browser"))
    }

    /// The value of a JavaScript expression in the page (awaited when a promise).
    pub async fn eval(&mut self, expression: &str) -> Value {
        let result = self
            .call(
                "Runtime.evaluate",
                json!({ "expression": expression, "awaitPromise": true, "returnByValue": true }),
            )
            .await;
        if let Some(exception) = result.get("exceptionDetails") {
            panic!("{expression} threw: {exception}");
        }
        result["result"]["value"].clone()
    }

    /// Wait until the expression is truthy in the page, looking again on
    /// every change of the document; its value.
    pub async fn wait_for(&mut self, what: &str, expression: &str, timeout: Duration) -> Value {
        let script = format!(
            r#"new Promise((resolve, reject) => {{
                const deadline = setTimeout(() => {{
                    observer.disconnect();
                    reject(new Error("timed out; the page shows: " + document.body.innerText.slice(0, 2000)));
                }}, {ms});
                const check = () => {{
                    let value;
                    try {{ value = ({expression}); }} catch (e) {{ value = undefined; }}
                    if (value) {{ observer.disconnect(); clearTimeout(deadline); resolve(value); }}
                }};
                const observer = new MutationObserver(check);
                observer.observe(document, {{ subtree: true, childList: true, characterData: true, attributes: true }});
                check();
            }})"#,
            ms = timeout.as_millis()
        );
        let result = tokio::time::timeout(
            timeout + ANSWER,
            self.call(
                "Runtime.evaluate",
                json!({ "expression": script, "awaitPromise": true, "returnByValue": true }),
            ),
        )
        .await
        .unwrap_or_else(|_| panic!("the browser did not answer while waiting for {what}"));
        if let Some(exception) = result.get("exceptionDetails") {
            panic!(
                "waiting for {what}: {}",
                exception["exception"]["description"]
            );
        }
        result["result"]["value"].clone()
    }

    /// A PNG of the page as it is shown.
    pub async fn screenshot(&mut self) -> Vec<u8> {
        use base64::Engine as _;
        let shot = self
            .call("Page.captureScreenshot", json!({ "format": "png" }))
            .await;
        base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().expect("screenshot data"))
            .expect("base64 PNG")
    }
}

/// Longest wait for the browser to answer one command.
const ANSWER: Duration = Duration::from_secs(30);

/// Read NUL-ended JSON messages from the browser on a thread of its own.
fn read_messages(from_browser: OwnedFd) -> mpsc::UnboundedReceiver<Value> {
    let (tx, rx) = mpsc::unbounded_channel();
    std::thread::spawn(move || {
        let mut reader = BufReader::new(File::from(from_browser));
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match reader.read_until(0, &mut buf) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            if buf.last() == Some(&0) {
                buf.pop();
            }
            let Ok(message) = serde_json::from_slice::<Value>(&buf) else {
                continue;
            };
            if tx.send(message).is_err() {
                return;
            }
        }
    });
    rx
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The document of `url` as `chromium --headless --dump-dom` prints it once
/// loaded, scripts run.
pub async fn dump_dom(url: &str) -> String {
    let profile = tempfile::tempdir().expect("a profile folder");
    let run = tokio::process::Command::new(program())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            &format!("--user-data-dir={}", profile.path().display()),
            "--dump-dom",
            url,
        ])
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(ANSWER, run)
        .await
        .expect("chromium --dump-dom in time")
        .expect("running chromium --dump-dom");
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}
