//! The transport both GitHub clients share (the `Forge` one and the Actions
//! `CiServer`): the API's address, the credentials put on every request, the
//! retry policy, GitHub's quota read off every answer, lists followed through
//! their `Link: <…>; rel="next"` headers, and conditional requests: a list page
//! is kept with its `ETag`, asked for again with `If-None-Match`, and a `304`
//! (which costs no quota) is answered from what was kept.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use reqwest::header::{ACCEPT, AUTHORIZATION, ETAG, HeaderMap, HeaderValue, IF_NONE_MATCH, LINK};
use reqwest::{Method, StatusCode, Url};
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::sync::watch;

use super::app::AppTokens;
use super::{API_VERSION, MAX_PAGES, MEDIA_TYPE, RateLimit};
use crate::forge::token::{StaticToken, TokenSource};
use crate::forge::{ForgeError, ForgeResult};
use crate::http::retry::{
    Attempt, CheckedError, Observer, Replay, Reply, RetryPolicy, perform_checked, perform_retryable,
};
use crate::http::{self, HttpError};

/// How forgehand signs in, once set up.
pub(super) enum Auth {
    /// A personal access token; kept beside its source for cutting it out of errors.
    Token(Arc<StaticToken>, String),
    App(Arc<AppTokens>),
}

impl Auth {
    async fn token(&self) -> ForgeResult<String> {
        match self {
            Auth::Token(_, token) => Ok(token.clone()),
            Auth::App(app) => app.token().await,
        }
    }

    pub(super) fn source(&self) -> Arc<dyn TokenSource> {
        match self {
            Auth::Token(source, _) => source.clone(),
            Auth::App(app) => app.clone(),
        }
    }
}

/// One page as GitHub last sent it.
#[derive(Clone)]
struct KeptPage {
    etag: HeaderValue,
    /// The raw body, decoded again on every `304`.
    body: Vec<u8>,
    /// Its `Link` header, which the paging follows.
    link: Option<HeaderValue>,
}

/// The HTTP side of one repository on GitHub.
pub struct Api {
    pub(super) http: reqwest::Client,
    /// The same client, not following redirects: a job's log answers `302`
    /// with a link to storage elsewhere, which must not see the token.
    no_redirect: reqwest::Client,
    /// The REST API's base (`https://api.github.com`), without credentials.
    pub(super) base: Url,
    /// Where people see the repository (`https://github.com`).
    pub(super) web: Url,
    pub(super) owner: String,
    pub(super) repo: String,
    pub(super) auth: Auth,
    pub(super) policy: RetryPolicy,
    /// The quota of the latest answer that reported one.
    pub(super) quota: Arc<watch::Sender<Option<RateLimit>>>,
    /// The last answer to each page of the lists polled every cycle, by URL.
    pages: Mutex<HashMap<String, KeptPage>>,
}

impl Api {
    pub(super) fn new(
        base: Url,
        web: Url,
        owner: &str,
        repo: &str,
        auth: Auth,
        http: reqwest::Client,
        policy: RetryPolicy,
    ) -> anyhow::Result<Api> {
        let no_redirect = reqwest::Client::builder()
            .user_agent(concat!("forgehand/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(policy.request_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| anyhow::anyhow!("building the HTTP client for GitHub's logs: {e}"))?;
        Ok(Api {
            http,
            no_redirect,
            base,
            web,
            owner: owner.to_string(),
            repo: repo.to_string(),
            auth,
            policy,
            quota: Arc::new(watch::channel(None).0),
            pages: Mutex::new(HashMap::new()),
        })
    }

    /// `owner/name`, for messages.
    pub(crate) fn repo_name(&self) -> String {
        format!("{}/{}", self.owner, self.repo)
    }

    /// `<base>/<segments…>?<query>`, each segment and value percent-encoded.
    pub(crate) fn url(&self, segments: &[&str], query: &[(&str, &str)]) -> Url {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .expect("checked in new: the API url is a base")
            .extend(segments);
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        url
    }

    /// `<base>/repos/<owner>/<repo>/<segments…>?<query>`.
    pub(crate) fn repo_url(&self, segments: &[&str], query: &[(&str, &str)]) -> Url {
        let mut all = vec!["repos", self.owner.as_str(), self.repo.as_str()];
        all.extend_from_slice(segments);
        self.url(&all, query)
    }

    /// The token for the next call (an App's is renewed here when due).
    pub(crate) async fn token(&self) -> ForgeResult<String> {
        self.auth.token().await
    }

    /// A failed call as the error callers branch on, `token` cut out of
    /// whatever GitHub sent back. `410 Gone` (a deleted issue) is not found.
    pub(crate) fn error(&self, e: HttpError, token: &str) -> ForgeError {
        let gone = e.status() == Some(StatusCode::GONE);
        match ForgeError::from_http(e, token) {
            ForgeError::Other(e) if gone => ForgeError::NotFound(format!("{e:#}")),
            e => e,
        }
    }

    /// Reads GitHub's quota headers off every answer into `quota`.
    fn observer(&self) -> Observer {
        let quota = self.quota.clone();
        Observer(Arc::new(move |headers: &HeaderMap| {
            if let Some(limit) = RateLimit::from_headers(headers) {
                quota.send_replace(Some(limit));
            }
        }))
    }

    /// What a call attempts, and a builder of its request (one per attempt).
    fn prepare<'a>(
        &'a self,
        token: &str,
        method: Method,
        url: Url,
        body: Option<Value>,
        replay: Replay,
    ) -> (Attempt, impl Fn() -> reqwest::RequestBuilder + 'a) {
        let attempt = http::attempt(&method, &url, replay).observed(self.observer());
        let auth = http::auth_header("Bearer", token);
        let build = move || {
            let req = self
                .http
                .request(method.clone(), url.clone())
                .header(AUTHORIZATION, auth.clone())
                .header(ACCEPT, MEDIA_TYPE)
                .header("x-github-api-version", API_VERSION);
            match &body {
                Some(b) => req.json(b),
                None => req,
            }
        };
        (attempt, build)
    }

    /// One request through the retry policy; `decode` reads a 2xx body.
    pub(crate) async fn request<T>(
        &self,
        token: &str,
        method: Method,
        url: Url,
        body: Option<Value>,
        replay: Replay,
        decode: impl Fn(&[u8]) -> serde_json::Result<T>,
    ) -> Result<Reply<T>, HttpError> {
        let (attempt, build) = self.prepare(token, method, url, body, replay);
        perform_retryable(&self.policy, &attempt, build, decode).await
    }

    /// A POST that must not land twice, its 2xx body read by `decode`: after an
    /// attempt that may have landed, `landed` looks for it before it is sent again.
    pub(crate) async fn create_checked<T, F>(
        &self,
        token: &str,
        url: Url,
        body: Value,
        decode: impl Fn(&[u8]) -> serde_json::Result<T>,
        landed: impl Fn() -> F,
    ) -> ForgeResult<T>
    where
        F: Future<Output = ForgeResult<Option<T>>>,
    {
        let (attempt, build) = self.prepare(token, Method::POST, url, Some(body), Replay::Checked);
        match perform_checked(&self.policy, &attempt, build, decode, landed).await {
            Ok(reply) => Ok(reply.value),
            Err(CheckedError::Request(e)) => Err(self.error(e, token)),
            Err(CheckedError::Check(e)) => Err(e),
        }
    }

    /// A request whose 2xx body is JSON of type `T`.
    pub(crate) async fn json<T: DeserializeOwned>(
        &self,
        token: &str,
        method: Method,
        url: Url,
        body: Option<Value>,
        replay: Replay,
    ) -> Result<T, HttpError> {
        self.request(token, method, url, body, replay, |b| {
            serde_json::from_slice(b)
        })
        .await
        .map(|r| r.value)
    }

    /// A request whose answer body does not matter, only that it succeeded.
    pub(crate) async fn status_only(
        &self,
        token: &str,
        method: Method,
        url: Url,
        body: Option<Value>,
        replay: Replay,
    ) -> Result<StatusCode, HttpError> {
        let reply = self
            .request(token, method, url, body, replay, |_| Ok(()))
            .await?;
        Ok(reply.status)
    }

    /// `GET url` read as `T`, errors mapped.
    pub(crate) async fn get<T: DeserializeOwned>(&self, url: Url) -> ForgeResult<T> {
        let token = self.token().await?;
        self.json(&token, Method::GET, url, None, Replay::Safe)
            .await
            .map_err(|e| self.error(e, &token))
    }

    /// Every page of a list starting at `first`, following `rel="next"`;
    /// `items` reads one page's body (a bare array, or an object holding one).
    /// `conditional` keeps each page for `If-None-Match`.
    pub(crate) async fn list<T>(
        &self,
        first: Url,
        conditional: bool,
        items: impl Fn(&[u8]) -> serde_json::Result<Vec<T>>,
    ) -> ForgeResult<Vec<T>> {
        let token = self.token().await?;
        let mut all = Vec::new();
        let mut next = Some(first);
        let mut pages = 0;
        while let Some(url) = next.take() {
            pages += 1;
            if pages > MAX_PAGES {
                return Err(ForgeError::Other(anyhow::anyhow!(
                    "listing {} of {}: more than {MAX_PAGES} pages",
                    url.path(),
                    self.repo_name()
                )));
            }
            let path = url.path().to_string();
            let (body, link) = if conditional {
                self.conditional_page(&token, url).await?
            } else {
                let reply = self
                    .request(&token, Method::GET, url, None, Replay::Safe, |b| {
                        Ok(b.to_vec())
                    })
                    .await
                    .map_err(|e| self.error(e, &token))?;
                (reply.value, reply.headers.get(LINK).cloned())
            };
            let page = items(&body).map_err(|e| {
                ForgeError::Other(anyhow::anyhow!(
                    "GET {path}: the answer is not the expected JSON: {e}"
                ))
            })?;
            all.extend(page);
            next = match link.as_ref().and_then(|l| l.to_str().ok()) {
                Some(link) => self.next_page(link)?,
                None => None,
            };
        }
        Ok(all)
    }

    /// Drop the kept answers of the URLs `gone` picks: lists that will not
    /// be asked for again must not pile up.
    pub(crate) fn forget_pages(&self, gone: impl Fn(&str) -> bool) {
        self.pages
            .lock()
            .expect("page cache poisoned")
            .retain(|url, _| !gone(url));
    }

    /// One page, `If-None-Match` its kept `ETag`: its body and `Link` header,
    /// from the answer or, on a `304`, from what was kept.
    async fn conditional_page(
        &self,
        token: &str,
        url: Url,
    ) -> ForgeResult<(Vec<u8>, Option<HeaderValue>)> {
        let key = url.as_str().to_string();
        let kept = self
            .pages
            .lock()
            .expect("page cache poisoned")
            .get(&key)
            .cloned();
        let (attempt, build) = self.prepare(token, Method::GET, url, None, Replay::Safe);
        let build = || match &kept {
            Some(k) => build().header(IF_NONE_MATCH, k.etag.clone()),
            None => build(),
        };
        let decode = |b: &[u8]| Ok(b.to_vec());
        match perform_retryable(&self.policy, &attempt, build, decode).await {
            Ok(reply) => {
                let link = reply.headers.get(LINK).cloned();
                let mut pages = self.pages.lock().expect("page cache poisoned");
                match reply.headers.get(ETAG) {
                    Some(etag) => {
                        let page = KeptPage {
                            etag: etag.clone(),
                            body: reply.value.clone(),
                            link: link.clone(),
                        };
                        pages.insert(key, page);
                    }
                    None => {
                        pages.remove(&key);
                    }
                }
                Ok((reply.value, link))
            }
            Err(e) if e.status() == Some(StatusCode::NOT_MODIFIED) => match kept {
                Some(k) => Ok((k.body, k.link)),
                // A 304 to a request that asked nothing conditional.
                None => Err(self.error(e, token)),
            },
            Err(e) => Err(self.error(e, token)),
        }
    }

    /// The `rel="next"` address of a `Link` header, if any. It must be on the
    /// API's own host: the token goes with it.
    fn next_page(&self, link: &str) -> ForgeResult<Option<Url>> {
        let Some(next) = next_link(link) else {
            return Ok(None);
        };
        let url = self.base.join(next).map_err(|e| {
            ForgeError::Other(anyhow::anyhow!(
                "GitHub's next page {next:?} is not a URL: {e}"
            ))
        })?;
        if url.origin() != self.base.origin() {
            return Err(ForgeError::Other(anyhow::anyhow!(
                "GitHub's next page is on another host ({}), where forgehand's token must not go",
                url.origin().ascii_serialization()
            )));
        }
        Ok(Some(url))
    }

    /// The body behind `url`, which may redirect (a job's log answers `302` with
    /// a signed link to storage elsewhere). The redirect is followed here, not
    /// by the HTTP client, and without the token: it is for GitHub's API only.
    pub(crate) async fn download(&self, url: Url) -> ForgeResult<Vec<u8>> {
        let token = self.token().await?;
        let attempt = http::attempt(&Method::GET, &url, Replay::Safe).observed(self.observer());
        let auth = http::auth_header("Bearer", &token);
        let build = || {
            self.no_redirect
                .get(url.clone())
                .header(AUTHORIZATION, auth.clone())
                .header(ACCEPT, MEDIA_TYPE)
                .header("x-github-api-version", API_VERSION)
        };
        let reply = perform_retryable(&self.policy, &attempt, build, |b| Ok(b.to_vec()))
            .await
            .map_err(|e| self.error(e, &token))?;
        if !reply.status.is_redirection() {
            return Ok(reply.value);
        }
        let location = reply
            .headers
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| {
                ForgeError::Other(anyhow::anyhow!(
                    "GET {}: a redirect without a Location",
                    url.path()
                ))
            })?;
        let target = url.join(location).map_err(|e| {
            ForgeError::Other(anyhow::anyhow!(
                "GET {}: the redirect's Location is not a URL: {e}",
                url.path()
            ))
        })?;
        self.fetch_unauthenticated(target).await
    }

    /// `GET url` with no credentials at all (a storage link GitHub signed),
    /// its body as bytes. Log lines name only the path: the query is the signature.
    async fn fetch_unauthenticated(&self, url: Url) -> ForgeResult<Vec<u8>> {
        let attempt = Attempt {
            method: Method::GET,
            path: url.path().to_string(),
            replay: Replay::Safe,
            observe: None,
        };
        let build = || self.no_redirect.get(url.clone());
        perform_retryable(&self.policy, &attempt, build, |b| Ok(b.to_vec()))
            .await
            .map(|r| r.value)
            .map_err(|e| ForgeError::from_http(e, ""))
    }
}

impl RateLimit {
    /// GitHub's `X-RateLimit-Remaining`, `-Limit` and `-Reset` (epoch seconds),
    /// for the `core` quota every REST call here counts against.
    fn from_headers(headers: &HeaderMap) -> Option<RateLimit> {
        let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        if text("x-ratelimit-resource").is_some_and(|r| r.trim() != "core") {
            return None;
        }
        let number = |name: &str| text(name).and_then(|v| v.trim().parse::<u64>().ok());
        let remaining = number("x-ratelimit-remaining")?;
        let reset = number("x-ratelimit-reset")
            .and_then(|s| i64::try_from(s).ok())
            .and_then(|s| DateTime::<Utc>::from_timestamp(s, 0))?;
        Some(RateLimit {
            remaining,
            limit: number("x-ratelimit-limit"),
            reset,
        })
    }
}

/// The target of the `rel="next"` link in a `Link` header
/// (`<https://…?page=2>; rel="next", <https://…?page=9>; rel="last"`).
fn next_link(header: &str) -> Option<&str> {
    let mut rest = header;
    while let Some(open) = rest.find('<') {
        let after = &rest[open + 1..];
        let close = after.find('>')?;
        let target = &after[..close];
        let params_end = after[close..].find('<').map_or(after.len(), |i| close + i);
        let params = &after[close + 1..params_end];
        let is_next = params.split(';').any(|p| {
            let p = p.trim().trim_end_matches(',').trim();
            p.strip_prefix("rel=").is_some_and(|rels| {
                rels.trim_matches('"')
                    .split_whitespace()
                    .any(|r| r.eq_ignore_ascii_case("next"))
            })
        });
        if is_next {
            return Some(target);
        }
        rest = &after[params_end..];
    }
    None
}
