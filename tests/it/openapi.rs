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

use crate::api_check::{
    DeclaredBody, Param, Params, Router, Span, Template, check_fields, json_body,
};

pub use crate::api_check::{Checked, Route};

// The fakes and the clients' tests decode requests with these; not every one of them is
// used through each module.
#[allow(unused_imports)]
pub use crate::api_check::{parse_query, percent_decode};

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

/// One method on one path template.
#[derive(Debug, Clone)]
struct Operation {
    params: Params,
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

/// The API description reduced to what request checking needs, plus the document itself
/// for resolving schemas.
#[derive(Debug)]
pub struct OpenApi {
    doc: Value,
    router: Router<Operation>,
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
            // GitHub marks parameters that may span segments (`x-multi-segment`).
            templates.push(Template::new(text, operations, |name, _| {
                if multi.iter().any(|m| m == name) {
                    Span::Segments
                } else {
                    Span::One
                }
            }));
        }
        Self {
            doc,
            router: Router::new(templates),
        }
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
        self.router.check(
            method,
            path,
            query,
            || format!("no path of GitHub's description matches {path}"),
            |op, template, problems| {
                self.check_body(method, template, op.body.as_ref(), body, problems)
            },
        )
    }

    fn check_body(
        &self,
        method: &str,
        template: &str,
        spec: Option<&BodySpec>,
        body: &[u8],
        problems: &mut Vec<String>,
    ) {
        let declared = spec.map(|s| DeclaredBody {
            required: s.required,
            json: s.schema.is_some(),
        });
        let Some(value) = json_body(method, template, declared, body, problems) else {
            return;
        };
        let Some(schema) = spec.and_then(|s| s.schema.as_ref()) else {
            return;
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
        let required = form
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str);
        let declared = |key: &str, field: &Value| match properties.and_then(|p| p.get(key)) {
            Some(declared) => {
                let mut found = Vec::new();
                self.validate_shallow(field, declared, &mut found);
                Some(
                    found
                        .into_iter()
                        .map(|p| format!("body field {key:?} of {name}: {p}"))
                        .collect(),
                )
            }
            None if !open && properties.is_some() => None,
            None => Some(Vec::new()),
        };
        check_fields(object, name, declared, required, problems);
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

impl AsRef<Params> for Operation {
    fn as_ref(&self) -> &Params {
        &self.params
    }
}

fn operation(doc: &Value, params: &[Value], op: &Value) -> Operation {
    let mut declared = Params::default();
    for p in params {
        // Header parameters are not part of the contract checked here.
        let name = p["name"].as_str().unwrap_or_default();
        let param = Param::new(resolve(doc, &p["schema"]), p["required"] == true);
        declared.add(p["in"].as_str(), name, param);
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
        params: declared,
        body,
        responses: op["responses"].clone(),
    }
}
