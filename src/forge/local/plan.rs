//! Plan files: one `<key>.md` per task in the local backend's folder, parsed into
//! a title, a body, labels and dependencies, with errors that name file and line.
//!
//! The front matter is a tiny hand-parsed subset of YAML (two list-valued keys,
//! inline `[a, b]` or block `- a` lists), so no YAML crate and no surprises
//! from YAML's type coercions (`no` becoming `false`).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

/// One task of the local backend, the counterpart of a forge issue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The file name without `.md`; plays the role of the issue number.
    pub key: String,
    /// Text of the first heading.
    pub title: String,
    /// Everything after the title heading, without leading and trailing blank lines.
    pub body: String,
    pub labels: Vec<String>,
    /// Keys of plans that must be merged before this one is picked.
    pub depends_on: Vec<String>,
    /// Where the plan was read from, so its outcome can be written beside it.
    pub path: PathBuf,
}

/// A plan file that cannot be used, with the place to fix it. `line` is 1-based.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct PlanError {
    pub path: PathBuf,
    pub line: usize,
    pub message: String,
}

impl fmt::Display for PlanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.path.display(), self.line, self.message)
    }
}

/// Front-matter keys a plan may use.
const KEYS: [&str; 2] = ["labels", "depends_on"];

/// Parses one plan file's text; `path` gives the key (its file name without `.md`)
/// and is named in errors.
pub fn parse_plan(path: &Path, text: &str) -> Result<Plan, PlanError> {
    parse(path, text).map(|parsed| parsed.plan)
}

/// A parsed plan plus the line of each `depends_on` entry, so that folder-level
/// errors (missing plan, cycle) point at the entry that causes them.
struct Parsed {
    plan: Plan,
    dependency_lines: Vec<usize>,
}

fn parse(path: &Path, text: &str) -> Result<Parsed, PlanError> {
    let error = |line: usize, message: String| PlanError {
        path: path.to_path_buf(),
        line,
        message,
    };
    let key = key_of(path).map_err(|message| error(1, message))?;

    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    // Numbered lines without their `\r`, so CRLF files parse like LF ones.
    let lines: Vec<(usize, &str)> = text
        .split('\n')
        .map(|line| line.strip_suffix('\r').unwrap_or(line))
        .enumerate()
        .map(|(i, line)| (i + 1, line))
        .collect();

    let (front, rest) = split_front_matter(&lines).map_err(|(line, m)| error(line, m))?;
    let mut labels = Vec::new();
    let mut depends_on = Vec::new();
    let mut dependency_lines = Vec::new();
    if let Some(front) = front {
        for (name, items) in parse_front_matter(front).map_err(|(line, m)| error(line, m))? {
            for (line, item) in items {
                if name == "labels" {
                    if !labels.contains(&item) {
                        labels.push(item);
                    }
                    continue;
                }
                check_key(&item).map_err(|m| error(line, format!("depends_on: {m}")))?;
                if item == key {
                    return Err(error(line, format!("plan `{key}` depends on itself")));
                }
                if !depends_on.contains(&item) {
                    depends_on.push(item);
                    dependency_lines.push(line);
                }
            }
        }
    }

    let (title, body) = title_and_body(rest).map_err(|(line, m)| error(line, m))?;
    Ok(Parsed {
        plan: Plan {
            key,
            title,
            body,
            labels,
            depends_on,
            path: path.to_path_buf(),
        },
        dependency_lines,
    })
}

/// The plan key from the file name: `<key>.md` with a restricted alphabet, because
/// the key ends up in branch names, tmux session names and file names.
fn key_of(path: &Path) -> Result<String, String> {
    let name = path
        .file_name()
        .and_then(|name| name.to_str())
        .ok_or_else(|| "the file name is not valid UTF-8".to_string())?;
    let key = name
        .strip_suffix(".md")
        .ok_or_else(|| format!("plan file name `{name}` does not end in `.md`"))?;
    check_key(key).map_err(|m| format!("file name: {m}"))?;
    Ok(key.to_string())
}

/// `[A-Za-z0-9_-]{1,64}`, not starting with `-`: tmux rewrites `.` and `:`
/// in session names, git refuses others in branch names, and a leading `-`
/// reads as an option.
fn check_key(key: &str) -> Result<(), String> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-');
    if key.is_empty() {
        return Err("empty plan key".into());
    }
    if key.len() > MAX_KEY {
        return Err(format!(
            "plan key `{}…` is longer than {MAX_KEY} characters",
            key.chars().take(MAX_KEY).collect::<String>()
        ));
    }
    if !key.chars().all(allowed) {
        return Err(format!(
            "plan key `{key}` may only contain letters, digits, `_` and `-`"
        ));
    }
    if key.starts_with('-') {
        return Err(format!("plan key `{key}` must not start with `-`"));
    }
    Ok(())
}

/// The longest plan key.
const MAX_KEY: usize = 64;

type Lines<'a> = [(usize, &'a str)];
type LineError = (usize, String);

/// Splits off the front matter: `---` on the very first line up to the next `---`.
fn split_front_matter<'t, 'a>(
    lines: &'t Lines<'a>,
) -> Result<(Option<&'t Lines<'a>>, &'t Lines<'a>), LineError> {
    let is_fence = |line: &str| line.trim_end() == "---";
    match lines.first() {
        Some((_, first)) if is_fence(first) => {}
        _ => return Ok((None, lines)),
    }
    let close = lines[1..]
        .iter()
        .position(|(_, line)| is_fence(line))
        .ok_or_else(|| {
            (
                1,
                "front matter opened with `---` is never closed by a `---` line".to_string(),
            )
        })?;
    Ok((Some(&lines[1..=close]), &lines[close + 2..]))
}

/// The front matter's keys in order of appearance, each with its items and their lines.
type FrontMatter = Vec<(&'static str, Vec<(usize, String)>)>;

fn parse_front_matter(lines: &Lines<'_>) -> Result<FrontMatter, LineError> {
    let mut keys: FrontMatter = Vec::new();
    // The key whose value is a block list still being read (`labels:` then `- a`).
    let mut open_block: Option<usize> = None;
    for &(line, raw) in lines {
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        if let Some(item) = trimmed.strip_prefix('-').filter(|_| trimmed != "-") {
            let Some(index) = open_block else {
                return Err((line, format!("list item `{trimmed}` is not under a key")));
            };
            if !item.starts_with([' ', '\t']) {
                return Err((line, format!("expected `- item`, found `{trimmed}`")));
            }
            let item = scalar(item.trim()).map_err(|m| (line, m))?;
            keys[index].1.push((line, item));
            continue;
        }
        if raw.starts_with([' ', '\t']) {
            return Err((line, format!("unexpected indented line `{trimmed}`")));
        }
        let Some((name, value)) = raw.split_once(':') else {
            return Err((
                line,
                format!("expected `key: value` in the front matter, found `{trimmed}`"),
            ));
        };
        let name = name.trim();
        let Some(&name) = KEYS.iter().find(|known| **known == name) else {
            return Err((
                line,
                format!("unknown front-matter key `{name}` (known: labels, depends_on)"),
            ));
        };
        if keys.iter().any(|(seen, _)| *seen == name) {
            return Err((line, format!("front-matter key `{name}` is given twice")));
        }
        let value = value.trim();
        let items = if value.is_empty() {
            open_block = Some(keys.len());
            Vec::new()
        } else {
            open_block = None;
            inline_list(value)
                .map_err(|m| (line, format!("{name}: {m}")))?
                .into_iter()
                .map(|item| (line, item))
                .collect()
        };
        keys.push((name, items));
    }
    Ok(keys)
}

/// `[a, "b", 'c']` → its items; `[]` is an empty list.
fn inline_list(value: &str) -> Result<Vec<String>, String> {
    let inner = value
        .strip_prefix('[')
        .and_then(|v| v.strip_suffix(']'))
        .ok_or_else(|| format!("expected a list like `[a, b]`, found `{value}`"))?;
    if inner.trim().is_empty() {
        return Ok(Vec::new());
    }
    inner.split(',').map(|item| scalar(item.trim())).collect()
}

/// One list item, optionally quoted; must be non-empty and plain.
fn scalar(item: &str) -> Result<String, String> {
    let unquoted = ['"', '\'']
        .iter()
        .find_map(|q| item.strip_prefix(*q).and_then(|i| i.strip_suffix(*q)))
        .filter(|_| item.len() >= 2)
        .unwrap_or(item);
    if unquoted.trim().is_empty() {
        return Err("empty list item".into());
    }
    if unquoted.contains(['[', ']', ',', '"', '\'', '{', '}']) {
        return Err(format!("cannot read list item `{item}`"));
    }
    Ok(unquoted.trim().to_string())
}

/// The title is the first line, which must be an ATX heading; the rest is the body.
fn title_and_body(lines: &Lines<'_>) -> Result<(String, String), LineError> {
    let mut content = lines.iter().skip_while(|(_, line)| line.trim().is_empty());
    let Some(&(first_line, first)) = content.next() else {
        let line = lines.first().map_or(1, |(line, _)| *line);
        return Err((line, "no title heading (`# Title`) in the plan".into()));
    };
    let Some(title) = heading(first) else {
        let message = if lines.iter().any(|(_, line)| heading(line).is_some()) {
            "text before the title heading (the plan must start with `# Title`)"
        } else {
            "no title heading (`# Title`) in the plan"
        };
        return Err((first_line, message.into()));
    };
    if title.is_empty() {
        return Err((first_line, "the title heading is empty".into()));
    }
    // Drop blank lines around the body but keep the first line's indentation (code).
    let body: Vec<&str> = content
        .map(|(_, line)| *line)
        .skip_while(|line| line.trim().is_empty())
        .collect();
    let body = body.join("\n");
    let body = body.trim_end();
    Ok((title.to_string(), body.to_string()))
}

/// The text of an ATX heading (`#`…`######`, up to three spaces of indentation,
/// optional closing `#`s), or `None` if the line is not one.
fn heading(line: &str) -> Option<&str> {
    let indent = line.len() - line.trim_start_matches(' ').len();
    if indent > 3 {
        return None;
    }
    let rest = &line[indent..];
    let level = rest.len() - rest.trim_start_matches('#').len();
    if !(1..=6).contains(&level) {
        return None;
    }
    let rest = &rest[level..];
    if !rest.is_empty() && !rest.starts_with([' ', '\t']) {
        return None;
    }
    let text = rest.trim();
    // A closing sequence counts only when separated by a space (`# C# #` keeps `C#`).
    let without_closing = text.trim_end_matches('#');
    let text = if without_closing.is_empty() {
        without_closing
    } else if without_closing.ends_with([' ', '\t']) {
        without_closing.trim_end()
    } else {
        text
    };
    Some(text)
}

/// Every `*.md` directly in `dir` (not `done/`, `blocked/`, hidden files or `*.report.md`),
/// sorted by key; each file's result, plus folder-level errors (missing dependency,
/// cycles) attached to the plan that names them.
///
/// A dependency on a plan already moved to `done/` or `blocked/` is not missing: the
/// plan exists, and whether it is merged is the picker's question.
pub fn load_plans(dir: &Path) -> std::io::Result<Vec<Result<Plan, PlanError>>> {
    let mut known = BTreeSet::new();
    for outcome in ["done", "blocked"] {
        let folder = dir.join(outcome);
        if folder.is_dir() {
            known.extend(plan_files(&folder)?.into_iter().map(|(key, _)| key));
        }
    }
    let files = plan_files(dir)?;
    known.extend(files.iter().map(|(key, _)| key.clone()));

    let parsed: Vec<Result<Parsed, PlanError>> = files
        .into_iter()
        .map(|(_, path)| read_and_parse(&path))
        .collect();
    Ok(check_dependencies(parsed, &known))
}

/// Plan files directly in `dir` as (key, path), sorted by key. The key here is only
/// the name without `.md`; invalid keys are reported by parsing.
fn plan_files(dir: &Path) -> std::io::Result<Vec<(String, PathBuf)>> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let Some(key) = name.strip_suffix(".md") else {
            continue;
        };
        if name.starts_with('.') || name.ends_with(".report.md") {
            continue;
        }
        // `metadata` follows symlinks, so a linked plan counts and a folder named `x.md` not.
        let path = entry.path();
        if !fs::metadata(&path).is_ok_and(|m| m.is_file()) {
            continue;
        }
        files.push((key.to_string(), path));
    }
    files.sort();
    Ok(files)
}

fn read_and_parse(path: &Path) -> Result<Parsed, PlanError> {
    let error = |line: usize, message: String| PlanError {
        path: path.to_path_buf(),
        line,
        message,
    };
    let bytes = fs::read(path).map_err(|e| error(1, format!("cannot read the plan: {e}")))?;
    let text = String::from_utf8(bytes).map_err(|e| {
        let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        let line = 1 + valid.iter().filter(|b| **b == b'\n').count();
        error(line, "the plan is not valid UTF-8".into())
    })?;
    parse(path, &text)
}

/// Attaches folder-level errors: a `depends_on` naming no plan, and dependency cycles
/// (every plan on a cycle gets the error, pointing at its entry that closes the cycle).
fn check_dependencies(
    parsed: Vec<Result<Parsed, PlanError>>,
    known: &BTreeSet<String>,
) -> Vec<Result<Plan, PlanError>> {
    let graph: BTreeMap<&str, &[String]> = parsed
        .iter()
        .flatten()
        .map(|p| (p.plan.key.as_str(), p.plan.depends_on.as_slice()))
        .collect();
    let errors: Vec<Option<PlanError>> = parsed
        .iter()
        .map(|result| {
            let parsed = result.as_ref().ok()?;
            let plan = &parsed.plan;
            let error = |index: usize, message: String| PlanError {
                path: plan.path.clone(),
                line: parsed.dependency_lines[index],
                message,
            };
            if let Some(index) = plan.depends_on.iter().position(|d| !known.contains(d)) {
                let missing = &plan.depends_on[index];
                return Some(error(
                    index,
                    format!("depends_on: there is no plan `{missing}` (no `{missing}.md`)"),
                ));
            }
            let cycle = cycle_through(&graph, &plan.key)?;
            let index = plan.depends_on.iter().position(|d| *d == cycle[1])?;
            Some(error(
                index,
                format!("dependency cycle: {}", cycle.join(" -> ")),
            ))
        })
        .collect();
    parsed
        .into_iter()
        .zip(errors)
        .map(|(result, error)| match error {
            Some(error) => Err(error),
            None => result.map(|parsed| parsed.plan),
        })
        .collect()
}

/// A shortest dependency path from `start` back to itself (`[start, …, start]`), if any.
fn cycle_through(graph: &BTreeMap<&str, &[String]>, start: &str) -> Option<Vec<String>> {
    // Breadth-first from `start`, remembering each key's predecessor.
    let mut previous: BTreeMap<&str, &str> = BTreeMap::new();
    let mut queue = std::collections::VecDeque::from([start]);
    while let Some(key) = queue.pop_front() {
        for next in graph.get(key).copied().unwrap_or_default() {
            if next == start {
                let mut back = Vec::new();
                let mut at = key;
                while at != start {
                    back.push(at.to_string());
                    at = previous[at];
                }
                back.reverse();
                let mut path = vec![start.to_string()];
                path.extend(back);
                path.push(start.to_string());
                return Some(path);
            }
            if !previous.contains_key(next.as_str()) {
                previous.insert(next.as_str(), key);
                queue.push_back(next.as_str());
            }
        }
    }
    None
}
