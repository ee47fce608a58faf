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

use crate::api_check::{
    DeclaredBody, Param, Params, Router, Span, Template, check_fields, json_body,
};

pub use crate::api_check::{Checked, Route};

// The fakes and the clients' tests decode requests with these; not every one of them is
// used through each module.
#[allow(unused_imports)]
pub use crate::api_check::{parse_query, percent_decode};

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
    params: Params,
    body: Option<Body>,
}

/// The API description reduced to what request checking needs.
#[derive(Debug)]
pub struct Swagger {
    base_path: String,
    router: Router<Operation>,
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

    fn from_doc(doc: &Value, spanning_params: &[&str]) -> Self {
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
            // Only the last segment spans, and only for a catch-all route's parameter.
            templates.push(Template::new(text, operations, |name, last| {
                if last && spanning_params.contains(&name) {
                    Span::Rest
                } else {
                    Span::One
                }
            }));
        }
        Self {
            base_path,
            router: Router::new(templates),
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
        self.router.check(
            method,
            rest,
            query,
            || format!("no swagger path matches {path}"),
            |op, template, problems| check_body(method, template, op.body.as_ref(), body, problems),
        )
    }
}

impl AsRef<Params> for Operation {
    fn as_ref(&self) -> &Params {
        &self.params
    }
}

fn operation<'a>(params: impl Iterator<Item = &'a Value>, definitions: &Value) -> Operation {
    let mut op = Operation {
        params: Params::default(),
        body: None,
    };
    for p in params {
        let location = p["in"].as_str();
        if location == Some("body") {
            op.body = Some(body_schema(&p["schema"], definitions));
        }
        // `required` is not read: these checks never demanded Swagger's required query
        // parameters.
        let name = p["name"].as_str().unwrap_or_default();
        op.params.add(location, name, Param::new(p, false));
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

/// Checks a sent body: JSON, and, when the definition is an object, only its properties
/// and all its required ones at the top level.
fn check_body(
    method: &str,
    template: &str,
    schema: Option<&Body>,
    body: &[u8],
    problems: &mut Vec<String>,
) {
    // Swagger's `required` on a body parameter was never checked either.
    let declared = schema.map(|_| DeclaredBody {
        required: false,
        json: true,
    });
    let Some(value) = json_body(method, template, declared, body, problems) else {
        return;
    };
    let (Some(schema), Some(object)) = (schema, value.as_object()) else {
        return;
    };
    let Some(properties) = &schema.properties else {
        return;
    };
    check_fields(
        object,
        &schema.name,
        |key, _| properties.contains(key).then(Vec::new),
        schema.required.iter().map(String::as_str),
        problems,
    );
}
