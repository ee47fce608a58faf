//! Checks requests (and the fake's own answers) against GitHub's official OpenAPI 3
//! description, cut to `tests/api/github-rest.subset.json`: the OpenAPI counterpart of
//! `crate::swagger`, which does the same for the Swagger 2 files of Forgejo and Woodpecker.
//! The fake GitHub judges every request with it, so a request forgehand sends that
//! api.github.com would not understand fails the test.
//!
//! The description is parsed once per test binary ([`github`]) into path templates;
//! [`OpenApi::check`] routes a request to a template and lists everything about it the
//! description does not allow: the method, query parameter names, types and enum values,
//! path parameter types, and the JSON body's top-level properties (unknown, missing
//! required, wrong type or enum value) against the operation's `requestBody` schema,
//! following `$ref`s and trying each `oneOf`/`anyOf` alternative.
//! [`OpenApi::check_response`] validates a JSON answer against the response schema, so the
//! fake's self-tests can show it serves the description's shapes.

mod schema;
mod selftest;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::LazyLock;

use serde_json::{Map, Value};

use schema::{check_enum, fits, kind_of, merge, nullable, resolve, schema_name, types};

pub use crate::swagger::{Checked, Route, parse_query, percent_decode};

/// File name under `tests/api/` (see its README for the source and `scripts/api-subset`).
const FILE: &str = "github-rest.subset.json";

static GITHUB: LazyLock<OpenApi> = LazyLock::new(|| {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/api")
        .join(FILE);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading the OpenAPI description {}: {e}", path.display()));
    let doc: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("parsing the OpenAPI description {}: {e}", path.display()));
    OpenApi::from_doc(doc)
});

/// GitHub's REST description (paths relative to `https://api.github.com`), loaded on first use.
pub fn github() -> &'static OpenApi {
    &GITHUB
}

/// One declared query or path parameter.
#[derive(Debug, Clone)]
struct Param {
    /// Schema `type` (`string`, `integer`, `boolean`, …).
    kind: String,
    /// Allowed values, when the schema lists them (`enum`).
    allowed: Option<Vec<String>>,
    required: bool,
}

/// One method on one path template.
#[derive(Debug, Clone)]
struct Operation {
    query: HashMap<String, Param>,
    path: HashMap<String, Param>,
    /// `requestBody`, when the operation takes one.
    body: Option<BodySpec>,
    /// The operation's `responses` object, for [`OpenApi::check_response`].
    responses: Value,
}

#[derive(Debug, Clone)]
struct BodySpec {
    required: bool,
    /// The `application/json` schema; `None` when the body is declared in other media types only.
    schema: Option<Value>,
}

/// One path segment: GitHub's templates have no segments mixing text and parameters.
#[derive(Debug, Clone, PartialEq)]
enum Segment {
    Literal(String),
    /// `multi` parameters (`x-multi-segment` in the description: branch names, refs,
    /// commit refs) may span several segments, wherever they are in the path.
    Param {
        name: String,
        multi: bool,
    },
}

#[derive(Debug, Clone)]
struct Template {
    text: String,
    segments: Vec<Segment>,
    operations: HashMap<String, Operation>,
}

/// The API description reduced to what request checking needs, plus the document itself
/// for resolving schemas.
#[derive(Debug)]
pub struct OpenApi {
    doc: Value,
    templates: Vec<Template>,
}

impl OpenApi {
    fn from_doc(doc: Value) -> Self {
        let mut templates = Vec::new();
        for (text, item) in doc["paths"].as_object().into_iter().flatten() {
            let shared: Vec<Value> = item["parameters"].as_array().cloned().unwrap_or_default();
            let mut operations = HashMap::new();
            let mut multi = Vec::new();
            for (method, op) in item.as_object().into_iter().flatten() {
                if !op.is_object() || method == "parameters" {
                    continue;
                }
                let params: Vec<Value> = shared
                    .iter()
                    .chain(op["parameters"].as_array().into_iter().flatten())
                    .map(|p| resolve(&doc, p).clone())
                    .collect();
                for p in &params {
                    if p["in"] == "path" && p["x-multi-segment"] == true {
                        multi.push(p["name"].as_str().unwrap_or_default().to_owned());
                    }
                }
                operations.insert(method.to_ascii_uppercase(), operation(&doc, &params, op));
            }
            let segments = text
                .trim_start_matches('/')
                .split('/')
                .map(|s| segment(text, s, &multi))
                .collect();
            templates.push(Template {
                text: text.clone(),
                segments,
                operations,
            });
        }
        Self { doc, templates }
    }

    /// Routes `method` + raw (still percent-encoded) `path`, relative to the API root, and
    /// checks the query pairs and the body against the operation.
    pub fn check(
        &self,
        method: &str,
        path: &str,
        query: &[(String, String)],
        body: &[u8],
    ) -> Checked {
        let Some((template, params)) = self.find(path) else {
            return Checked {
                route: Route::UnknownPath,
                problems: vec![format!("no path of GitHub's description matches {path}")],
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
        for (name, param) in &op.query {
            if param.required && !query.iter().any(|(k, _)| k == name) {
                problems.push(format!("required query parameter {name:?} is missing"));
            }
        }
        self.check_body(
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

    /// Finds the most specific template for `path`: the one with the most segments (so a
    /// multi-segment `{ref}` spans as little as possible), then the one with a literal
    /// where the others have a parameter, at the first position where they differ.
    fn find(&self, path: &str) -> Option<(&Template, HashMap<String, String>)> {
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let mut best: Option<(Rank, &Template, HashMap<String, String>)> = None;
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
                    .map(|s| matches!(s, Segment::Literal(_)))
                    .collect(),
            );
            if best.as_ref().is_none_or(|(r, _, _)| rank > *r) {
                best = Some((rank, template, params));
            }
        }
        best.map(|(_, t, p)| (t, p))
    }

    fn check_body(
        &self,
        method: &str,
        template: &str,
        spec: Option<&BodySpec>,
        body: &[u8],
        problems: &mut Vec<String>,
    ) {
        if body.iter().all(u8::is_ascii_whitespace) {
            if spec.is_some_and(|s| s.required) {
                problems.push(format!(
                    "{method} {template} requires a body, none was sent"
                ));
            }
            return;
        }
        let Some(spec) = spec else {
            problems.push(format!(
                "{method} {template} takes no body, but one was sent"
            ));
            return;
        };
        let Some(schema) = &spec.schema else {
            problems.push(format!(
                "{method} {template} takes no JSON body (other media types only)"
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
        let name = schema_name(schema);
        let alternatives = self.alternatives(schema);
        let mut closest: Option<Vec<String>> = None;
        for alternative in &alternatives {
            let mut found = Vec::new();
            self.top_level(&value, alternative, &name, &mut found);
            if found.is_empty() {
                return;
            }
            if closest.as_ref().is_none_or(|c| found.len() < c.len()) {
                closest = Some(found);
            }
        }
        let closest = closest.unwrap_or_default();
        if alternatives.len() > 1 {
            problems.push(format!(
                "body of {method} {template} matches none of the {} forms {name} allows; closest: {}",
                alternatives.len(),
                closest.join("; ")
            ));
        } else {
            problems.extend(closest);
        }
    }

    /// The request-body forms a schema allows: `oneOf`/`anyOf` alternatives, each merged
    /// with the properties declared beside them (as in `PATCH …/check-runs/{id}`), and
    /// `allOf` parts merged into one.
    fn alternatives(&self, schema: &Value) -> Vec<Map<String, Value>> {
        let schema = resolve(&self.doc, schema);
        let Some(object) = schema.as_object() else {
            return vec![Map::new()];
        };
        let mut base = object.clone();
        for key in ["oneOf", "anyOf", "allOf"] {
            base.remove(key);
        }
        if let Some(parts) = schema["allOf"].as_array() {
            for part in parts {
                for merged in self.alternatives(part) {
                    base = merge(&base, &merged);
                }
            }
        }
        let choices = schema["oneOf"]
            .as_array()
            .or_else(|| schema["anyOf"].as_array());
        match choices {
            None => vec![base],
            Some(choices) => choices
                .iter()
                .flat_map(|c| self.alternatives(c))
                .map(|alt| merge(&base, &alt))
                .collect(),
        }
    }

    /// Checks a request body against one form: its JSON kind, then, for objects, the
    /// top-level properties (declared, required, type and enum of each value).
    fn top_level(
        &self,
        value: &Value,
        form: &Map<String, Value>,
        name: &str,
        problems: &mut Vec<String>,
    ) {
        let schema = Value::Object(form.clone());
        if !self.kind_fits(value, &schema) {
            problems.push(format!(
                "body is {}, {name} wants {}",
                kind_of(value),
                types(&schema).join(" or ")
            ));
            return;
        }
        let Some(object) = value.as_object() else {
            return;
        };
        let properties = form.get("properties").and_then(Value::as_object);
        let open = form
            .get("additionalProperties")
            .is_some_and(|a| a != &Value::Bool(false));
        for (key, field) in object {
            match properties.and_then(|p| p.get(key)) {
                Some(declared) => {
                    let mut found = Vec::new();
                    self.validate_shallow(field, declared, &mut found);
                    problems.extend(
                        found
                            .into_iter()
                            .map(|p| format!("body field {key:?} of {name}: {p}")),
                    );
                }
                None if !open && properties.is_some() => {
                    problems.push(format!("body field {key:?} is not a property of {name}"))
                }
                None => {}
            }
        }
        for key in form
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            if !object.contains_key(key) {
                problems.push(format!("required body field {key:?} of {name} is missing"));
            }
        }
    }

    /// Type and enum of one value, without looking inside it (request bodies are checked
    /// at the top level only).
    fn validate_shallow(&self, value: &Value, schema: &Value, problems: &mut Vec<String>) {
        let schema = resolve(&self.doc, schema);
        if value.is_null() && nullable(schema) {
            return;
        }
        if !self.kind_fits(value, schema) {
            problems.push(format!(
                "{} is not {}",
                kind_of(value),
                types(schema).join(" or ")
            ));
            return;
        }
        check_enum(value, schema, problems);
    }

    /// Whether `value`'s JSON kind is one the schema (or one of its alternatives) allows;
    /// a schema without any `type` allows every kind.
    fn kind_fits(&self, value: &Value, schema: &Value) -> bool {
        let schema = resolve(&self.doc, schema);
        if value.is_null() && nullable(schema) {
            return true;
        }
        if let Some(choices) = schema["oneOf"]
            .as_array()
            .or_else(|| schema["anyOf"].as_array())
        {
            let mut base = schema.clone();
            if let Some(b) = base.as_object_mut() {
                b.remove("oneOf");
                b.remove("anyOf");
            }
            return self.kind_fits(value, &base)
                && choices.iter().any(|c| self.kind_fits(value, c));
        }
        let allowed = types(schema);
        allowed.is_empty() || allowed.iter().any(|t| fits(value, t))
    }
}

/// How specific a matched template is: its segment count, then which are literals.
type Rank = (usize, Vec<bool>);

fn operation(doc: &Value, params: &[Value], op: &Value) -> Operation {
    let mut query = HashMap::new();
    let mut path = HashMap::new();
    for p in params {
        let schema = resolve(doc, &p["schema"]);
        let param = Param {
            kind: schema["type"].as_str().unwrap_or("string").to_owned(),
            allowed: schema["enum"].as_array().map(|v| {
                v.iter()
                    .filter_map(|x| x.as_str().map(str::to_owned))
                    .collect()
            }),
            required: p["required"] == true,
        };
        let name = p["name"].as_str().unwrap_or_default().to_owned();
        match p["in"].as_str() {
            Some("query") => {
                query.insert(name, param);
            }
            Some("path") => {
                path.insert(name, param);
            }
            // Header parameters are not part of the contract checked here.
            _ => {}
        }
    }
    let body = op.get("requestBody").map(|b| {
        let b = resolve(doc, b);
        BodySpec {
            required: b["required"] == true,
            schema: b["content"]
                .get("application/json")
                .map(|c| c["schema"].clone()),
        }
    });
    Operation {
        query,
        path,
        body,
        responses: op["responses"].clone(),
    }
}

fn segment(template: &str, text: &str, multi: &[String]) -> Segment {
    match text.strip_prefix('{').and_then(|t| t.strip_suffix('}')) {
        Some(name) if !name.contains(['{', '}']) => Segment::Param {
            name: name.to_owned(),
            multi: multi.iter().any(|m| m == name),
        },
        _ if text.contains(['{', '}']) => panic!(
            "{template}: segment {text:?} mixes text and parameters, which this checker does not route"
        ),
        _ => Segment::Literal(text.to_owned()),
    }
}

/// Matches the template's segments against the request's, letting multi-segment
/// parameters take one or more segments; parameters never match an empty segment.
fn match_segments(
    template: &[Segment],
    segments: &[&str],
    params: &mut HashMap<String, String>,
) -> bool {
    let Some((first, rest)) = template.split_first() else {
        return segments.is_empty();
    };
    match first {
        Segment::Literal(l) => {
            segments.first() == Some(&l.as_str()) && match_segments(rest, &segments[1..], params)
        }
        Segment::Param { name, multi } => {
            let most = if *multi {
                segments.len().saturating_sub(rest.len())
            } else {
                segments.len().min(1)
            };
            for take in 1..=most {
                let taken = &segments[..take];
                if taken.iter().any(|s| s.is_empty()) {
                    break;
                }
                if match_segments(rest, &segments[take..], params) {
                    params.insert(name.clone(), percent_decode(&taken.join("/")));
                    return true;
                }
            }
            false
        }
    }
}

fn check_value(what: &str, name: &str, param: &Param, value: &str, problems: &mut Vec<String>) {
    let ok = match param.kind.as_str() {
        "integer" => value.parse::<i64>().is_ok(),
        "boolean" => value == "true" || value == "false",
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
