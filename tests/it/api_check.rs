//! What checking a request against an API description needs whatever the description's
//! format: routing a path to a template, checking path and query parameters, the common
//! part of body checking, and decoding the query. `crate::swagger` (Swagger 2: Forgejo,
//! Woodpecker) and `crate::openapi` (OpenAPI 3: GitHub) each load their own format into
//! these pieces and check bodies against their own kind of schema.

use std::collections::HashMap;

use serde_json::{Map, Value};

/// Where a request was routed.
#[derive(Debug, Clone, PartialEq)]
pub enum Route {
    /// A template with this method exists; `params` are the percent-decoded path parameters.
    Matched {
        template: String,
        params: HashMap<String, String>,
    },
    /// The path matches a template, but not with this method (the server answers 405).
    MethodNotAllowed { template: String },
    /// No template matches the path (the server answers 404).
    UnknownPath,
}

/// The outcome of checking one request: its route and every deviation from the description.
#[derive(Debug, Clone)]
pub struct Checked {
    pub route: Route,
    /// Human-readable problems; empty when the request is exactly as described.
    pub problems: Vec<String>,
}

/// One declared query or path parameter: what values it accepts.
#[derive(Debug, Clone)]
pub struct Param {
    /// Declared `type` (`string`, `integer`, `boolean`, `array`, …).
    kind: String,
    /// Allowed values, when the description lists them (`enum`).
    allowed: Option<Vec<String>>,
    required: bool,
}

impl Param {
    /// A parameter whose `type` and `enum` stand in `typed` (the parameter itself in
    /// Swagger 2, its `schema` in OpenAPI 3); an unstated type is a string.
    pub fn new(typed: &Value, required: bool) -> Self {
        Self {
            kind: typed["type"].as_str().unwrap_or("string").to_owned(),
            allowed: typed["enum"].as_array().map(|v| {
                v.iter()
                    .filter_map(|x| x.as_str().map(str::to_owned))
                    .collect()
            }),
            required,
        }
    }

    fn check(&self, what: &str, name: &str, value: &str, problems: &mut Vec<String>) {
        let ok = match self.kind.as_str() {
            "integer" => value.parse::<i64>().is_ok(),
            "boolean" => value == "true" || value == "false",
            // Array parameters repeat the name; each occurrence must fit the item type, which
            // the callers here only use for integer ids.
            _ => true,
        };
        if !ok {
            problems.push(format!(
                "{what} {name}={value:?} is not a valid {}",
                self.kind
            ));
        }
        if let Some(allowed) = &self.allowed
            && !allowed.iter().any(|a| a == value)
        {
            problems.push(format!("{what} {name}={value:?} is not one of {allowed:?}"));
        }
    }
}

/// The query and path parameters one operation declares.
#[derive(Debug, Clone, Default)]
pub struct Params {
    query: HashMap<String, Param>,
    path: HashMap<String, Param>,
}

impl Params {
    /// Records a parameter declared `in` the query or the path; other places (headers,
    /// Swagger 2 bodies) are not checked here and are left out.
    pub fn add(&mut self, location: Option<&str>, name: &str, param: Param) {
        match location {
            Some("query") => {
                self.query.insert(name.to_owned(), param);
            }
            Some("path") => {
                self.path.insert(name.to_owned(), param);
            }
            _ => {}
        }
    }

    /// Checks the decoded path parameters' values and the query pairs: every name declared,
    /// every value of its type and enum, every required one present.
    pub fn check(
        &self,
        method: &str,
        template: &str,
        path_params: &HashMap<String, String>,
        query: &[(String, String)],
        problems: &mut Vec<String>,
    ) {
        for (name, value) in path_params {
            if let Some(param) = self.path.get(name) {
                param.check("path parameter", name, value, problems);
            }
        }
        for (name, value) in query {
            match self.query.get(name) {
                Some(param) => param.check("query parameter", name, value, problems),
                None => problems.push(format!(
                    "query parameter {name:?} is not declared for {method} {template}"
                )),
            }
        }
        for (name, param) in &self.query {
            if param.required && !query.iter().any(|(k, _)| k == name) {
                problems.push(format!("required query parameter {name:?} is missing"));
            }
        }
    }
}

/// How many request segments a path parameter that is a whole template segment may take.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Span {
    /// Exactly one, like most parameters (`{repo}`, `{index}`).
    One,
    /// One or more, none of them empty: GitHub's `x-multi-segment` parameters (refs,
    /// branch names), wherever they stand in the path.
    Segments,
    /// One or more, taken as they are, empty ones too (`a//b`, `x/`), as long as the
    /// whole is not empty: Forgejo's catch-all routes at the end of a path.
    Rest,
}

/// A piece of one path segment: most segments are a single literal or a single
/// parameter, a few mix both (`{index}.{diffType}`).
#[derive(Debug, Clone, PartialEq)]
enum Piece {
    Literal(String),
    Param(String),
}

#[derive(Debug, Clone)]
struct Segment {
    pieces: Vec<Piece>,
    /// Only for a segment that is a single parameter; others take one request segment.
    span: Span,
}

/// One path template and its operations, by upper-case method.
#[derive(Debug, Clone)]
pub struct Template<Op> {
    text: String,
    segments: Vec<Segment>,
    operations: HashMap<String, Op>,
}

impl<Op> Template<Op> {
    /// Parses the template `text` (`/repos/{owner}/{repo}/branches/{branch}`); `span` says
    /// how far a parameter filling a whole segment reaches, given its name and whether it
    /// is the last segment.
    pub fn new(
        text: &str,
        operations: HashMap<String, Op>,
        span: impl Fn(&str, bool) -> Span,
    ) -> Self {
        let parts: Vec<&str> = text.trim_start_matches('/').split('/').collect();
        let segments = parts
            .iter()
            .enumerate()
            .map(|(i, part)| {
                let pieces = pieces(part);
                let span = match pieces.as_slice() {
                    [Piece::Param(name)] => span(name, i + 1 == parts.len()),
                    _ => Span::One,
                };
                Segment { pieces, span }
            })
            .collect();
        Self {
            text: text.to_owned(),
            segments,
            operations,
        }
    }
}

/// The path templates of a description, for routing requests to operations.
#[derive(Debug)]
pub struct Router<Op> {
    templates: Vec<Template<Op>>,
}

impl<Op> Router<Op> {
    pub fn new(templates: Vec<Template<Op>>) -> Self {
        Self { templates }
    }

    /// The operation `method` on the template written `template`, if the description has it.
    pub fn operation(&self, method: &str, template: &str) -> Option<&Op> {
        self.templates
            .iter()
            .find(|t| t.text == template)
            .and_then(|t| t.operations.get(&method.to_ascii_uppercase()))
    }

    /// Routes `method` + raw (still percent-encoded) `path`, relative to the description's
    /// root, and checks the path parameters and the `query` pairs against the operation;
    /// `check_body` adds what is wrong with the body, given the operation and the template.
    /// `unknown` words the problem of a path no template matches.
    pub fn check(
        &self,
        method: &str,
        path: &str,
        query: &[(String, String)],
        unknown: impl FnOnce() -> String,
        check_body: impl FnOnce(&Op, &str, &mut Vec<String>),
    ) -> Checked
    where
        Op: AsRef<Params>,
    {
        let Some((template, params)) = self.find(path) else {
            return Checked {
                route: Route::UnknownPath,
                problems: vec![unknown()],
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
        op.as_ref()
            .check(method, &template.text, &params, query, &mut problems);
        check_body(op, &template.text, &mut problems);
        Checked {
            route: Route::Matched {
                template: template.text.clone(),
                params,
            },
            problems,
        }
    }

    /// Finds the most specific template for `path`: the one with the most segments (an
    /// exact segment count wins over a spanning parameter, and a spanning parameter spans
    /// as little as possible), then the one with a literal where the others have a
    /// parameter, at the first position where they differ, as in Forgejo's router. Among
    /// equals the first in the description wins.
    fn find(&self, path: &str) -> Option<(&Template<Op>, HashMap<String, String>)> {
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let mut best: Option<(Rank, &Template<Op>, HashMap<String, String>)> = None;
        for template in &self.templates {
            let mut params = HashMap::new();
            if !match_segments(&template.segments, &segments, &mut params) {
                continue;
            }
            let rank = (
                template.segments.len(),
                template
                    .segments
                    .iter()
                    .map(|s| matches!(s.pieces.as_slice(), [Piece::Literal(_)]))
                    .collect(),
            );
            if best.as_ref().is_none_or(|(r, _, _)| rank > *r) {
                best = Some((rank, template, params));
            }
        }
        best.map(|(_, t, p)| (t, p))
    }
}

/// How specific a matched template is: its segment count, then which are literals.
type Rank = (usize, Vec<bool>);

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

/// Matches the template's segments against the request's, letting spanning parameters
/// take several segments (see [`Span`]); nothing matches an empty segment.
fn match_segments(
    template: &[Segment],
    segments: &[&str],
    params: &mut HashMap<String, String>,
) -> bool {
    let Some((first, rest)) = template.split_first() else {
        return segments.is_empty();
    };
    let most = match first.span {
        Span::One => segments.len().min(1),
        Span::Segments | Span::Rest => segments.len().saturating_sub(rest.len()),
    };
    for take in 1..=most {
        let taken = &segments[..take];
        let raw = taken.join("/");
        let empty = match first.span {
            Span::Segments => taken.iter().any(|s| s.is_empty()),
            Span::One | Span::Rest => raw.is_empty(),
        };
        if empty {
            continue;
        }
        let mut found = HashMap::new();
        if match_pieces(&first.pieces, &raw, &mut found)
            && match_segments(rest, &segments[take..], params)
        {
            params.extend(found);
            return true;
        }
    }
    false
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

/// What an operation declares about its request body.
#[derive(Debug, Clone, Copy)]
pub struct DeclaredBody {
    /// Whether a request without a body is wrong.
    pub required: bool,
    /// Whether the body may be JSON (OpenAPI 3 bodies may be declared in other media types only).
    pub json: bool,
}

/// The sent body as JSON, when there is one to check against a schema: an empty body is
/// fine unless required, and a body the operation does not take, cannot take as JSON, or
/// that is not JSON is reported instead.
pub fn json_body(
    method: &str,
    template: &str,
    declared: Option<DeclaredBody>,
    body: &[u8],
    problems: &mut Vec<String>,
) -> Option<Value> {
    if body.iter().all(u8::is_ascii_whitespace) {
        if declared.is_some_and(|d| d.required) {
            problems.push(format!(
                "{method} {template} requires a body, none was sent"
            ));
        }
        return None;
    }
    let Some(declared) = declared else {
        problems.push(format!(
            "{method} {template} takes no body, but one was sent"
        ));
        return None;
    };
    if !declared.json {
        problems.push(format!(
            "{method} {template} takes no JSON body (other media types only)"
        ));
        return None;
    }
    match serde_json::from_slice(body) {
        Ok(value) => Some(value),
        Err(e) => {
            problems.push(format!("body of {method} {template} is not JSON: {e}"));
            None
        }
    }
}

/// Checks a body object's fields against the schema called `name`: `declared` gives, for
/// a field the schema has (or lets in), the problems with its value, and `None` for a field
/// it does not have; every `required` field must be there.
pub fn check_fields<'a>(
    object: &Map<String, Value>,
    name: &str,
    mut declared: impl FnMut(&str, &Value) -> Option<Vec<String>>,
    required: impl IntoIterator<Item = &'a str>,
    problems: &mut Vec<String>,
) {
    for (key, field) in object {
        match declared(key, field) {
            Some(found) => problems.extend(found),
            None => problems.push(format!("body field {key:?} is not a property of {name}")),
        }
    }
    for key in required {
        if !object.contains_key(key) {
            problems.push(format!("required body field {key:?} of {name} is missing"));
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
