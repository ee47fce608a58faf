//! The tmux server forgehand keeps its agent sessions on: create, watch, paste into, kill.
//!
//! Every call is one `tmux` process (never a shell). Session names are always given
//! exactly: `=name` for session targets and `=name:` for window/pane targets, because
//! tmux matches a bare name as a prefix (`dev-p-1` would hit `dev-p-12`) and tmux 3.3
//! rejects `=name` without the colon as a pane target.

mod liveness;

use std::ffi::{OsStr, OsString};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use tokio::process::Command;

pub use liveness::{LIVENESS_CHANNEL, LivenessRound, PaneState};

/// How often `wait_for_text` looks at the screen: fast enough to feel immediate,
/// slow enough not to load the tmux server.
const SCREEN_POLL: Duration = Duration::from_millis(100);

/// Lines `wait_for_text` inspects: the visible screen plus some history, so a
/// pattern that scrolled just off the top still counts.
const SCREEN_LINES: u32 = 200;

/// The longest any one tmux call may take: a server that hangs costs its
/// callers this much, never forever.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// Tries of `new-session` when the server exits under it (see `new_session`).
const NEW_SESSION_ATTEMPTS: u32 = 3;

/// The only variables the tmux programs forgehand runs get. The server
/// forgehand starts keeps its client's environment as its global one (what
/// `tmux show-environment -g` prints, and what the `pipe-pane` shell gets),
/// so the daemon's own (its tokens) must never reach it.
const TMUX_ENV: &[&str] = &[
    "HOME",
    "USER",
    "LOGNAME",
    "PATH",
    "SHELL",
    "LANG",
    "TERM",
    "TMUX_TMPDIR",
];

/// A handle on one tmux server.
#[derive(Debug, Clone, Default)]
pub struct Tmux {
    /// `-L` socket name; `None` is the invoking user's default server, so people can
    /// `tmux attach -t dev-<project>-<issue>` without any flag.
    socket: Option<String>,
}

/// Everything needed to start one agent session.
#[derive(Debug, Clone)]
pub struct SessionSpec {
    pub name: String,
    /// The git worktree the agent works in.
    pub cwd: PathBuf,
    pub width: u16,
    pub height: u16,
    /// The agent's whole environment: nothing else reaches it.
    pub env: Vec<(String, String)>,
    /// The words that put the command in its sandbox (`bwrap … --`), if any.
    pub sandbox: Vec<OsString>,
    /// Trusted configuration (`agent.command`), run with `/bin/sh -c`.
    pub command: String,
    /// Where everything the pane prints is appended (`pipe-pane`), set up
    /// in the same call, so even the first output is kept; `None`: nowhere.
    pub pane_log: Option<PathBuf>,
}

impl Tmux {
    pub fn new(socket: Option<String>) -> Self {
        Self { socket }
    }

    /// The `-L` socket name, if any (for telling users how to attach).
    pub fn socket(&self) -> Option<&str> {
        self.socket.as_deref()
    }

    pub async fn has_session(&self, name: &str) -> Result<bool> {
        let out = self
            .present(
                ["has-session", "-t", &session_target(name)],
                "has-session",
                name,
            )
            .await?;
        Ok(out.is_some())
    }

    /// Names of all sessions; an empty list when no server runs.
    pub async fn list_sessions(&self) -> Result<Vec<String>> {
        let Some(out) = self
            .present(
                ["list-sessions", "-F", "#{session_name}"],
                "list-sessions",
                "",
            )
            .await?
        else {
            return Ok(Vec::new());
        };
        Ok(String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_owned)
            .collect())
    }

    /// Starts a detached session running `spec.command` in a from-scratch environment.
    ///
    /// `env -i` is what keeps the server's global environment (which holds the
    /// daemon's own variables, secrets included, when the daemon started the server)
    /// away from the agent. `remain-on-exit` is set in the same tmux invocation, so it
    /// is in place before the server can reap a command that exits at once, and a dead
    /// pane can still be captured for the diagnostic.
    pub async fn new_session(&self, spec: &SessionSpec) -> Result<()> {
        // tmux would silently start the session in the home directory instead.
        if !spec.cwd.is_dir() {
            bail!(
                "cannot start session {}: {} is not a directory",
                spec.name,
                spec.cwd.display()
            );
        }
        let mut args: Vec<OsString> = vec![
            "new-session".into(),
            "-d".into(),
            "-s".into(),
            spec.name.clone().into(),
            "-c".into(),
            spec.cwd.clone().into(),
            "-x".into(),
            spec.width.to_string().into(),
            "-y".into(),
            spec.height.to_string().into(),
            "--".into(),
            "env".into(),
            "-i".into(),
        ];
        for (key, value) in &spec.env {
            if key.is_empty() || key.contains('=') {
                bail!(
                    "invalid environment variable name {key:?} for session {}",
                    spec.name
                );
            }
            args.push(format!("{key}={value}").into());
        }
        args.extend(spec.sandbox.iter().cloned());
        args.extend([
            "/bin/sh".into(),
            "-c".into(),
            spec.command.clone().into(),
            ";".into(),
            "set-option".into(),
            "-w".into(),
            "-t".into(),
            pane_target(&spec.name).into(),
            "remain-on-exit".into(),
            "on".into(),
        ]);
        if let Some(log) = &spec.pane_log {
            args.extend([";", "pipe-pane", "-o", "-t"].map(OsString::from));
            args.extend([pane_target(&spec.name), pipe_command(log)?].map(OsString::from));
        }
        // In the same invocation, so a pane that dies at once is signalled too.
        for hook in liveness::hooks() {
            args.push(";".into());
            args.extend(hook.iter().map(OsString::from));
        }
        let mut out = self.output(&args).await?;
        for _ in 1..NEW_SESSION_ATTEMPTS {
            // A server whose last session just closed exits; a client that
            // reached it meanwhile loses it. Nothing was made: try again,
            // and the next client starts a new server.
            if out.status.success() || !server_went_away(&out) {
                break;
            }
            out = self.output(&args).await?;
        }
        if !out.status.success() {
            // Not the argument list: it holds the environment's values.
            return Err(self.failure(
                "new-session",
                &format!(
                    "{} in {} running `{}`",
                    spec.name,
                    spec.cwd.display(),
                    spec.command
                ),
                &out,
            ));
        }
        Ok(())
    }

    /// Appends everything the pane prints to `log_path`. A pane that already pipes
    /// (re-attaching after a daemon restart) is left alone: `pipe-pane -o` on its own
    /// would toggle that pipe off rather than keep it.
    pub async fn pipe_pane(&self, name: &str, log_path: &Path) -> Result<()> {
        match self.pane_field(name, "#{pane_pipe}").await? {
            None => bail!("session {name} does not exist; cannot log its pane"),
            Some(piping) if piping == "1" => return Ok(()),
            Some(_) => {}
        }
        self.check(
            [
                "pipe-pane",
                "-o",
                "-t",
                &pane_target(name),
                &pipe_command(log_path)?,
            ],
            "pipe-pane",
            name,
        )
        .await?;
        Ok(())
    }

    /// The last `last_lines` lines of the pane (history included), wrapped lines
    /// joined, trailing blank lines dropped.
    pub async fn capture_pane(&self, name: &str, last_lines: u32) -> Result<String> {
        let start = format!("-{last_lines}");
        let out = self
            .check(
                [
                    "capture-pane",
                    "-p",
                    "-J",
                    "-S",
                    &start,
                    "-t",
                    &pane_target(name),
                ],
                "capture-pane",
                name,
            )
            .await?;
        Ok(screen_text(
            &String::from_utf8_lossy(&out.stdout),
            last_lines,
        ))
    }

    /// Whether the pane is dead and its last `last_lines` lines (as
    /// `capture_pane`), in one call; `None` when the session is gone.
    pub async fn pane_screen(&self, name: &str, last_lines: u32) -> Result<Option<(bool, String)>> {
        let start = format!("-{last_lines}");
        let target = pane_target(name);
        let Some(out) = self
            .present(
                [
                    "display-message",
                    "-p",
                    "-t",
                    &target,
                    "#{pane_dead}",
                    ";",
                    "capture-pane",
                    "-p",
                    "-J",
                    "-S",
                    &start,
                    "-t",
                    &target,
                ],
                "capture-pane",
                name,
            )
            .await?
        else {
            return Ok(None);
        };
        let text = String::from_utf8_lossy(&out.stdout);
        let (dead, screen) = text.split_once('\n').unwrap_or((&text, ""));
        Ok(Some((dead.trim() == "1", screen_text(screen, last_lines))))
    }

    /// Pastes `text` into the session as one message, then presses Enter.
    ///
    /// The text goes through a tmux buffer loaded from a private file, pasted with
    /// bracketed paste (`-p`) and without turning newlines into Enter (`-r`), so it
    /// is never interpreted as key names and a multi-line message stays one message.
    ///
    /// The text reaches tmux on its standard input (`load-buffer -`), never
    /// through a file: a file in a folder the agent can write could be swapped
    /// for a link between writing and loading it.
    ///
    /// Loading, pasting and Enter are one command list (one tmux process):
    /// tmux runs the paste once the buffer is read, and drops the rest of the
    /// list when a command fails, so nothing is pasted from a buffer that did
    /// not load and no Enter follows a paste that failed.
    pub async fn paste(&self, name: &str, text: &str) -> Result<()> {
        let clean = sanitize(text);
        let buffer = unique_buffer_name();
        let target = pane_target(name);
        let args = [
            "load-buffer",
            "-b",
            &buffer,
            "-",
            ";",
            "paste-buffer",
            "-p",
            "-r",
            "-d",
            "-b",
            &buffer,
            "-t",
            &target,
            ";",
            "send-keys",
            "-t",
            &target,
            "Enter",
        ];
        self.fed(&args, clean.as_bytes(), "paste-buffer", name)
            .await
    }

    /// Whether the session's pane has exited; `None` when the session is gone.
    pub async fn pane_dead(&self, name: &str) -> Result<Option<bool>> {
        Ok(self
            .pane_field(name, "#{pane_dead}")
            .await?
            .map(|v| v == "1"))
    }

    /// The pid of the pane's process (the agent); `None` when the session is gone.
    pub async fn pane_pid(&self, name: &str) -> Result<Option<u32>> {
        match self.pane_field(name, "#{pane_pid}").await? {
            None => Ok(None),
            Some(pid) => pid
                .parse()
                .map(Some)
                .with_context(|| format!("tmux reported pane pid {pid:?} for {name}")),
        }
    }

    async fn pane_field(&self, name: &str, format: &str) -> Result<Option<String>> {
        // `list-panes` rather than `display-message`: the latter prints an empty line
        // and succeeds when the target does not exist.
        let Some(out) = self
            .present(
                ["list-panes", "-t", &pane_target(name), "-F", format],
                "list-panes",
                name,
            )
            .await?
        else {
            return Ok(None);
        };
        let text = String::from_utf8_lossy(&out.stdout);
        Ok(text.lines().next().map(|l| l.trim().to_owned()))
    }

    /// Kills the session; a session that is already gone is fine.
    pub async fn kill_session(&self, name: &str) -> Result<()> {
        self.present(
            ["kill-session", "-t", &session_target(name)],
            "kill-session",
            name,
        )
        .await?;
        Ok(())
    }

    /// Kills the whole server; no server running is fine.
    pub async fn kill_server(&self) -> Result<()> {
        self.present(["kill-server"], "kill-server", "").await?;
        Ok(())
    }

    /// Waits until `pattern` shows on the pane. Errors on timeout, or when the session
    /// disappears or its process exits without ever showing it.
    pub async fn wait_for_text(&self, name: &str, pattern: &str, timeout: Duration) -> Result<()> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let dead = self.pane_dead(name).await?;
            let Some(dead) = dead else {
                bail!("session {name} ended before showing {pattern:?}");
            };
            // Capture after reading the state: a pane that printed the pattern and then
            // died still counts as having shown it.
            let screen = self.capture_pane(name, SCREEN_LINES).await?;
            if screen.contains(pattern) {
                return Ok(());
            }
            if dead {
                bail!(
                    "the process in session {name} exited before showing {pattern:?}; screen:\n{screen}"
                );
            }
            if tokio::time::Instant::now() >= deadline {
                bail!(
                    "timed out after {timeout:?} waiting for {pattern:?} in session {name}; screen:\n{screen}"
                );
            }
            tokio::time::sleep(SCREEN_POLL).await;
        }
    }

    /// `load-buffer -b buffer -` with `bytes` on standard input.
    /// Runs tmux with `args`, `bytes` on its standard input; `verb` and
    /// `name` say what failed.
    async fn fed(&self, args: &[&str], bytes: &[u8], verb: &str, name: &str) -> Result<()> {
        let mut child = self
            .command()
            .args(args)
            .stdin(Stdio::piped())
            .spawn()
            .with_context(|| format!("running tmux{} {verb}", self.socket_note()))?;
        let mut stdin = child
            .stdin
            .take()
            .with_context(|| format!("tmux {verb} has no stdin"))?;
        let fed = async {
            tokio::io::AsyncWriteExt::write_all(&mut stdin, bytes).await?;
            drop(stdin);
            child.wait_with_output().await
        };
        let out = tokio::time::timeout(CALL_TIMEOUT, fed)
            .await
            .map_err(|_| self.timed_out(verb))?
            .with_context(|| format!("feeding tmux{} {verb}", self.socket_note()))?;
        if !out.status.success() {
            return Err(self.failure(verb, name, &out));
        }
        Ok(())
    }

    fn timed_out(&self, verb: &str) -> anyhow::Error {
        anyhow::anyhow!(
            "tmux{} {verb} did not answer within {}s",
            self.socket_note(),
            CALL_TIMEOUT.as_secs()
        )
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new("tmux");
        if let Some(socket) = &self.socket {
            cmd.arg("-L").arg(socket);
        }
        // A clean environment (see `TMUX_ENV`). `TMUX` and `TMUX_PANE` in
        // particular would point at the daemon's own session and make tmux
        // talk to that server or refuse nesting.
        cmd.env_clear();
        for (key, value) in std::env::vars_os() {
            let keep = key
                .to_str()
                .is_some_and(|k| TMUX_ENV.contains(&k) || k.starts_with("LC_"));
            if keep {
                cmd.env(key, value);
            }
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        cmd
    }

    async fn output<I, S>(&self, args: I) -> Result<Output>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let args: Vec<OsString> = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
        let verb = args
            .first()
            .map(|a| a.to_string_lossy().into_owned())
            .unwrap_or_default();
        tokio::time::timeout(CALL_TIMEOUT, self.command().args(&args).output())
            .await
            .map_err(|_| self.timed_out(&verb))?
            .with_context(|| format!("running tmux{} {verb}", self.socket_note()))
    }

    /// Runs a tmux command about session `name` (empty: the server): its
    /// output, or `None` when the session or the server does not exist.
    async fn present<I, S>(&self, args: I, verb: &str, name: &str) -> Result<Option<Output>>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let out = self.output(args).await?;
        if out.status.success() {
            Ok(Some(out))
        } else if is_absent(&out) {
            Ok(None)
        } else {
            Err(self.failure(verb, name, &out))
        }
    }

    /// Runs a tmux command that must succeed.
    async fn check<I, S>(&self, args: I, verb: &str, name: &str) -> Result<Output>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let out = self.output(args).await?;
        if !out.status.success() {
            return Err(self.failure(verb, name, &out));
        }
        Ok(out)
    }

    fn socket_note(&self) -> String {
        match &self.socket {
            Some(s) => format!(" -L {s}"),
            None => String::new(),
        }
    }
}

/// The last `last_lines` lines of captured text, trailing blank lines dropped.
fn screen_text(text: &str, last_lines: u32) -> String {
    let lines: Vec<&str> = text.trim_end().lines().collect();
    let keep = lines.len().saturating_sub(last_lines as usize);
    let mut screen = lines[keep..].join("\n");
    if !screen.is_empty() {
        screen.push('\n');
    }
    screen
}

/// Removes what could act on the terminal or the agent's input handling: ESC
/// sequences (CSI, OSC, DCS and the like, 7- and 8-bit), every other C0/C1 control
/// and DEL, keeping `\n` and `\t`; CRLF and lone CR become LF.
pub fn sanitize(text: &str) -> String {
    let text = text.replace("\r\n", "\n").replace('\r', "\n");
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\n' | '\t' => out.push(c),
            '\u{1b}' => match chars.next() {
                Some('[') => skip_csi(&mut chars),
                Some(']') => skip_string(&mut chars, true),
                Some('P' | 'X' | '^' | '_') => skip_string(&mut chars, false),
                // Other escapes: intermediates (0x20–0x2F) then one final byte.
                Some(c) if ('\u{20}'..='\u{2f}').contains(&c) => {
                    while chars
                        .next_if(|c| ('\u{20}'..='\u{2f}').contains(c))
                        .is_some()
                    {}
                    chars.next();
                }
                _ => {}
            },
            '\u{9b}' => skip_csi(&mut chars),
            '\u{9d}' => skip_string(&mut chars, true),
            '\u{90}' | '\u{98}' | '\u{9e}' | '\u{9f}' => skip_string(&mut chars, false),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// Skips a CSI sequence's parameters and intermediates up to its final byte. A
/// malformed sequence ends at the first character that cannot belong to it.
fn skip_csi(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) {
    while let Some(&c) = chars.peek() {
        match c {
            '\u{20}'..='\u{3f}' => {
                chars.next();
            }
            '\u{40}'..='\u{7e}' => {
                chars.next();
                return;
            }
            _ => return,
        }
    }
}

/// Skips a control string (OSC, DCS, SOS, PM, APC) through its terminator: ST
/// (`ESC \` or 0x9C), or BEL for OSC. An unterminated string runs to the end.
fn skip_string(chars: &mut std::iter::Peekable<std::str::Chars<'_>>, bel_ends: bool) {
    while let Some(c) = chars.next() {
        match c {
            '\u{9c}' => return,
            '\u{7}' if bel_ends => return,
            '\u{1b}' => {
                chars.next_if_eq(&'\\');
                return;
            }
            _ => {}
        }
    }
}

/// The shell command `pipe-pane` runs to append the pane's output to `log_path`.
fn pipe_command(log_path: &Path) -> Result<String> {
    let path = log_path
        .to_str()
        .with_context(|| format!("pane log path {} is not UTF-8", log_path.display()))?;
    Ok(format!("cat >> {}", shell_quote(path)))
}

/// Quotes `s` as one word for `sh -c`: single quotes, with `'` written as `'\''`.
pub fn shell_quote(s: &str) -> String {
    let mut quoted = String::with_capacity(s.len() + 2);
    quoted.push('\'');
    for c in s.chars() {
        if c == '\'' {
            quoted.push_str("'\\''");
        } else {
            quoted.push(c);
        }
    }
    quoted.push('\'');
    quoted
}

fn session_target(name: &str) -> String {
    format!("={name}")
}

fn pane_target(name: &str) -> String {
    format!("={name}:")
}

/// A buffer name no other paste (from this or another daemon) uses at the same time,
/// so concurrent pastes into different sessions never swap texts.
fn unique_buffer_name() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("forgehand-{}-{n}-{nanos}", std::process::id())
}

/// Whether tmux lost a server that was exiting while it talked to it.
fn server_went_away(out: &Output) -> bool {
    let stderr = String::from_utf8_lossy(&out.stderr);
    ["server exited unexpectedly", "lost server"]
        .iter()
        .any(|m| stderr.contains(m))
}

/// Whether tmux failed because the server or the session does not exist.
fn is_absent(out: &Output) -> bool {
    let stderr = String::from_utf8_lossy(&out.stderr);
    [
        "no server running",
        "can't find session",
        "can't find window",
        "can't find pane",
        "error connecting to",
        // The server was exiting (its last session just went) as we asked,
        // or the session was being destroyed while tmux resolved the target.
        "server exited unexpectedly",
        "lost server",
        "no current target",
    ]
    .iter()
    .any(|m| stderr.contains(m))
}

impl Tmux {
    fn failure(&self, verb: &str, name: &str, out: &Output) -> anyhow::Error {
        let mut msg = format!("tmux{} {verb}", self.socket_note());
        if !name.is_empty() {
            let _ = write!(msg, " {name}");
        }
        let _ = write!(
            msg,
            " failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
        anyhow::anyhow!(msg)
    }
}
