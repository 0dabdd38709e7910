//! The checked-in schema files under `crds/` match what the code generates, and the CRD
//! is structural (what the Kubernetes API server accepts).

use std::path::PathBuf;

use serde_json::Value;

const REGENERATE: &str = "TUGBOAT_BLESS=1 cargo test -p tugboat --test schema\n\
     (or: cargo run -p tugboat -- schema > crds/tugboat.schema.json\n\
     \x20     cargo run -p tugboat -- schema --format crd > crds/application.crd.yaml)";

fn repo_file(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(relative)
}

/// Compares a checked-in file with freshly generated text, or rewrites it when
/// `TUGBOAT_BLESS` is set.
fn assert_checked_in(relative: &str, generated: &str) {
    let path = repo_file(relative);
    if std::env::var_os("TUGBOAT_BLESS").is_some() {
        if let Err(e) = std::fs::write(&path, generated) {
            panic!("cannot write {}: {e}", path.display());
        }
        return;
    }
    let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        on_disk == generated,
        "{relative} is out of date with the document types in controller/src/document.rs.\n\
         Regenerate it with:\n  {REGENERATE}"
    );
}

#[test]
fn checked_in_json_schema_matches_the_code() {
    let generated = tugboat::schema::json_schema_text().expect("schema renders as JSON");
    assert_checked_in("crds/tugboat.schema.json", &generated);
}

#[test]
fn checked_in_crd_matches_the_code() {
    let generated = tugboat::schema::crd_yaml().expect("CRD renders as YAML");
    assert_checked_in("crds/application.crd.yaml", &generated);
}

/// The CRD as YAML text read back, so the YAML rendering is covered too. (The drift tests
/// above tie this text to the checked-in file.)
fn generated_crd() -> Value {
    let text = tugboat::schema::crd_yaml().expect("CRD renders as YAML");
    serde_saphyr::from_str(&text).expect("the CRD reads back as YAML")
}

fn open_api_schema(crd: &Value) -> &Value {
    &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
}

/// Every key named `key` anywhere in `value`, with the JSON pointer where it was found.
fn find_key(value: &Value, key: &str, at: String, found: &mut Vec<String>) {
    match value {
        Value::Object(o) => {
            for (k, v) in o {
                if k == key {
                    found.push(format!("{at}/{k}"));
                }
                find_key(v, key, format!("{at}/{k}"), found);
            }
        }
        Value::Array(a) => {
            for (i, v) in a.iter().enumerate() {
                find_key(v, key, format!("{at}/{i}"), found);
            }
        }
        _ => {}
    }
}

#[test]
fn crd_has_no_references() {
    let crd = generated_crd();
    let mut refs = Vec::new();
    find_key(&crd, "$ref", String::new(), &mut refs);
    find_key(&crd, "$defs", String::new(), &mut refs);
    find_key(&crd, "definitions", String::new(), &mut refs);
    assert!(refs.is_empty(), "CRDs may not use references: {refs:?}");
}

/// Kubernetes' structural-schema rules that a generator could plausibly break: a type on
/// every node, nothing but value validations inside `oneOf`, and no `properties` beside
/// `additionalProperties`.
fn structural_violations(schema: &Value, at: &str, problems: &mut Vec<String>) {
    let Some(node) = schema.as_object() else {
        problems.push(format!("{at}: not an object"));
        return;
    };
    let int_or_string = node.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true));
    if !node.get("type").is_some_and(Value::is_string) && !int_or_string {
        problems.push(format!("{at}: needs a single `type`"));
    }
    if node.contains_key("properties") && node.contains_key("additionalProperties") {
        problems.push(format!("{at}: both properties and additionalProperties"));
    }
    for junctor in ["oneOf", "anyOf", "allOf"] {
        for (i, branch) in node
            .get(junctor)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            for forbidden in [
                "type",
                "description",
                "default",
                "additionalProperties",
                "nullable",
                "properties",
            ] {
                if branch.get(forbidden).is_some() {
                    problems.push(format!(
                        "{at}/{junctor}/{i}: `{forbidden}` inside a junctor"
                    ));
                }
            }
        }
    }
    if let Some(properties) = node.get("properties").and_then(Value::as_object) {
        for (name, child) in properties {
            structural_violations(child, &format!("{at}/properties/{name}"), problems);
        }
    }
    for key in ["items", "additionalProperties"] {
        if let Some(child) = node.get(key).filter(|c| c.is_object()) {
            structural_violations(child, &format!("{at}/{key}"), problems);
        }
    }
}

#[test]
fn crd_schema_is_structural() {
    let crd = generated_crd();
    assert_eq!(crd["apiVersion"], "apiextensions.k8s.io/v1");
    assert_eq!(crd["spec"]["group"], "tugboat.dev");
    assert_eq!(crd["spec"]["names"]["kind"], "Application");
    assert_eq!(crd["spec"]["versions"][0]["name"], "v1alpha1");
    let mut problems = Vec::new();
    structural_violations(open_api_schema(&crd), "openAPIV3Schema", &mut problems);
    assert!(
        problems.is_empty(),
        "not structural:\n{}",
        problems.join("\n")
    );
}

#[test]
fn crd_expresses_each_strategy_as_an_optional_property_with_one_required() {
    let crd = generated_crd();
    let strategy = &open_api_schema(&crd)["properties"]["spec"]["properties"]["workloads"]["items"]
        ["properties"]["strategy"];
    let keys: Vec<&str> = strategy["properties"]
        .as_object()
        .map(|p| p.keys().map(String::as_str).collect())
        .unwrap_or_default();
    assert_eq!(keys, ["blueGreen", "canary", "rolling"]);
    assert_eq!(strategy["oneOf"].as_array().map(Vec::len), Some(3));
}

#[test]
fn json_schema_names_the_document_kind_and_bounds_weights() {
    let schema = tugboat::schema::json_schema();
    assert_eq!(schema["properties"]["kind"]["enum"][0], "Application");
    assert_eq!(
        schema["properties"]["apiVersion"]["enum"][0],
        "tugboat.dev/v1alpha1"
    );
    let mut maxima = Vec::new();
    find_key(&schema, "setWeight", String::new(), &mut maxima);
    assert!(!maxima.is_empty(), "setWeight appears in the schema");
    assert_eq!(
        schema["definitions"]["CanaryStep"]["oneOf"][0]["properties"]["setWeight"]["maximum"],
        100
    );
}

/// `tugboat schema | head -1` ends quietly: the reader going away is not an error, and
/// never a panic ("failed printing to stdout: Broken pipe").
#[test]
fn the_schema_command_ends_quietly_when_stdout_is_closed() {
    for format in ["json", "crd"] {
        let (reader, writer) = std::io::pipe().expect("a pipe");
        drop(reader);
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_tugboat"))
            .args(["schema", "--format", format])
            .stdout(writer)
            .stderr(std::process::Stdio::piped())
            .output()
            .expect("tugboat runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{format}: {:?}\n{stderr}", out.status);
        assert!(stderr.is_empty(), "{format}: quiet, got:\n{stderr}");
    }
}
