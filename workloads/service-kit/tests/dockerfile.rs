//! No container engine runs here, so this checks the top-level Dockerfile against
//! the workspace instead: each image target exists, copies a binary that some
//! workspace manifest declares as a `[[bin]]`, built from packages that exist, and
//! runs it; every `COPY` from the build context names a path that exists; every
//! image has a HEALTHCHECK and runs as a non-root user.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repository root")
}

/// A build stage: its base, its name and its instructions (continuations joined).
#[derive(Debug, Default)]
struct Stage {
    base: String,
    instructions: Vec<(String, String)>,
}

fn parse(text: &str) -> BTreeMap<String, Stage> {
    let mut logical = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if current.is_empty() && (trimmed.is_empty() || trimmed.starts_with('#')) {
            continue;
        }
        if let Some(head) = trimmed.strip_suffix('\\') {
            current.push_str(head);
            current.push(' ');
        } else {
            current.push_str(trimmed);
            logical.push(std::mem::take(&mut current));
        }
    }
    let mut stages = BTreeMap::new();
    let mut name = String::new();
    for line in logical {
        let (keyword, rest) = line.split_once(' ').unwrap_or((&line, ""));
        let keyword = keyword.to_ascii_uppercase();
        if keyword == "FROM" {
            let words: Vec<&str> = rest.split_whitespace().collect();
            let base = words.first().copied().unwrap_or_default().to_owned();
            name = match words.iter().position(|w| w.eq_ignore_ascii_case("as")) {
                Some(i) => words[i + 1].to_owned(),
                None => format!("stage{}", stages.len()),
            };
            stages.insert(
                name.clone(),
                Stage {
                    base,
                    instructions: Vec::new(),
                },
            );
        } else if let Some(stage) = stages.get_mut(&name) {
            stage.instructions.push((keyword, rest.trim().to_owned()));
        }
    }
    stages
}

/// Package names and `[[bin]]` names of every workspace manifest (a package with a
/// `src/main.rs` and no `[[bin]]` has an implicit bin named after it).
fn workspace_targets(root: &Path) -> (BTreeSet<String>, BTreeSet<String>) {
    let mut manifests = vec![root.join("controller/Cargo.toml")];
    for entry in std::fs::read_dir(root.join("workloads")).unwrap() {
        let path = entry.unwrap().path().join("Cargo.toml");
        if path.exists() {
            manifests.push(path);
        }
    }
    let mut packages = BTreeSet::new();
    let mut bins = BTreeSet::new();
    for manifest in manifests {
        let text = std::fs::read_to_string(&manifest).unwrap();
        let mut section = String::new();
        let mut package_name = None;
        let mut has_bin_section = false;
        for line in text.lines().map(str::trim) {
            if line.starts_with('[') {
                section = line.to_owned();
                has_bin_section |= section == "[[bin]]";
                continue;
            }
            let Some((key, value)) = line.split_once('=') else {
                continue;
            };
            if key.trim() != "name" {
                continue;
            }
            let value = value.trim().trim_matches('"').to_owned();
            match section.as_str() {
                "[package]" => package_name = Some(value),
                "[[bin]]" => {
                    bins.insert(value);
                }
                _ => {}
            }
        }
        let package_name = package_name.unwrap_or_else(|| panic!("{manifest:?} has no name"));
        if !has_bin_section && manifest.with_file_name("src/main.rs").exists() {
            bins.insert(package_name.clone());
        }
        packages.insert(package_name);
    }
    (packages, bins)
}

/// Paths of a `COPY` instruction (flags dropped, last word is the destination).
fn copy_sources(args: &str) -> (Option<String>, Vec<String>) {
    let mut from = None;
    let mut words = Vec::new();
    for word in args.split_whitespace() {
        if let Some(stage) = word.strip_prefix("--from=") {
            from = Some(stage.to_owned());
        } else if !word.starts_with("--") {
            words.push(word.to_owned());
        }
    }
    words.pop();
    (from, words)
}

#[test]
fn dockerfile_targets_name_binaries_and_paths_that_exist() {
    let root = repo_root();
    let text = std::fs::read_to_string(root.join("Dockerfile")).expect("top-level Dockerfile");
    let stages = parse(&text);
    let (packages, bins) = workspace_targets(&root);

    // The builder builds only packages that exist, and copies out binaries that exist.
    let builder = stages.get("builder").expect("a builder stage");
    let build = builder
        .instructions
        .iter()
        .find(|(k, v)| k == "RUN" && v.contains("cargo build"))
        .expect("builder runs cargo build");
    let cargo_build = build
        .1
        .split("&&")
        .find(|command| command.contains("cargo build"))
        .unwrap_or_default();
    let cargo_words: Vec<&str> = cargo_build.split_whitespace().collect();
    for pair in cargo_words.windows(2) {
        if pair[0] == "-p" {
            assert!(
                packages.contains(pair[1]),
                "cargo build -p {}: no such package",
                pair[1]
            );
        }
    }
    for word in build.1.split_whitespace() {
        if let Some(bin) = word.strip_prefix("target/release/") {
            assert!(
                bins.contains(bin),
                "builder copies target/release/{bin}: no such [[bin]]"
            );
        }
    }

    // Every COPY from the build context names something that exists.
    for (name, stage) in &stages {
        for (keyword, args) in &stage.instructions {
            if keyword != "COPY" {
                continue;
            }
            let (from, sources) = copy_sources(args);
            if from.is_none() {
                for source in sources {
                    assert!(
                        root.join(&source).exists(),
                        "stage {name}: COPY {source}: no such path in the repository"
                    );
                }
            }
        }
    }

    // One target per image, each running the binary it copied, healthy, non-root.
    let runtime = stages.get("runtime").expect("a shared runtime stage");
    let user = runtime
        .instructions
        .iter()
        .rev()
        .find(|(k, _)| k == "USER")
        .expect("runtime sets a USER");
    assert!(
        !user.1.starts_with("root") && !user.1.starts_with("0"),
        "runtime user is root: {}",
        user.1
    );
    for (target, bin) in [
        ("controller", "tugboat"),
        ("backend", "backend"),
        ("inference", "inference"),
    ] {
        let stage = stages
            .get(target)
            .unwrap_or_else(|| panic!("no `{target}` target"));
        assert_eq!(
            stage.base, "runtime",
            "{target} builds on the runtime stage"
        );
        assert!(bins.contains(bin), "{target}: no [[bin]] named {bin}");
        let copied = stage.instructions.iter().any(|(k, v)| {
            k == "COPY" && copy_sources(v) == (Some("builder".into()), vec![format!("/out/{bin}")])
        });
        assert!(copied, "{target} does not copy /out/{bin} from the builder");
        let entrypoint = stage
            .instructions
            .iter()
            .find(|(k, _)| k == "ENTRYPOINT")
            .unwrap_or_else(|| panic!("{target} has no ENTRYPOINT"));
        assert_eq!(entrypoint.1, format!("[\"/usr/local/bin/{bin}\"]"));
        let healthcheck = stage
            .instructions
            .iter()
            .find(|(k, _)| k == "HEALTHCHECK")
            .unwrap_or_else(|| panic!("{target} has no HEALTHCHECK"));
        assert!(
            healthcheck.1.contains("curl -f"),
            "{target}: {}",
            healthcheck.1
        );
        assert!(
            !stage.instructions.iter().any(|(k, _)| k == "USER"),
            "{target} must not override the runtime's non-root user"
        );
    }
    // The inference image carries the committed models.
    let inference = &stages["inference"];
    assert!(inference.instructions.iter().any(|(k, v)| {
        k == "COPY" && copy_sources(v).1 == vec!["workloads/inference/models".to_owned()]
    }));
}
