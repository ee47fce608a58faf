//! GitHub REST client (github.com, or an Enterprise server's `https://HOST/api/v3`):
//! the `Forge` trait on GitHub's terms. Every request goes through
//! `http::retry::perform_retryable`, carries the current token (a personal
//! access token, or a GitHub App's installation token, `app.rs`), and reports
//! GitHub's quota (`api.rs`); every request made here exists with that method,
//! its query parameters and its body in GitHub's OpenAPI description (a copy
//! in `tests/api/github-rest.subset.json`, checked by the test suite).
//!
//! Where GitHub differs from Forgejo, and what is done about it:
//! - the issue list holds pull requests too (with a `pull_request` key): dropped;
//! - lists page through `Link` headers, 100 items a page; the lists every
//!   poll reads are asked conditionally (`If-None-Match`), and the backlog
//!   and the pull list are followed through what changed (`since`,
//!   `forge::changes`, `follow.rs`), so an idle poll costs one request that
//!   GitHub does not count against the quota;
//! - reviews do not say whether they count: a reviewer with write access
//!   (`permissions.rs`) gives official reviews;
//! - CI reports as check runs and as commit statuses, folded into one roll-up
//!   (`status.rs`); Actions' logs come from `ci::github_actions`;
//! - merges take the approved head's `sha`, and the branch is deleted through
//!   the git refs API (`merge.rs`).

mod api;
mod app;
mod follow;
mod hooks;
mod labels;
mod merge;
mod permissions;
mod status;
mod wire;

use super::rights::Permissions;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::bail;
use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use reqwest::{Method, StatusCode, Url};
use serde_json::json;
use tokio::sync::watch;

pub use api::Api;
pub use app::parse_private_key;

use super::changes::{Follow, Source};
use super::token::{StaticToken, TokenSource};
use super::{
    CombinedStatus, Comment, CommitSha, Delivery, Forge, ForgeError, ForgeResult, Issue,
    IssueNumber, MergeRequest, NewPull, PrNumber, PullRequest, Review, ReviewComment, Webhook,
};
use crate::http::retry::{Replay, RetryPolicy};
use crate::http::{self, HttpError};
use api::Auth;
use app::AppTokens;
use wire::{WireComment, WireIssue, WirePull, WireReview, WireReviewComment, WireUser};

/// GitHub's REST API on github.com: `[forge] url` when the project file gives none.
pub const DEFAULT_API_URL: &str = "https://api.github.com";
/// What every request asks for, as GitHub recommends.
const MEDIA_TYPE: &str = "application/vnd.github+json";
/// The REST API version the shapes here were written against.
const API_VERSION: &str = "2022-11-28";
/// Items per page: GitHub's maximum, so a list costs as few requests as it can.
const PER_PAGE: &str = "100";
const PAGE_ITEMS: usize = 100;
/// A server that keeps sending `rel="next"` would otherwise be paged forever.
const MAX_PAGES: u32 = 1000;
/// How far before a comment's first attempt its check looks: GitHub keeps whole
/// seconds and its clock may differ a little from ours.
const COMMENT_CLOCK_SLACK: chrono::TimeDelta = chrono::TimeDelta::seconds(60);

/// How forgehand signs in to GitHub.
pub enum Credentials {
    /// A personal access token, fine-grained or classic: `Authorization: Bearer`.
    Token(String),
    /// A GitHub App installed on the repository: installation tokens, renewed.
    App {
        app_id: u64,
        installation_id: u64,
        /// The App's private key, PEM. Never printed.
        private_key_pem: String,
    },
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credentials::Token(_) => f.write_str("Token([REDACTED])"),
            Credentials::App {
                app_id,
                installation_id,
                ..
            } => f
                .debug_struct("App")
                .field("app_id", app_id)
                .field("installation_id", installation_id)
                .field("private_key_pem", &"[REDACTED]")
                .finish(),
        }
    }
}

/// GitHub's account of the quota the credentials draw on, as its latest
/// answer reported it (`X-RateLimit-*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Requests left until `reset`.
    pub remaining: u64,
    /// Requests per window, when GitHub said.
    pub limit: Option<u64>,
    /// When the quota is full again.
    pub reset: DateTime<Utc>,
}

/// A client for one repository on GitHub.
pub struct GithubClient {
    api: Arc<Api>,
    /// Names (lowercased, as GitHub compares them) of the repository's labels
    /// known to exist; `None` until first listed. GitHub adds labels to issues
    /// by name, so this only spares creating one that exists.
    labels: Mutex<Option<HashSet<String>>>,
    /// Our own login, fetched once.
    login: tokio::sync::OnceCell<String>,
    /// Who may write, asked once a while per login (`permissions.rs`).
    permissions: Permissions,
    /// Issue number → its page, as GitHub named it in the last answer.
    issue_urls: Mutex<HashMap<u64, String>>,
    /// The open backlog and pull requests as of the last look, brought up
    /// to date with what changed since (`forge::changes`).
    follow: Follow,
}

impl fmt::Debug for GithubClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GithubClient")
            .field("api", &self.api.base.as_str())
            .field("repo", &self.api.repo_name())
            .field("policy", &self.api.policy)
            .finish_non_exhaustive()
    }
}

impl GithubClient {
    /// `url` is the REST API's address (`https://api.github.com`, or
    /// `https://HOST/api/v3` for Enterprise), `repo` is `owner/name`.
    pub fn new(
        url: &str,
        repo: &str,
        credentials: Credentials,
        policy: RetryPolicy,
    ) -> anyhow::Result<Self> {
        let base = http::api_base(url, "GitHub API url", &[])?;
        let web = web_base(&base);
        let (owner, name) = match repo.split_once('/') {
            Some((o, n)) if !o.is_empty() && !n.is_empty() && !n.contains('/') => (o, n),
            _ => bail!("repository {repo:?} must be written owner/name"),
        };
        let client = http::client(&policy)?;
        let auth = match credentials {
            Credentials::Token(token) => {
                http::check_token("Bearer", &token, "GitHub")?;
                Auth::Token(Arc::new(StaticToken::new(token.clone())), token)
            }
            Credentials::App {
                app_id,
                installation_id,
                private_key_pem,
            } => Auth::App(Arc::new(AppTokens::new(
                client.clone(),
                base.clone(),
                app_id,
                installation_id,
                name,
                &private_key_pem,
                policy.clone(),
            )?)),
        };
        let api = Api::new(base, web, owner, name, auth, client, policy)?;
        Ok(GithubClient {
            api: Arc::new(api),
            labels: Mutex::new(None),
            login: tokio::sync::OnceCell::new(),
            permissions: Permissions::default(),
            issue_urls: Mutex::new(HashMap::new()),
            follow: Follow::default(),
        })
    }

    /// The quota GitHub reported on its latest answer; `None` before any.
    pub fn rate_limit(&self) -> Option<RateLimit> {
        *self.api.quota.borrow()
    }

    /// Told of every new quota report, for recording it (`forgehand status`).
    pub fn rate_limits(&self) -> watch::Receiver<Option<RateLimit>> {
        self.api.quota.subscribe()
    }

    /// Where git's pushes and fetches get the token, renewed as the API's is.
    pub fn token_source(&self) -> Arc<dyn TokenSource> {
        self.api.auth.source()
    }

    /// The transport, shared with the Actions client (`ci::GithubActions`).
    pub fn api(&self) -> Arc<Api> {
        self.api.clone()
    }

    fn remember_url(&self, issue: &WireIssue) -> Option<()> {
        let (n, url) = issue.page()?;
        self.issue_urls
            .lock()
            .expect("issue url cache poisoned")
            .insert(n, url.to_string());
        Some(())
    }

    /// Our comment with exactly this body on issue `n` since `since`, if any:
    /// how a comment whose answer was lost is found instead of posted twice.
    async fn own_comment(
        &self,
        n: &str,
        body: &str,
        since: DateTime<Utc>,
    ) -> ForgeResult<Option<Comment>> {
        let me = self.current_user().await?;
        let since = since.to_rfc3339_opts(SecondsFormat::Secs, true);
        let url = self.api.repo_url(
            &["issues", n, "comments"],
            &[("since", since.as_str()), ("per_page", PER_PAGE)],
        );
        let comments: Vec<WireComment> = self.api.list(url, false, array).await?;
        Ok(comments
            .into_iter()
            .map(WireComment::into_domain)
            .filter(|c| c.author == me && c.body == body)
            .max_by_key(|c| c.id))
    }
}

/// Where people see what the API at `base` serves: `https://github.com` for
/// api.github.com, `https://HOST` for an Enterprise server's
/// `https://HOST/api/v3`, and the address itself otherwise.
fn web_base(base: &Url) -> Url {
    let mut web = base.clone();
    if base.host_str() == Some("api.github.com") {
        let _ = web.set_host(Some("github.com"));
        web.set_path("");
        return web;
    }
    let path = base.path().trim_end_matches('/');
    if let Some(prefix) = path.strip_suffix("/api/v3") {
        web.set_path(prefix);
    }
    web
}

/// `clone_url` when the project file gives none, for the API at `url`:
/// `https://github.com/<repo>.git`, or `https://HOST/<repo>.git` for Enterprise.
pub fn default_clone_url(url: &str, repo: &str) -> String {
    match Url::parse(url.trim()) {
        Ok(base) => format!(
            "{}/{repo}.git",
            web_base(&base).as_str().trim_end_matches('/')
        ),
        Err(_) => format!("{}/{repo}.git", url.trim_end_matches('/')),
    }
}

/// A page that is a bare JSON array.
fn array<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> serde_json::Result<Vec<T>> {
    serde_json::from_slice(bytes)
}

/// GitHub answers 422 to a second open pull request for one head and base.
fn pull_exists(e: &HttpError) -> bool {
    e.status() == Some(StatusCode::UNPROCESSABLE_ENTITY)
        && e.message()
            .is_some_and(|m| m.to_ascii_lowercase().contains("already exists"))
}

/// GitHub answers 422 naming the `head` field when the branch does not exist.
fn missing_head(e: &HttpError) -> bool {
    e.status() == Some(StatusCode::UNPROCESSABLE_ENTITY)
        && e.message()
            .is_some_and(|m| m.contains("PullRequest.head") || m.contains("head invalid"))
}

#[async_trait]
impl Forge for GithubClient {
    async fn current_user(&self) -> ForgeResult<String> {
        let login = self
            .login
            .get_or_try_init(async || match &self.api.auth {
                // An installation token may not read `/user`; the App's own
                // answer names what it writes as.
                Auth::App(app) => app.login().await,
                Auth::Token(..) => {
                    let user: WireUser = self.api.get(self.api.url(&["user"], &[])).await?;
                    Ok(user.login)
                }
            })
            .await?;
        Ok(login.clone())
    }

    async fn ensure_labels(&self, names: &[String]) -> ForgeResult<()> {
        self.refresh_labels().await?;
        for name in names {
            if !self.has_label(name) {
                self.create_label(name).await?;
            }
        }
        Ok(())
    }

    async fn missing_labels(&self, names: &[String]) -> ForgeResult<Vec<String>> {
        self.missing(names).await
    }

    async fn webhooks(&self) -> ForgeResult<Option<Vec<Webhook>>> {
        self.hooks().await.map(Some)
    }

    async fn webhook_deliveries(&self, id: u64) -> ForgeResult<Option<Vec<Delivery>>> {
        self.deliveries(id).await.map(Some)
    }

    async fn list_open_issues(&self, label: &str) -> ForgeResult<Vec<Issue>> {
        self.follow.backlog(self, label, Instant::now()).await
    }

    async fn open_issues_as_of(&self, label: &str, as_of: Instant) -> ForgeResult<Vec<Issue>> {
        self.follow.backlog(self, label, as_of).await
    }

    async fn get_issue(&self, n: IssueNumber) -> ForgeResult<Issue> {
        let n = n.to_string();
        let issue: WireIssue = self
            .api
            .get(self.api.repo_url(&["issues", &n], &[]))
            .await?;
        self.remember_url(&issue);
        Ok(issue.into_domain())
    }

    async fn issue_dependencies(&self, n: IssueNumber) -> ForgeResult<Vec<Issue>> {
        let n = n.to_string();
        let url = self.api.repo_url(
            &["issues", &n, "dependencies", "blocked_by"],
            &[("per_page", PER_PAGE)],
        );
        match self.api.list::<WireIssue>(url, false, array).await {
            Ok(deps) => Ok(deps.into_iter().map(WireIssue::into_domain).collect()),
            // Issue dependencies switched off (or not on this server): none.
            Err(ForgeError::NotFound(_)) => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }

    async fn add_label(&self, n: IssueNumber, label: &str) -> ForgeResult<()> {
        // GitHub would create a missing label itself, silently and grey: made
        // here instead, with a log line and forgehand's colour.
        if !self.has_label(label) {
            self.refresh_labels().await?;
            if !self.has_label(label) {
                self.create_label(label).await?;
            }
        }
        let n = n.to_string();
        let url = self.api.repo_url(&["issues", &n, "labels"], &[]);
        let token = self.api.token().await?;
        // Adding a label the issue already carries changes nothing: safe to replay.
        self.api
            .status_only(
                &token,
                Method::POST,
                url,
                Some(json!({ "labels": [label] })),
                Replay::Safe,
            )
            .await
            .map_err(|e| self.api.error(e, &token))?;
        Ok(())
    }

    async fn remove_label(&self, n: IssueNumber, label: &str) -> ForgeResult<()> {
        let n = n.to_string();
        let url = self.api.repo_url(&["issues", &n, "labels", label], &[]);
        let token = self.api.token().await?;
        match self
            .api
            .status_only(&token, Method::DELETE, url, None, Replay::Safe)
            .await
        {
            Ok(_) => Ok(()),
            // The issue does not carry it (or the label does not exist).
            Err(e) if e.status() == Some(StatusCode::NOT_FOUND) => Ok(()),
            Err(e) => Err(self.api.error(e, &token)),
        }
    }

    async fn list_comments(&self, n: u64) -> ForgeResult<Vec<Comment>> {
        let n = n.to_string();
        let url = self
            .api
            .repo_url(&["issues", &n, "comments"], &[("per_page", PER_PAGE)]);
        let comments: Vec<WireComment> = self.api.list(url, false, array).await?;
        Ok(comments.into_iter().map(WireComment::into_domain).collect())
    }

    async fn create_comment(&self, n: u64, body: &str) -> ForgeResult<Comment> {
        let n = n.to_string();
        let url = self.api.repo_url(&["issues", &n, "comments"], &[]);
        let since = Utc::now() - COMMENT_CLOCK_SLACK;
        let token = self.api.token().await?;
        let decode = |bytes: &[u8]| {
            serde_json::from_slice::<WireComment>(bytes).map(WireComment::into_domain)
        };
        let landed = || self.own_comment(&n, body, since);
        self.api
            .create_checked(&token, url, json!({ "body": body }), decode, landed)
            .await
    }

    async fn close_issue(&self, n: IssueNumber) -> ForgeResult<()> {
        let n = n.to_string();
        let url = self.api.repo_url(&["issues", &n], &[]);
        let token = self.api.token().await?;
        self.api
            .status_only(
                &token,
                Method::PATCH,
                url,
                Some(json!({ "state": "closed" })),
                Replay::Safe,
            )
            .await
            .map_err(|e| self.api.error(e, &token))?;
        Ok(())
    }

    async fn list_open_pulls(&self) -> ForgeResult<Vec<PullRequest>> {
        Source::open_pulls(self).await
    }

    async fn open_pulls_as_of(&self, as_of: Instant, again: bool) -> ForgeResult<Vec<PullRequest>> {
        self.follow.open_pulls(self, as_of, again).await
    }

    async fn find_pull(&self, base: &str, head: &str) -> ForgeResult<Option<PullRequest>> {
        // Only open pulls, as on Forgejo: GitHub refuses a second open PR for one
        // head and base, and a closed one does not stop a new PR being opened.
        let head = format!("{}:{head}", self.api.owner);
        let url = self.api.repo_url(
            &["pulls"],
            &[
                ("state", "open"),
                ("head", head.as_str()),
                ("base", base),
                ("per_page", PER_PAGE),
            ],
        );
        let pulls: Vec<WirePull> = self.api.list(url, false, array).await?;
        Ok(pulls.into_iter().next().map(WirePull::into_domain))
    }

    async fn get_pull(&self, n: PrNumber) -> ForgeResult<PullRequest> {
        let n = n.to_string();
        let pull: WirePull = self.api.get(self.api.repo_url(&["pulls", &n], &[])).await?;
        Ok(pull.into_domain())
    }

    async fn create_pull(&self, new: &NewPull) -> ForgeResult<PullRequest> {
        let url = self.api.repo_url(&["pulls"], &[]);
        let body = json!({
            "head": new.head,
            "base": new.base,
            "title": new.title,
            "body": new.body,
            "draft": new.draft,
        });
        let token = self.api.token().await?;
        // Safe to send again: GitHub refuses a second open PR for one head and
        // base, and that refusal is answered with the PR below.
        match self
            .api
            .json::<WirePull>(&token, Method::POST, url, Some(body), Replay::Safe)
            .await
        {
            Ok(pull) => Ok(pull.into_domain()),
            Err(e) if pull_exists(&e) => match self.find_pull(&new.base, &new.head).await? {
                Some(pull) => Ok(pull),
                None => Err(self.api.error(e, &token)),
            },
            Err(e) if missing_head(&e) => Err(ForgeError::NotFound(format!(
                "no branch {} to open a pull request from: {}",
                new.head,
                self.api.error(e, &token)
            ))),
            Err(e) => Err(self.api.error(e, &token)),
        }
    }

    async fn list_reviews(&self, n: PrNumber) -> ForgeResult<Vec<Review>> {
        let n = n.to_string();
        let url = self
            .api
            .repo_url(&["pulls", &n, "reviews"], &[("per_page", PER_PAGE)]);
        let reviews: Vec<WireReview> = self.api.list(url, false, array).await?;
        let mut official: HashMap<String, bool> = HashMap::new();
        for r in &reviews {
            if !official.contains_key(r.author()) {
                let may = self.may_write(r.author()).await?;
                official.insert(r.author().to_string(), may);
            }
        }
        Ok(reviews
            .into_iter()
            .map(|r| {
                let counts = official.get(r.author()).copied().unwrap_or(false);
                r.into_domain(counts)
            })
            .collect())
    }

    async fn list_review_comments(
        &self,
        n: PrNumber,
        review: u64,
    ) -> ForgeResult<Vec<ReviewComment>> {
        let (n, review) = (n.to_string(), review.to_string());
        let url = self.api.repo_url(
            &["pulls", &n, "reviews", &review, "comments"],
            &[("per_page", PER_PAGE)],
        );
        let comments: Vec<WireReviewComment> = self.api.list(url, false, array).await?;
        Ok(comments
            .into_iter()
            .map(WireReviewComment::into_domain)
            .collect())
    }

    async fn combined_status(&self, sha: &CommitSha) -> ForgeResult<CombinedStatus> {
        self.fold_status(sha).await
    }

    async fn merge_pull(&self, n: PrNumber, req: &MergeRequest) -> ForgeResult<()> {
        self.merge(n, req).await
    }

    async fn delete_branch(&self, name: &str) -> ForgeResult<()> {
        self.delete_ref(name).await
    }

    async fn can_write(&self, login: &str) -> ForgeResult<bool> {
        self.may_write(login).await
    }

    fn issue_url(&self, n: IssueNumber) -> String {
        if let Some(url) = self
            .issue_urls
            .lock()
            .expect("issue url cache poisoned")
            .get(&n.0)
        {
            return url.clone();
        }
        let mut url = self.api.web.clone();
        url.path_segments_mut()
            .expect("the web address derives from the API's, a base")
            .pop_if_empty()
            .extend([
                self.api.owner.as_str(),
                &self.api.repo,
                "issues",
                &n.to_string(),
            ]);
        url.into()
    }
}
