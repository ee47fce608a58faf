//! Signing in as a GitHub App: a JWT signed with the App's private key (RS256)
//! proves forgehand is the App; with it, GitHub hands out an installation token
//! for the repository, valid for an hour, which every API call and git command
//! then carries. `AppTokens` keeps the current one and fetches the next some
//! minutes before it expires, so no call ever goes out with a token about to
//! lapse. The key and the tokens live only in this process's memory.

use std::fmt;

use anyhow::Context;
use async_trait::async_trait;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};
use reqwest::header::{ACCEPT, AUTHORIZATION};
use reqwest::{Method, StatusCode, Url};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::wire::{WireApp, WireInstallationToken, time};
use super::{API_VERSION, MEDIA_TYPE};
use crate::forge::token::TokenSource;
use crate::forge::{ForgeError, ForgeResult};
use crate::http::retry::{Replay, RetryPolicy, perform_retryable};
use crate::http::{self, HttpError};

/// A new installation token is fetched this long before the current one
/// expires: a git push or a retried call may take minutes.
const RENEW_BEFORE: chrono::TimeDelta = chrono::TimeDelta::minutes(5);
/// The JWT's `iat` is set this far in the past, as GitHub advises, so that a
/// clock running a little ahead of GitHub's does not make it "issued in the future".
const JWT_BACKDATE: chrono::TimeDelta = chrono::TimeDelta::seconds(60);
/// How long a JWT is valid after its `iat`; GitHub accepts at most 10 minutes.
const JWT_LIFETIME: chrono::TimeDelta = chrono::TimeDelta::minutes(9);

/// A GitHub App's private key, from its PEM file: `BEGIN RSA PRIVATE KEY`
/// (PKCS#1, what GitHub hands out) or `BEGIN PRIVATE KEY` (PKCS#8). The error
/// never quotes the file.
pub fn parse_private_key(pem: &str) -> Result<RsaKeyPair, String> {
    let (pkcs1, body) = if let Some(body) = pem_body(pem, "RSA PRIVATE KEY") {
        (true, body)
    } else if let Some(body) = pem_body(pem, "PRIVATE KEY") {
        (false, body)
    } else {
        return Err(
            "is not a PEM private key (no \"-----BEGIN RSA PRIVATE KEY-----\" or \
             \"-----BEGIN PRIVATE KEY-----\" block)"
                .to_string(),
        );
    };
    let der = STANDARD
        .decode(body)
        .map_err(|_| "holds a PEM block that is not valid base64".to_string())?;
    let key = if pkcs1 {
        RsaKeyPair::from_der(&der)
    } else {
        RsaKeyPair::from_pkcs8(&der)
    };
    key.map_err(|e| format!("does not hold a usable RSA private key ({e})"))
}

/// The base64 between `-----BEGIN <label>-----` and its end line, whitespace removed.
fn pem_body(pem: &str, label: &str) -> Option<String> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = pem.find(&begin)? + begin.len();
    let stop = start + pem[start..].find(&end)?;
    Some(
        pem[start..stop]
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect(),
    )
}

/// An installation token and when GitHub says it expires.
#[derive(Clone)]
struct Installation {
    token: String,
    expires_at: DateTime<Utc>,
}

/// The App's credentials for one installation, and the current token.
pub struct AppTokens {
    http: reqwest::Client,
    /// The REST API's base, as for every other call.
    api: Url,
    app_id: u64,
    installation_id: u64,
    /// The repository's name (without its owner): the token is asked for this
    /// repository only, whatever else the installation covers.
    repo: String,
    key: RsaKeyPair,
    policy: RetryPolicy,
    /// Held while a token is fetched, so concurrent callers wait for that one
    /// instead of each fetching their own.
    current: tokio::sync::Mutex<Option<Installation>>,
}

impl fmt::Debug for AppTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppTokens")
            .field("app_id", &self.app_id)
            .field("installation_id", &self.installation_id)
            .field("key", &"[REDACTED]")
            .finish_non_exhaustive()
    }
}

impl AppTokens {
    pub(super) fn new(
        http: reqwest::Client,
        api: Url,
        app_id: u64,
        installation_id: u64,
        repo: &str,
        private_key_pem: &str,
        policy: RetryPolicy,
    ) -> anyhow::Result<AppTokens> {
        let key = parse_private_key(private_key_pem)
            .map_err(|why| anyhow::anyhow!("the GitHub App's private key {why}"))?;
        Ok(AppTokens {
            http,
            api,
            app_id,
            installation_id,
            repo: repo.to_string(),
            key,
            policy,
            current: tokio::sync::Mutex::new(None),
        })
    }

    /// The App's login as GitHub shows it on what it writes: `<slug>[bot]`.
    pub(super) async fn login(&self) -> ForgeResult<String> {
        let app: WireApp = self.as_app(Method::GET, &["app"], None).await?;
        match app.slug.filter(|s| !s.is_empty()) {
            Some(slug) => Ok(format!("{slug}[bot]")),
            None => Err(ForgeError::Other(anyhow::anyhow!(
                "GET /app: GitHub did not say the App's slug"
            ))),
        }
    }

    /// A JWT for the App, valid from a minute ago for nine minutes.
    fn jwt(&self, now: DateTime<Utc>) -> anyhow::Result<String> {
        let header = json!({"alg": "RS256", "typ": "JWT"});
        let claims = json!({
            "iat": (now - JWT_BACKDATE).timestamp(),
            "exp": (now - JWT_BACKDATE + JWT_LIFETIME).timestamp(),
            "iss": self.app_id,
        });
        let signed = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let mut signature = vec![0; self.key.public_modulus_len()];
        self.key
            .sign(
                &RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                signed.as_bytes(),
                &mut signature,
            )
            .map_err(|_| anyhow::anyhow!("signing the GitHub App's JWT failed"))?;
        Ok(format!("{signed}.{}", URL_SAFE_NO_PAD.encode(signature)))
    }

    /// One call authenticated as the App itself (not as an installation).
    async fn as_app<T: DeserializeOwned>(
        &self,
        method: Method,
        segments: &[&str],
        body: Option<Value>,
    ) -> ForgeResult<T> {
        let jwt = self.jwt(Utc::now()).map_err(ForgeError::Other)?;
        let mut url = self.api.clone();
        url.path_segments_mut()
            .expect("checked when the client was made: the API url is a base")
            .extend(segments);
        // Creating a token twice only makes two tokens: safe to send again.
        let attempt = http::attempt(&method, &url, Replay::Safe);
        let auth = http::auth_header("Bearer", &jwt);
        let build = || {
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
        let decode = |bytes: &[u8]| serde_json::from_slice::<T>(bytes);
        perform_retryable(&self.policy, &attempt, build, decode)
            .await
            .map(|reply| reply.value)
            .map_err(|e| self.refused(e, &jwt))
    }

    /// What GitHub's refusal means for the App's set-up. A refusal is final
    /// (`Unauthorized`): the project file names a wrong App, key or installation.
    fn refused(&self, e: HttpError, jwt: &str) -> ForgeError {
        let app = format!(
            "GitHub App {} (installation {})",
            self.app_id, self.installation_id
        );
        let why = match e.status() {
            Some(StatusCode::UNAUTHORIZED) => format!(
                "GitHub refuses the JWT of {app}: is app_id right, and is private_key_file \
                 this App's current key?"
            ),
            Some(StatusCode::NOT_FOUND) => format!(
                "GitHub does not know {app}: is installation_id the installation on this \
                 repository's owner?"
            ),
            Some(StatusCode::FORBIDDEN | StatusCode::UNPROCESSABLE_ENTITY) => format!(
                "{app} may not act on the repository {}: is the App installed on it?",
                self.repo
            ),
            _ => return ForgeError::from_http(e, jwt),
        };
        let detail = e.message().map(|m| http::redact(m, jwt));
        ForgeError::Unauthorized(match detail {
            Some(m) => format!("{why} ({} {}: {m})", e.method, e.path),
            None => format!("{why} ({} {})", e.method, e.path),
        })
    }

    /// A new installation token, for this repository only.
    async fn fetch(&self) -> ForgeResult<Installation> {
        let id = self.installation_id.to_string();
        let body = json!({ "repositories": [self.repo] });
        let wire: WireInstallationToken = self
            .as_app(
                Method::POST,
                &["app", "installations", &id, "access_tokens"],
                Some(body),
            )
            .await?;
        http::check_token("Bearer", &wire.token, "GitHub installation")
            .map_err(ForgeError::Other)?;
        let expires_at = time(Some(&wire.expires_at))
            .context("the installation token's expires_at is not an RFC 3339 time")
            .map_err(ForgeError::Other)?;
        tracing::debug!(
            app_id = self.app_id,
            installation_id = self.installation_id,
            %expires_at,
            "fetched a GitHub App installation token"
        );
        Ok(Installation {
            token: wire.token,
            expires_at,
        })
    }
}

#[async_trait]
impl TokenSource for AppTokens {
    async fn token(&self) -> ForgeResult<String> {
        let mut current = self.current.lock().await;
        if let Some(t) = current.as_ref()
            && t.expires_at - Utc::now() > RENEW_BEFORE
        {
            return Ok(t.token.clone());
        }
        let fresh = self.fetch().await?;
        let token = fresh.token.clone();
        *current = Some(fresh);
        Ok(token)
    }
}
