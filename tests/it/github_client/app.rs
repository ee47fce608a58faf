//! Signing in as a GitHub App: the JWT (its header, claims and RS256 signature,
//! checked with the public half of a key `openssl` makes for the test), the
//! installation token it buys and every call then carries, renewal before
//! expiry, the same token for git, and refusals as configuration errors.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chrono::Utc;
use forgehand::forge::github::{Credentials, GithubClient};
use forgehand::forge::{Forge, ForgeError, IssueNumber};
use forgehand::git::GitAuth;
use serde_json::{Value, json};
use tempfile::TempDir;

use super::assert_all_in_openapi;
use super::mock::{Mock, Seen, fast, issue, not_found, reply, serve};

const APP_ID: u64 = 1234;
const INSTALLATION: u64 = 42;

/// A fresh RSA key as GitHub hands them out (PKCS#1, `BEGIN RSA PRIVATE KEY`)
/// or as PKCS#8, and the path of its public half (PEM).
pub fn rsa_key(dir: &Path, pkcs1: bool) -> (String, std::path::PathBuf) {
    let key = dir.join(if pkcs1 { "app.pem" } else { "app8.pem" });
    let mut genrsa = Command::new("openssl");
    genrsa.arg("genrsa");
    if pkcs1 {
        genrsa.arg("-traditional");
    }
    let out = genrsa.arg("-out").arg(&key).arg("2048").output().unwrap();
    assert!(out.status.success(), "openssl genrsa: {out:?}");
    let public = dir.join(if pkcs1 { "app.pub" } else { "app8.pub" });
    let out = Command::new("openssl")
        .args(["rsa", "-pubout", "-in"])
        .arg(&key)
        .arg("-out")
        .arg(&public)
        .output()
        .unwrap();
    assert!(out.status.success(), "openssl rsa -pubout: {out:?}");
    let pem = std::fs::read_to_string(&key).unwrap();
    let begins = if pkcs1 {
        "-----BEGIN RSA PRIVATE KEY-----"
    } else {
        "-----BEGIN PRIVATE KEY-----"
    };
    assert!(pem.starts_with(begins), "{}", &pem[..40]);
    (pem, public)
}

/// A GitHub that sells installation tokens valid for `ttl_secs`, numbered from 1.
async fn github(ttl_secs: i64) -> (Mock, Arc<AtomicUsize>) {
    let sold = Arc::new(AtomicUsize::new(0));
    let counter = sold.clone();
    let mock = serve(move |s: &Seen| match (s.method.as_str(), s.path.as_str()) {
        ("POST", "/app/installations/42/access_tokens") => {
            let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
            let expires = Utc::now() + chrono::TimeDelta::seconds(ttl_secs);
            reply(
                201,
                json!({
                    "token": token(n),
                    "expires_at": expires.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    "permissions": {"issues": "write"},
                    "repository_selection": "selected",
                }),
            )
        }
        ("GET", "/app") => reply(
            200,
            json!({"id": APP_ID, "slug": "forgehand-test", "name": "forgehand test"}),
        ),
        ("GET", "/repos/o/r/issues/1") => reply(200, issue(1, &[], false)),
        _ => not_found(),
    })
    .await;
    (mock, sold)
}

fn token(n: usize) -> String {
    format!("ghs_installation{n}AbCdEfGhIjKlMnOpQrStUv")
}

fn app_client(mock: &Mock, pem: &str) -> GithubClient {
    GithubClient::new(
        &mock.url,
        "o/r",
        Credentials::App {
            app_id: APP_ID,
            installation_id: INSTALLATION,
            private_key_pem: pem.to_string(),
        },
        fast(),
    )
    .unwrap()
}

/// The JWT of a request authenticated as the App, checked against `public`.
fn verified_claims(s: &Seen, public: &Path, dir: &Path) -> Value {
    let auth = s.header("authorization").unwrap();
    let jwt = auth.strip_prefix("Bearer ").expect("a bearer JWT");
    let parts: Vec<&str> = jwt.split('.').collect();
    assert_eq!(parts.len(), 3, "{jwt}");
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
    assert_eq!(header, json!({"alg": "RS256", "typ": "JWT"}));
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();

    let signed = dir.join("signed.txt");
    let signature = dir.join("signature.bin");
    std::fs::write(&signed, format!("{}.{}", parts[0], parts[1])).unwrap();
    std::fs::write(&signature, URL_SAFE_NO_PAD.decode(parts[2]).unwrap()).unwrap();
    let out = Command::new("openssl")
        .args(["dgst", "-sha256", "-verify"])
        .arg(public)
        .arg("-signature")
        .arg(&signature)
        .arg(&signed)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the JWT's signature does not verify: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    claims
}

#[tokio::test]
async fn the_app_signs_a_jwt_and_works_with_its_installation_token() {
    let dir = TempDir::new().unwrap();
    for pkcs1 in [true, false] {
        let (pem, public) = rsa_key(dir.path(), pkcs1);
        let (mock, sold) = github(3600).await;
        let client = app_client(&mock, &pem);

        assert_eq!(client.current_user().await.unwrap(), "forgehand-test[bot]");
        client.get_issue(IssueNumber(1)).await.unwrap();

        assert_eq!(sold.load(Ordering::SeqCst), 1);
        let app = &mock.hits("GET", "/app")[0];
        let bought = &mock.hits("POST", "/access_tokens")[0];
        assert_eq!(
            bought.json(),
            json!({"repositories": ["r"]}),
            "this repository only"
        );
        let now = Utc::now().timestamp();
        for s in [app, bought] {
            let claims = verified_claims(s, &public, dir.path());
            assert_eq!(claims["iss"], json!(APP_ID));
            let iat = claims["iat"].as_i64().unwrap();
            let exp = claims["exp"].as_i64().unwrap();
            assert!((now - 70..=now - 50).contains(&iat), "iat {iat}, now {now}");
            assert!(exp > now && exp - iat <= 600, "exp {exp}, iat {iat}");
            assert_eq!(s.header("accept"), Some("application/vnd.github+json"));
        }
        let read = &mock.hits("GET", "/repos/o/r/issues/1")[0];
        assert_eq!(
            read.header("authorization"),
            Some(format!("Bearer {}", token(1)).as_str())
        );
        let shown = format!("{client:?}");
        assert!(
            !shown.contains("PRIVATE KEY") && !shown.contains("ghs_"),
            "{shown}"
        );
        assert_all_in_openapi(&mock);
    }
}

#[tokio::test]
async fn installation_tokens_are_renewed_before_they_expire() {
    let dir = TempDir::new().unwrap();
    let (pem, _) = rsa_key(dir.path(), true);

    // Four minutes left is within the five-minute margin: renewed every time.
    let (mock, sold) = github(240).await;
    let client = app_client(&mock, &pem);
    client.get_issue(IssueNumber(1)).await.unwrap();
    client.get_issue(IssueNumber(1)).await.unwrap();
    assert_eq!(sold.load(Ordering::SeqCst), 2);
    let reads = mock.hits("GET", "/repos/o/r/issues/1");
    assert_eq!(
        reads[1].header("authorization"),
        Some(format!("Bearer {}", token(2)).as_str()),
        "the renewed token"
    );

    // An hour left: one token for every call.
    let (mock, sold) = github(3600).await;
    let client = app_client(&mock, &pem);
    for _ in 0..3 {
        client.get_issue(IssueNumber(1)).await.unwrap();
    }
    assert_eq!(sold.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn git_gets_the_current_installation_token_per_command() {
    let dir = TempDir::new().unwrap();
    let (pem, _) = rsa_key(dir.path(), true);
    let (mock, sold) = github(240).await;
    let client = app_client(&mock, &pem);
    let auth = GitAuth::renewing(client.token_source());
    for n in 1..=2 {
        let config = auth.config().await.unwrap();
        let basic = STANDARD.encode(format!("x-access-token:{}", token(n)));
        assert_eq!(
            config,
            [(
                "http.extraHeader".to_string(),
                format!("Authorization: Basic {basic}")
            )]
        );
    }
    assert_eq!(
        sold.load(Ordering::SeqCst),
        2,
        "renewed for the second command"
    );
    assert!(!format!("{auth:?}").contains("ghs_"));
}

#[tokio::test]
async fn a_wrong_installation_or_key_is_a_configuration_error() {
    let dir = TempDir::new().unwrap();
    let (pem, _) = rsa_key(dir.path(), true);
    let mock = serve(|s: &Seen| match s.path.as_str() {
        "/app/installations/42/access_tokens" => not_found(),
        "/app" => reply(
            401,
            json!({"message": "A JSON web token could not be decoded"}),
        ),
        _ => not_found(),
    })
    .await;
    let client = app_client(&mock, &pem);
    match client.get_issue(IssueNumber(1)).await {
        Err(ForgeError::Unauthorized(why)) => {
            assert!(why.contains("installation_id"), "{why}");
        }
        other => panic!("{other:?}"),
    }
    match client.current_user().await {
        Err(ForgeError::Unauthorized(why)) => assert!(why.contains("app_id"), "{why}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(mock.hits("POST", "/access_tokens").len(), 1, "not retried");

    let err = GithubClient::new(
        &mock.url,
        "o/r",
        Credentials::App {
            app_id: APP_ID,
            installation_id: INSTALLATION,
            private_key_pem:
                "-----BEGIN RSA PRIVATE KEY-----\nbm90IGEga2V5\n-----END RSA PRIVATE KEY-----\n"
                    .into(),
        },
        fast(),
    )
    .unwrap_err();
    assert!(
        format!("{err:#}").contains("does not hold a usable RSA private key"),
        "{err:#}"
    );
}
