//! Checks requests against an official API description (Forgejo 11.0.3 or Woodpecker 3.x),
//! so that every request forgehand sends is one the real server would understand. The fake
//! Forgejo, the fake Woodpecker and the Forgejo client's mock all judge traffic with it.
//!
//! A description is parsed once per test binary ([`forgejo`], [`woodpecker`]) into path
//! templates with their operations; [`Swagger::check`] routes a request to a template and
//! lists everything about it the description does not allow.

mod selftest;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::LazyLock;

use serde_json::Value;

/// Which description to load, and what its server's router does that swagger cannot say.
struct Spec {
    /// File name under `tests/api/` (copies of the official descriptions; see its README).
    file: &'static str,
    /// Last-segment parameters that may contain `/`, like Forgejo's catch-all routes
    /// (branch and tag names, file paths). Others (`{repo}`, `{index}`) never span, or
    /// `/repos/a/b/anything` would match `/repos/{owner}/{repo}`.
    spanning_params: &'static [&'static str],
}

const FORGEJO: Spec = Spec {
    file: "forgejo-11.0.3.swagger.json",
    spanning_params: &["branch", "filepath", "ref", "tag", "archive"],
};

const WOODPECKER: Spec = Spec {
    file: "woodpecker-3.x.swagger.json",
    spanning_params: &["repo_full_name", "org_full_name"],
};

static FORGEJO_SWAGGER: LazyLock<Swagger> = LazyLock::new(|| Swagger::load(&FORGEJO));
static WOODPECKER_SWAGGER: LazyLock<Swagger> = LazyLock::new(|| Swagger::load(&WOODPECKER));

/// Forgejo 11.0.3's description (base path `/api/v1`), loaded on first use.
pub fn forgejo() -> &'static Swagger {
    &FORGEJO_SWAGGER
}

/// Woodpecker 3.x's description (base path `/api`), loaded on first use.
pub fn woodpecker() -> &'static Swagger {
    &WOODPECKER_SWAGGER
}

/// One declared parameter (query or path): what values it accepts.
#[derive(Debug, Clone)]
struct Param {
    /// Swagger `type` (`string`, `integer`, `boolean`, `array`, …).
    kind: String,
    /// Allowed values, when the description lists them.
    allowed: Option<Vec<String>>,
}

/// The JSON body an operation accepts.
#[derive(Debug, Clone)]
struct Body {
    /// Definition name, for messages.
    name: String,
    /// Top-level properties; `None` when the schema is not an object (e.g. a bare string).
    properties: Option<HashSet<String>>,
    required: Vec<String>,
}

/// One method on one path template.
#[derive(Debug, Clone)]
struct Operation {
    query: HashMap<String, Param>,
    path: HashMap<String, Param>,
    body: Option<Body>,
}

/// A piece of one path segment: most segments are a single literal or a single
/// parameter, a few mix both (`{index}.{diffType}`).
#[derive(Debug, Clone, PartialEq)]
enum Piece {
    Literal(String),
    Param(String),
}

#[derive(Debug, Clone)]
struct Template {
    text: String,
    segments: Vec<Vec<Piece>>,
    operations: HashMap<String, Operation>,
}

/// The API description reduced to what request checking needs.
#[derive(Debug)]
pub struct Swagger {
    base_path: String,
    templates: Vec<Template>,
    spanning_params: &'static [&'static str],
}

/// Where a request was routed.
#[derive(Debug, Clone, PartialEq)]
pub enum Route {
    /// A template with this method exists; `params` are the percent-decoded path parameters.
    Matched {
        template: String,
        params: HashMap<String, String>,
    },
    /// The path matches a template, but not with this method (Forgejo answers 405).
    MethodNotAllowed { template: String },
    /// No template matches the path (Forgejo answers 404).
    UnknownPath,
}

/// The outcome of checking one request: its route and every deviation from the description.
#[derive(Debug, Clone)]
pub struct Checked {
    pub route: Route,
    /// Human-readable problems; empty when the request is exactly as described.
    pub problems: Vec<String>,
}

impl Swagger {
    fn load(spec: &Spec) -> Self {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/api")
            .join(spec.file);
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("reading the swagger {}: {e}", path.display()));
        let doc: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("parsing the swagger {}: {e}", path.display()));
        Self::from_doc(&doc, spec.spanning_params)
    }

    fn from_doc(doc: &Value, spanning_params: &'static [&'static str]) -> Self {
        let base_path = doc["basePath"]
            .as_str()
            .unwrap_or("")
            .trim_end_matches('/')
            .to_owned();
        let definitions = &doc["definitions"];
        let mut templates = Vec::new();
        for (text, item) in doc["paths"].as_object().into_iter().flatten() {
            let shared: Vec<Value> = item["parameters"].as_array().cloned().unwrap_or_default();
            let mut operations = HashMap::new();
            for (method, op) in item.as_object().into_iter().flatten() {
                if method == "parameters" {
                    continue;
                }
                let params = shared
                    .iter()
                    .chain(op["parameters"].as_array().into_iter().flatten());
                operations.insert(method.to_ascii_uppercase(), operation(params, definitions));
            }
            templates.push(Template {
                text: text.clone(),
                segments: text
                    .trim_start_matches('/')
                    .split('/')
                    .map(pieces)
                    .collect(),
                operations,
            });
        }
        Self {
            base_path,
            templates,
            spanning_params,
        }
    }

    /// The `basePath` every API path starts with (`/api/v1`, `/api`).
    pub fn base_path(&self) -> &str {
        &self.base_path
    }

    /// Routes `method` + raw (still percent-encoded) `path`, which must start with the base
    /// path, and checks the query pairs and the JSON body against the operation.
    pub fn check(
        &self,
        method: &str,
        path: &str,
        query: &[(String, String)],
        body: &[u8],
    ) -> Checked {
        let Some(rest) = path.strip_prefix(&self.base_path) else {
            return Checked {
                route: Route::UnknownPath,
                problems: vec![format!(
                    "path {path} is outside the API base {}",
                    self.base_path
                )],
            };
        };
        let Some((template, params)) = self.find(rest) else {
            return Checked {
                route: Route::UnknownPath,
                problems: vec![format!("no swagger path matches {path}")],
            };
        };
        let Some(op) = template.operations.get(&method.to_ascii_uppercase()) else {
            return Checked {
                route: Route::MethodNotAllowed {
                    template: template.text.clone(),
                },
                problems: vec![format!("{} has no {method} operation", template.text)],
            };
        };
        let mut problems = Vec::new();
        for (name, value) in &params {
            if let Some(param) = op.path.get(name) {
                check_value("path parameter", name, param, value, &mut problems);
            }
        }
        for (name, value) in query {
            match op.query.get(name) {
                Some(param) => check_value("query parameter", name, param, value, &mut problems),
                None => problems.push(format!(
                    "query parameter {name:?} is not declared for {method} {}",
                    template.text
                )),
            }
        }
        check_body(
            method,
            &template.text,
            op.body.as_ref(),
            body,
            &mut problems,
        );
        Checked {
            route: Route::Matched {
                template: template.text.clone(),
                params,
            },
            problems,
        }
    }

    /// Finds the most specific template for `path` (relative to the base path). Exact
    /// segment counts win; only if none matches may a template's last parameter span the
    /// rest of the path, and only a `spanning_params` one (branch names contain `/`). Among matches, a literal segment beats a
    /// parameter at the first position where they differ, as in Forgejo's router.
    fn find(&self, path: &str) -> Option<(&Template, HashMap<String, String>)> {
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let mut best: Option<(Vec<bool>, &Template, HashMap<String, String>)> = None;
        for spanning in [false, true] {
            for template in &self.templates {
                let matched = match_template(template, &segments, spanning, self.spanning_params);
                let Some(params) = matched else {
                    continue;
                };
                let rank: Vec<bool> = template
                    .segments
                    .iter()
                    .map(|s| matches!(s.as_slice(), [Piece::Literal(_)]))
                    .collect();
                if best.as_ref().is_none_or(|(r, _, _)| rank > *r) {
                    best = Some((rank, template, params));
                }
            }
            if best.is_some() {
                break;
            }
        }
        best.map(|(_, t, p)| (t, p))
    }
}

fn operation<'a>(params: impl Iterator<Item = &'a Value>, definitions: &Value) -> Operation {
    let mut op = Operation {
        query: HashMap::new(),
        path: HashMap::new(),
        body: None,
    };
    for p in params {
        let name = p["name"].as_str().unwrap_or_default().to_owned();
        let param = Param {
            kind: p["type"].as_str().unwrap_or("string").to_owned(),
            allowed: p["enum"].as_array().map(|v| {
                v.iter()
                    .filter_map(|x| x.as_str().map(str::to_owned))
                    .collect()
            }),
        };
        match p["in"].as_str() {
            Some("query") => {
                op.query.insert(name, param);
            }
            Some("path") => {
                op.path.insert(name, param);
            }
            Some("body") => op.body = Some(body_schema(&p["schema"], definitions)),
            _ => {}
        }
    }
    op
}

fn body_schema(schema: &Value, definitions: &Value) -> Body {
    let (name, resolved) = match schema["$ref"].as_str() {
        Some(r) => {
            let name = r.rsplit('/').next().unwrap_or(r).to_owned();
            let def = definitions.get(&name).cloned().unwrap_or(Value::Null);
            (name, def)
        }
        None => ("inline schema".to_owned(), schema.clone()),
    };
    Body {
        name,
        properties: resolved["properties"]
            .as_object()
            .map(|p| p.keys().cloned().collect()),
        required: resolved["required"]
            .as_array()
            .map(|r| {
                r.iter()
                    .filter_map(|x| x.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default(),
    }
}

fn pieces(segment: &str) -> Vec<Piece> {
    let mut out = Vec::new();
    let mut rest = segment;
    while let Some(open) = rest.find('{') {
        if open > 0 {
            out.push(Piece::Literal(rest[..open].to_owned()));
        }
        let close = rest[open..].find('}').map_or(rest.len(), |c| open + c);
        out.push(Piece::Param(rest[open + 1..close].to_owned()));
        rest = rest.get(close + 1..).unwrap_or("");
    }
    if !rest.is_empty() {
        out.push(Piece::Literal(rest.to_owned()));
    }
    out
}

fn match_template(
    t: &Template,
    segments: &[&str],
    spanning: bool,
    spanning_params: &[&str],
) -> Option<HashMap<String, String>> {
    let n = t.segments.len();
    if segments.len() < n || (!spanning && segments.len() != n) {
        return None;
    }
    if spanning
        && (segments.len() == n
            || !matches!(t.segments[n - 1].as_slice(), [Piece::Param(p)] if spanning_params.contains(&p.as_str())))
    {
        return None;
    }
    let mut params = HashMap::new();
    for (i, pattern) in t.segments.iter().enumerate() {
        let raw = if i == n - 1 {
            segments[i..].join("/")
        } else {
            segments[i].to_owned()
        };
        if raw.is_empty() || !match_pieces(pattern, &raw, &mut params) {
            return None;
        }
    }
    Some(params)
}

/// Matches one segment against its pieces; a parameter takes at least one character, and
/// backtracking finds the split for mixed segments like `{index}.{diffType}`.
fn match_pieces(pieces: &[Piece], raw: &str, params: &mut HashMap<String, String>) -> bool {
    match pieces.split_first() {
        None => raw.is_empty(),
        Some((Piece::Literal(l), rest)) => raw
            .strip_prefix(l.as_str())
            .is_some_and(|r| match_pieces(rest, r, params)),
        Some((Piece::Param(name), rest)) => {
            let ends: Vec<usize> = if rest.is_empty() {
                vec![raw.len()]
            } else {
                raw.char_indices().skip(1).map(|(i, _)| i).collect()
            };
            for end in ends {
                if end == 0 || !match_pieces(rest, &raw[end..], params) {
                    continue;
                }
                params.insert(name.clone(), percent_decode(&raw[..end]));
                return true;
            }
            false
        }
    }
}

fn check_value(what: &str, name: &str, param: &Param, value: &str, problems: &mut Vec<String>) {
    let ok = match param.kind.as_str() {
        "integer" => value.parse::<i64>().is_ok(),
        "boolean" => value == "true" || value == "false",
        // Array parameters repeat the name; each occurrence must fit the item type, which
        // the callers here only use for integer ids.
        _ => true,
    };
    if !ok {
        problems.push(format!(
            "{what} {name}={value:?} is not a valid {}",
            param.kind
        ));
    }
    if let Some(allowed) = &param.allowed
        && !allowed.iter().any(|a| a == value)
    {
        problems.push(format!("{what} {name}={value:?} is not one of {allowed:?}"));
    }
}

fn check_body(
    method: &str,
    template: &str,
    schema: Option<&Body>,
    body: &[u8],
    problems: &mut Vec<String>,
) {
    if body.iter().all(u8::is_ascii_whitespace) {
        return;
    }
    let Some(schema) = schema else {
        problems.push(format!(
            "{method} {template} takes no body, but one was sent"
        ));
        return;
    };
    let value: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => {
            problems.push(format!("body of {method} {template} is not JSON: {e}"));
            return;
        }
    };
    let (Some(properties), Some(object)) = (&schema.properties, value.as_object()) else {
        return;
    };
    for key in object.keys() {
        if !properties.contains(key) {
            problems.push(format!(
                "body field {key:?} is not a property of {}",
                schema.name
            ));
        }
    }
    for key in &schema.required {
        if !object.contains_key(key) {
            problems.push(format!(
                "required body field {key:?} of {} is missing",
                schema.name
            ));
        }
    }
}

/// Decodes `%XX` escapes; invalid escapes are kept as they are, like Go's lenient decoders.
pub fn percent_decode(raw: &str) -> String {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(hex) = raw.get(i + 1..i + 3)
            && let Ok(b) = u8::from_str_radix(hex, 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Splits a raw query string into decoded pairs (`+` is a space in form encoding).
pub fn parse_query(raw: &str) -> Vec<(String, String)> {
    raw.split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (
                percent_decode(&k.replace('+', " ")),
                percent_decode(&v.replace('+', " ")),
            )
        })
        .collect()
}
