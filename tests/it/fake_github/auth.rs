//! Who a request comes from: the personal access token, an installation token, or the
//! GitHub App itself with a JWT, and the checks GitHub makes on each (the JWT's RS256
//! signature against the app's public key, `iss` the app id, `exp` in the future but at
//! most 10 minutes away; installation tokens until they expire).

use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;

use super::state::GithubState;

/// How far in the future GitHub lets a JWT's `exp` be.
const MAX_JWT_LIFETIME_SECS: i64 = 600;
/// Clock drift GitHub tolerates on `iat`.
const IAT_DRIFT_SECS: i64 = 60;

/// The credential a request carried, once checked.
#[derive(Debug, Clone, PartialEq)]
pub enum Actor {
    /// The configured personal access token: acts as this login.
    User(String),
    /// A live installation token: acts as `<slug>[bot]`.
    Installation(String),
    /// A valid app JWT: may only use the `/app…` endpoints.
    App,
}

impl Actor {
    /// The login that authors what this request creates.
    pub fn login(&self, state: &GithubState) -> String {
        match self {
            Actor::User(login) | Actor::Installation(login) => login.clone(),
            Actor::App => state
                .app
                .as_ref()
                .map_or_else(String::new, |a| a.bot_login()),
        }
    }
}

/// Why a credential was refused: GitHub's message, and the detail for the violation.
#[derive(Debug, Clone)]
pub struct Refusal {
    pub message: &'static str,
    pub detail: String,
}

fn refuse(message: &'static str, detail: impl Into<String>) -> Refusal {
    Refusal {
        message,
        detail: detail.into(),
    }
}

/// Checks the `Authorization` header (`Bearer <credential>` or `token <credential>`).
pub fn authenticate(state: &GithubState, header: Option<&str>) -> Result<Actor, Refusal> {
    let Some(header) = header else {
        return Err(refuse("Requires authentication", "no Authorization header"));
    };
    let (scheme, credential) = header.trim().split_once(' ').unwrap_or(("", ""));
    if !(scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("token")) {
        return Err(refuse(
            "Bad credentials",
            format!("Authorization scheme {scheme:?} is neither Bearer nor token"),
        ));
    }
    let credential = credential.trim();
    if credential == state.token {
        return Ok(Actor::User(state.forge.bot_login.clone()));
    }
    let now = Utc::now();
    if let Some(token) = state.tokens.iter().find(|t| t.token == credential) {
        if now >= token.expires_at {
            return Err(refuse(
                "Bad credentials",
                format!(
                    "installation token expired at {} (renew before expires_at)",
                    token.expires_at.to_rfc3339()
                ),
            ));
        }
        return Ok(Actor::Installation(state.bot_login()));
    }
    if credential.split('.').count() == 3 {
        return verify_jwt(state, credential, now).map(|()| Actor::App);
    }
    Err(refuse("Bad credentials", "unknown token"))
}

/// GitHub's rules for an app JWT, with GitHub's messages.
fn verify_jwt(state: &GithubState, jwt: &str, now: DateTime<Utc>) -> Result<(), Refusal> {
    let Some(app) = &state.app else {
        return Err(refuse(
            "A JSON web token could not be decoded",
            "a JWT, but the fake was started without an app",
        ));
    };
    let key = DecodingKey::from_rsa_pem(app.public_key_pem.as_bytes()).map_err(|e| {
        refuse(
            "A JSON web token could not be decoded",
            format!("app key: {e}"),
        )
    })?;
    let mut validation = Validation::new(Algorithm::RS256);
    // Time and issuer are checked below, with GitHub's own rules and messages.
    validation.validate_exp = false;
    validation.required_spec_claims.clear();
    let claims = jsonwebtoken::decode::<Value>(jwt, &key, &validation)
        .map_err(|e| {
            refuse(
                "A JSON web token could not be decoded",
                format!("JWT signature or header: {e}"),
            )
        })?
        .claims;
    let issuer_ok = match &claims["iss"] {
        Value::String(s) => s == &app.app_id.to_string(),
        Value::Number(n) => n.as_u64() == Some(app.app_id),
        _ => false,
    };
    if !issuer_ok {
        return Err(refuse(
            "'Issuer' claim ('iss') must be an Integer",
            format!("JWT iss {} is not the app id {}", claims["iss"], app.app_id),
        ));
    }
    let (Some(iat), Some(exp)) = (claims["iat"].as_i64(), claims["exp"].as_i64()) else {
        return Err(refuse(
            "'Expiration time' claim ('exp') must be a numeric value representing the future time at which the assertion expires",
            "JWT lacks a numeric iat or exp",
        ));
    };
    let now = now.timestamp();
    if exp <= now {
        return Err(refuse(
            "'Expiration time' claim ('exp') must be a numeric value representing the future time at which the assertion expires",
            format!("JWT expired {} s ago", now - exp),
        ));
    }
    if exp > now + MAX_JWT_LIFETIME_SECS {
        return Err(refuse(
            "'Expiration time' claim ('exp') is too far in the future",
            format!("JWT exp is {} s away, more than 10 minutes", exp - now),
        ));
    }
    if iat > now + IAT_DRIFT_SECS {
        return Err(refuse(
            "'Issued at' claim ('iat') must be an Integer representing the time that the assertion was issued",
            format!("JWT iat is {} s in the future", iat - now),
        ));
    }
    Ok(())
}
