//! Whether a request's method and path exist in GitHub's OpenAPI description
//! (`tests/api/github-rest.subset.json`), by path template alone.
//!
//! TODO(merge with h/fakegh): use the fake GitHub's checker (`tests/it/openapi.rs`)
//! instead, which also judges query parameters and bodies.

use std::collections::HashSet;
use std::sync::LazyLock;

use serde_json::Value;

/// Paths the App's sign-in uses, which the subset leaves out (GitHub's full
/// description has them: `GET /app`, `POST /app/installations/{installation_id}/access_tokens`).
pub const APP_PATHS: [(&str, &str); 2] = [
    ("GET", "/app"),
    ("POST", "/app/installations/{installation_id}/access_tokens"),
];

struct Template {
    segments: Vec<String>,
    methods: HashSet<String>,
}

static TEMPLATES: LazyLock<Vec<Template>> = LazyLock::new(|| {
    let file = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/api/github-rest.subset.json"
    );
    let spec: Value = serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap();
    spec["paths"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(path, ops)| Template {
            segments: path
                .trim_start_matches('/')
                .split('/')
                .map(String::from)
                .collect(),
            methods: ops
                .as_object()
                .unwrap()
                .keys()
                .map(|m| m.to_ascii_uppercase())
                .collect(),
        })
        .collect()
});

fn matches(template: &[String], path: &[&str]) -> bool {
    match (template.split_first(), path.split_first()) {
        (None, None) => true,
        (Some((t, t_rest)), Some((p, p_rest))) => {
            let param = t.starts_with('{') && t.ends_with('}');
            // A ref names `heads/<branch>`, slashes and all (`git/refs/{ref}`).
            if param && t == "{ref}" && t_rest.is_empty() {
                return !p.is_empty();
            }
            (if param { !p.is_empty() } else { t == p }) && matches(t_rest, p_rest)
        }
        _ => false,
    }
}

/// The template `method path` (raw path, no query) routes to, if any.
pub fn route(method: &str, path: &str) -> Option<String> {
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    TEMPLATES
        .iter()
        .find(|t| t.methods.contains(method) && matches(&t.segments, &parts))
        .map(|t| format!("/{}", t.segments.join("/")))
}

/// Whether `method path` is one of the App's two paths outside the subset.
pub fn is_app_path(method: &str, path: &str) -> bool {
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    APP_PATHS.iter().any(|(m, template)| {
        let segments: Vec<String> = template
            .trim_start_matches('/')
            .split('/')
            .map(String::from)
            .collect();
        *m == method && matches(&segments, &parts)
    })
}
