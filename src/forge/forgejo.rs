//! Forgejo/Gitea REST v1 client: the `Forge` trait over `<forge_url>/api/v1`,
//! every request through `http::retry::perform_retryable`. Every path used here exists
//! with that method in Forgejo 11.0.3's swagger (checked by the test suite).

mod conditional;
mod follow;
mod hooks;
mod labels;
mod permissions;
mod wire;

use super::rights::Permissions;
use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;
use std::time::Instant;

use anyhow::bail;
use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use reqwest::header::{ACCEPT, AUTHORIZATION};
use reqwest::{Method, StatusCode, Url};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::changes::{Follow, Source};
use super::{
    CombinedStatus, Comment, CommitSha, Forge, ForgeError, ForgeResult, Issue, IssueNumber,
    MergeRequest, NewPull, PrNumber, PullRequest, Review, ReviewComment, Webhook,
};
use crate::http::retry::{
    Attempt, CheckedError, Replay, Reply, RetryPolicy, perform_checked, perform_retryable,
};
use crate::http::{self, HttpError, redact};
use wire::{
    WireCombinedStatus, WireComment, WireIssue, WirePull, WireReview, WireReviewComment, WireUser,
};

/// Items per page; Forgejo's default cap (`MAX_RESPONSE_ITEMS`) is 50 too.
const PAGE_LIMIT: usize = 50;
/// A forge that ignores `page` would otherwise be paged forever.
const MAX_PAGES: u32 = 1000;
/// How far before a comment's first attempt its check looks: Forgejo keeps whole
/// seconds and its clock may run a little behind ours. A wider window only risks
/// taking an identical comment of ours from the last minute for this one.
const COMMENT_CLOCK_SLACK: chrono::TimeDelta = chrono::TimeDelta::seconds(60);

/// A client for one repository on a Forgejo or Gitea instance.
pub struct ForgejoClient {
    http: reqwest::Client,
    /// `<forge_url>/api/v1`, without any credentials of the host.
    api: Url,
    /// `<forge_url>` itself, where people see the repository's pages.
    web: Url,
    owner: String,
    repo: String,
    /// Sent as `Authorization: token …`; never printed (see the `Debug` impl).
    token: String,
    policy: RetryPolicy,
    /// Label name → id. Label ids rarely change, and add/remove take ids, so the
    /// list is fetched again only when a name is missing from it.
    labels: Mutex<HashMap<String, u64>>,
    /// Our own login, fetched once: it does not change while the token lives, and
    /// telling our comments apart must not cost a request each time.
    login: tokio::sync::OnceCell<String>,
    /// The last answer to each page of the lists polled every cycle (open
    /// issues, open pulls), by URL, for conditional requests.
    pages: Mutex<HashMap<String, conditional::KeptPage>>,
    /// Who may write, asked once a while per login (`permissions.rs`).
    permissions: Permissions,
    /// The open backlog and pull requests as of the last look, brought up
    /// to date with what changed since (`forge::changes`).
    follow: Follow,
}

impl fmt::Debug for ForgejoClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ForgejoClient")
            .field("api", &self.api.as_str())
            .field("repo", &format_args!("{}/{}", self.owner, self.repo))
            .field("token", &"[REDACTED]")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl ForgejoClient {
    /// `forge_url` is the instance's web address (`https://forge.example`),
    /// `repo` is `owner/name`.
    pub fn new(
        forge_url: &str,
        repo: &str,
        token: String,
        policy: RetryPolicy,
    ) -> anyhow::Result<Self> {
        let api = http::api_base(forge_url, "forge url", &["api", "v1"])?;
        let web = http::api_base(forge_url, "forge url", &[])?;

        let (owner, name) = match repo.split_once('/') {
            Some((o, n)) if !o.is_empty() && !n.is_empty() && !n.contains('/') => (o, n),
            _ => bail!("repository {repo:?} must be written owner/name"),
        };
        http::check_token("token", &token, "forge")?;
        let http = http::client(&policy)?;
        Ok(ForgejoClient {
            http,
            api,
            web,
            owner: owner.to_string(),
            repo: name.to_string(),
            token,
            policy,
            labels: Mutex::new(HashMap::new()),
            login: tokio::sync::OnceCell::new(),
            pages: Mutex::new(HashMap::new()),
            permissions: Permissions::default(),
            follow: Follow::default(),
        })
    }

    /// `<api>/<segments…>?<query>`, each segment and value percent-encoded (a `/`
    /// inside a branch name becomes `%2F`).
    fn url(&self, segments: &[&str], query: &[(&str, &str)]) -> Url {
        let mut url = self.api.clone();
        url.path_segments_mut()
            .expect("checked in new: the API url is a base")
            .extend(segments);
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        url
    }

    /// `<api>/repos/<owner>/<repo>/<segments…>`.
    fn repo_url(&self, segments: &[&str], query: &[(&str, &str)]) -> Url {
        let mut all = vec!["repos", self.owner.as_str(), self.repo.as_str()];
        all.extend_from_slice(segments);
        self.url(&all, query)
    }

    /// One request through the retry policy; `decode` reads a 2xx body.
    async fn send<T>(
        &self,
        method: Method,
        url: Url,
        body: Option<Value>,
        replay: Replay,
        decode: impl Fn(&[u8]) -> serde_json::Result<T>,
    ) -> Result<Reply<T>, HttpError> {
        let (attempt, build) = self.prepare(method, url, body, replay);
        perform_retryable(&self.policy, &attempt, build, decode).await
    }

    /// A POST that must not land twice, whose JSON answer `W` reads as `T`: after
    /// an attempt that may have landed, `landed` looks for it before it is sent again.
    async fn create_checked<W: DeserializeOwned, T, F>(
        &self,
        url: Url,
        body: Value,
        into: impl Fn(W) -> T,
        landed: impl Fn() -> F,
    ) -> Result<T, CheckedError<ForgeError>>
    where
        F: Future<Output = ForgeResult<Option<T>>>,
    {
        let (attempt, build) = self.prepare(Method::POST, url, Some(body), Replay::Checked);
        let decode = |bytes: &[u8]| serde_json::from_slice(bytes).map(&into);
        perform_checked(&self.policy, &attempt, build, decode, landed)
            .await
            .map(|reply| reply.value)
    }

    fn checked_error(&self, e: CheckedError<ForgeError>) -> ForgeError {
        match e {
            CheckedError::Request(e) => self.error(e),
            CheckedError::Check(e) => e,
        }
    }

    /// What a call attempts, and a builder of its request (one per attempt).
    fn prepare(
        &self,
        method: Method,
        url: Url,
        body: Option<Value>,
        replay: Replay,
    ) -> (Attempt, impl Fn() -> reqwest::RequestBuilder + '_) {
        let attempt = http::attempt(&method, &url, replay);
        let auth = http::auth_header("token", &self.token);
        let build = move || {
            let req = self
                .http
                .request(method.clone(), url.clone())
                .header(AUTHORIZATION, auth.clone())
                .header(ACCEPT, "application/json");
            match &body {
                Some(b) => req.json(b),
                None => req,
            }
        };
        (attempt, build)
    }

    /// A request whose 2xx body is JSON of type `T` (an empty body reads as `null`).
    async fn json<T: DeserializeOwned>(
        &self,
        method: Method,
        url: Url,
        body: Option<Value>,
        replay: Replay,
    ) -> Result<Reply<T>, HttpError> {
        self.send(method, url, body, replay, |bytes| {
            if bytes.iter().all(u8::is_ascii_whitespace) {
                serde_json::from_slice(b"null")
            } else {
                serde_json::from_slice(bytes)
            }
        })
        .await
    }

    /// A request whose answer body does not matter, only its status.
    async fn status_only(
        &self,
        method: Method,
        url: Url,
        body: Option<Value>,
        replay: Replay,
    ) -> Result<StatusCode, HttpError> {
        let reply = self.send(method, url, body, replay, |_| Ok(())).await?;
        Ok(reply.status)
    }

    async fn get<T: DeserializeOwned>(&self, url: Url) -> ForgeResult<T> {
        self.json(Method::GET, url, None, Replay::Safe)
            .await
            .map(|r| r.value)
            .map_err(|e| self.error(e))
    }

    /// Every page of a list endpoint that takes `page`/`limit`: until a page is
    /// short, or until `X-Total-Count` items arrived when the forge sends it (a
    /// forge whose page cap is below `PAGE_LIMIT` returns short pages early).
    async fn list_all<T: DeserializeOwned>(
        &self,
        segments: &[&str],
        query: &[(&str, &str)],
    ) -> ForgeResult<Vec<T>> {
        self.list_pages(segments, query, false).await
    }

    /// `list_all` with conditional requests, for the lists every poll reads.
    async fn list_all_conditional<T: DeserializeOwned>(
        &self,
        segments: &[&str],
        query: &[(&str, &str)],
    ) -> ForgeResult<Vec<T>> {
        self.list_pages(segments, query, true).await
    }

    async fn list_pages<T: DeserializeOwned>(
        &self,
        segments: &[&str],
        query: &[(&str, &str)],
        conditional: bool,
    ) -> ForgeResult<Vec<T>> {
        let mut all = Vec::new();
        let limit = PAGE_LIMIT.to_string();
        for page in 1..=MAX_PAGES {
            let page_s = page.to_string();
            let mut q = query.to_vec();
            q.extend([("page", page_s.as_str()), ("limit", limit.as_str())]);
            let url = self.repo_url(segments, &q);
            // Some versions answer `null` for an empty list.
            let (items, headers) = if conditional {
                self.conditional_page::<T>(url).await?
            } else {
                let reply: Reply<Option<Vec<T>>> = self
                    .json(Method::GET, url, None, Replay::Safe)
                    .await
                    .map_err(|e| self.error(e))?;
                (reply.value, reply.headers)
            };
            let items = items.unwrap_or_default();
            let got = items.len();
            all.extend(items);
            if page_done(&headers, got, all.len()) {
                return Ok(all);
            }
        }
        Err(ForgeError::Other(anyhow::anyhow!(
            "listing {} of {}/{}: more than {MAX_PAGES} pages",
            segments.join("/"),
            self.owner,
            self.repo
        )))
    }

    fn error(&self, e: HttpError) -> ForgeError {
        ForgeError::from_http(e, &self.token)
    }

    /// Our comment with exactly this body on issue `n` created since `since`, if
    /// any: how a comment whose answer was lost is found instead of posted twice.
    async fn own_comment(
        &self,
        n: &str,
        body: &str,
        since: DateTime<Utc>,
    ) -> ForgeResult<Option<Comment>> {
        let me = self.current_user().await?;
        let since = since.to_rfc3339_opts(SecondsFormat::Secs, true);
        let url = self.repo_url(&["issues", n, "comments"], &[("since", since.as_str())]);
        let comments: Option<Vec<WireComment>> = self.get(url).await?;
        Ok(comments
            .unwrap_or_default()
            .into_iter()
            .map(WireComment::into_domain)
            .filter(|c| c.author == me && c.body == body)
            .max_by_key(|c| c.id))
    }
}

/// Whether a list is complete after a page of `got` items brought the total to `have`.
fn page_done(headers: &reqwest::header::HeaderMap, got: usize, have: usize) -> bool {
    let total = headers
        .get("x-total-count")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<usize>().ok());
    match total {
        Some(total) => got == 0 || have >= total,
        None => got < PAGE_LIMIT,
    }
}

#[async_trait]
impl Forge for ForgejoClient {
    async fn current_user(&self) -> ForgeResult<String> {
        let login = self
            .login
            .get_or_try_init(async || {
                let user: WireUser = self.get(self.url(&["user"], &[])).await?;
                Ok::<_, ForgeError>(user.login)
            })
            .await?;
        Ok(login.clone())
    }

    async fn ensure_labels(&self, names: &[String]) -> ForgeResult<()> {
        self.refresh_labels().await?;
        for name in names {
            if self.cached_label(name).is_none() {
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

    async fn list_open_issues(&self, label: &str) -> ForgeResult<Vec<Issue>> {
        self.follow.backlog(self, label, Instant::now()).await
    }

    async fn open_issues_as_of(&self, label: &str, as_of: Instant) -> ForgeResult<Vec<Issue>> {
        self.follow.backlog(self, label, as_of).await
    }

    async fn get_issue(&self, n: IssueNumber) -> ForgeResult<Issue> {
        let n = n.to_string();
        let issue: WireIssue = self.get(self.repo_url(&["issues", &n], &[])).await?;
        Ok(issue.into_domain())
    }

    async fn issue_dependencies(&self, n: IssueNumber) -> ForgeResult<Vec<Issue>> {
        let n = n.to_string();
        let deps: Vec<WireIssue> = self.list_all(&["issues", &n, "dependencies"], &[]).await?;
        Ok(deps.into_iter().map(WireIssue::into_domain).collect())
    }

    async fn add_label(&self, n: IssueNumber, label: &str) -> ForgeResult<()> {
        let id = match self.label_id(label).await? {
            Some(id) => id,
            None => self.create_label(label).await?,
        };
        let n = n.to_string();
        let url = self.repo_url(&["issues", &n, "labels"], &[]);
        // Adding a label the issue already carries changes nothing: safe to replay.
        self.status_only(
            Method::POST,
            url,
            Some(json!({ "labels": [id] })),
            Replay::Safe,
        )
        .await
        .map_err(|e| self.error(e))?;
        Ok(())
    }

    async fn remove_label(&self, n: IssueNumber, label: &str) -> ForgeResult<()> {
        let Some(id) = self.label_id(label).await? else {
            return Ok(());
        };
        let (n, id) = (n.to_string(), id.to_string());
        let url = self.repo_url(&["issues", &n, "labels", &id], &[]);
        match self
            .status_only(Method::DELETE, url, None, Replay::Safe)
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.status() == Some(StatusCode::NOT_FOUND) => Ok(()),
            Err(e) => Err(self.error(e)),
        }
    }

    async fn list_comments(&self, n: u64) -> ForgeResult<Vec<Comment>> {
        // The swagger gives this endpoint no page/limit: it returns every comment.
        let n = n.to_string();
        let comments: Option<Vec<WireComment>> = self
            .get(self.repo_url(&["issues", &n, "comments"], &[]))
            .await?;
        Ok(comments
            .unwrap_or_default()
            .into_iter()
            .map(WireComment::into_domain)
            .collect())
    }

    async fn create_comment(&self, n: u64, body: &str) -> ForgeResult<Comment> {
        let n = n.to_string();
        let url = self.repo_url(&["issues", &n, "comments"], &[]);
        let since = Utc::now() - COMMENT_CLOCK_SLACK;
        let landed = || self.own_comment(&n, body, since);
        self.create_checked(
            url,
            json!({ "body": body }),
            WireComment::into_domain,
            landed,
        )
        .await
        .map_err(|e| self.checked_error(e))
    }

    async fn close_issue(&self, n: IssueNumber) -> ForgeResult<()> {
        let n = n.to_string();
        let url = self.repo_url(&["issues", &n], &[]);
        self.status_only(
            Method::PATCH,
            url,
            Some(json!({ "state": "closed" })),
            Replay::Safe,
        )
        .await
        .map_err(|e| self.error(e))?;
        Ok(())
    }

    async fn list_open_pulls(&self) -> ForgeResult<Vec<PullRequest>> {
        Source::open_pulls(self).await
    }

    async fn open_pulls_as_of(&self, as_of: Instant, again: bool) -> ForgeResult<Vec<PullRequest>> {
        self.follow.open_pulls(self, as_of, again).await
    }

    async fn find_pull(&self, base: &str, head: &str) -> ForgeResult<Option<PullRequest>> {
        // Only open pulls: Forgejo refuses a second open PR for the same head and
        // base, and a closed one does not stop a new PR from being opened.
        let pulls = self.list_open_pulls().await?;
        Ok(pulls
            .into_iter()
            .find(|p| p.head_ref == head && p.base_ref == base))
    }

    async fn get_pull(&self, n: PrNumber) -> ForgeResult<PullRequest> {
        let n = n.to_string();
        let pull: WirePull = self.get(self.repo_url(&["pulls", &n], &[])).await?;
        Ok(pull.into_domain())
    }

    async fn create_pull(&self, new: &NewPull) -> ForgeResult<PullRequest> {
        let url = self.repo_url(&["pulls"], &[]);
        // Forgejo has no draft flag: a title with a work-in-progress prefix
        // is how a pull request becomes one there.
        let title = if new.draft {
            format!("WIP: {}", new.title)
        } else {
            new.title.clone()
        };
        let body = json!({
            "head": new.head,
            "base": new.base,
            "title": title,
            "body": new.body,
        });
        // Safe to send again: Forgejo refuses a second open PR for one head and base,
        // and that refusal is answered with the PR below.
        match self
            .json::<WirePull>(Method::POST, url, Some(body), Replay::Safe)
            .await
        {
            Ok(reply) => Ok(reply.value.into_domain()),
            // The PR exists (maybe our own earlier attempt landed): creation is
            // idempotent, so hand back that one.
            Err(e) if pull_exists(&e) => match self.find_pull(&new.base, &new.head).await? {
                Some(pull) => Ok(pull),
                None => Err(self.error(e)),
            },
            Err(e) => Err(self.error(e)),
        }
    }

    async fn list_reviews(&self, n: PrNumber) -> ForgeResult<Vec<Review>> {
        let n = n.to_string();
        let reviews: Vec<WireReview> = self.list_all(&["pulls", &n, "reviews"], &[]).await?;
        Ok(reviews.into_iter().map(WireReview::into_domain).collect())
    }

    async fn list_review_comments(
        &self,
        n: PrNumber,
        review: u64,
    ) -> ForgeResult<Vec<ReviewComment>> {
        let (n, review) = (n.to_string(), review.to_string());
        let url = self.repo_url(&["pulls", &n, "reviews", &review, "comments"], &[]);
        let comments: Option<Vec<WireReviewComment>> = self.get(url).await?;
        Ok(comments
            .unwrap_or_default()
            .into_iter()
            .map(WireReviewComment::into_domain)
            .collect())
    }

    async fn combined_status(&self, sha: &CommitSha) -> ForgeResult<CombinedStatus> {
        let limit = PAGE_LIMIT.to_string();
        let mut first: Option<(Option<String>, Option<u64>)> = None;
        let mut statuses = Vec::new();
        for page in 1..=MAX_PAGES {
            let page_s = page.to_string();
            let query = [("page", page_s.as_str()), ("limit", limit.as_str())];
            let url = self.repo_url(&["commits", &sha.0, "status"], &query);
            let reply: Reply<WireCombinedStatus> = self
                .json(Method::GET, url, None, Replay::Safe)
                .await
                .map_err(|e| self.error(e))?;
            let page_statuses = reply.value.statuses.unwrap_or_default();
            let got = page_statuses.len();
            statuses.extend(page_statuses);
            first.get_or_insert((reply.value.state, reply.value.total_count));
            if page_done(&reply.headers, got, statuses.len()) {
                let (state, total) = first.unwrap_or_default();
                return Ok(wire::combined_status(state.as_deref(), total, statuses));
            }
        }
        Err(ForgeError::Other(anyhow::anyhow!(
            "combined status of {sha}: more than {MAX_PAGES} pages"
        )))
    }

    async fn merge_pull(&self, n: PrNumber, req: &MergeRequest) -> ForgeResult<()> {
        let n_s = n.to_string();
        let url = self.repo_url(&["pulls", &n_s, "merge"], &[]);
        let body = json!({
            "Do": req.method.as_str(),
            "head_commit_id": req.head_sha.0,
            "delete_branch_after_merge": req.delete_branch,
        });
        // Safe to send again: a merge that landed makes the next attempt a 405 (and
        // a moved head a 409), never a second merge.
        match self
            .status_only(Method::POST, url, Some(body), Replay::Safe)
            .await
        {
            Ok(_) => Ok(()),
            // 405: "not mergeable", which is also what a second merge gets.
            Err(e) if e.status() == Some(StatusCode::METHOD_NOT_ALLOWED) => {
                let pull = self.get_pull(n).await?;
                if pull.merged {
                    Err(ForgeError::AlreadyMerged)
                } else {
                    let why = e.message().unwrap_or("no reason given");
                    Err(ForgeError::Conflict(format!(
                        "pull request #{n} is not mergeable: {}",
                        redact(why, &self.token)
                    )))
                }
            }
            Err(e) => Err(self.error(e)),
        }
    }

    async fn delete_branch(&self, name: &str) -> ForgeResult<()> {
        let url = self.repo_url(&["branches", name], &[]);
        match self
            .status_only(Method::DELETE, url, None, Replay::Safe)
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.status() == Some(StatusCode::NOT_FOUND) => Ok(()),
            Err(e) => Err(self.error(e)),
        }
    }

    async fn can_write(&self, login: &str) -> ForgeResult<bool> {
        self.may_write(login).await
    }

    fn issue_url(&self, n: IssueNumber) -> String {
        let mut url = self.web.clone();
        url.path_segments_mut()
            .expect("checked in new: the forge url is a base")
            .extend([self.owner.as_str(), &self.repo, "issues", &n.to_string()]);
        url.into()
    }
}

/// Forgejo answers 409 to a second PR for the same head and base; some Gitea
/// versions answer 422 with a message saying so.
fn pull_exists(e: &HttpError) -> bool {
    match e.status() {
        Some(StatusCode::CONFLICT) => true,
        Some(StatusCode::UNPROCESSABLE_ENTITY) => e
            .message()
            .is_some_and(|m| m.to_ascii_lowercase().contains("exist")),
        _ => false,
    }
}
