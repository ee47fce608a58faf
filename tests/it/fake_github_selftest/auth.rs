//! Credentials: the personal access token (`Bearer` or `token`), the App's JWT (RS256,
//! `iss`, `exp` within 10 minutes) on `/app` and the access-token endpoint only, and
//! installation tokens (acting as `<slug>[bot]`, refused once expired); plus the
//! Enterprise-style API prefix.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use super::{Api, repo, start};
use crate::fake_github::fixture::GitFixture;
use crate::fake_github::keys::{app_key, other_key};
use crate::fake_github::{AppOptions, FakeGithub, FakeGithubOptions, ViolationKind};

async fn start_app(fixture: &GitFixture, lifetime: Duration) -> FakeGithub {
    FakeGithub::start(FakeGithubOptions {
        bare_repo: fixture.bare.clone(),
        app: Some(AppOptions {
            token_lifetime: lifetime,
            ..AppOptions::new(app_key())
        }),
        ..Default::default()
    })
    .await
}

#[tokio::test]
async fn personal_token_is_required_and_both_schemes_work() {
    let fixture = GitFixture::new();
    let github = start(&fixture).await;

    let anonymous = Api::with_authorization(&github, None).get("/user").await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    assert_eq!(anonymous.json["message"], "Requires authentication");
    // Every answer carries the rate-limit headers, a refusal too.
    assert_eq!(anonymous.header("x-ratelimit-limit"), "5000");
    let wrong = Api::with_authorization(&github, Some("Bearer nope".to_owned()))
        .get("/user")
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert_eq!(wrong.json["message"], "Bad credentials");

    for scheme in ["Bearer", "token"] {
        let api = Api::with_authorization(&github, Some(format!("{scheme} ghp_test123")));
        let user = api.get("/user").await;
        assert_eq!(user.status, StatusCode::OK, "{scheme}: {}", user.text);
        assert_eq!(user.json["login"], "forgehand-bot");
        assert_eq!(user.json["type"], "User");
    }

    // A client that sends no User-Agent (reqwest's default) is turned away, as by GitHub.
    let bare = reqwest::Client::new()
        .get(format!("{}/user", github.url()))
        .bearer_auth(github.token())
        .send()
        .await
        .expect("request");
    assert_eq!(bare.status(), StatusCode::FORBIDDEN);

    let kinds: Vec<ViolationKind> = github.violations().iter().map(|v| v.kind).collect();
    assert_eq!(
        kinds,
        [
            ViolationKind::Unauthorized,
            ViolationKind::Unauthorized,
            ViolationKind::MissingHeader
        ]
    );
    assert!(
        github.shape_problems().is_empty(),
        "{:#?}",
        github.shape_problems()
    );
    let requests = github.requests();
    assert_eq!(requests.len(), 5);
    assert!(!requests[0].token_present && !requests[0].authorized);
    assert!(requests[2].authorized);
}

#[tokio::test]
async fn app_jwt_gets_installation_tokens_that_act_as_the_bot() {
    let fixture = GitFixture::new();
    let github = start_app(&fixture, Duration::from_secs(3600)).await;
    let n = github.create_issue("Add a greeting", "", &[]);
    let jwt = app_key().app_jwt(4242);
    let app = Api::with_authorization(&github, Some(format!("Bearer {jwt}")));

    let me = app.get("/app").await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.text);
    assert_eq!(me.json["slug"], "forgehand-test");
    assert_eq!(me.json["id"], 4242);

    let wrong_installation = app
        .post("/app/installations/1/access_tokens", json!({}))
        .await;
    assert_eq!(wrong_installation.status, StatusCode::NOT_FOUND);
    let created = app
        .send(
            reqwest::Method::POST,
            "/app/installations/777/access_tokens",
            None,
            &[],
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let token = created.json["token"].as_str().expect("token").to_owned();
    assert!(token.starts_with("ghs_"), "{token}");
    let expires = chrono::DateTime::parse_from_rfc3339(
        created.json["expires_at"].as_str().expect("expires_at"),
    )
    .expect("RFC 3339");
    let lifetime = expires
        .signed_duration_since(chrono::Utc::now())
        .num_seconds();
    assert!((3500..=3600).contains(&lifetime), "{lifetime}");

    // The installation token works on the repository, as the bot, in both schemes.
    let bot = Api::with_authorization(&github, Some(format!("token {token}")));
    let comment = bot
        .post(
            &repo(&format!("/issues/{n}/comments")),
            json!({"body": "on it"}),
        )
        .await;
    assert_eq!(comment.status, StatusCode::CREATED, "{}", comment.text);
    assert_eq!(comment.json["user"]["login"], "forgehand-test[bot]");
    assert_eq!(comment.json["user"]["type"], "Bot");
    assert_eq!(github.comments(n)[0].user, "forgehand-test[bot]");
    github.assert_no_violations();

    // The JWT is for /app only, the installation token for everything else.
    let jwt_on_repo = app.get(&repo("/issues")).await;
    assert_eq!(jwt_on_repo.status, StatusCode::UNAUTHORIZED);
    let token_on_app = bot.get("/app").await;
    assert_eq!(token_on_app.status, StatusCode::UNAUTHORIZED);
    // An app has no /user: GitHub answers 403.
    let user = bot.get("/user").await;
    assert_eq!(user.status, StatusCode::FORBIDDEN);
    let kinds: Vec<ViolationKind> = github.violations().iter().map(|v| v.kind).collect();
    assert_eq!(
        kinds,
        [
            ViolationKind::Unauthorized,
            ViolationKind::Unauthorized,
            ViolationKind::Suspicious
        ]
    );
}

#[tokio::test]
async fn jwts_are_refused_when_signed_wrong_expired_or_too_long() {
    let fixture = GitFixture::new();
    let github = start_app(&fixture, Duration::from_secs(3600)).await;
    let now = chrono::Utc::now().timestamp();
    let cases = [
        ("other key", other_key().app_jwt(4242)),
        (
            "expired",
            app_key().sign(&json!({"iat": now - 700, "exp": now - 60, "iss": "4242"})),
        ),
        (
            "exp too far",
            app_key().sign(&json!({"iat": now, "exp": now + 3600, "iss": "4242"})),
        ),
        (
            "wrong iss",
            app_key().sign(&json!({"iat": now - 60, "exp": now + 540, "iss": "999"})),
        ),
        (
            "no exp",
            app_key().sign(&json!({"iat": now - 60, "iss": "4242"})),
        ),
    ];
    for (what, jwt) in &cases {
        let app = Api::with_authorization(&github, Some(format!("Bearer {jwt}")));
        let answer = app.get("/app").await;
        assert_eq!(
            answer.status,
            StatusCode::UNAUTHORIZED,
            "{what}: {}",
            answer.text
        );
    }
    let violations = github.violations();
    assert_eq!(violations.len(), cases.len(), "{violations:#?}");
    assert!(
        violations
            .iter()
            .all(|v| v.kind == ViolationKind::Unauthorized)
    );
    assert!(
        violations[0].detail.contains("signature"),
        "{violations:#?}"
    );
    assert!(violations[1].detail.contains("expired"), "{violations:#?}");
    assert!(
        violations[2].detail.contains("10 minutes"),
        "{violations:#?}"
    );
    // An iss given as a number is fine too.
    let numeric = app_key().sign(&json!({"iat": now - 60, "exp": now + 540, "iss": 4242}));
    let app = Api::with_authorization(&github, Some(format!("Bearer {numeric}")));
    assert_eq!(app.get("/app").await.status, StatusCode::OK);
}

#[tokio::test]
async fn installation_tokens_expire_and_are_renewed() {
    let fixture = GitFixture::new();
    let github = start_app(&fixture, Duration::from_secs(2)).await;
    let app = Api::with_authorization(&github, Some(format!("Bearer {}", app_key().app_jwt(4242))));
    let first = app
        .post("/app/installations/777/access_tokens", json!({}))
        .await;
    let token = first.json["token"].as_str().expect("token").to_owned();
    let expires = chrono::DateTime::parse_from_rfc3339(
        first.json["expires_at"].as_str().expect("expires_at"),
    )
    .expect("RFC 3339");
    assert!(
        expires
            .signed_duration_since(chrono::Utc::now())
            .num_seconds()
            <= 2
    );
    let bot = Api::with_authorization(&github, Some(format!("Bearer {token}")));
    assert_eq!(bot.get(&repo("/labels")).await.status, StatusCode::OK);

    github.expire_installation_tokens();
    let expired = bot.get(&repo("/labels")).await;
    assert_eq!(expired.status, StatusCode::UNAUTHORIZED);
    assert_eq!(expired.json["message"], "Bad credentials");
    assert!(github.violations()[0].detail.contains("expired"));

    let renewed = app
        .post("/app/installations/777/access_tokens", json!({}))
        .await;
    let new_token = renewed.json["token"].as_str().expect("token");
    assert_ne!(new_token, token);
    let bot = Api::with_authorization(&github, Some(format!("Bearer {new_token}")));
    assert_eq!(bot.get(&repo("/labels")).await.status, StatusCode::OK);
    assert_eq!(github.read(|s| s.installation_tokens().len()), 2);
}

#[tokio::test]
async fn enterprise_prefix_serves_the_api_under_api_v3() {
    let fixture = GitFixture::new();
    let github = FakeGithub::start(FakeGithubOptions {
        bare_repo: fixture.bare.clone(),
        api_prefix: "/api/v3".to_owned(),
        ..Default::default()
    })
    .await;
    assert!(github.url().ends_with("/api/v3"), "{}", github.url());
    let api = Api::new(&github);
    assert_eq!(api.get("/user").await.status, StatusCode::OK);
    let issues = api.get(&repo("/issues")).await;
    assert_eq!(issues.status, StatusCode::OK);
    github.assert_no_violations();

    // A client that drops the prefix (a classic of URL joining) is caught.
    let outside = Api::new(&github)
        .get(&format!("{}/user", github.server_url()))
        .await;
    assert_eq!(outside.status, StatusCode::NOT_FOUND);
    assert_eq!(github.violations()[0].kind, ViolationKind::UnknownPath);
}
