//! Checking real HTTP answers against an OpenAPI 3.1 document, for the services'
//! contract tests (included with `#[path]`, not a crate: nothing of it ships).
//!
//! [`check_answer`] finds the operation and the documented response for the status,
//! checks the content type, and validates the body against the response's schema
//! with [`validate`], a JSON Schema (2020-12) validator for the keywords utoipa
//! emits. A keyword it does not know is an error, never silently accepted, so a
//! schema it cannot judge cannot pass.
#![allow(dead_code)]

use serde_json::Value;

/// Keywords that only annotate.
const ANNOTATIONS: &[&str] = &[
    "description",
    "title",
    "example",
    "examples",
    "default",
    "deprecated",
    "readOnly",
    "writeOnly",
    "$schema",
    "contentMediaType",
];

/// Resolve a local `$ref` (`#/components/schemas/Name`).
fn resolve<'a>(doc: &'a Value, reference: &str) -> Result<&'a Value, String> {
    let pointer = reference
        .strip_prefix('#')
        .ok_or_else(|| format!("non-local $ref {reference}"))?;
    doc.pointer(pointer)
        .ok_or_else(|| format!("$ref {reference} does not resolve"))
}

fn type_matches(name: &str, value: &Value) -> Result<bool, String> {
    Ok(match name {
        "null" => value.is_null(),
        "boolean" => value.is_boolean(),
        "string" => value.is_string(),
        "array" => value.is_array(),
        "object" => value.is_object(),
        "number" => value.is_number(),
        "integer" => {
            value.is_i64()
                || value.is_u64()
                || value
                    .as_f64()
                    .is_some_and(|f| f.fract() == 0.0 && f.is_finite())
        }
        other => return Err(format!("unknown type {other:?}")),
    })
}

/// Validate `value` against `schema` (resolving `$ref`s in `doc`); `at` names the
/// place in the value for the message.
pub fn validate(doc: &Value, schema: &Value, value: &Value, at: &str) -> Result<(), String> {
    let schema = match schema {
        Value::Bool(true) => return Ok(()),
        Value::Bool(false) => return Err(format!("{at}: no value is allowed here")),
        Value::Object(map) => map,
        other => return Err(format!("{at}: schema is not an object: {other}")),
    };
    for (keyword, arg) in schema {
        match keyword.as_str() {
            "$ref" => {
                let target = resolve(doc, arg.as_str().ok_or("$ref is not a string")?)?;
                validate(doc, target, value, at)?;
            }
            "type" => {
                let names: Vec<&str> = match arg {
                    Value::String(s) => vec![s.as_str()],
                    Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
                    _ => return Err(format!("{at}: bad type keyword {arg}")),
                };
                let mut any = false;
                for name in &names {
                    any |= type_matches(name, value)?;
                }
                if !any {
                    return Err(format!("{at}: {value} is not of type {names:?}"));
                }
            }
            "format" => {
                let ok = match arg.as_str() {
                    Some("int32" | "int64") => value.as_f64().is_none_or(|f| f.fract() == 0.0),
                    Some("uint32" | "uint64") => {
                        value.as_f64().is_none_or(|f| f.fract() == 0.0 && f >= 0.0)
                    }
                    Some("float" | "double") => true,
                    Some(other) => return Err(format!("{at}: unsupported format {other}")),
                    None => false,
                };
                if !ok {
                    return Err(format!("{at}: {value} does not have format {arg}"));
                }
            }
            "properties" => {
                if let (Some(props), Some(object)) = (arg.as_object(), value.as_object()) {
                    for (name, sub) in props {
                        if let Some(v) = object.get(name) {
                            validate(doc, sub, v, &format!("{at}.{name}"))?;
                        }
                    }
                }
            }
            "required" => {
                if let Some(object) = value.as_object() {
                    for name in arg.as_array().ok_or("required is not a list")? {
                        let name = name.as_str().ok_or("required entry is not a string")?;
                        if !object.contains_key(name) {
                            return Err(format!("{at}: required property {name:?} is missing"));
                        }
                    }
                }
            }
            "additionalProperties" => {
                if let Some(object) = value.as_object() {
                    let known = schema.get("properties").and_then(Value::as_object);
                    for (name, v) in object {
                        if known.is_some_and(|k| k.contains_key(name)) {
                            continue;
                        }
                        validate(doc, arg, v, &format!("{at}.{name}"))?;
                    }
                }
            }
            "items" => {
                if let Some(items) = value.as_array() {
                    for (i, v) in items.iter().enumerate() {
                        validate(doc, arg, v, &format!("{at}[{i}]"))?;
                    }
                }
            }
            "minItems" | "maxItems" => {
                if let Some(items) = value.as_array() {
                    let bound = arg.as_u64().ok_or("bad minItems/maxItems")? as usize;
                    let ok = if keyword == "minItems" {
                        items.len() >= bound
                    } else {
                        items.len() <= bound
                    };
                    if !ok {
                        return Err(format!(
                            "{at}: {} items violates {keyword} {bound}",
                            items.len()
                        ));
                    }
                }
            }
            "minimum" | "maximum" => {
                if let Some(v) = value.as_f64() {
                    let bound = arg.as_f64().ok_or("bad minimum/maximum")?;
                    let ok = if keyword == "minimum" {
                        v >= bound
                    } else {
                        v <= bound
                    };
                    if !ok {
                        return Err(format!("{at}: {v} violates {keyword} {bound}"));
                    }
                }
            }
            "enum" => {
                if !arg.as_array().is_some_and(|a| a.contains(value)) {
                    return Err(format!("{at}: {value} is not one of {arg}"));
                }
            }
            "const" => {
                if arg != value {
                    return Err(format!("{at}: {value} is not {arg}"));
                }
            }
            "allOf" => {
                for sub in arg.as_array().ok_or("allOf is not a list")? {
                    validate(doc, sub, value, at)?;
                }
            }
            "anyOf" | "oneOf" => {
                let subs = arg.as_array().ok_or("anyOf/oneOf is not a list")?;
                let passing = subs
                    .iter()
                    .filter(|sub| validate(doc, sub, value, at).is_ok())
                    .count();
                let ok = if keyword == "oneOf" {
                    passing == 1
                } else {
                    passing >= 1
                };
                if !ok {
                    return Err(format!(
                        "{at}: {value} matches {passing} of {keyword} {arg}"
                    ));
                }
            }
            k if ANNOTATIONS.contains(&k) => {}
            other => return Err(format!("{at}: unsupported schema keyword {other:?}")),
        }
    }
    Ok(())
}

/// Check one answer of `method path` against `doc`: the status is documented for
/// the operation, the content type is the documented one, and the body (JSON, or a
/// string for text) validates against its schema. Returns the documented response.
pub fn check_answer(
    doc: &Value,
    method: &str,
    path: &str,
    status: u16,
    content_type: &str,
    body: &[u8],
) -> Result<(), String> {
    let operation = doc
        .pointer(&format!(
            "/paths/{}/{}",
            path.replace('~', "~0").replace('/', "~1"),
            method.to_ascii_lowercase()
        ))
        .ok_or_else(|| format!("{method} {path} is not in the document"))?;
    let response = operation
        .pointer(&format!("/responses/{status}"))
        .ok_or_else(|| format!("{method} {path}: status {status} is not documented"))?;
    let content = response
        .get("content")
        .and_then(Value::as_object)
        .ok_or_else(|| format!("{method} {path} {status}: no content documented"))?;
    let (_, media) = content
        .iter()
        .find(|(ct, _)| ct.as_str() == content_type)
        .ok_or_else(|| {
            format!(
                "{method} {path} {status}: content type {content_type:?} is not one of {:?}",
                content.keys().collect::<Vec<_>>()
            )
        })?;
    let schema = media
        .get("schema")
        .ok_or_else(|| format!("{method} {path} {status}: no schema"))?;
    let value: Value = if content_type.starts_with("application/json") {
        serde_json::from_slice(body)
            .map_err(|e| format!("{method} {path} {status}: body is not JSON: {e}"))?
    } else {
        Value::String(String::from_utf8_lossy(body).into_owned())
    };
    validate(doc, schema, &value, "body").map_err(|e| format!("{method} {path} {status}: {e}"))
}

/// Every `(method, path, status)` the document lists.
pub fn documented(doc: &Value) -> std::collections::BTreeSet<(String, String, u16)> {
    let mut all = std::collections::BTreeSet::new();
    for (path, item) in doc["paths"].as_object().into_iter().flatten() {
        for (method, operation) in item.as_object().into_iter().flatten() {
            for status in operation["responses"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(s, _)| s)
            {
                if let Ok(status) = status.parse() {
                    all.insert((method.to_ascii_uppercase(), path.clone(), status));
                }
            }
        }
    }
    all
}
