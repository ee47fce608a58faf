//! One function per section of a project file: read the raw section, check
//! each value (recording errors at its position), apply the defaults of
//! DESIGN §4. Each returns a usable value even after an error so the other
//! sections are still checked.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use toml::Spanned;

use super::github::AppKeys;
use super::{Checker, is_var_name};
use crate::config::raw::{
    RawAgent, RawCi, RawForge, RawLabels, RawMatrix, RawMerge, RawMirrors, RawReview,
};
use crate::config::{
    AgentConfig, AgentKind, CiConfig, ForgeConfig, ForgeKind, GithubAuth, GithubConfig,
    HttpForgeConfig, Labels, LocalForgeConfig, MatrixConfig, MergeConfig, ReviewConfig,
    WoodpeckerConfig,
};
use crate::forge::MergeMethod;
use crate::forge::github::DEFAULT_API_URL;
use crate::sandbox::{self, SandboxKind};

/// A section's config plus the secret it resolved and the variable holding
/// that secret (with the key that named it), for the `pass_env` check.
pub(super) struct WithSecret<T> {
    pub config: T,
    pub token: Option<String>,
    pub secret_var: Option<(String, &'static str)>,
}

/// `[forge]` and the secrets it names: the API token and the webhook secret,
/// or a GitHub App's private key.
pub(super) struct ForgeSection {
    pub config: ForgeConfig,
    pub api: WithSecret<()>,
    pub webhook: WithSecret<()>,
    /// The GitHub App's private key (PEM), read from its file.
    pub app_key: Option<String>,
}

/// Forgejo or Gitea, which share their configuration.
fn http_forge(
    kind: ForgeKind,
    url: String,
    token_env: String,
    webhook_secret_env: Option<String>,
) -> ForgeConfig {
    let config = HttpForgeConfig {
        url,
        token_env,
        webhook_secret_env,
    };
    match kind {
        ForgeKind::Gitea => ForgeConfig::Gitea(config),
        _ => ForgeConfig::Forgejo(config),
    }
}

const FORGE_KINDS: &[(&str, ForgeKind)] = &[
    ("forgejo", ForgeKind::Forgejo),
    ("gitea", ForgeKind::Gitea),
    ("github", ForgeKind::Github),
    ("local", ForgeKind::Local),
];

const AGENT_KINDS: &[(&str, AgentKind)] = &[
    ("generic", AgentKind::Generic),
    ("claude", AgentKind::Claude),
];

const SANDBOXES: &[(&str, SandboxKind)] =
    &[("bwrap", SandboxKind::Bwrap), ("none", SandboxKind::None)];

/// Variables that would let whoever sets them run code in the agent's
/// programs or rewrite its git configuration: never passed, whatever
/// `pass_env` says. `GIT_CONFIG_` is a prefix.
const NEVER_PASSED: &[&str] = &["LD_PRELOAD", "LD_LIBRARY_PATH", "BASH_ENV", "ENV"];
const NEVER_PASSED_PREFIX: &str = "GIT_CONFIG_";

const MERGE_METHODS: &[(&str, MergeMethod)] = &[
    ("merge", MergeMethod::Merge),
    ("squash", MergeMethod::Squash),
    ("rebase", MergeMethod::Rebase),
];

fn names<T>(table: &[(&str, T)]) -> String {
    table.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
}

impl Checker<'_> {
    pub(super) fn forge(&mut self) -> ForgeSection {
        let (header, raw) = match self.section::<RawForge>("forge") {
            Some(s) => (s.span(), Some(s.into_inner())),
            // Absent, or present but malformed (already reported).
            None => (0..0, None),
        };
        let section_present = self.doc.iter().any(|(k, _)| k.get_ref() == "forge");
        let mut api = WithSecret {
            config: (),
            token: None,
            secret_var: None,
        };
        let mut webhook = WithSecret {
            config: (),
            token: None,
            secret_var: None,
        };
        let Some(raw) = raw else {
            if !section_present {
                self.push(0..0, "[forge]", "required section is missing");
            }
            // Never used: the error above (or the malformed section's) fails the file.
            let config = http_forge(ForgeKind::Forgejo, String::new(), String::new(), None);
            return ForgeSection {
                config,
                api,
                webhook,
                app_key: None,
            };
        };
        let kind_field = "[forge] kind";
        let mut kind = ForgeKind::Forgejo;
        if let Some(named) = self.required(raw.kind, header.clone(), kind_field) {
            match FORGE_KINDS.iter().find(|(n, _)| n == named.get_ref()) {
                Some((_, k)) => kind = *k,
                None => {
                    let message = format!(
                        "unknown forge kind \"{}\"; allowed: {}",
                        named.get_ref(),
                        names(FORGE_KINDS)
                    );
                    self.push(named.span(), kind_field, message);
                }
            }
        }
        let local = kind == ForgeKind::Local;
        let github = kind == ForgeKind::Github;
        let url_field = "[forge] url";
        let url = match raw.url {
            // github.com unless an Enterprise server is named.
            None if github => Some(DEFAULT_API_URL.to_string()),
            given => self
                .required(given, header.clone(), url_field)
                .map(|given| {
                    // `local` names a folder, not a server.
                    if !local {
                        self.http_url(&given, url_field);
                    }
                    given.into_inner()
                }),
        }
        .unwrap_or_default();
        let app_keys = AppKeys {
            app_id: raw.app_id,
            installation_id: raw.installation_id,
            private_key_file: raw.private_key_file,
        };
        let token_field = "[forge] token_env";
        let (token_env, app) = if github {
            self.github_sign_in(raw.token_env, app_keys, header)
        } else {
            self.not_github(&app_keys);
            let token_env = match raw.token_env {
                None if local => None,
                other => self.required(other, header, token_field),
            };
            (token_env, None)
        };
        api.token = token_env.as_ref().and_then(|v| self.secret(v, token_field));
        let token_env = token_env.map(Spanned::into_inner);
        api.secret_var = token_env.clone().map(|v| (v, token_field));
        // Optional: only `run --listen` needs it, and a project without it
        // simply gets no webhooks.
        let hook_field = "[forge] webhook_secret_env";
        let mut webhook_secret_env = None;
        if let Some(var) = raw.webhook_secret_env {
            webhook.token = self.secret(&var, hook_field);
            webhook.secret_var = Some((var.get_ref().clone(), hook_field));
            webhook_secret_env = Some(var.into_inner());
        }
        let mut app_key = None;
        // A missing token was reported above, so the empty default never runs.
        let token_env = token_env.unwrap_or_default();
        let config = match kind {
            ForgeKind::Forgejo | ForgeKind::Gitea => {
                http_forge(kind, url, token_env, webhook_secret_env)
            }
            ForgeKind::Github => ForgeConfig::Github(GithubConfig {
                url,
                auth: match app {
                    Some(app) => {
                        app_key = Some(app.pem);
                        GithubAuth::App {
                            app_id: app.app_id,
                            installation_id: app.installation_id,
                            private_key_file: app.private_key_file,
                        }
                    }
                    None => GithubAuth::Token { token_env },
                },
                webhook_secret_env,
            }),
            // The keys of server forges are accepted here as they always
            // were (their secrets are still kept from the agent), though a
            // folder has no use for them.
            ForgeKind::Local => ForgeConfig::Local(LocalForgeConfig {
                plans: PathBuf::from(url),
            }),
        };
        ForgeSection {
            config,
            api,
            webhook,
            app_key,
        }
    }

    pub(super) fn labels(&mut self) -> Labels {
        let raw = self
            .section::<RawLabels>("labels")
            .map(Spanned::into_inner)
            .unwrap_or_default();
        Labels {
            backlog: self.text_or(raw.backlog, "[labels] backlog", "backlog"),
            priority: self.text_or(raw.priority, "[labels] priority", "priority"),
            in_progress: self.text_or(raw.in_progress, "[labels] in_progress", "in-progress"),
            blocked: self.text_or(raw.blocked, "[labels] blocked", "blocked"),
            underspecified: self.text_or(
                raw.underspecified,
                "[labels] underspecified",
                "underspecified",
            ),
        }
    }

    /// Checked after the sections that name secrets, so `pass_env` can be
    /// compared against them.
    pub(super) fn agent(&mut self, secret_vars: &[(String, &str)]) -> AgentConfig {
        let present = self.doc.iter().any(|(k, _)| k.get_ref() == "agent");
        let section = self.section::<RawAgent>("agent");
        let mut config = AgentConfig {
            kind: AgentKind::Generic,
            command: String::new(),
            ready_pattern: "❯".to_string(),
            max_sessions: 1,
            idle_timeout: Duration::from_secs(2 * 3600),
            escalation_timeout: Duration::from_secs(24 * 3600),
            pass_env: Vec::new(),
            sandbox: SandboxKind::Bwrap,
            sandbox_rw: Vec::new(),
            sandbox_ro: Vec::new(),
        };
        let Some(section) = section else {
            if !present {
                self.push(0..0, "[agent]", "required section is missing");
            }
            return config;
        };
        let header = section.span();
        let raw = section.into_inner();
        if let Some(kind) = raw.kind {
            match AGENT_KINDS.iter().find(|(n, _)| n == kind.get_ref()) {
                Some((_, found)) => config.kind = *found,
                None => {
                    let message = format!(
                        "unknown agent kind \"{}\"; allowed: {}",
                        kind.get_ref(),
                        names(AGENT_KINDS)
                    );
                    self.push(kind.span(), "[agent] kind", message);
                }
            }
        }
        if let Some(command) = self.required(raw.command, header.clone(), "[agent] command") {
            config.command = command.into_inner();
        }
        config.ready_pattern = self.text_or(raw.ready_pattern, "[agent] ready_pattern", "❯");
        config.max_sessions = self.at_least(raw.max_sessions, "[agent] max_sessions", 1, 1);
        config.idle_timeout = self.duration(
            raw.idle_timeout,
            "[agent] idle_timeout",
            config.idle_timeout,
        );
        config.escalation_timeout = self.duration(
            raw.escalation_timeout,
            "[agent] escalation_timeout",
            config.escalation_timeout,
        );
        let field = "[agent] pass_env";
        for var in raw.pass_env.unwrap_or_default() {
            if !is_var_name(var.get_ref()) {
                let message = format!(
                    "\"{}\" is not a valid environment variable name",
                    var.get_ref()
                );
                self.push(var.span(), field, message);
            } else if let Some((_, named_by)) = secret_vars.iter().find(|(v, _)| v == var.get_ref())
            {
                let message = format!(
                    "{} is a secret (named by {named_by}) and must not be passed to the agent",
                    var.get_ref()
                );
                self.push(var.span(), field, message);
            } else if NEVER_PASSED.contains(&var.get_ref().as_str())
                || var.get_ref().starts_with(NEVER_PASSED_PREFIX)
            {
                let message = format!(
                    "{} changes how the agent's programs run and is never passed to the agent",
                    var.get_ref()
                );
                self.push(var.span(), field, message);
            }
            self.pass_env_at
                .push((var.get_ref().clone(), var.span().start));
            config.pass_env.push(var.into_inner());
        }
        if let Some(kind) = raw.sandbox {
            match SANDBOXES.iter().find(|(n, _)| n == kind.get_ref()) {
                Some((_, found)) => config.sandbox = *found,
                None => {
                    let message = format!(
                        "unknown sandbox \"{}\"; allowed: {}",
                        kind.get_ref(),
                        names(SANDBOXES)
                    );
                    self.push(kind.span(), "[agent] sandbox", message);
                }
            }
            if config.sandbox == SandboxKind::Bwrap
                && sandbox::find_bwrap((self.env)("PATH").as_deref()).is_none()
            {
                self.push(
                    kind.span(),
                    "[agent] sandbox",
                    sandbox::missing_bwrap_message(),
                );
            }
        } else if sandbox::find_bwrap((self.env)("PATH").as_deref()).is_none() {
            self.push(
                header,
                "[agent] sandbox",
                format!("(default \"bwrap\") {}", sandbox::missing_bwrap_message()),
            );
        }
        config.sandbox_rw = self.sandbox_paths(raw.sandbox_rw, "[agent] sandbox_rw");
        config.sandbox_ro = self.sandbox_paths(raw.sandbox_ro, "[agent] sandbox_ro");
        config
    }

    /// Absolute paths, or `~/…` in the daemon's home.
    fn sandbox_paths(
        &mut self,
        raw: Option<Vec<Spanned<String>>>,
        field: &str,
    ) -> Vec<std::path::PathBuf> {
        let home = (self.env)("HOME").filter(|h| !h.is_empty());
        let mut out = Vec::new();
        for entry in raw.unwrap_or_default() {
            let text = entry.get_ref();
            let path = match (text.strip_prefix("~/"), &home) {
                (Some(rest), Some(home)) => std::path::Path::new(home).join(rest),
                (Some(_), None) => {
                    self.push(
                        entry.span(),
                        field,
                        format!("\"{text}\" names the home folder, but HOME is not set"),
                    );
                    continue;
                }
                (None, _) => std::path::PathBuf::from(text),
            };
            if !path.is_absolute()
                || path
                    .components()
                    .any(|c| c == std::path::Component::ParentDir)
            {
                self.push(
                    entry.span(),
                    field,
                    format!(
                        "\"{text}\" must be an absolute path (or start with ~/) without \"..\""
                    ),
                );
                continue;
            }
            out.push(path);
        }
        out
    }

    pub(super) fn ci(&mut self) -> WithSecret<CiConfig> {
        let raw = self
            .section::<RawCi>("ci")
            .map(Spanned::into_inner)
            .unwrap_or_default();
        let mut out = WithSecret {
            config: CiConfig {
                required: raw.required.unwrap_or(true),
                max_fix_attempts: raw.max_fix_attempts.unwrap_or(3),
                timeout: self.duration(raw.timeout, "[ci] timeout", Duration::from_secs(30 * 60)),
                command: raw.command.map(|c| self.non_empty(c, "[ci] command")),
                woodpecker: None,
            },
            token: None,
            secret_var: None,
        };
        match (
            raw.woodpecker_url,
            raw.woodpecker_repo_id,
            raw.woodpecker_token_env,
        ) {
            (None, None, None) => {}
            (Some(url), Some(repo_id), Some(token_env)) => {
                self.http_url(&url, "[ci] woodpecker_url");
                let token_field = "[ci] woodpecker_token_env";
                out.token = self.secret(&token_env, token_field);
                out.secret_var = Some((token_env.get_ref().clone(), token_field));
                out.config.woodpecker = Some(WoodpeckerConfig {
                    url: url.into_inner(),
                    repo_id: repo_id.into_inner(),
                    token_env: token_env.into_inner(),
                });
            }
            (url, repo_id, token_env) => {
                let present = [
                    url.map(|v| ("woodpecker_url", v.span())),
                    repo_id.map(|v| ("woodpecker_repo_id", v.span())),
                    token_env.map(|v| ("woodpecker_token_env", v.span())),
                ];
                let missing: Vec<&str> = [
                    "woodpecker_url",
                    "woodpecker_repo_id",
                    "woodpecker_token_env",
                ]
                .into_iter()
                .filter(|k| !present.iter().flatten().any(|(p, _)| p == k))
                .collect();
                let (first, span) = present.into_iter().flatten().next().expect("one is set");
                let message = format!(
                    "woodpecker_url, woodpecker_repo_id and woodpecker_token_env go together; \
                     missing: {}",
                    missing.join(", ")
                );
                self.push(span, format!("[ci] {first}"), message);
            }
        }
        out
    }

    pub(super) fn review(&mut self) -> ReviewConfig {
        let raw = self
            .section::<RawReview>("review")
            .map(Spanned::into_inner)
            .unwrap_or_default();
        ReviewConfig {
            required_approvals: raw.required_approvals.unwrap_or(1),
            max_rounds: self.at_least(raw.max_rounds, "[review] max_rounds", 1, 5),
            timeout: self.duration(
                raw.timeout,
                "[review] timeout",
                Duration::from_secs(3 * 3600),
            ),
        }
    }

    pub(super) fn merge(&mut self) -> MergeConfig {
        let raw = self
            .section::<RawMerge>("merge")
            .map(Spanned::into_inner)
            .unwrap_or_default();
        let mut method = MergeMethod::Merge;
        if let Some(m) = raw.method {
            match MERGE_METHODS.iter().find(|(n, _)| n == m.get_ref()) {
                Some((_, found)) => method = *found,
                None => {
                    let message = format!(
                        "unknown merge method \"{}\"; allowed: {}",
                        m.get_ref(),
                        names(MERGE_METHODS)
                    );
                    self.push(m.span(), "[merge] method", message);
                }
            }
        }
        // "0s" (DESIGN's default) means no window, which `duration` refuses
        // for the timeouts it is made for.
        let delay = match raw.delay {
            Some(d) if is_zero(&d.get_ref().0) => Duration::ZERO,
            other => self.duration(other, "[merge] delay", Duration::ZERO),
        };
        MergeConfig {
            method,
            delete_branch: raw.delete_branch.unwrap_or(true),
            delay,
        }
    }

    pub(super) fn matrix(&mut self) -> WithSecret<Option<MatrixConfig>> {
        let mut out = WithSecret {
            config: None,
            token: None,
            secret_var: None,
        };
        let Some(section) = self.section::<RawMatrix>("matrix") else {
            return out;
        };
        let header = section.span();
        let raw = section.into_inner();
        let homeserver = self.required(raw.homeserver, header.clone(), "[matrix] homeserver");
        if let Some(h) = &homeserver {
            self.http_url(h, "[matrix] homeserver");
        }
        let room_id = self.required(raw.room_id, header.clone(), "[matrix] room_id");
        if let Some(r) = &room_id {
            self.room_id(r);
        }
        let user_id = self.required(raw.user_id, header.clone(), "[matrix] user_id");
        if let Some(u) = &user_id {
            self.matrix_id(
                u,
                '@',
                "[matrix] user_id",
                "a user id like @bot:example.org",
            );
        }
        if let Some(m) = &raw.mention_user {
            self.matrix_id(
                m,
                '@',
                "[matrix] mention_user",
                "a user id like @alice:example.org",
            );
        }
        let outbox_max_age = self.duration(
            raw.outbox_max_age,
            "[matrix] outbox_max_age",
            MatrixConfig::DEFAULT_OUTBOX_MAX_AGE,
        );
        let token_field = "[matrix] token_env";
        let token_env = self.required(raw.token_env, header, token_field);
        if let Some(t) = &token_env {
            out.token = self.secret(t, token_field);
            out.secret_var = Some((t.get_ref().clone(), token_field));
        }
        if let (Some(homeserver), Some(room_id), Some(user_id), Some(token_env)) =
            (homeserver, room_id, user_id, token_env)
        {
            out.config = Some(MatrixConfig {
                homeserver: homeserver.into_inner(),
                room_id: room_id.into_inner(),
                user_id: user_id.into_inner(),
                token_env: token_env.into_inner(),
                mention_user: raw.mention_user.map(Spanned::into_inner),
                outbox_max_age,
            });
        }
        out
    }

    /// Room ids are `!opaque:server`, or just `!opaque` from room version 12 on.
    fn room_id(&mut self, raw: &Spanned<String>) {
        let valid = raw.get_ref().strip_prefix('!').is_some_and(|rest| {
            !rest.is_empty() && !rest.starts_with(':') && !rest.contains(char::is_whitespace)
        });
        if !valid {
            let message = format!(
                "\"{}\" is not a room id like !abc:example.org (or !abc in room version 12)",
                raw.get_ref()
            );
            self.push(raw.span(), "[matrix] room_id", message);
        }
    }

    /// User ids are `<sigil>localpart:server`.
    fn matrix_id(&mut self, raw: &Spanned<String>, sigil: char, field: &str, expected: &str) {
        let valid = raw
            .get_ref()
            .strip_prefix(sigil)
            .and_then(|rest| rest.split_once(':'))
            .is_some_and(|(local, server)| !local.is_empty() && !server.is_empty());
        if !valid {
            let message = format!("\"{}\" is not {expected}", raw.get_ref());
            self.push(raw.span(), field, message);
        }
    }

    pub(super) fn mirrors(&mut self) -> BTreeMap<String, String> {
        let raw = self
            .section::<RawMirrors>("mirrors")
            .map(Spanned::into_inner);
        let mut mirrors = BTreeMap::new();
        for (name, url) in raw.unwrap_or_default() {
            let url = self.non_empty(url, &format!("[mirrors] {name}"));
            mirrors.insert(name, url);
        }
        mirrors
    }
}

/// `"0s"`, `"0m"`, `"0"`…: a duration of nothing.
fn is_zero(text: &str) -> bool {
    let rest = text.trim_start_matches('0');
    rest.len() < text.len() && ["", "ms", "s", "m", "h", "d"].contains(&rest)
}
