//! The validation pass: one project file's text to a `Project`, or every
//! problem found in it. Parsing keeps going past an error wherever it can
//! (each section is deserialized on its own, each value checked on its own),
//! so the user fixes a file in one round instead of one error per run.

mod budget;
mod github;
mod sections;

use std::ops::Range;
use std::path::Path;
use std::time::Duration;

use serde::de::DeserializeOwned;
use toml::Spanned;
use toml::de::{DeTable, DeValue, ValueDeserializer};

use super::duration;
use super::error::{ConfigError, SYNTAX_FIELD, field_name, line_col, path_at, reword};
use super::raw::{DurationText, RawTop};
use super::{ForgeKind, Project, Secrets};

/// See `load::Env`.
pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// A validated project and where its `name` is, for the duplicate-name check
/// across files.
pub struct Loaded {
    pub project: Project,
    pub name_line: usize,
    pub name_col: usize,
    /// Every variable `pass_env` names, with its position, for the check
    /// against other projects' secrets.
    pub pass_env_at: Vec<(String, usize, usize)>,
    /// The variables this project's `*_env` keys name.
    pub secret_vars: Vec<String>,
}

/// Validates one file's text. `file` is only used to locate messages.
pub fn project(file: &Path, src: &str, env: Env<'_>) -> Result<Loaded, Vec<ConfigError>> {
    let (doc, syntax_errors) = DeTable::parse_recoverable(src);
    let mut c = Checker {
        file,
        src,
        doc: doc.get_ref(),
        env,
        errors: Vec::new(),
        pass_env_at: Vec::new(),
    };
    if !syntax_errors.is_empty() {
        // The recovered document may be missing whole tables; validating it
        // would report keys as missing that are only hidden by the typo.
        for e in syntax_errors {
            let span = e.span().unwrap_or(0..0);
            c.push(span, SYNTAX_FIELD, e.message());
        }
        return Err(c.into_errors());
    }
    let top = c.deserialize::<RawTop>(
        Spanned::new(doc.span(), DeValue::Table(doc.get_ref().clone())),
        "",
    );

    let forge = c.forge();
    let mut secrets = Secrets {
        forge_token: forge.api.token,
        webhook_secret: forge.webhook.token,
        github_app_key: forge.app_key,
        ..Secrets::default()
    };
    let labels = c.labels();
    let ci = c.ci();
    secrets.woodpecker_token = ci.token;
    let review = c.review();
    let merge = c.merge();
    let matrix = c.matrix();
    secrets.matrix_token = matrix.token;
    let mirrors = c.mirrors();
    let budget = c.budget();
    // Every `*_env` key names a secret the agent must never see.
    let secret_vars: Vec<(String, &str)> = [
        forge.api.secret_var,
        forge.webhook.secret_var,
        ci.secret_var,
        matrix.secret_var,
    ]
    .into_iter()
    .flatten()
    .collect();
    let agent = c.agent(&secret_vars);

    let Some(top) = top else {
        return Err(c.into_errors());
    };
    let name = c.name(top.name);
    let repo = c.repo(top.repo, forge.config.kind() == ForgeKind::Local);
    let primary_branch = c.text_or(top.primary_branch, "primary_branch", "main");
    let clone_url = match top.clone_url {
        Some(url) => c.non_empty(url, "clone_url"),
        None => forge.config.default_clone_url(&repo),
    };
    let poll_interval = c.duration(top.poll_interval, "poll_interval", Duration::from_secs(60));

    // A missing name has been reported, so `None` only comes with errors.
    let (Some((name, (name_line, name_col))), true) = (name, c.errors.is_empty()) else {
        return Err(c.into_errors());
    };
    let pass_env_at = c
        .pass_env_at
        .iter()
        .map(|(var, at)| {
            let (line, col) = line_col(src, *at);
            (var.clone(), line, col)
        })
        .collect();
    let secret_vars = secret_vars.into_iter().map(|(v, _)| v).collect();
    Ok(Loaded {
        project: Project {
            name,
            repo,
            primary_branch,
            clone_url,
            poll_interval,
            forge: forge.config,
            labels,
            agent,
            ci: ci.config,
            review,
            merge,
            matrix: matrix.config,
            mirrors,
            budget,
            source: file.to_path_buf(),
            secrets,
        },
        name_line,
        name_col,
        pass_env_at,
        secret_vars,
    })
}

/// Collects the errors of one file while the sections are checked.
struct Checker<'a> {
    file: &'a Path,
    src: &'a str,
    doc: &'a DeTable<'a>,
    env: Env<'a>,
    errors: Vec<ConfigError>,
    /// `pass_env` entries and their byte offsets.
    pass_env_at: Vec<(String, usize)>,
}

impl Checker<'_> {
    /// The errors in file order, whatever order the sections were checked in.
    fn into_errors(mut self) -> Vec<ConfigError> {
        self.errors.sort_by_key(|e| (e.line, e.col));
        self.errors
    }

    fn push(&mut self, span: Range<usize>, field: impl Into<String>, message: impl Into<String>) {
        let (line, col) = line_col(self.src, span.start);
        self.errors.push(ConfigError {
            file: self.file.to_path_buf(),
            line,
            col,
            field: field.into(),
            message: message.into(),
        });
    }

    /// Deserializes one value of the document; a serde error (unknown key,
    /// wrong type) is recorded under the key path it points at.
    fn deserialize<T: DeserializeOwned>(
        &mut self,
        value: Spanned<DeValue<'_>>,
        fallback_field: &str,
    ) -> Option<T> {
        match T::deserialize(ValueDeserializer::from(value)) {
            Ok(v) => Some(v),
            Err(e) => {
                let span = e.span().unwrap_or(0..0);
                let path = path_at(self.doc, span.start);
                let field = match field_name(self.doc, &path) {
                    f if f.is_empty() => fallback_field.to_string(),
                    f => f,
                };
                self.push(span, field, reword(e.message()));
                None
            }
        }
    }

    /// The section `[key]`, if present and well-formed. The span is the
    /// section's header, where a missing key inside it is reported.
    fn section<T: DeserializeOwned>(&mut self, key: &str) -> Option<Spanned<T>> {
        let value = self
            .doc
            .iter()
            .find(|(k, _)| k.get_ref() == key)
            .map(|(_, v)| v.clone())?;
        let span = value.span();
        let raw = self.deserialize::<T>(value, &format!("[{key}]"))?;
        Some(Spanned::new(span, raw))
    }

    /// A required string: reported at `missing_at` (the section header, or
    /// the file's start) when absent, and at the value when empty.
    fn required(
        &mut self,
        raw: Option<Spanned<String>>,
        missing_at: Range<usize>,
        field: &str,
    ) -> Option<Spanned<String>> {
        match raw {
            None => {
                self.push(missing_at, field, "is required");
                None
            }
            Some(v) if v.get_ref().trim().is_empty() => {
                self.push(v.span(), field, "must not be empty");
                None
            }
            Some(v) => Some(v),
        }
    }

    fn non_empty(&mut self, raw: Spanned<String>, field: &str) -> String {
        if raw.get_ref().trim().is_empty() {
            self.push(raw.span(), field, "must not be empty");
        }
        raw.into_inner()
    }

    fn text_or(&mut self, raw: Option<Spanned<String>>, field: &str, default: &str) -> String {
        match raw {
            Some(v) => self.non_empty(v, field),
            None => default.to_string(),
        }
    }

    fn duration(
        &mut self,
        raw: Option<Spanned<DurationText>>,
        field: &str,
        default: Duration,
    ) -> Duration {
        let Some(raw) = raw else { return default };
        duration::parse(&raw.get_ref().0).unwrap_or_else(|message| {
            self.push(raw.span(), field, message);
            default
        })
    }

    /// A whole number that must be at least `min`.
    fn at_least(&mut self, raw: Option<Spanned<u32>>, field: &str, min: u32, default: u32) -> u32 {
        let Some(raw) = raw else { return default };
        if *raw.get_ref() < min {
            self.push(raw.span(), field, format!("must be at least {min}"));
        }
        raw.into_inner()
    }

    fn http_url(&mut self, raw: &Spanned<String>, field: &str) {
        if !is_http_url(raw.get_ref()) {
            let message = format!(
                "\"{}\" is not an http:// or https:// URL with a host",
                raw.get_ref()
            );
            self.push(raw.span(), field, message);
        }
    }

    /// Checks that `raw` names a variable, and that the variable is set and
    /// not empty; returns its value.
    fn secret(&mut self, raw: &Spanned<String>, field: &str) -> Option<String> {
        let var = raw.get_ref();
        if !is_var_name(var) {
            let message = format!("\"{var}\" is not a valid environment variable name");
            self.push(raw.span(), field, message);
            return None;
        }
        match (self.env)(var) {
            Some(value) if !value.is_empty() => Some(value),
            Some(_) => {
                let message = format!("environment variable {var} named by {field} is empty");
                self.push(raw.span(), field, message);
                None
            }
            None => {
                let message = format!("environment variable {var} named by {field} is not set");
                self.push(raw.span(), field, message);
                None
            }
        }
    }

    fn name(&mut self, raw: Option<Spanned<String>>) -> Option<(String, (usize, usize))> {
        let raw = self.required(raw, 0..0, "name")?;
        let valid = raw
            .get_ref()
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !valid {
            let message = format!(
                "\"{}\" may only contain lowercase letters, digits and '-' ([a-z0-9-]+)",
                raw.get_ref()
            );
            self.push(raw.span(), "name", message);
        }
        let position = line_col(self.src, raw.span().start);
        Some((raw.into_inner(), position))
    }

    /// `owner/name` on a forge; any name for the local backend, which has no owners.
    fn repo(&mut self, raw: Option<Spanned<String>>, local: bool) -> String {
        let Some(raw) = self.required(raw, 0..0, "repo") else {
            return String::new();
        };
        if local {
            return self.non_empty(raw, "repo");
        }
        let part_ok = |p: &str| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        };
        let valid = raw
            .get_ref()
            .split_once('/')
            .is_some_and(|(owner, name)| part_ok(owner) && part_ok(name));
        if !valid {
            let message = format!("\"{}\" is not of the form owner/name", raw.get_ref());
            self.push(raw.span(), "repo", message);
        }
        raw.into_inner()
    }
}

/// `[A-Za-z_][A-Za-z0-9_]*`, what a POSIX shell accepts as a variable name.
pub fn is_var_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

fn is_http_url(url: &str) -> bool {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    rest.is_some_and(|r| !r.is_empty() && !r.starts_with('/') && !r.contains(char::is_whitespace))
}
