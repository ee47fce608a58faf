//! `forgehand doctor`: checks every project's set-up before the daemon runs
//! on it, one line per check with what to do when it fails. Forge checks
//! only read, unless `--fix` (which creates missing labels). Exit 0 only
//! when nothing failed; a check of a part the project does not configure
//! says `skip`. `services.rs`: the webhook, CI and Matrix checks.

use std::fmt::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

mod services;

use std::sync::Arc;

use crate::ci::CiServer;
use crate::config::{ForgeConfig, Project};
use crate::forge::Forge;
use crate::sandbox::{self, SandboxKind};

/// The least free space in the state folder's file system that passes.
pub const MIN_FREE_BYTES: u64 = 1024 * 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    Fail,
    Skip,
}

/// The checks' lines and whether all passed.
#[derive(Debug, Default)]
pub struct Report {
    pub text: String,
    pub failed: usize,
}

impl Report {
    pub(crate) fn line(&mut self, outcome: Outcome, scope: &str, what: &str) {
        let tag = match outcome {
            Outcome::Ok => "ok  ",
            Outcome::Fail => "FAIL",
            Outcome::Skip => "skip",
        };
        if outcome == Outcome::Fail {
            self.failed += 1;
        }
        let _ = writeln!(self.text, "{tag} {scope}: {what}");
    }
}

pub async fn run(projects: &[Project], state: &Path, fix: bool) -> Report {
    let mut r = Report::default();
    local_checks(&mut r, state, fix);
    for project in projects {
        // What the forge, the CI or the homeserver answered is printed: cut
        // out any of the project's secrets it might echo.
        let from = r.text.len();
        project_checks(&mut r, project, fix).await;
        let redactor = crate::redact::Redactor::new(project.secrets.values());
        let lines = redactor.redact(&r.text[from..]);
        r.text.truncate(from);
        r.text.push_str(&lines);
    }
    r
}

/// What the whole daemon needs: git, tmux, the state folder and its space.
fn local_checks(r: &mut Report, state: &Path, fix: bool) {
    let path = std::env::var("PATH").ok();
    for (program, why) in [
        ("git", "install git"),
        ("tmux", "install tmux (sessions run in it)"),
    ] {
        match sandbox::find_program(program, path.as_deref()) {
            Some(at) => r.line(
                Outcome::Ok,
                "daemon",
                &format!("{program}: {}", at.display()),
            ),
            None => r.line(
                Outcome::Fail,
                "daemon",
                &format!("{program} not found in PATH: {why}"),
            ),
        }
    }
    let open = |m: &std::fs::Metadata| m.permissions().mode() & 0o077 != 0;
    if fix && std::fs::metadata(state).is_ok_and(|m| open(&m)) {
        let private = std::fs::Permissions::from_mode(0o700);
        if let Err(e) = std::fs::set_permissions(state, private) {
            r.line(
                Outcome::Fail,
                "daemon",
                &format!("cannot chmod 700 {}: {e}", state.display()),
            );
        }
    }
    match std::fs::metadata(state) {
        Ok(m) if open(&m) => r.line(
            Outcome::Fail,
            "daemon",
            &format!(
                "state folder {} is open to others (mode {:o}): chmod 700 it (or --fix)",
                state.display(),
                m.permissions().mode() & 0o777
            ),
        ),
        Ok(_) => r.line(
            Outcome::Ok,
            "daemon",
            &format!("state folder {} is private", state.display()),
        ),
        Err(_) => r.line(
            Outcome::Ok,
            "daemon",
            &format!(
                "state folder {} will be made at the first run",
                state.display()
            ),
        ),
    }
    let existing = state
        .ancestors()
        .find(|p| p.exists())
        .unwrap_or(Path::new("."));
    match nix::sys::statvfs::statvfs(existing) {
        Ok(s) => {
            let free = s.blocks_available() * s.fragment_size();
            let gib = free as f64 / (1u64 << 30) as f64;
            if free >= MIN_FREE_BYTES {
                r.line(
                    Outcome::Ok,
                    "daemon",
                    &format!("{gib:.1} GiB free for the state folder"),
                );
            } else {
                r.line(
                    Outcome::Fail,
                    "daemon",
                    &format!("only {gib:.2} GiB free for the state folder (worktrees need room): free space or use another --state"),
                );
            }
        }
        Err(e) => r.line(
            Outcome::Fail,
            "daemon",
            &format!("cannot read the free space of {}: {e}", existing.display()),
        ),
    }
}

async fn project_checks(r: &mut Report, project: &Project, fix: bool) {
    let scope = project.name.as_str();
    let path = std::env::var("PATH").ok();
    let program = project
        .agent
        .command
        .split_whitespace()
        .next()
        .unwrap_or_default();
    match sandbox::find_program(program, path.as_deref()) {
        Some(at) => r.line(
            Outcome::Ok,
            scope,
            &format!("agent command {program}: {}", at.display()),
        ),
        None => r.line(
            Outcome::Fail,
            scope,
            &format!(
                "agent command {program:?} not found in PATH: install it or fix [agent] command"
            ),
        ),
    }
    match project.agent.sandbox {
        SandboxKind::Bwrap => match sandbox::find_bwrap(path.as_deref()) {
            Some(at) => r.line(Outcome::Ok, scope, &format!("sandbox: {}", at.display())),
            None => r.line(Outcome::Fail, scope, &sandbox::missing_bwrap_message()),
        },
        SandboxKind::None => r.line(Outcome::Ok, scope, "sandbox: none (agents run unconfined)"),
    }
    let (forge, ci) = match clients(project) {
        Ok(c) => c,
        Err(e) => {
            r.line(Outcome::Fail, scope, &format!("forge client: {e:#}"));
            return;
        }
    };
    forge_checks(r, project, forge.as_ref(), fix).await;
    services::webhook_check(r, project, forge.as_ref()).await;
    services::ci_check(r, project, ci.as_deref()).await;
    services::matrix_check(r, project).await;
}

/// The forge client and the CI server the daemon would use.
type Clients = (Arc<dyn Forge>, Option<Arc<dyn CiServer>>);

fn clients(project: &Project) -> anyhow::Result<Clients> {
    let github = match &project.forge {
        ForgeConfig::Github(config) => {
            Some(Arc::new(crate::daemon::github_client(project, config)?))
        }
        _ => None,
    };
    let forge: Arc<dyn Forge> = match &github {
        Some(client) => client.clone(),
        None => crate::dry_run::forge_client(project)?,
    };
    Ok((forge, crate::daemon::ci_server(project, github.as_ref())?))
}

async fn forge_checks(r: &mut Report, project: &Project, forge: &dyn Forge, fix: bool) {
    let scope = project.name.as_str();
    let at = project.forge.location();
    let login = match forge.current_user().await {
        Ok(login) => {
            r.line(
                Outcome::Ok,
                scope,
                &format!("forge {at}: signed in as {login}"),
            );
            login
        }
        Err(e) => {
            r.line(
                Outcome::Fail,
                scope,
                &format!("forge {at}: cannot sign in ({e}): check the token in [forge] token_env"),
            );
            return;
        }
    };
    // Not the issue list: filtered by a label the repository lacks, Forgejo
    // would list every issue.
    match forge.list_open_pulls().await {
        Ok(_) => r.line(
            Outcome::Ok,
            scope,
            &format!("reads the pull requests of {}", project.repo),
        ),
        Err(e) => r.line(
            Outcome::Fail,
            scope,
            &format!(
                "cannot read the pull requests of {} ({e}): check `repo` and the token's rights",
                project.repo
            ),
        ),
    }
    match forge.can_write(&login).await {
        Ok(true) => r.line(Outcome::Ok, scope, &format!("{login} may write to {} (issues, labels, pull requests, push)", project.repo)),
        Ok(false) => r.line(
            Outcome::Fail,
            scope,
            &format!("{login} may not write to {}: give the account write access", project.repo),
        ),
        Err(e) => r.line(
            Outcome::Fail,
            scope,
            &format!("cannot tell whether {login} may write to {} ({e}): the account must be able to read collaborators' permissions", project.repo),
        ),
    }
    let l = &project.labels;
    let labels = [
        &l.backlog,
        &l.priority,
        &l.in_progress,
        &l.blocked,
        &l.underspecified,
    ]
    .map(|s| s.to_string());
    let list = labels.join(", ");
    if fix {
        match forge.ensure_labels(&labels).await {
            Ok(()) => r.line(
                Outcome::Ok,
                scope,
                &format!("labels {list} exist (missing ones created)"),
            ),
            Err(e) => r.line(
                Outcome::Fail,
                scope,
                &format!("cannot create the labels ({e}): create them by hand"),
            ),
        }
        return;
    }
    match forge.missing_labels(&labels).await {
        Ok(missing) if missing.is_empty() => {
            r.line(Outcome::Ok, scope, &format!("labels {list} exist"))
        }
        Ok(missing) => r.line(
            Outcome::Fail,
            scope,
            &format!(
                "labels missing: {}: run doctor --fix to create them (the daemon also does at its first poll)",
                missing.join(", ")
            ),
        ),
        Err(e) => r.line(
            Outcome::Fail,
            scope,
            &format!(
                "cannot read the labels of {} ({e}): check the token's rights",
                project.repo
            ),
        ),
    }
}
