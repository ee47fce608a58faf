//! Reading project files from disk: one file, a whole `projects/` directory,
//! and the report behind `forgehand config check`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::Project;
pub use super::error::ConfigError;
use super::validate::{self, Loaded};

/// Looks up an environment variable; injected so tests need not touch the
/// process environment.
type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Reads the process environment; what the daemon and the CLI use.
fn process_env(var: &str) -> Option<String> {
    std::env::var(var).ok()
}

/// Loads and validates one project file, resolving secrets from the process
/// environment.
pub fn load_file(path: &Path) -> Result<Project, Vec<ConfigError>> {
    load_file_with(path, &process_env)
}

/// Like [`load_file`], with `env` looking up environment variables.
pub fn load_file_with(
    path: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Project, Vec<ConfigError>> {
    load_one(path, env).map(|loaded| loaded.project)
}

/// Loads every `*.toml` file of `dir` in name order; any error in any file
/// (or two files with the same `name`) fails the whole load, with all errors.
pub fn load_dir(dir: &Path) -> Result<Vec<Project>, Vec<ConfigError>> {
    load_dir_with(dir, &process_env)
}

/// Like [`load_dir`], with `env` looking up environment variables.
pub fn load_dir_with(
    dir: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<Project>, Vec<ConfigError>> {
    let (report, projects) = check(dir, env);
    if report.is_ok() {
        Ok(projects)
    } else {
        Err(report.errors().cloned().collect())
    }
}

/// Validates every project file of `dir` for `forgehand config check`.
pub fn check_dir(dir: &Path) -> CheckReport {
    check_dir_with(dir, &process_env)
}

/// Like [`check_dir`], with `env` looking up environment variables.
pub fn check_dir_with(dir: &Path, env: &dyn Fn(&str) -> Option<String>) -> CheckReport {
    check(dir, env).0
}

/// The outcome of checking a directory of project files.
#[derive(Debug, Clone)]
pub struct CheckReport {
    pub dir: PathBuf,
    /// Problems with the directory itself: missing, unreadable, no `*.toml`.
    pub dir_errors: Vec<ConfigError>,
    /// Every `*.toml` file, in name order.
    pub files: Vec<FileCheck>,
}

/// One file of a [`CheckReport`]: its project name, or every error in it.
#[derive(Debug, Clone)]
pub struct FileCheck {
    pub path: PathBuf,
    pub outcome: Result<String, Vec<ConfigError>>,
}

impl CheckReport {
    pub fn is_ok(&self) -> bool {
        self.dir_errors.is_empty() && self.files.iter().all(|f| f.outcome.is_ok())
    }

    /// Every error, directory errors first, then by file.
    pub fn errors(&self) -> impl Iterator<Item = &ConfigError> {
        let in_files = self.files.iter().filter_map(|f| f.outcome.as_ref().err());
        self.dir_errors.iter().chain(in_files.flatten())
    }

    /// One line per good file, one line per error, and a summary line.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for e in &self.dir_errors {
            let _ = writeln!(out, "{e}");
        }
        for file in &self.files {
            match &file.outcome {
                Ok(name) => {
                    let _ = writeln!(out, "ok   {} (project \"{name}\")", file.path.display());
                }
                Err(errors) => {
                    for e in errors {
                        let _ = writeln!(out, "{e}");
                    }
                }
            }
        }
        let checked = self.files.len();
        let bad = self.files.iter().filter(|f| f.outcome.is_err()).count();
        let errors = self.errors().count();
        let files = plural(checked, "project file", "project files");
        let _ = if self.is_ok() {
            writeln!(out, "{files} checked: all ok")
        } else {
            writeln!(
                out,
                "{files} checked: {} ok, {bad} with errors; {} in total",
                checked - bad,
                plural(errors, "error", "errors")
            )
        };
        out
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn load_one(path: &Path, env: Env<'_>) -> Result<Loaded, Vec<ConfigError>> {
    let src = std::fs::read_to_string(path).map_err(|e| {
        vec![ConfigError::without_position(
            path,
            "file",
            format!("cannot read: {e}"),
        )]
    })?;
    validate::project(path, &src, env)
}

/// The shared walk behind `load_dir` and `check_dir`.
fn check(dir: &Path, env: Env<'_>) -> (CheckReport, Vec<Project>) {
    let mut report = CheckReport {
        dir: dir.to_path_buf(),
        dir_errors: Vec::new(),
        files: Vec::new(),
    };
    let paths = match toml_files(dir) {
        Ok(paths) => paths,
        Err(e) => {
            report.dir_errors.push(e);
            return (report, Vec::new());
        }
    };
    let loaded: Vec<(PathBuf, Result<Loaded, Vec<ConfigError>>)> = paths
        .into_iter()
        .map(|path| {
            let outcome = load_one(&path, env);
            (path, outcome)
        })
        .collect();
    // Every variable some project's `*_env` keys name, with that project's file.
    let secrets: Vec<(&str, &Path)> = loaded
        .iter()
        .filter_map(|(path, l)| l.as_ref().ok().map(|l| (path, l)))
        .flat_map(|(path, l)| l.secret_vars.iter().map(|v| (v.as_str(), path.as_path())))
        .collect();
    let names: Vec<(&str, &Path)> = loaded
        .iter()
        .filter_map(|(path, l)| {
            l.as_ref()
                .ok()
                .map(|l| (l.project.name.as_str(), path.as_path()))
        })
        .collect();
    let mut projects = Vec::new();
    // name → the file that used it first.
    let mut seen: BTreeMap<String, PathBuf> = BTreeMap::new();
    let mut outcomes = Vec::new();
    for (path, outcome) in &loaded {
        let outcome = match outcome {
            Err(errors) => Err(errors.clone()),
            Ok(loaded) => {
                let mut errors = across_projects(path, loaded, &secrets, &names);
                if let Some(first) = seen.get(&loaded.project.name) {
                    errors.push(ConfigError {
                        file: path.clone(),
                        line: loaded.name_line,
                        col: loaded.name_col,
                        field: "name".to_string(),
                        message: format!(
                            "project name \"{}\" is already used by {}",
                            loaded.project.name,
                            first.display()
                        ),
                    });
                } else {
                    seen.insert(loaded.project.name.clone(), path.clone());
                }
                if errors.is_empty() {
                    projects.push(loaded.project.clone());
                    Ok(loaded.project.name.clone())
                } else {
                    Err(errors)
                }
            }
        };
        outcomes.push(FileCheck {
            path: path.clone(),
            outcome,
        });
    }
    report.files = outcomes;
    (report, projects)
}

/// What one project may not do given the others: pass another project's
/// secret to its agent, or have a name whose sessions another project's could
/// be taken for (`a` and `a-b`: is `dev-a-b-1` issue `b-1` of `a`, or issue 1
/// of `a-b`? Start-up clean-up of one would kill the other's sessions).
fn across_projects(
    path: &Path,
    loaded: &Loaded,
    secrets: &[(&str, &Path)],
    names: &[(&str, &Path)],
) -> Vec<ConfigError> {
    let mut errors = Vec::new();
    for (var, line, col) in &loaded.pass_env_at {
        if let Some((_, other)) = secrets.iter().find(|(v, p)| v == var && *p != path) {
            errors.push(ConfigError {
                file: path.to_path_buf(),
                line: *line,
                col: *col,
                field: "[agent] pass_env".to_string(),
                message: format!(
                    "{var} is a secret of the project in {} and must not be passed to the agent",
                    other.display()
                ),
            });
        }
    }
    let name = loaded.project.name.as_str();
    for (other, other_path) in names {
        if *other_path != path && name.starts_with(&format!("{other}-")) {
            errors.push(ConfigError {
                file: path.to_path_buf(),
                line: loaded.name_line,
                col: loaded.name_col,
                field: "name".to_string(),
                message: format!(
                    "sessions of project \"{name}\" (dev-{name}-<issue>) could be taken for those of \"{other}\" in {} (dev-{other}-<issue>); rename one of them",
                    other_path.display()
                ),
            });
        }
    }
    errors
}

/// The `*.toml` files of `dir`, sorted by name. Hidden files are skipped, as
/// a shell's `*.toml` would (editors leave `.#name.toml` lock files).
fn toml_files(dir: &Path) -> Result<Vec<PathBuf>, ConfigError> {
    let io_error = |message: String| ConfigError::without_position(dir, "directory", message);
    let entries = std::fs::read_dir(dir)
        .map_err(|e| io_error(format!("cannot read project directory: {e}")))?;
    let mut paths = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| io_error(format!("cannot list project directory: {e}")))?;
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        // `_budget.toml` is the daemon's own budget, not a project.
        if name.starts_with('.')
            || !name.ends_with(".toml")
            || name == super::daemon_budget::DAEMON_BUDGET_FILE
        {
            continue;
        }
        // `metadata` follows symlinks, so a linked project file counts.
        if std::fs::metadata(&path).is_ok_and(|m| m.is_file()) {
            paths.push(path);
        }
    }
    if paths.is_empty() {
        return Err(io_error(
            "no project files (*.toml) in this directory".to_string(),
        ));
    }
    paths.sort();
    Ok(paths)
}
