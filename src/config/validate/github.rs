//! `[forge]` for `kind = "github"`: signing in with a token (`token_env`) or as a
//! GitHub App (`app_id`, `installation_id`, `private_key_file`, all three), and
//! the App's key file, which must be a PEM RSA private key only its owner can
//! read. A key file others can read is an error, not a warning: whoever reads
//! it can act as the App on every repository it is installed on, and `chmod 600`
//! is the whole fix.

use std::ops::Range;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use toml::Spanned;

use super::Checker;
use crate::forge::github::parse_private_key;

type Field<T> = Option<Spanned<T>>;

/// The App keys as written.
pub(super) struct AppKeys {
    pub app_id: Field<u64>,
    pub installation_id: Field<u64>,
    pub private_key_file: Field<String>,
}

impl AppKeys {
    /// The keys given, with their names and positions, in file order of names.
    fn present(&self) -> Vec<(&'static str, Range<usize>)> {
        [
            self.app_id.as_ref().map(|v| ("app_id", v.span())),
            self.installation_id
                .as_ref()
                .map(|v| ("installation_id", v.span())),
            self.private_key_file
                .as_ref()
                .map(|v| ("private_key_file", v.span())),
        ]
        .into_iter()
        .flatten()
        .collect()
    }
}

/// A GitHub App's sign-in, checked.
pub(super) struct GithubApp {
    pub app_id: u64,
    pub installation_id: u64,
    /// Absolute: relative paths are taken from the project file's folder.
    pub private_key_file: PathBuf,
    /// The key itself (PEM), a secret.
    pub pem: String,
}

impl Checker<'_> {
    /// GitHub's sign-in: the `token_env` to resolve, or the App. Exactly one
    /// of them is required.
    pub(super) fn github_sign_in(
        &mut self,
        token_env: Field<String>,
        app: AppKeys,
        header: Range<usize>,
    ) -> (Field<String>, Option<GithubApp>) {
        let present = app.present();
        let token_field = "[forge] token_env";
        match (token_env, present.is_empty()) {
            (None, true) => {
                self.push(
                    header,
                    token_field,
                    "is required (or a GitHub App: app_id, installation_id and private_key_file)",
                );
                (None, None)
            }
            (Some(token_env), true) => (Some(token_env), None),
            (Some(token_env), false) => {
                self.push(
                    token_env.span(),
                    token_field,
                    "a token and a GitHub App (app_id, installation_id, private_key_file) \
                     are alternatives: give one of them",
                );
                (None, None)
            }
            (None, false) => (None, self.github_app(app, present)),
        }
    }

    fn github_app(
        &mut self,
        app: AppKeys,
        present: Vec<(&'static str, Range<usize>)>,
    ) -> Option<GithubApp> {
        let AppKeys {
            app_id: Some(app_id),
            installation_id: Some(installation_id),
            private_key_file: Some(key_file),
        } = app
        else {
            let missing: Vec<&str> = ["app_id", "installation_id", "private_key_file"]
                .into_iter()
                .filter(|k| !present.iter().any(|(p, _)| p == k))
                .collect();
            let (first, span) = present.into_iter().next().expect("one is set");
            let message = format!(
                "app_id, installation_id and private_key_file go together (a GitHub App); \
                 missing: {}",
                missing.join(", ")
            );
            self.push(span, format!("[forge] {first}"), message);
            return None;
        };
        for (value, field) in [(&app_id, "app_id"), (&installation_id, "installation_id")] {
            if *value.get_ref() == 0 {
                self.push(value.span(), format!("[forge] {field}"), "must not be 0");
            }
        }
        let (private_key_file, pem) = self.key_file(&key_file)?;
        Some(GithubApp {
            app_id: app_id.into_inner(),
            installation_id: installation_id.into_inner(),
            private_key_file,
            pem,
        })
    }

    /// The key file's path and contents, once it is found to be a private RSA
    /// key only its owner may read. Messages name the path, never the contents.
    fn key_file(&mut self, raw: &Spanned<String>) -> Option<(PathBuf, String)> {
        let field = "[forge] private_key_file";
        let text = raw.get_ref().trim();
        if text.is_empty() {
            self.push(raw.span(), field, "must not be empty");
            return None;
        }
        let path = match text.strip_prefix("~/") {
            Some(rest) => match (self.env)("HOME").filter(|h| !h.is_empty()) {
                Some(home) => PathBuf::from(home).join(rest),
                None => {
                    let message = format!("\"{text}\" names the home folder, but HOME is not set");
                    self.push(raw.span(), field, message);
                    return None;
                }
            },
            None => {
                let dir = self.file.parent().unwrap_or(std::path::Path::new("."));
                std::path::absolute(dir.join(text)).unwrap_or_else(|_| dir.join(text))
            }
        };
        let shown = path.display().to_string();
        let meta = match std::fs::metadata(&path) {
            Ok(meta) if meta.is_file() => meta,
            Ok(_) => {
                self.push(raw.span(), field, format!("{shown} is not a file"));
                return None;
            }
            Err(e) => {
                self.push(raw.span(), field, format!("cannot read {shown}: {e}"));
                return None;
            }
        };
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            let message = format!(
                "{shown} has mode {mode:04o}: the App's private key must be readable by its \
                 owner only (chmod 600 {shown})"
            );
            self.push(raw.span(), field, message);
            return None;
        }
        let pem = match std::fs::read_to_string(&path) {
            Ok(pem) => pem,
            Err(e) => {
                self.push(raw.span(), field, format!("cannot read {shown}: {e}"));
                return None;
            }
        };
        if let Err(why) = parse_private_key(&pem) {
            self.push(raw.span(), field, format!("{shown} {why}"));
            return None;
        }
        Some((path, pem))
    }

    /// The App keys mean nothing to other forges: each given is an error.
    pub(super) fn not_github(&mut self, app: &AppKeys) {
        for (key, span) in app.present() {
            self.push(
                span,
                format!("[forge] {key}"),
                "is only for kind = \"github\" (signing in as a GitHub App)",
            );
        }
    }
}
