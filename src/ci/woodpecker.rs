//! Woodpecker CI client: finds the pipeline that ran on a commit, reads its failing steps
//! and their logs, and restarts pipelines, over `<woodpecker_url>/api` with every request
//! through `http::retry::perform_retryable`. Every path used here exists with that
//! method in Woodpecker 3.x's swagger (checked by the test suite against a fake server).

use std::fmt;

use anyhow::Context;
use async_trait::async_trait;
use base64::Engine;
use reqwest::header::{ACCEPT, AUTHORIZATION};
use reqwest::{Method, Url};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::{
    CiServer, FailedStep, FailureReport, LOG_TAIL_BYTES, LOG_TAIL_LINES, clean_line, log_tail,
};
use crate::forge::{CommitSha, ForgeError};
use crate::http::retry::{Replay, RetryPolicy, perform_retryable};
use crate::http::{self, HttpError};

/// Pipelines per page (Woodpecker's default page size too).
const PER_PAGE: usize = 50;
/// forgehand asks about a commit it has just pushed, whose pipeline is among the newest;
/// a commit not found in the newest `MAX_PAGES * PER_PAGE` pipelines never got one.
const MAX_PAGES: u32 = 4;

/// Step states that mean the step did not succeed (besides a non-zero exit code).
const FAILED_STATES: [&str; 3] = ["failure", "killed", "error"];
/// Git's exit status for a fatal error (unreachable remote, bad credentials, …); in a
/// clone step it means the CI could not fetch the code, not that the code is wrong.
const GIT_FATAL: i64 = 128;
/// 128 + SIGKILL: the step was killed (out of memory, agent lost, timeout), whatever it ran.
const KILLED: i64 = 137;

/// Whether a Woodpecker step failed for reasons outside the code under test: a clone
/// step that git gave up on (128; known by its type or its name), or any step killed
/// with SIGKILL (137).
pub fn is_infrastructure_failure(kind: &str, name: &str, exit_code: i64) -> bool {
    let clone = kind == "clone" || name == "clone";
    (clone && exit_code == GIT_FATAL) || exit_code == KILLED
}

/// Log entry types that are the step's output (stdout, stderr); the others carry the exit
/// code, metadata and progress.
const OUTPUT_ENTRY_TYPES: [i64; 2] = [0, 1];

/// A client for one repository on a Woodpecker server.
pub struct WoodpeckerClient {
    http: reqwest::Client,
    /// `<woodpecker_url>/api`, without any credentials of the host.
    api: Url,
    /// Woodpecker's numeric id of the repository (`[ci] woodpecker_repo_id`).
    repo_id: u64,
    /// Sent as `Authorization: Bearer …`; never printed (see the `Debug` impl).
    token: String,
    policy: RetryPolicy,
}

impl fmt::Debug for WoodpeckerClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WoodpeckerClient")
            .field("api", &self.api.as_str())
            .field("repo_id", &self.repo_id)
            .field("token", &"[REDACTED]")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl WoodpeckerClient {
    /// `url` is the server's web address (`https://ci.example`), `repo_id` Woodpecker's id
    /// of the repository, `token` a personal access token.
    pub fn new(
        url: &str,
        repo_id: u64,
        token: String,
        policy: RetryPolicy,
    ) -> anyhow::Result<Self> {
        let api = http::api_base(url, "woodpecker url", &["api"])?;
        http::check_token("Bearer", &token, "woodpecker")?;
        let http = http::client(&policy)?;
        Ok(WoodpeckerClient {
            http,
            api,
            repo_id,
            token,
            policy,
        })
    }

    /// The number of the newest pipeline on `sha`. Woodpecker lists pipelines newest
    /// first, so the first match is the newest.
    async fn find_pipeline(&self, sha: &str) -> anyhow::Result<Option<u64>> {
        let per_page = PER_PAGE.to_string();
        for page in 1..=MAX_PAGES {
            let page_text = page.to_string();
            let query = [("page", page_text.as_str()), ("perPage", per_page.as_str())];
            let pipelines: Vec<WirePipeline> = self
                .get(&["pipelines"], &query)
                .await
                .with_context(|| format!("listing woodpecker pipelines (page {page})"))?;
            if let Some(p) = pipelines
                .iter()
                .find(|p| p.commit.eq_ignore_ascii_case(sha))
            {
                return Ok(Some(p.number));
            }
            if pipelines.len() < PER_PAGE {
                break;
            }
        }
        Ok(None)
    }

    /// The tail of a step's log. A log that cannot be read (already deleted, or the server
    /// failing) becomes a note: the step's name and exit code are worth sending without it.
    async fn log_tail(&self, pipeline: u64, step: &WireStep) -> String {
        let path = [
            "logs".to_string(),
            pipeline.to_string(),
            step.id.to_string(),
        ];
        let path: Vec<&str> = path.iter().map(String::as_str).collect();
        match self.get::<Vec<WireLogEntry>>(&path, &[]).await {
            Ok(entries) => log_tail(&log_lines(entries), LOG_TAIL_LINES, LOG_TAIL_BYTES),
            Err(e) => {
                tracing::warn!(
                    pipeline,
                    step = %step.name,
                    error = format!("{e:#}"),
                    "could not read a woodpecker step log"
                );
                format!("(the log could not be read: {e:#})")
            }
        }
    }

    /// `<api>/repos/<repo_id>/<segments…>?<query>`, each segment percent-encoded.
    fn repo_url(&self, segments: &[&str], query: &[(&str, &str)]) -> Url {
        let mut url = self.api.clone();
        let repo_id = self.repo_id.to_string();
        url.path_segments_mut()
            .expect("checked in new: the API url is a base")
            .extend(["repos", repo_id.as_str()])
            .extend(segments);
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        url
    }

    async fn get<T: DeserializeOwned>(
        &self,
        segments: &[&str],
        query: &[(&str, &str)],
    ) -> anyhow::Result<T> {
        let url = self.repo_url(segments, query);
        self.request(Method::GET, url, Replay::Safe).await
    }

    /// One request through the retry policy, its 2xx body read as JSON. Errors carry the
    /// method and path, never the token (cut out of anything the server sent back).
    async fn request<T: DeserializeOwned>(
        &self,
        method: Method,
        url: Url,
        replay: Replay,
    ) -> anyhow::Result<T> {
        let attempt = http::attempt(&method, &url, replay);
        let auth = http::auth_header("Bearer", &self.token);
        let build = || {
            self.http
                .request(method.clone(), url.clone())
                .header(AUTHORIZATION, auth.clone())
                .header(ACCEPT, "application/json")
        };
        let decode = |bytes: &[u8]| serde_json::from_slice::<T>(bytes);
        perform_retryable(&self.policy, &attempt, build, decode)
            .await
            .map(|reply| reply.value)
            .map_err(|e: HttpError| anyhow::Error::new(ForgeError::from_http(e, &self.token)))
    }
}

#[async_trait]
impl CiServer for WoodpeckerClient {
    /// The newest pipeline whose commit is `sha`, with its failing steps and their log
    /// tails; `None` when no pipeline ran on that commit (yet).
    async fn failure_report(&self, sha: &CommitSha) -> anyhow::Result<Option<FailureReport>> {
        let Some(number) = self.find_pipeline(&sha.0).await? else {
            return Ok(None);
        };
        let pipeline: WirePipeline = self
            .get(&["pipelines", &number.to_string()], &[])
            .await
            .with_context(|| format!("reading woodpecker pipeline #{number}"))?;

        let mut errors: Vec<String> = pipeline
            .errors
            .iter()
            .filter(|e| !e.is_warning)
            .filter_map(|e| e.message.clone())
            .collect();
        let mut steps = Vec::new();
        for workflow in &pipeline.workflows {
            if let Some(error) = workflow.error.as_deref().filter(|e| !e.is_empty()) {
                errors.push(format!("workflow \"{}\": {error}", workflow.name));
            }
            for step in workflow.children.iter().filter(|s| s.failed()) {
                let kind = step.kind.clone().unwrap_or_default();
                steps.push(FailedStep {
                    workflow: workflow.name.clone(),
                    name: step.name.clone(),
                    infrastructure: is_infrastructure_failure(&kind, &step.name, step.exit_code),
                    kind,
                    state: step.state.clone().unwrap_or_default(),
                    exit_code: Some(step.exit_code),
                    error: step.error.clone().filter(|e| !e.is_empty()),
                    log_tail: self.log_tail(number, step).await,
                });
            }
        }
        Ok(Some(FailureReport {
            pipeline: number,
            status: pipeline.status.unwrap_or_default(),
            errors,
            steps,
        }))
    }

    /// Restarts a pipeline (`POST /repos/{repo_id}/pipelines/{number}`); Woodpecker runs it
    /// again as a new pipeline on the same commit, whose number is returned.
    /// The repository `repo_id` names, which must be active.
    async fn describe(&self) -> anyhow::Result<String> {
        let repo: WireRepo = self
            .get(&[], &[])
            .await
            .with_context(|| format!("reading woodpecker repository {}", self.repo_id))?;
        let what = format!("repository {} (id {})", repo.full_name, self.repo_id);
        if !repo.active {
            anyhow::bail!("woodpecker's {what} is not active: activate it in Woodpecker");
        }
        Ok(format!("Woodpecker builds {what}"))
    }

    async fn restart(&self, pipeline: u64) -> anyhow::Result<u64> {
        let url = self.repo_url(&["pipelines", &pipeline.to_string()], &[]);
        // Sent once only: a restart the server received twice would run the pipeline twice.
        let new: WirePipeline = self
            .request(Method::POST, url, Replay::OnlyIfNotApplied)
            .await
            .with_context(|| format!("restarting woodpecker pipeline #{pipeline}"))?;
        Ok(new.number)
    }
}

/// The output lines of a step's log entries, decoded and cleaned, in line order.
fn log_lines(mut entries: Vec<WireLogEntry>) -> Vec<String> {
    entries.sort_by_key(|e| e.line);
    let mut lines = Vec::new();
    for entry in entries {
        if !entry.kind.is_none_or(|k| OUTPUT_ENTRY_TYPES.contains(&k)) {
            continue;
        }
        let bytes = entry.data.into_bytes();
        let text = String::from_utf8_lossy(&bytes);
        let text = text.strip_suffix('\n').unwrap_or(&text);
        lines.extend(text.split('\n').map(clean_line));
    }
    lines
}

/// A pipeline as Woodpecker sends it; the list leaves `workflows` out.
#[derive(Debug, Deserialize)]
struct WirePipeline {
    number: u64,
    #[serde(default)]
    commit: String,
    #[serde(default)]
    status: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    errors: Vec<WirePipelineError>,
    #[serde(default, deserialize_with = "null_as_default")]
    workflows: Vec<WireWorkflow>,
}

#[derive(Debug, Deserialize)]
struct WirePipelineError {
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    is_warning: bool,
}

#[derive(Debug, Deserialize)]
struct WireWorkflow {
    #[serde(default)]
    name: String,
    #[serde(default)]
    error: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    children: Vec<WireStep>,
}

#[derive(Debug, Deserialize)]
struct WireStep {
    /// What the log endpoint takes as `{step_id}`.
    id: u64,
    #[serde(default)]
    name: String,
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    exit_code: i64,
    #[serde(default)]
    error: Option<String>,
}

impl WireStep {
    fn failed(&self) -> bool {
        self.exit_code != 0
            || self
                .state
                .as_deref()
                .is_some_and(|s| FAILED_STATES.contains(&s))
    }
}

#[derive(Debug, Deserialize)]
struct WireLogEntry {
    #[serde(default)]
    line: u64,
    #[serde(rename = "type", default)]
    kind: Option<i64>,
    #[serde(default)]
    data: LogData,
}

/// A log entry's bytes: Go marshals `[]byte` as base64, though the swagger describes an
/// array of integers; both are accepted.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum LogData {
    Base64(String),
    Bytes(Vec<u8>),
    Missing(()),
}

impl Default for LogData {
    fn default() -> Self {
        LogData::Missing(())
    }
}

impl LogData {
    fn into_bytes(self) -> Vec<u8> {
        match self {
            // A line that is not valid base64 is shown as sent rather than lost.
            LogData::Base64(text) => base64::engine::general_purpose::STANDARD
                .decode(text.as_bytes())
                .unwrap_or_else(|_| text.into_bytes()),
            LogData::Bytes(bytes) => bytes,
            LogData::Missing(()) => Vec::new(),
        }
    }
}

/// Go sends `null` for an empty slice.
fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// The part of a repository (`Repo`) `describe` needs.
#[derive(Debug, Deserialize)]
struct WireRepo {
    full_name: String,
    #[serde(default)]
    active: bool,
}
