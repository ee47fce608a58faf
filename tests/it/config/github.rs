//! `[forge] kind = "github"`: the default API address and clone URL, signing in
//! with a token or as a GitHub App, and every way the App's keys and key file
//! can be wrong, each named at `file:line:col` with its field.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use forgehand::config::{ForgeConfig, GithubAuth, check_dir_with, load_file_with};
use tempfile::TempDir;

use super::{TOKEN, assert_error, env, errors_of, write};
use crate::github_client::app::rsa_key;

/// A GitHub project; `forge` is the body of its `[forge]` section (line 5 on).
fn project(forge: &str) -> String {
    format!(
        "name = \"proj\"\nrepo = \"owner/proj\"\n\n[forge]\nkind = \"github\"\n{forge}\n[agent]\ncommand = \"claude\"\n"
    )
}

/// An App key in `dir`, readable by its owner only.
fn key_file(dir: &Path) -> std::path::PathBuf {
    let (_, _) = rsa_key(dir, true);
    let path = dir.join("app.pem");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path
}

const APP: &str = "app_id = 1234\ninstallation_id = 42\nprivate_key_file = \"app.pem\"\n";

#[test]
fn github_defaults_to_github_com() {
    let dir = TempDir::new().unwrap();
    let path = write(
        dir.path(),
        "gh.toml",
        &project("token_env = \"FORGE_TOKEN\"\n"),
    );
    let p = load_file_with(&path, &env(TOKEN)).expect("a token is enough");
    let ForgeConfig::Github(github) = &p.forge else {
        panic!("{:?}", p.forge)
    };
    assert_eq!(github.url, "https://api.github.com");
    assert_eq!(p.clone_url, "https://github.com/owner/proj.git");
    assert_eq!(p.forge.token_env(), Some("FORGE_TOKEN"));
    assert_eq!(p.forge.private_key_file(), None);
}

#[test]
fn an_enterprise_server_clones_from_its_own_host() {
    let dir = TempDir::new().unwrap();
    let forge = "url = \"https://ghe.example/api/v3\"\ntoken_env = \"FORGE_TOKEN\"\n";
    let path = write(dir.path(), "gh.toml", &project(forge));
    let p = load_file_with(&path, &env(TOKEN)).unwrap();
    assert_eq!(p.clone_url, "https://ghe.example/owner/proj.git");
}

#[test]
fn a_github_app_signs_in_with_its_key_file() {
    let dir = TempDir::new().unwrap();
    let key = key_file(dir.path());
    let path = write(dir.path(), "gh.toml", &project(APP));
    let p = load_file_with(&path, &env(&[])).expect("an App needs no token");
    let ForgeConfig::Github(github) = &p.forge else {
        panic!("{:?}", p.forge)
    };
    let GithubAuth::App {
        app_id,
        installation_id,
        private_key_file,
    } = &github.auth
    else {
        panic!("an App: {:?}", github.auth)
    };
    assert_eq!((*app_id, *installation_id), (1234, 42));
    assert_eq!(private_key_file, &key, "relative to the project file");
    assert_eq!(p.forge.private_key_file(), Some(key.as_path()));
    assert_eq!(p.forge.token_env(), None);
    let pem = p
        .secrets
        .github_app_key
        .as_deref()
        .expect("the key is read");
    assert!(pem.contains("BEGIN RSA PRIVATE KEY"));
    assert!(
        p.secrets.values().iter().any(|v| v == pem),
        "redacted like any secret"
    );
    let shown = format!("{p:?}");
    assert!(!shown.contains("PRIVATE KEY"), "{shown}");

    // `~/` is the daemon's home.
    let home_key = project(&APP.replace("\"app.pem\"", "\"~/app.pem\""));
    let path = write(dir.path(), "home.toml", &home_key);
    let home = dir.path().to_str().unwrap().to_string();
    let p = load_file_with(&path, &move |v: &str| (v == "HOME").then(|| home.clone()))
        .expect("a key in the home folder");
    assert_eq!(p.forge.private_key_file(), Some(key.as_path()));
}

#[test]
fn a_token_or_an_app_is_required_and_not_both() {
    let (_dir, path, errors) = errors_of(&project(""), TOKEN);
    assert_error(
        &errors,
        &path,
        4,
        1,
        "[forge] token_env",
        "is required (or a GitHub App: app_id, installation_id and private_key_file)",
    );

    let both = format!("token_env = \"FORGE_TOKEN\"\n{APP}");
    let (_dir, path, errors) = errors_of(&project(&both), TOKEN);
    assert_error(
        &errors,
        &path,
        6,
        13,
        "[forge] token_env",
        "are alternatives",
    );
}

#[test]
fn the_app_keys_go_together() {
    let (_dir, path, errors) = errors_of(&project("app_id = 1234\n"), &[]);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_error(
        &errors,
        &path,
        6,
        10,
        "[forge] app_id",
        "missing: installation_id, private_key_file",
    );
    let (_dir, path, errors) = errors_of(
        &project("installation_id = 0\nprivate_key_file = \"k\"\n"),
        &[],
    );
    assert_error(
        &errors,
        &path,
        6,
        19,
        "[forge] installation_id",
        "missing: app_id",
    );
    let (_dir, path, errors) = errors_of(&project("app_id = \"one\"\n"), &[]);
    assert_error(&errors, &path, 6, 10, "[forge] app_id", "expected u64");
}

#[test]
fn the_key_file_must_be_a_private_rsa_key() {
    let at = |errors: &[forgehand::config::ConfigError], path: &Path, needle: &str| {
        assert_error(errors, path, 8, 20, "[forge] private_key_file", needle);
    };
    // Missing.
    let (_dir, path, errors) = errors_of(&project(APP), &[]);
    at(&errors, &path, "cannot read");
    at(&errors, &path, "app.pem");

    // Readable by others.
    let dir = TempDir::new().unwrap();
    let key = key_file(dir.path());
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let path = write(dir.path(), "gh.toml", &project(APP));
    let errors = load_file_with(&path, &env(&[])).unwrap_err();
    at(&errors, &path, "has mode 0644");
    at(&errors, &path, "chmod 600");

    // Not a key.
    std::fs::write(&key, "just some text\n").unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let errors = load_file_with(&path, &env(&[])).unwrap_err();
    at(&errors, &path, "is not a PEM private key");
    assert!(
        errors.iter().all(|e| !e.message.contains("just some text")),
        "the file's contents are never quoted: {errors:?}"
    );

    // A PEM block that is no RSA key.
    std::fs::write(
        &key,
        "-----BEGIN RSA PRIVATE KEY-----\nbm90IGEga2V5\n-----END RSA PRIVATE KEY-----\n",
    )
    .unwrap();
    let errors = load_file_with(&path, &env(&[])).unwrap_err();
    at(&errors, &path, "does not hold a usable RSA private key");

    // `config check` says the same.
    let report = check_dir_with(dir.path(), &env(&[]));
    assert!(!report.is_ok());
    assert!(report.render().contains("[forge] private_key_file"));
}

#[test]
fn app_keys_are_only_for_github() {
    let src = super::MINIMAL.replace(
        "token_env = \"FORGE_TOKEN\"",
        "token_env = \"FORGE_TOKEN\"\napp_id = 3",
    );
    let (_dir, path, errors) = errors_of(&src, TOKEN);
    assert_error(
        &errors,
        &path,
        8,
        10,
        "[forge] app_id",
        "is only for kind = \"github\"",
    );
}
