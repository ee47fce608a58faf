//! The doctor's checks of what a project talks to beside its forge's
//! issues: the webhook the forge delivers to, the CI server, Matrix. Each
//! only reads; each says `skip` when the project does not configure it.

use crate::ci::CiServer;
use crate::config::{ForgeConfig, Project};
use crate::forge::Forge;
use crate::matrix::Connector;

use super::{Outcome, Report};

/// The webhook pointing at forgehand's listener (`…/hooks/forgejo` or
/// `…/hooks/github`) exists and is active, and, where the forge says, its
/// latest delivery succeeded.
pub(super) async fn webhook_check(r: &mut Report, project: &Project, forge: &dyn Forge) {
    let scope = project.name.as_str();
    if project.forge.webhook_secret_env().is_none() {
        r.line(
            Outcome::Skip,
            scope,
            "webhook: none configured ([forge] webhook_secret_env): forgehand notices changes within poll_interval",
        );
        return;
    }
    let path = match project.forge {
        ForgeConfig::Github(_) => "/hooks/github",
        _ => "/hooks/forgejo",
    };
    let hooks = match forge.webhooks().await {
        Ok(Some(hooks)) => hooks,
        Ok(None) => {
            r.line(Outcome::Skip, scope, "webhook: this forge sends none");
            return;
        }
        Err(e) => {
            r.line(
                Outcome::Fail,
                scope,
                &format!(
                    "cannot read the webhooks of {} ({e}): the account needs admin rights on the repository",
                    project.repo
                ),
            );
            return;
        }
    };
    let ours: Vec<_> = hooks
        .iter()
        .filter(|h| {
            reqwest::Url::parse(&h.url)
                .is_ok_and(|u| u.path().trim_end_matches('/').ends_with(path))
        })
        .collect();
    let Some(hook) = ours.iter().find(|h| h.active) else {
        let what = match ours.first() {
            Some(h) => format!("the webhook to {} is inactive: activate it", h.url),
            None => format!(
                "no webhook of {} delivers to …{path}: add one (README, \"Webhooks\")",
                project.repo
            ),
        };
        r.line(Outcome::Fail, scope, &what);
        return;
    };
    let url = &hook.url;
    match forge.webhook_deliveries(hook.id).await {
        Ok(None) => r.line(
            Outcome::Ok,
            scope,
            &format!(
                "webhook to {url} is active (the forge's API does not report deliveries: see its Recent Deliveries)"
            ),
        ),
        Ok(Some(deliveries)) => match deliveries.first() {
            None => r.line(
                Outcome::Ok,
                scope,
                &format!("webhook to {url} is active; nothing delivered yet"),
            ),
            Some(latest) if latest.succeeded() => {
                let failed = deliveries.iter().filter(|d| !d.succeeded()).count();
                r.line(
                    Outcome::Ok,
                    scope,
                    &format!(
                        "webhook to {url}: the latest delivery succeeded ({failed} of the last {} failed)",
                        deliveries.len()
                    ),
                )
            }
            Some(latest) => r.line(
                Outcome::Fail,
                scope,
                &format!(
                    "the latest delivery to {url} failed at {}: {} {}: check that `forgehand run --listen` is reachable there and the secrets match",
                    latest.at.format("%Y-%m-%d %H:%M:%S UTC"),
                    latest.code,
                    latest.status
                ),
            ),
        },
        Err(e) => r.line(
            Outcome::Fail,
            scope,
            &format!("cannot read the deliveries of the webhook to {url} ({e})"),
        ),
    }
}

/// The CI server answers for the repository: Woodpecker when named, GitHub
/// Actions on GitHub; the local backend's `[ci] command` exists.
pub(super) async fn ci_check(r: &mut Report, project: &Project, ci: Option<&dyn CiServer>) {
    let scope = project.name.as_str();
    let Some(ci) = ci else {
        let what = match (&project.forge, &project.ci.command) {
            (ForgeConfig::Local(_), Some(command)) => {
                r.line(Outcome::Ok, scope, &format!("CI: runs `{command}`"));
                return;
            }
            (ForgeConfig::Local(_), None) => "CI: no [ci] command: every head counts as green",
            _ => "CI: no [ci] woodpecker_url: only the forge's commit statuses are read",
        };
        r.line(Outcome::Skip, scope, what);
        return;
    };
    let fix = match project.forge {
        ForgeConfig::Github(_) if project.ci.woodpecker.is_none() => {
            "the token needs Actions read access"
        }
        _ => "check [ci] woodpecker_url, woodpecker_repo_id and the token in woodpecker_token_env",
    };
    match ci.describe().await {
        Ok(what) => r.line(Outcome::Ok, scope, &format!("CI: {what}")),
        Err(e) => r.line(Outcome::Fail, scope, &format!("CI: {e:#}: {fix}")),
    }
}

/// The Matrix token is `[matrix] user_id`'s and that account is in the room.
pub(super) async fn matrix_check(r: &mut Report, project: &Project) {
    let scope = project.name.as_str();
    let Some(m) = &project.matrix else {
        r.line(Outcome::Skip, scope, "Matrix: no [matrix] section");
        return;
    };
    let room = match m.room_id.parse() {
        Ok(room) => room,
        Err(e) => {
            r.line(
                Outcome::Fail,
                scope,
                &format!("Matrix: [matrix] room_id {:?}: {e}", m.room_id),
            );
            return;
        }
    };
    let token = project.secrets.matrix_token.clone().unwrap_or_default();
    let connector = Connector::new(&m.homeserver, &m.user_id, room, token);
    match connector.check().await {
        Ok(()) => r.line(
            Outcome::Ok,
            scope,
            &format!(
                "Matrix: {} signs in at {} and is in {}",
                m.user_id, m.homeserver, m.room_id
            ),
        ),
        Err(e) => r.line(
            Outcome::Fail,
            scope,
            &format!("Matrix: {e:#}: check [matrix] and the token in token_env"),
        ),
    }
}
