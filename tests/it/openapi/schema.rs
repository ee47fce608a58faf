//! Schemas of the OpenAPI description: following `$ref`s, merging `allOf` parts and
//! `oneOf`/`anyOf` alternatives, and validating the fake's answers against the response
//! schemas ([`OpenApi::check_response`]), recursively.

use serde_json::{Map, Value};

use super::OpenApi;

impl OpenApi {
    /// Validates a JSON answer of `method template` with `status` against the response
    /// schema the description gives for that status: required properties, property types,
    /// enum values and date-times, recursively; properties the schema does not list are
    /// reported too (GitHub's schemas list everything they send). Answers whose status has
    /// no JSON schema in the description are reported unless `body` is `Null`.
    pub fn check_response(
        &self,
        method: &str,
        template: &str,
        status: u16,
        body: &Value,
    ) -> Vec<String> {
        let Some(op) = self.router.operation(method, template) else {
            return vec![format!("{method} {template} is not in the description")];
        };
        let code = status.to_string();
        let response = op
            .responses
            .get(&code)
            .or_else(|| op.responses.get("default"))
            .map(|r| resolve(&self.doc, r));
        let Some(response) = response else {
            return vec![format!("{method} {template} declares no {status} response")];
        };
        let schema = &response["content"]["application/json"]["schema"];
        if schema.is_null() {
            return if body.is_null() {
                Vec::new()
            } else {
                vec![format!(
                    "{method} {template} declares no JSON body for {status}, but one was sent"
                )]
            };
        }
        let mut problems = Vec::new();
        self.validate(body, schema, "$", &mut problems);
        problems
    }

    /// A schema with `allOf` as one schema: its own keys merged with every part's.
    fn flatten_all_of(&self, schema: &Value) -> Map<String, Value> {
        let mut merged = schema.as_object().cloned().unwrap_or_default();
        merged.remove("allOf");
        for part in schema["allOf"].as_array().into_iter().flatten() {
            let part = resolve(&self.doc, part);
            let part = if part.get("allOf").is_some() {
                self.flatten_all_of(part)
            } else {
                part.as_object().cloned().unwrap_or_default()
            };
            merged = merge(&merged, &part);
        }
        merged
    }

    /// Full recursive validation, for answers: kinds, enums, date-times, required and
    /// undeclared properties, array items, `oneOf`/`anyOf`/`allOf`.
    fn validate(&self, value: &Value, schema: &Value, at: &str, problems: &mut Vec<String>) {
        let schema = resolve(&self.doc, schema);
        if value.is_null() {
            if !nullable(schema) && !types(schema).is_empty() {
                problems.push(format!(
                    "{at} is null, which {} is not",
                    schema_name(schema)
                ));
            }
            return;
        }
        if schema.get("allOf").is_some() {
            // The parts together say which properties exist, so they are judged as one.
            let merged = Value::Object(self.flatten_all_of(schema));
            self.validate(value, &merged, at, problems);
            return;
        }
        if let Some(choices) = schema["oneOf"]
            .as_array()
            .or_else(|| schema["anyOf"].as_array())
        {
            let mut closest: Option<Vec<String>> = None;
            for choice in choices {
                let mut found = Vec::new();
                self.validate(value, choice, at, &mut found);
                if found.is_empty() {
                    closest = None;
                    break;
                }
                if closest.as_ref().is_none_or(|c| found.len() < c.len()) {
                    closest = Some(found);
                }
            }
            if let Some(found) = closest {
                problems.push(format!("{at} fits none of the alternatives; closest:"));
                problems.extend(found);
            }
        }
        let allowed = types(schema);
        if !allowed.is_empty() && !allowed.iter().any(|t| fits(value, t)) {
            problems.push(format!(
                "{at} is {}, {} wants {}",
                kind_of(value),
                schema_name(schema),
                allowed.join(" or ")
            ));
            return;
        }
        let mut found = Vec::new();
        check_enum(value, schema, &mut found);
        problems.extend(found.into_iter().map(|p| format!("{at}: {p}")));
        if schema["format"] == "date-time"
            && let Some(text) = value.as_str()
            && chrono::DateTime::parse_from_rfc3339(text).is_err()
        {
            problems.push(format!("{at}: {text:?} is not a date-time"));
        }
        match value {
            Value::Object(object) => {
                let properties = schema["properties"].as_object();
                for key in schema["required"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                {
                    if !object.contains_key(key) {
                        problems.push(format!(
                            "{at}.{key} is required by {} but missing",
                            schema_name(schema)
                        ));
                    }
                }
                for (key, field) in object {
                    let path = format!("{at}.{key}");
                    match properties.and_then(|p| p.get(key)) {
                        Some(declared) => self.validate(field, declared, &path, problems),
                        None => match &schema["additionalProperties"] {
                            Value::Object(_) => self.validate(
                                field,
                                &schema["additionalProperties"],
                                &path,
                                problems,
                            ),
                            Value::Bool(true) => {}
                            _ if properties.is_some() => problems.push(format!(
                                "{path} is not a property of {}",
                                schema_name(schema)
                            )),
                            _ => {}
                        },
                    }
                }
            }
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    self.validate(item, &schema["items"], &format!("{at}[{i}]"), problems);
                }
            }
            _ => {}
        }
    }
}

/// Follows `$ref`s (`#/components/...`) until a concrete object.
pub(super) fn resolve<'a>(doc: &'a Value, mut value: &'a Value) -> &'a Value {
    for _ in 0..16 {
        let Some(reference) = value["$ref"].as_str() else {
            return value;
        };
        let pointer = reference.trim_start_matches('#');
        value = doc.pointer(pointer).unwrap_or(&Value::Null);
    }
    value
}

/// Merges an alternative into the base schema: properties unioned (the alternative's
/// narrower definitions win), required lists concatenated, other keys overridden.
pub(super) fn merge(base: &Map<String, Value>, alt: &Map<String, Value>) -> Map<String, Value> {
    let mut out = base.clone();
    for (key, value) in alt {
        match (key.as_str(), out.get_mut(key)) {
            ("properties", Some(Value::Object(existing))) => {
                for (k, v) in value.as_object().into_iter().flatten() {
                    existing.insert(k.clone(), v.clone());
                }
            }
            ("required", Some(Value::Array(existing))) => {
                existing.extend(value.as_array().into_iter().flatten().cloned());
            }
            // An alternative saying only "and more properties" does not open a base
            // that lists them.
            ("additionalProperties", _) if base.contains_key("properties") => {}
            _ => {
                out.insert(key.clone(), value.clone());
            }
        }
    }
    out
}

/// The `type`s a schema allows (OpenAPI 3.0 has one, 3.1 a list); empty when unstated.
pub(super) fn types(schema: &Value) -> Vec<String> {
    match &schema["type"] {
        Value::String(t) => vec![t.clone()],
        Value::Array(ts) => ts
            .iter()
            .filter_map(|t| t.as_str().map(str::to_owned))
            .collect(),
        _ if schema.get("properties").is_some() => vec!["object".to_owned()],
        _ => Vec::new(),
    }
}

pub(super) fn nullable(schema: &Value) -> bool {
    schema["nullable"] == true || types(schema).iter().any(|t| t == "null")
}

pub(super) fn fits(value: &Value, kind: &str) -> bool {
    match kind {
        "string" => value.is_string(),
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        "boolean" => value.is_boolean(),
        "array" => value.is_array(),
        "object" => value.is_object(),
        "null" => value.is_null(),
        _ => true,
    }
}

pub(super) fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_f64() => "a number",
        Value::Number(_) => "an integer",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

pub(super) fn check_enum(value: &Value, schema: &Value, problems: &mut Vec<String>) {
    if let Some(allowed) = schema["enum"].as_array()
        && !allowed.contains(value)
        && !(value.is_null() && nullable(schema))
    {
        problems.push(format!(
            "{value} is not one of {}",
            Value::Array(allowed.clone())
        ));
    }
}

/// A schema's title (or "the inline schema"), for messages.
pub(super) fn schema_name(schema: &Value) -> String {
    schema["title"]
        .as_str()
        .or_else(|| schema["$ref"].as_str().and_then(|r| r.rsplit('/').next()))
        .map_or_else(|| "the inline schema".to_owned(), str::to_owned)
}
