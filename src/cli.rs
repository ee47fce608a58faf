//! The command line (DESIGN §3). Exit codes: 0 ok, 1 runtime error, 2 usage
//! or configuration error.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use chrono::Utc;
use clap::{Parser, Subcommand};

use crate::config::{self, ForgeConfig};
use crate::daemon::{self, RunError, RunOptions};
use crate::forge::local::{
    LocalArgs, ReviewVerdict, plan_number, submit_comment, submit_review, wait_for_answer,
};
use crate::paths::{StatePaths, session_name};
use crate::store::{
    ClaimRow, ClaimStatus, Db, EventRow, ForgeQuota, OutboxSummary, TokenUsage, Waiting,
};
use crate::text::{escape_line, escape_lines, json_for_terminal};

#[derive(Debug, Parser)]
#[command(
    name = "forgehand",
    version,
    about = "Turns labelled forge issues into merged pull requests, one AI coding agent per issue in tmux"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the daemon.
    Run {
        /// Folder of project files.
        #[arg(long, default_value = "projects")]
        projects: PathBuf,
        /// State folder (database, lock, sessions, clones, worktrees).
        #[arg(long, default_value = "state")]
        state: PathBuf,
        /// One poll per project, start the sessions it claims, then exit.
        #[arg(long)]
        once: bool,
        /// Serve forge webhooks (POST /hooks/forgejo, /hooks/github) on this
        /// address, e.g. 127.0.0.1:8080; port 0 picks a free port (logged).
        #[arg(long, value_name = "ADDR")]
        listen: Option<String>,
        /// Serve the web dashboard, /api/status and /metrics on this address,
        /// e.g. 127.0.0.1:8081; anything but loopback needs
        /// FORGEHAND_DASHBOARD_TOKEN.
        #[arg(long, value_name = "ADDR")]
        dashboard: Option<String>,
        /// One poll per project that changes nothing: print what would be
        /// claimed, and why the other ready issues would not be.
        #[arg(long, conflicts_with_all = ["once", "listen", "dashboard"])]
        dry_run: bool,
    },
    /// Show the issues forgehand holds, or one issue's journal.
    Status {
        #[arg(long, default_value = "state")]
        state: PathBuf,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
        /// With ISSUE: print that issue's journal.
        project: Option<String>,
        issue: Option<u64>,
    },
    /// Check every project's set-up: the forge token and its rights, the
    /// labels, the programs, the state folder; exit 0 only when all pass.
    Doctor {
        #[arg(long, default_value = "projects")]
        projects: PathBuf,
        #[arg(long, default_value = "state")]
        state: PathBuf,
        /// Create what is missing on the forge (the labels).
        #[arg(long)]
        fix: bool,
    },
    /// Project file commands.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Let pollers pick new issues (creates state/.dev-active).
    Enable {
        #[arg(long, default_value = "state")]
        state: PathBuf,
    },
    /// Stop picking new issues; live sessions stay supervised.
    Disable {
        #[arg(long, default_value = "state")]
        state: PathBuf,
    },
    /// Attach to an issue's tmux session (`issue` is its number, or a local plan's name).
    Attach { project: String, issue: String },
    /// Show the whole job on a throw-away local project: three plans, a
    /// scripted agent, real git, tmux and CI; exits 0 when all three merged.
    Demo {
        /// Folder for the demo's repository, plans and state (new or empty);
        /// a temporary folder by default.
        #[arg(long)]
        state: Option<PathBuf>,
        /// Keep the folder (and any unfinished sessions) at the end.
        #[arg(long)]
        keep: bool,
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 240)]
        timeout: u64,
    },
    /// Approve the pull request of a local plan (`forge.kind = "local"`) on its current head.
    Approve {
        #[arg(long, default_value = "projects")]
        projects: PathBuf,
        project: String,
        /// The plan's name (its file name without `.md`).
        key: String,
    },
    /// Request changes on the pull request of a local plan, on its current head.
    RequestChanges {
        #[arg(long, default_value = "projects")]
        projects: PathBuf,
        project: String,
        /// The plan's name (its file name without `.md`).
        key: String,
        /// What to change; the agent is given it.
        #[arg(long)]
        message: String,
    },
    /// Answer the escalation of a local plan: the text reaches the agent as a
    /// person's reply, like a comment on a forge issue. A message
    /// `/forgehand stop|retry|hold|release|status` is a command instead, for
    /// any plan forgehand works on; its answer is printed.
    Reply {
        #[arg(long, default_value = "projects")]
        projects: PathBuf,
        /// The daemon's state folder, to check the plan waits for an answer.
        #[arg(long, default_value = "state")]
        state: PathBuf,
        project: String,
        /// The plan's name (its file name without `.md`).
        key: String,
        /// The answer; the agent is given it.
        #[arg(long)]
        message: String,
    },
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Validate every project file.
    Check {
        #[arg(long, default_value = "projects")]
        projects: PathBuf,
    },
}

const EXIT_RUNTIME: u8 = 1;
const EXIT_CONFIG: u8 = 2;

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match dispatch(cli.command) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("forgehand: {e:#}");
            ExitCode::from(EXIT_RUNTIME)
        }
    }
}

fn dispatch(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Run {
            projects,
            state,
            dry_run: true,
            ..
        } => dry_run(&projects, &state),
        Command::Doctor {
            projects,
            state,
            fix,
        } => doctor(&projects, &state, fix),
        Command::Run {
            projects,
            state,
            once,
            listen,
            dashboard,
            dry_run: false,
        } => {
            init_tracing();
            let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
            let opts = RunOptions {
                projects_dir: projects,
                state_dir: state,
                once,
                listen,
                dashboard,
            };
            match runtime.block_on(daemon::run(opts)) {
                Ok(()) => Ok(ExitCode::SUCCESS),
                Err(RunError::Config(errors)) => {
                    for e in errors {
                        eprintln!("{e}");
                    }
                    Ok(ExitCode::from(EXIT_CONFIG))
                }
                Err(RunError::Runtime(e)) => Err(e),
            }
        }
        Command::Status {
            state,
            json,
            project,
            issue,
        } => status(&state, json, project, issue),
        Command::Config {
            command: ConfigCommand::Check { projects },
        } => {
            let report = config::check_dir(&projects);
            print!("{}", report.render());
            // The daemon's own budget file, beside the projects.
            let daemon_budget = config::daemon_budget::load_daemon_budget(&projects);
            for e in daemon_budget.as_ref().err().into_iter().flatten() {
                println!("{e}");
            }
            Ok(if report.is_ok() && daemon_budget.is_ok() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(EXIT_CONFIG)
            })
        }
        Command::Enable { state } => {
            let paths = StatePaths::new(&state);
            std::fs::create_dir_all(paths.root())
                .with_context(|| format!("creating {}", state.display()))?;
            std::fs::write(paths.dev_active(), b"")
                .with_context(|| format!("creating {}", paths.dev_active().display()))?;
            println!(
                "enabled: {} exists; pollers pick new issues",
                paths.dev_active().display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Disable { state } => {
            let paths = StatePaths::new(&state);
            match std::fs::remove_file(paths.dev_active()) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(e)
                        .with_context(|| format!("removing {}", paths.dev_active().display()));
                }
            }
            println!("disabled: no new issues are picked; live sessions stay supervised");
            Ok(ExitCode::SUCCESS)
        }
        Command::Attach { project, issue } => attach(&project, &issue),
        Command::Demo {
            state,
            keep,
            timeout,
        } => crate::demo::run(crate::demo::DemoOptions {
            dir: state,
            keep,
            timeout: std::time::Duration::from_secs(timeout),
        }),
        Command::Approve {
            projects,
            project,
            key,
        } => review(&projects, &project, &key, ReviewVerdict::Approved, ""),
        Command::RequestChanges {
            projects,
            project,
            key,
            message,
        } => review(
            &projects,
            &project,
            &key,
            ReviewVerdict::ChangesRequested,
            &message,
        ),
        Command::Reply {
            projects,
            state,
            project,
            key,
            message,
        } => reply(&projects, &state, &project, &key, &message),
    }
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("FORGEHAND_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

fn status(
    state: &Path,
    json: bool,
    project: Option<String>,
    issue: Option<u64>,
) -> anyhow::Result<ExitCode> {
    // Read-only: a look at the state must never change it, whether the
    // daemon runs or not, and must work on a database it may not write.
    let store = Db::open_read_only(&StatePaths::new(state).db())?;
    if let (Some(project), Some(issue)) = (&project, issue) {
        let events = store.events(project, Some(issue))?;
        if json {
            println!(
                "{}",
                json_for_terminal(&serde_json::to_string_pretty(&events)?)
            );
        } else if events.is_empty() {
            println!("no journal entries for {project}#{issue}");
        } else {
            print!("{}", render_journal(&events));
        }
        return Ok(ExitCode::SUCCESS);
    }
    if json {
        // The dashboard's `/api/status` serves the same.
        let status = store.status_json(project.as_deref())?;
        println!(
            "{}",
            json_for_terminal(&serde_json::to_string_pretty(&status)?)
        );
    } else {
        let claims = store.claims(project.as_deref(), None)?;
        let usage = claims
            .iter()
            .map(|c| store.usage(&c.project, c.issue))
            .collect::<anyhow::Result<Vec<_>>>()?;
        print!("{}", render_table(&claims, &usage));
        let quotas = store.forge_quotas()?;
        let quotas: Vec<_> = quotas
            .iter()
            .filter(|q| project.as_deref().is_none_or(|p| p == q.project))
            .collect();
        print!("{}", render_quotas(&quotas));
        let outbox = store.outbox_summary()?;
        let outbox: Vec<_> = outbox
            .iter()
            .filter(|o| project.as_deref().is_none_or(|p| p == o.project))
            .collect();
        print!("{}", render_outbox(&outbox));
        for stop in store.picking_stops()? {
            if project.as_deref().is_none_or(|p| p == stop.project) {
                println!(
                    "not picking in {}: {} (since {})",
                    escape_line(&stop.project),
                    escape_line(&stop.reason),
                    stop.since.format("%Y-%m-%d %H:%M:%S UTC")
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// One line per project whose forge reports an API quota (GitHub): what is left
/// and when it fills up again, as of the forge's latest answer.
fn render_quotas(quotas: &[&ForgeQuota]) -> String {
    let now = Utc::now();
    let mut out = String::new();
    for q in quotas {
        let of = q.limit.map_or(String::new(), |l| format!("/{l}"));
        out.push_str(&format!(
            "forge quota of {}: {}{of} requests left until {} (as of {} ago)\n",
            escape_line(&q.project),
            q.remaining,
            q.reset_at.format("%Y-%m-%d %H:%M:%S UTC"),
            age(now - q.updated_at)
        ));
    }
    out
}

/// One line per project with chat messages not yet accepted by the homeserver.
fn render_outbox(outbox: &[&OutboxSummary]) -> String {
    let now = Utc::now();
    let mut out = String::new();
    for o in outbox {
        let s = if o.waiting == 1 { "" } else { "s" };
        out.push_str(&format!(
            "chat outbox of {}: {} message{s} waiting since {} ({} ago)\n",
            escape_line(&o.project),
            o.waiting,
            o.since.format("%Y-%m-%d %H:%M:%S UTC"),
            age(now - o.since)
        ));
    }
    out
}

/// Where a journal entry's detail starts: after the time and the kind column.
const DETAIL_COLUMN: usize = "2000-01-01 00:00:00  ".len() + 16 + 1;

/// One entry a line; the further lines of a multi-line detail are indented
/// under the detail, so no text in an entry can pass for another entry.
fn render_journal(events: &[EventRow]) -> String {
    let mut out = String::new();
    for e in events {
        let detail = escape_lines(&e.detail);
        let mut lines = detail.lines();
        out.push_str(&format!(
            "{}  {:<16} {}\n",
            e.at.format("%Y-%m-%d %H:%M:%S"),
            escape_line(&e.kind),
            lines.next().unwrap_or_default()
        ));
        for line in lines {
            out.push_str(&format!("{:DETAIL_COLUMN$}{line}\n", ""));
        }
    }
    out
}

/// Titles are cut to this many characters so a row stays one line.
const TITLE_WIDTH: usize = 50;

/// Every cell goes through [`escape_line`]: titles are the forge's, and the
/// rest is stored text too.
fn render_table(claims: &[ClaimRow], usage: &[Option<TokenUsage>]) -> String {
    let mut rows = vec![
        [
            "PROJECT",
            "ISSUE",
            "STATUS",
            "PHASE",
            "WAITING",
            "PR",
            "CI",
            "REVIEWS",
            "IN PHASE",
            "AGE",
            "TOKENS IN/OUT/CACHE",
            "SESSION",
            "TITLE",
        ]
        .map(String::from)
        .to_vec(),
    ];
    let now = Utc::now();
    for (c, u) in claims.iter().zip(usage) {
        let tokens = u.map_or("-".into(), |u| {
            format!(
                "{}/{}/{}",
                u.input,
                u.output,
                u.cache_creation + u.cache_read
            )
        });
        rows.push(vec![
            c.project.clone(),
            format!("#{}", c.issue),
            c.status.as_str().to_string(),
            c.stage.clone(),
            c.waiting.map_or("-", |w| w.as_str()).to_string(),
            c.pr.map_or("-".into(), |p| format!("#{p}")),
            c.ci_attempts.to_string(),
            c.review_rounds.to_string(),
            age(now - c.stage_since),
            age(now - c.claimed_at),
            tokens,
            c.session.clone(),
            shorten(&escape_line(&c.title), TITLE_WIDTH),
        ]);
    }
    if claims.is_empty() {
        return "forgehand holds no issues\n".to_string();
    }
    let rows: Vec<Vec<String>> = rows
        .into_iter()
        .map(|r| r.iter().map(|c| escape_line(c).into_owned()).collect())
        .collect();
    let widths: Vec<usize> = (0..rows[0].len())
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for r in rows {
        let line: Vec<String> = r
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    let down: Vec<String> = claims
        .iter()
        .filter(|c| c.waiting == Some(Waiting::Forge))
        .map(|c| format!("{} #{}", c.project, c.issue))
        .collect();
    if !down.is_empty() {
        let _ = writeln!(
            out,
            "\nwaiting for the forge (it does not answer; retried with backoff): {}",
            down.join(", ")
        );
    }
    out
}

/// `text` cut to `max` characters, the cut marked with `…`.
fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut cut: String = text.chars().take(max - 1).collect();
    cut.push('…');
    cut
}

fn age(d: chrono::TimeDelta) -> String {
    let s = d.num_seconds().max(0);
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86400 => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
        _ => format!("{}d{}h", s / 86400, (s % 86400) / 3600),
    }
}

/// `approve` / `request-changes`: a review file for the local backend. A
/// project that cannot be loaded, does not exist or is not local is a usage
/// error (exit 2); anything about the plan itself a runtime error (exit 1).
fn review(
    projects: &Path,
    name: &str,
    key: &str,
    verdict: ReviewVerdict,
    message: &str,
) -> anyhow::Result<ExitCode> {
    let args = match local_project(projects, name, "review it on its forge") {
        Ok(args) => args,
        Err(code) => return Ok(code),
    };
    if verdict == ReviewVerdict::ChangesRequested && message.trim().is_empty() {
        eprintln!("forgehand: --message must say what to change");
        return Ok(ExitCode::from(EXIT_CONFIG));
    }
    // The local backend runs git on the async runtime, as in the daemon.
    let runtime = current_thread_runtime()?;
    let path = runtime
        .block_on(submit_review(
            &args.plans,
            &args.repo,
            key,
            verdict,
            message,
        ))
        .with_context(|| format!("reviewing plan `{key}` of project {name}"))?;
    let what = match verdict {
        ReviewVerdict::Approved => "approved",
        ReviewVerdict::ChangesRequested => "changes requested",
    };
    println!("{what}: {key} ({})", path.display());
    Ok(ExitCode::SUCCESS)
}

/// The local backend's settings of project `name`, or the usage error (exit
/// 2, said on stderr) when it cannot be loaded, does not exist or is not
/// local (`elsewhere` says what to do then).
fn local_project(projects: &Path, name: &str, elsewhere: &str) -> Result<LocalArgs, ExitCode> {
    let loaded = match config::load_dir(projects) {
        Ok(loaded) => loaded,
        Err(errors) => {
            for e in errors {
                eprintln!("{e}");
            }
            return Err(ExitCode::from(EXIT_CONFIG));
        }
    };
    let Some(project) = loaded.iter().find(|p| p.name == name) else {
        eprintln!(
            "forgehand: no project named `{name}` in {}",
            projects.display()
        );
        return Err(ExitCode::from(EXIT_CONFIG));
    };
    let ForgeConfig::Local(local) = &project.forge else {
        eprintln!(
            "forgehand: project `{name}` ({}) is not local: {elsewhere}",
            project.source.display()
        );
        return Err(ExitCode::from(EXIT_CONFIG));
    };
    Ok(LocalArgs::from_project(project, local, None))
}

/// `reply`: a person's comment on a local plan whose agent waits for an
/// answer, or a `/forgehand` command on a plan forgehand works on. Anything
/// else (no such plan, no escalation, no live claim) is refused with the
/// reason, so a comment never lands where nobody reads it.
fn reply(
    projects: &Path,
    state: &Path,
    name: &str,
    key: &str,
    message: &str,
) -> anyhow::Result<ExitCode> {
    let args = match local_project(projects, name, "answer on its forge or in Matrix") {
        Ok(args) => args,
        Err(code) => return Ok(code),
    };
    if message.trim().is_empty() {
        eprintln!("forgehand: --message must hold the answer");
        return Ok(ExitCode::from(EXIT_CONFIG));
    }
    let number = plan_number(&args.plans, key)?;
    let paths = StatePaths::new(state);
    let db = Db::open_read_only(&paths.db())?;
    let Some(claim) = db.claim(name, number)? else {
        anyhow::bail!("forgehand holds no claim on plan `{key}` of {name}: nothing asked");
    };
    let command = crate::commands::parse(message);
    let (status, stage) = (claim.status.as_str(), escape_line(&claim.stage));
    match command {
        Some(c) if claim.status != ClaimStatus::Active => anyhow::bail!(
            "forgehand does not work on plan `{key}` of {name} (it is {status}, in phase {stage}): \
             /forgehand {} would do nothing; move a blocked plan back into the folder to have it picked again",
            c.as_str()
        ),
        None if claim.waiting != Some(Waiting::Answer) => anyhow::bail!(
            "plan `{key}` of {name} is not waiting for an answer (it is {status}, in phase {stage})"
        ),
        _ => {}
    }
    let (path, comment) = submit_comment(&args.plans, key, message)
        .with_context(|| format!("answering plan `{key}` of project {name}"))?;
    let Some(command) = command else {
        println!("answered: {key} ({})", path.display());
        return Ok(ExitCode::SUCCESS);
    };
    let verb = command.as_str();
    if !crate::lockfile::is_held(&paths.lock())? {
        println!(
            "sent: /forgehand {verb} for {key} ({}); no daemon runs on {}: it is obeyed when one does",
            path.display(),
            state.display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    match wait_for_answer(&args.plans, &comment, COMMAND_ANSWER_WAIT)? {
        Some(answer) => {
            println!(
                "/forgehand {verb} for {key}: {}",
                escape_lines(answer.trim())
            );
            Ok(ExitCode::SUCCESS)
        }
        None => anyhow::bail!(
            "sent /forgehand {verb} for {key} ({}), but the daemon did not answer within {}s; \
             it is obeyed when the daemon next looks at the plan",
            path.display(),
            COMMAND_ANSWER_WAIT.as_secs()
        ),
    }
}

/// How long `reply` waits for the daemon to answer a command: it is told of
/// the comment at once (the plans folder is watched), but may be busy.
const COMMAND_ANSWER_WAIT: std::time::Duration = std::time::Duration::from_secs(60);

fn attach(project: &str, issue: &str) -> anyhow::Result<ExitCode> {
    use std::os::unix::process::CommandExt;
    let target = format!("={}", session_name(project, issue));
    // Same server rules as the daemon: the user's default server, TMUX_TMPDIR honoured.
    let err = std::process::Command::new("tmux")
        .args(["attach-session", "-t", &target])
        .exec();
    Err(err).context("running tmux attach-session")
}

/// `run --dry-run`: the report on stdout; a project file that cannot be
/// loaded is a configuration error (exit 2).
fn dry_run(projects: &Path, state: &Path) -> anyhow::Result<ExitCode> {
    let Some(loaded) = load_projects(projects) else {
        return Ok(ExitCode::from(EXIT_CONFIG));
    };
    let runtime = current_thread_runtime()?;
    let report = runtime.block_on(crate::dry_run::report(&loaded, state))?;
    print!("{report}");
    Ok(ExitCode::SUCCESS)
}

/// Every project of `projects`, or `None` after printing why not.
fn load_projects(projects: &Path) -> Option<Vec<config::Project>> {
    match config::load_dir(projects) {
        Ok(loaded) => Some(loaded),
        Err(errors) => {
            for e in errors {
                eprintln!("{e}");
            }
            None
        }
    }
}

/// `doctor`: a line per check on stdout; exit 0 only when none failed.
fn doctor(projects: &Path, state: &Path, fix: bool) -> anyhow::Result<ExitCode> {
    let Some(loaded) = load_projects(projects) else {
        return Ok(ExitCode::from(EXIT_CONFIG));
    };
    let runtime = current_thread_runtime()?;
    let report = runtime.block_on(crate::doctor::run(&loaded, state, fix));
    print!("{}", report.text);
    if report.failed > 0 {
        println!("{} check(s) failed", report.failed);
        return Ok(ExitCode::from(EXIT_RUNTIME));
    }
    Ok(ExitCode::SUCCESS)
}

/// A runtime for one command's async work on this thread.
fn current_thread_runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}
