//! Loading and validation against files: the bad-input corpus under `tests/bad/` (each
//! file rejected with a message naming where and what), the good documents (the minimal
//! one and every manifest), round trips, the size cap and `tugboat validate`'s report.

use std::path::{Path, PathBuf};

use tugboat::validate::{self, LoadFileError, MAX_DOCUMENT_BYTES, ValidationErrors};

fn test_dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join(name)
}

fn manifests() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../manifests");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("manifests/ exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    files
}

/// Expectations for corpus files that cannot carry an `# expect:` line.
const EXPECTATIONS_WITHOUT_HEADER: &[(&str, &str)] = &[
    (
        "empty.yaml",
        "empty document: expected a tugboat Application",
    ),
    (
        "not-utf8.yaml",
        "not UTF-8 text (invalid byte at offset 72)",
    ),
    (
        "utf16-bom.yaml",
        "not UTF-8 text (invalid byte at offset 0)",
    ),
];

/// The `# never: <substring>` lines at the top of a corpus file: text the message must
/// not contain (a planted secret value, for one).
fn prohibitions(bytes: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(bytes)
        .lines()
        .take_while(|line| line.starts_with('#'))
        .filter_map(|line| line.strip_prefix("# never: "))
        .map(str::to_string)
        .collect()
}

/// The `# expect: <substring>` lines at the top of a corpus file.
fn expectations(file: &Path, bytes: &[u8]) -> Vec<String> {
    let name = file
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    if let Some((_, expected)) = EXPECTATIONS_WITHOUT_HEADER.iter().find(|(n, _)| *n == name) {
        return vec![expected.to_string()];
    }
    String::from_utf8_lossy(bytes)
        .lines()
        .take_while(|line| line.starts_with('#'))
        .filter_map(|line| line.strip_prefix("# expect: "))
        .map(str::to_string)
        .collect()
}

#[test]
fn every_bad_document_is_rejected_with_a_message_naming_the_problem() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(test_dir("bad"))
        .expect("tests/bad exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    assert!(files.len() >= 35, "the corpus has {} files", files.len());

    let mut mismatches = Vec::new();
    for file in &files {
        let name = file
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        let bytes = std::fs::read(file).expect("corpus file is readable");
        let expected = expectations(file, &bytes);
        if expected.is_empty() {
            mismatches.push(format!("{name}: no `# expect:` line and no table entry"));
            continue;
        }
        let message = match validate::load_file(file) {
            Ok(_) => {
                mismatches.push(format!("{name}: accepted"));
                continue;
            }
            Err(LoadFileError::Read { source, .. }) => {
                mismatches.push(format!("{name}: could not be read: {source}"));
                continue;
            }
            Err(LoadFileError::Invalid(errors)) => errors.to_string(),
        };
        for wanted in &expected {
            if !message.contains(wanted.as_str()) {
                mismatches.push(format!(
                    "{name}: expected {wanted:?}\n      got: {}",
                    message.replace('\n', "\n           ")
                ));
            }
        }
        for banned in prohibitions(&bytes) {
            if message.contains(banned.as_str()) {
                mismatches.push(format!(
                    "{name}: must not contain {banned:?}\n      got: {message}"
                ));
            }
        }
        if !message.starts_with(&file.display().to_string()) {
            mismatches.push(format!(
                "{name}: message does not start with the file: {message}"
            ));
        }
    }
    assert!(mismatches.is_empty(), "\n{}", mismatches.join("\n"));
}

#[test]
fn semantic_errors_are_all_reported_with_line_and_column() {
    let text = std::fs::read_to_string(test_dir("bad").join("many-errors-at-once.yaml"))
        .expect("corpus file");
    let errors = match validate::load(&text, "many.yaml") {
        Ok(_) => panic!("the document has five problems"),
        Err(e) => e,
    };
    assert_eq!(errors.errors.len(), 5, "{errors}");
    let weight = errors
        .errors
        .iter()
        .find(|e| e.path == "spec.workloads[1].strategy.canary.steps[2].setWeight")
        .expect("the weight error is reported");
    let line_of_value = text
        .lines()
        .position(|l| l.contains("setWeight: 120"))
        .map(|i| i as u64 + 1);
    assert_eq!(weight.line, line_of_value);
    assert_eq!(weight.column, Some(26), "points at the value 120");
    let first_line = errors
        .to_string()
        .lines()
        .next()
        .unwrap_or_default()
        .to_string();
    assert!(
        first_line.starts_with("many.yaml:"),
        "lines read file:line:column: path: message, got {first_line}"
    );
}

#[test]
fn a_missing_field_is_located_at_its_parent() {
    let text = std::fs::read_to_string(test_dir("bad").join("canary-without-route.yaml"))
        .expect("corpus file");
    let errors = validate::load(&text, "x.yaml").expect_err("no route");
    let error = &errors.errors[0];
    assert_eq!(error.path, "spec.workloads[1].route");
    let workload_line = text
        .lines()
        .position(|l| l.contains("- name: ml-model-service"))
        .map(|i| i as u64 + 1)
        .unwrap_or_default();
    assert!(
        error.line.is_some_and(|l| l >= workload_line),
        "reported at the workload ({workload_line}), got {:?}",
        error.line
    );
}

fn ten_megabytes() -> String {
    let mut text = String::from("apiVersion: tugboat.dev/v1alpha1\nkind: Application\n");
    let line = format!("# {}\n", "x".repeat(1021));
    while text.len() < 10 * 1024 * 1024 {
        text.push_str(&line);
    }
    text
}

fn assert_too_large(errors: &ValidationErrors) {
    let message = errors.to_string();
    assert!(
        message.contains(&format!(
            "document too large: the limit is {MAX_DOCUMENT_BYTES} bytes"
        )),
        "{message}"
    );
}

#[test]
fn a_ten_megabyte_document_is_refused_before_parsing() {
    let text = ten_megabytes();
    let errors = validate::load(&text, "big.yaml").expect_err("over the cap");
    assert_too_large(&errors);
    assert!(
        errors
            .to_string()
            .contains(&format!("this is {} bytes", text.len()))
    );
}

#[test]
fn a_ten_megabyte_stream_is_refused_after_reading_only_the_cap() {
    let text = ten_megabytes();
    let mut reader = std::io::Cursor::new(text.as_bytes());
    match validate::load_reader(&mut reader, "-") {
        Err(LoadFileError::Invalid(errors)) => assert_too_large(&errors),
        other => panic!("expected a size error, got {other:?}"),
    }
    assert_eq!(reader.position(), MAX_DOCUMENT_BYTES as u64 + 1);
}

#[test]
fn a_ten_megabyte_file_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("big.yaml");
    std::fs::write(&path, ten_megabytes()).expect("write big file");
    match validate::load_file(&path) {
        Err(LoadFileError::Invalid(errors)) => assert_too_large(&errors),
        other => panic!("expected a size error, got {other:?}"),
    }
}

#[test]
fn the_minimal_document_loads() {
    let app = validate::load_file(test_dir("good").join("minimal.yaml")).expect("valid");
    assert_eq!(app.metadata.name, "prediction-app");
    assert_eq!(app.spec.workloads.len(), 1);
}

#[test]
fn every_manifest_validates() {
    let files = manifests();
    let names: Vec<String> = files
        .iter()
        .filter_map(|p| p.file_name()?.to_str().map(str::to_string))
        .collect();
    for required in ["local.yaml", "dev.yaml", "stage.yaml", "prod.yaml"] {
        assert!(
            names.iter().any(|n| n == required),
            "manifests/{required} exists"
        );
    }
    for file in &files {
        if let Err(e) = validate::load_file(file) {
            panic!("{e}");
        }
        let text = std::fs::read_to_string(file).expect("readable");
        assert!(
            text.starts_with("# yaml-language-server: $schema=../crds/tugboat.schema.json\n"),
            "{} starts with the editor schema line",
            file.display()
        );
    }
}

#[test]
fn manifests_use_the_strategy_each_environment_calls_for() {
    use tugboat::document::Strategy;
    let load = |name: &str| {
        validate::load_file(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../manifests")
                .join(name),
        )
        .expect("valid manifest")
    };
    let dev = load("dev.yaml");
    assert!(
        dev.spec
            .workloads
            .iter()
            .all(|w| matches!(w.strategy, Strategy::Rolling(_)))
    );
    let stage = load("stage.yaml");
    assert!(
        stage
            .spec
            .workloads
            .iter()
            .all(|w| matches!(w.strategy, Strategy::Canary(_)))
    );
    assert!(!stage.spec.analysis_templates.is_empty());
    let prod = load("prod.yaml");
    for w in &prod.spec.workloads {
        match &w.strategy {
            Strategy::BlueGreen(bg) => {
                assert!(!bg.auto_promotion_enabled, "{} waits for promotion", w.name);
                assert!(
                    bg.pre_promotion_analysis.is_some(),
                    "{} runs analysis",
                    w.name
                );
            }
            other => panic!("prod {} uses {other:?}", w.name),
        }
    }
}

#[test]
fn documents_survive_a_round_trip_through_yaml() {
    let mut files = manifests();
    files.push(test_dir("good").join("minimal.yaml"));
    for file in files {
        let app = validate::load_file(&file).expect("valid");
        let text = serde_saphyr::to_string(&app).expect("serializes");
        let again = match validate::load(&text, "round-trip") {
            Ok(app) => app,
            Err(e) => panic!("{} does not load back:\n{e}\n---\n{text}", file.display()),
        };
        assert_eq!(again, app, "{} changed in a round trip", file.display());
    }
}

#[test]
fn validate_reports_problems_of_a_document_built_in_code() {
    let mut app = validate::load_file(test_dir("good").join("minimal.yaml")).expect("valid");
    assert!(validate::validate(&app).is_empty());
    app.spec.workloads[0].memory = 3000;
    app.spec.workloads.push(app.spec.workloads[0].clone());
    let errors = validate::validate(&app);
    let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "spec.workloads[1].name",
            "spec.workloads[0].memory",
            "spec.workloads[1].memory"
        ]
    );
    assert!(
        errors.iter().all(|e| e.line.is_none()),
        "no source, no lines"
    );
}

#[test]
fn the_validate_command_reports_every_file() {
    let good = test_dir("good").join("minimal.yaml");
    let bad = test_dir("bad").join("weight-over-100.yaml");
    let missing = test_dir("bad").join("does-not-exist.yaml");
    let report = tugboat::cli::validate::check(&[good.clone(), bad.clone(), missing.clone()]);
    assert_eq!(report.invalid, 2);
    assert!(report.text.contains(&format!("{}: ok\n", good.display())));
    let bad_text = std::fs::read_to_string(&bad).expect("corpus file");
    let line = bad_text
        .lines()
        .position(|l| l.contains("setWeight: 120"))
        .map_or(0, |i| i + 1);
    let expected = format!(
        "{}:{line}:26: spec.workloads[1].strategy.canary.steps[2].setWeight: must be between 0 and 100 (got 120)",
        bad.display()
    );
    assert!(report.text.contains(&expected), "{}", report.text);
    assert!(
        report
            .text
            .contains(&format!("cannot read {}", missing.display()))
    );
}

#[test]
fn anchors_and_merge_keys_work_and_explicit_keys_win_over_merged_ones() {
    let text = "\
apiVersion: tugboat.dev/v1alpha1
kind: Application
metadata: { name: prediction-app, environment: dev }
spec:
  platform: { local: { listen: 127.0.0.1:8080 } }
  workloads:
    - name: backend
      image: backend
      cpu: 256
      memory: 512
      desiredCount: 1
      containerPort: 8001
      environment: &common
        LOG_LEVEL: INFO
        REGION: ap-south-1
      strategy: { rolling: {} }
    - name: inference
      image: inference
      cpu: 256
      memory: 512
      desiredCount: 1
      containerPort: 8002
      environment:
        <<: *common
        LOG_LEVEL: DEBUG
      strategy: { rolling: {} }
";
    let app = match validate::load(text, "merge.yaml") {
        Ok(app) => app,
        Err(e) => panic!("{e}"),
    };
    let env = &app.spec.workloads[1].environment;
    assert_eq!(env.get("REGION").map(String::as_str), Some("ap-south-1"));
    assert_eq!(env.get("LOG_LEVEL").map(String::as_str), Some("DEBUG"));
}

#[test]
fn explicit_document_markers_are_one_document() {
    let minimal = std::fs::read_to_string(test_dir("good").join("minimal.yaml")).expect("file");
    for text in [format!("---\n{minimal}"), format!("---\n{minimal}...\n")] {
        if let Err(e) = validate::load(&text, "markers.yaml") {
            panic!("{e}\n---\n{text}");
        }
    }
}

#[test]
fn plain_scalars_in_string_fields_keep_their_text() {
    let minimal = std::fs::read_to_string(test_dir("good").join("minimal.yaml")).expect("file");
    let text = minimal.replace(
        "      strategy:",
        "      environment:\n        WORKERS: 4\n        DEBUG: true\n        RATIO: 0.50\n        MODEL_TAG: 1.10\n      strategy:",
    );
    let app = match validate::load(&text, "scalars.yaml") {
        Ok(app) => app,
        Err(e) => panic!("{e}"),
    };
    let env = &app.spec.workloads[0].environment;
    let get = |k: &str| env.get(k).map(String::as_str);
    assert_eq!(get("WORKERS"), Some("4"));
    assert_eq!(get("DEBUG"), Some("true"));
    assert_eq!(get("RATIO"), Some("0.50"));
    assert_eq!(get("MODEL_TAG"), Some("1.10"), "not the float 1.1");
}

#[test]
fn a_document_written_as_json_loads_the_same() {
    let app = validate::load_file(test_dir("good").join("minimal.yaml")).expect("valid");
    let json = serde_json::to_string(&app).expect("serializes as JSON");
    match validate::load(&json, "minimal.json") {
        Ok(again) => assert_eq!(again, app),
        Err(e) => panic!("{e}\n---\n{json}"),
    }
}

/// The 1-based line and column where `needle` first appears in `text`.
fn position_of(text: &str, needle: &str) -> (Option<u64>, Option<u64>) {
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.starts_with('#'))
        .find_map(|(i, line)| {
            line.find(needle)
                .map(|c| (Some(i as u64 + 1), Some(c as u64 + 1)))
        })
        .unwrap_or((None, None))
}

/// Four typos at four depths (top level, a workload, a canary step, a provider): all four
/// are reported, each at its key, and the semantic error elsewhere in the document too.
#[test]
fn every_unknown_field_is_reported_with_its_path_and_location() {
    let text = std::fs::read_to_string(test_dir("bad").join("four-typos-at-four-depths.yaml"))
        .expect("corpus file");
    let errors = validate::load(&text, "typos.yaml").expect_err("four typos");
    let unknown: Vec<_> = errors
        .errors
        .iter()
        .filter(|e| e.message.starts_with("unknown field"))
        .collect();
    let expected = [
        ("labels", "labels: {team"),
        ("spec.workloads[0].desiredCuont", "desiredCuont:"),
        (
            "spec.workloads[1].strategy.canary.steps[1].pause.untill",
            "untill:",
        ),
        ("spec.analysisTemplates[0].provider.web.verb", "verb:"),
    ];
    assert_eq!(unknown.len(), expected.len(), "{errors}");
    for (error, (path, key)) in unknown.iter().zip(expected) {
        assert_eq!(error.path, path, "{errors}");
        assert_eq!(
            (error.line, error.column),
            position_of(&text, key),
            "{path} is reported at its key"
        );
    }
    assert!(
        unknown[1].message.ends_with("did you mean `desiredCount`?"),
        "{}",
        unknown[1].message
    );
    assert!(
        errors
            .errors
            .iter()
            .any(|e| e.path == "spec.analysisTemplates[0].count"),
        "the semantic rules still ran: {errors}"
    );
}

/// A misspelt required field makes the document unreadable; the other typos, after it in
/// the document, are still all reported.
#[test]
fn unknown_fields_after_a_misspelt_required_field_are_still_reported() {
    let text = std::fs::read_to_string(test_dir("bad").join("four-typos-at-four-depths.yaml"))
        .expect("corpus file")
        .replacen("      desiredCount: 2\n", "", 1);
    let errors = validate::load(&text, "typos.yaml").expect_err("typos");
    let paths: Vec<&str> = errors.errors.iter().map(|e| e.path.as_str()).collect();
    for path in [
        "labels",
        "spec.workloads[0].desiredCuont",
        "spec.workloads[1].strategy.canary.steps[1].pause.untill",
        "spec.analysisTemplates[0].provider.web.verb",
    ] {
        assert!(paths.contains(&path), "{path} missing from {errors}");
    }
    assert!(
        errors.to_string().contains("missing field `desiredCount`"),
        "{errors}"
    );
}

/// The keys the schema walk knows and the keys the types deserialize are the same: every
/// good document (no unknown keys) loads, and adding one unknown key anywhere a struct
/// sits is reported at exactly that path.
#[test]
fn an_unknown_key_is_reported_in_every_struct_of_a_manifest() {
    let text = std::fs::read_to_string(repo_manifest("stage.yaml")).expect("manifest");
    let mut checked = 0;
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        // A block mapping key that opens a nested block: a struct (or a map) starts below.
        let Some(key) = trimmed.strip_suffix(':') else {
            continue;
        };
        let mut lines: Vec<&str> = text.lines().collect();
        let opens_list = lines
            .get(i + 1)
            .is_some_and(|next| next.trim_start().starts_with("- "));
        // Open maps (environment, labels, options, secrets) take any key.
        let open_map = ["environment", "labels", "options", "secrets"].contains(&key);
        if key.starts_with('#') || key.contains(' ') || opens_list || open_map {
            continue;
        }
        let inserted = format!("{}zzTypo: 1", " ".repeat(indent + 2));
        lines.insert(i + 1, &inserted);
        let broken = lines.join("\n");
        let Err(errors) = validate::load(&broken, "x.yaml") else {
            panic!("`zzTypo` under `{key}` (line {}) was accepted", i + 1);
        };
        assert!(
            errors
                .errors
                .iter()
                .any(|e| e.message.starts_with("unknown") && e.line == Some(i as u64 + 2)),
            "under `{key}` (line {}): {errors}",
            i + 1
        );
        checked += 1;
    }
    assert!(checked >= 8, "only {checked} structs checked");
}

fn repo_manifest(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../manifests")
        .join(name)
}

/// A value that looks like a live secret, pasted into `secrets` where its ARN belongs.
const PLANTED: &str = "sk_live_PLANTED_9f8e7d6c5b4a";

/// Runs the `tugboat` binary and returns (exit code, stdout, stderr).
fn run_tugboat(args: &[&std::ffi::OsStr]) -> (Option<i32>, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tugboat"))
        .args(args)
        .output()
        .expect("tugboat runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Secret values never appear in what `tugboat validate` and `tugboat diff` print, in any
/// of the shapes a pasted secret can take (a plain string, inside an ARN of the wrong
/// service, inside a list, as a YAML error), and neither does a prefix of them.
#[test]
fn secret_values_never_appear_in_validate_or_diff_output() {
    let manifest = std::fs::read_to_string(repo_manifest("stage.yaml")).expect("manifest");
    let arn =
        "arn:aws:secretsmanager:ap-south-1:123456789012:secret:prediction-app/stage/api-key-AbCdEf";
    assert!(manifest.contains(arn), "stage.yaml has the API_KEY secret");
    let dir = tempfile::tempdir().expect("temp dir");
    let shapes = [
        PLANTED.to_string(),
        format!("arn:aws:{PLANTED}:ap-south-1:123456789012:x"),
        format!("arn:aws:s3:::{PLANTED}"),
        format!("[{PLANTED}]"),
        format!("{{value: {PLANTED}}}"),
        format!("\"{PLANTED}"),
        format!("{PLANTED}: {PLANTED}"),
    ];
    let mut documents: Vec<(String, String)> = shapes
        .iter()
        .map(|shape| (shape.clone(), manifest.replacen(arn, shape, 1)))
        .collect();
    // The whole block as one scalar: the parser's "expected a mapping, got ..." would
    // quote it.
    documents.push((
        "secrets: <scalar>".to_string(),
        manifest.replacen(
            &format!("secrets:\n        API_KEY: {arn}"),
            &format!("secrets: {PLANTED}"),
            1,
        ),
    ));
    for (i, (shape, text)) in documents.iter().enumerate() {
        assert_ne!(text, &manifest, "{shape}: planted");
        let doc = dir.path().join(format!("planted-{i}.yaml"));
        std::fs::write(&doc, text).expect("write document");
        let runs = [
            vec!["validate".as_ref(), "-f".as_ref(), doc.as_os_str()],
            vec![
                "diff".as_ref(),
                "--observed".as_ref(),
                "/dev/null".as_ref(),
                "-f".as_ref(),
                doc.as_os_str(),
            ],
            vec![
                "diff".as_ref(),
                "--format".as_ref(),
                "json".as_ref(),
                "--observed".as_ref(),
                "/dev/null".as_ref(),
                "-f".as_ref(),
                doc.as_os_str(),
            ],
        ];
        for args in runs {
            let (code, stdout, stderr) = run_tugboat(&args);
            let output = format!("{stdout}{stderr}");
            assert_eq!(code, Some(1), "{shape}: rejected\n{output}");
            assert!(
                output.contains("spec.workloads[0].secrets"),
                "{shape}: the error names the secret's path\n{output}"
            );
            for needle in [PLANTED, "sk_live", "PLANTED"] {
                assert!(
                    !output.contains(needle),
                    "{shape}: `{needle}` leaked by {args:?}\n{output}"
                );
            }
        }
    }
}

/// A local document with two workloads, `first` then `second`, each `(name, strategy)`.
fn two_workloads(first: (&str, &str), second: (&str, &str)) -> String {
    let workload = |(name, strategy): (&str, &str), port: u16, priority: u16| {
        format!(
            "    - name: {name}
      image: {name}
      cpu: 256
      memory: 512
      desiredCount: 1
      containerPort: {port}
      route:
        pathPatterns: [\"/{name}/*\"]
        priority: {priority}
        targetGroups: {{ blue: {name}-b, green: {name}-g }}
      strategy: {strategy}
"
        )
    };
    format!(
        "apiVersion: tugboat.dev/v1alpha1
kind: Application
metadata: {{ name: prediction-app, environment: dev }}
spec:
  platform: {{ local: {{ listen: 127.0.0.1:8080 }} }}
  status: {{ uri: file://.tugboat/status.json }}
  workloads:
{}{}",
        workload(first, 8001, 10),
        workload(second, 8002, 20)
    )
}

const ROLLING: &str = "{ rolling: {} }";
const CANARY: &str = "{ canary: { steps: [ { setWeight: 50 }, { setWeight: 100 } ] } }";
const BLUE_GREEN: &str = "{ blueGreen: {} }";

/// Two workloads that would drive the same ECS service do not validate, in either order
/// and with either progressive strategy, and the error names both. (Two progressive
/// workloads cannot collide: `api-blue`'s services are `api-blue-blue` and
/// `api-blue-green`.)
#[test]
fn a_service_name_owned_by_two_workloads_is_invalid() {
    let cases = [
        (("api", CANARY), ("api-blue", ROLLING), "api-blue"),
        (("api-green", ROLLING), ("api", BLUE_GREEN), "api-green"),
        (("api", BLUE_GREEN), ("api-blue", ROLLING), "api-blue"),
        (("api-green", ROLLING), ("api", CANARY), "api-green"),
    ];
    for (first, second, service) in cases {
        let text = two_workloads(first, second);
        let errors = match validate::load(&text, "collide.yaml") {
            Ok(_) => panic!("{} and {} both own {service}", first.0, second.0),
            Err(e) => e,
        };
        let collision = errors
            .errors
            .iter()
            .find(|e| e.message.contains("would both own the ECS service"))
            .unwrap_or_else(|| panic!("no collision error: {errors}"));
        assert_eq!(collision.path, "spec.workloads[1].name", "{errors}");
        for name in [first.0, second.0] {
            assert!(
                collision.message.contains(&format!("workload `{name}`")),
                "{name} is named: {collision}"
            );
        }
        assert!(
            collision.message.contains(&format!("`{service}`;")),
            "{collision}"
        );
    }
    // Names that only look alike do not collide.
    for (first, second) in [
        (("api", CANARY), ("api-blu", ROLLING)),
        (("api", ROLLING), ("api-blue", ROLLING)),
        (("api", CANARY), ("api-blue", CANARY)),
        (("api", BLUE_GREEN), ("api-green", BLUE_GREEN)),
    ] {
        if let Err(e) = validate::load(&two_workloads(first, second), "ok.yaml") {
            panic!("{} and {} do not collide:\n{e}", first.0, second.0);
        }
    }
}

/// `desiredCount: 0` on a canary or blueGreen workload is refused (a slot with no tasks
/// passes a health guard trivially); on a rolling workload it is a plain scale-to-zero.
#[test]
fn a_progressive_workload_with_no_tasks_is_invalid() {
    for strategy in [CANARY, BLUE_GREEN] {
        let text = two_workloads(("api", strategy), ("web", ROLLING)).replacen(
            "desiredCount: 1",
            "desiredCount: 0",
            1,
        );
        let errors = validate::load(&text, "zero.yaml").expect_err("no tasks");
        let error = errors
            .errors
            .iter()
            .find(|e| e.path == "spec.workloads[0].desiredCount")
            .unwrap_or_else(|| panic!("{strategy}: {errors}"));
        assert!(
            error.message.contains("weight could move onto a slot"),
            "{error}"
        );
        assert!(error.message.contains("use `rolling`"), "{error}");
        assert_eq!(errors.errors.len(), 1, "{errors}");
    }
    let rolling_at_zero = two_workloads(("api", CANARY), ("web", ROLLING)).replace(
        "desiredCount: 1\n      containerPort: 8002",
        "desiredCount: 0\n      containerPort: 8002",
    );
    assert!(rolling_at_zero.contains("desiredCount: 0"));
    if let Err(e) = validate::load(&rolling_at_zero, "rolling.yaml") {
        panic!("a rolling workload may scale to zero:\n{e}");
    }
}

/// A canary or blueGreen workload needs `spec.status`: without persisted status a restart
/// forgets where a rollout stood. A document of rolling workloads does not.
#[test]
fn a_progressive_workload_without_a_status_store_is_invalid() {
    for strategy in [CANARY, BLUE_GREEN] {
        let text = two_workloads(("api", strategy), ("web", ROLLING))
            .replace("  status: { uri: file://.tugboat/status.json }\n", "");
        assert!(!text.contains("status:"));
        let errors = validate::load(&text, "no-status.yaml").expect_err("no status");
        assert_eq!(errors.errors.len(), 1, "{errors}");
        let error = &errors.errors[0];
        assert_eq!(error.path, "spec.status");
        assert!(
            error.message.contains("`api`"),
            "names the workload: {error}"
        );
        assert!(
            error.message.contains("cannot be resumed safely"),
            "says why: {error}"
        );
        assert!(
            error.message.contains("file://.tugboat/status.json"),
            "a local example for the local platform: {error}"
        );
        assert_eq!(error.line, Some(5), "located at the `spec` mapping");
    }
    let rolling = two_workloads(("api", ROLLING), ("web", ROLLING))
        .replace("  status: { uri: file://.tugboat/status.json }\n", "");
    if let Err(e) = validate::load(&rolling, "rolling.yaml") {
        panic!("rolling workloads need no status store:\n{e}");
    }
}

/// Runs the `tugboat` binary with standard output a pipe whose reading end is already
/// closed, so its first write fails with a broken pipe. Returns (exit status, stderr).
fn run_with_closed_stdout(args: &[&std::ffi::OsStr]) -> (std::process::ExitStatus, String) {
    let (reader, writer) = std::io::pipe().expect("a pipe");
    drop(reader);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tugboat"))
        .args(args)
        .stdout(writer)
        .stderr(std::process::Stdio::piped())
        .output()
        .expect("tugboat runs");
    (
        out.status,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `tugboat validate`, `diff` and `status` piped into a reader that has gone away (`| head
/// -1`) end quietly with status 0: no panic, no "Broken pipe", nothing on stderr.
#[test]
fn the_cli_ends_quietly_when_stdout_is_closed() {
    let dir = tempfile::tempdir().expect("temp dir");
    let stage = repo_manifest("stage.yaml");
    let good = test_dir("good").join("minimal.yaml");
    let bad = test_dir("bad").join("weight-over-100.yaml");
    let app = validate::load_file(&stage).expect("valid manifest");
    let now = tugboat::status::Timestamp::from_secs(1_800_000_000);
    let planned = tugboat::plan::plan(
        &app,
        &tugboat::observed::ObservedState::default(),
        None,
        now,
    );
    let status = dir.path().join("status.json");
    std::fs::write(
        &status,
        serde_json::to_string(&planned.status).expect("status as JSON"),
    )
    .expect("write status");
    let status_uri = format!("file://{}", status.display());
    let runs: Vec<Vec<std::ffi::OsString>> = vec![
        vec!["validate".into(), "-f".into(), good.into()],
        vec!["validate".into(), "-f".into(), bad.into()],
        vec![
            "diff".into(),
            "--observed".into(),
            "/dev/null".into(),
            "-f".into(),
            stage.clone().into(),
        ],
        vec![
            "diff".into(),
            "--format".into(),
            "json".into(),
            "--observed".into(),
            "/dev/null".into(),
            "-f".into(),
            stage.into(),
        ],
        vec!["status".into(), "--uri".into(), status_uri.clone().into()],
        vec![
            "status".into(),
            "--json".into(),
            "--uri".into(),
            status_uri.into(),
        ],
    ];
    for args in runs {
        let args: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_os_str()).collect();
        let (exit, stderr) = run_with_closed_stdout(&args);
        assert!(
            exit.success(),
            "{args:?}: exit {exit:?} on a closed stdout\n{stderr}"
        );
        assert!(stderr.is_empty(), "{args:?}: quiet, got:\n{stderr}");
    }
}
