//! Loading and validating desired-state documents.
//!
//! [`load`] turns YAML text into an [`Application`] or into [`ValidationErrors`]: every
//! problem found, each naming its document path (`spec.workloads[1].strategy.canary.
//! steps[2].setWeight`) and, where the parser knows it, line and column. [`validate`] is
//! the semantic half on its own, for documents built in code.
//!
//! Guarantees:
//! - Pure: no I/O except in [`load_file`] and [`load_reader`], no clock, no environment.
//! - Bounded: input over [`MAX_DOCUMENT_BYTES`] is refused before parsing; the parser runs
//!   under a budget (nesting depth, node and event counts, alias replays), so a YAML alias
//!   bomb or a pathological nesting is cut off quickly with bounded memory.
//! - Strict: duplicate keys, unknown fields, multi-document streams and YAML 1.1 booleans
//!   (`yes`, `on`) are errors; a typo is never silently ignored.
//! - Complete: every unknown field is reported, each at its key's line and column and with
//!   a "did you mean" when a known key is close; the known keys come from the generated
//!   JSON Schema, so they cannot drift from the types. The document is then read with the
//!   unknown keys skipped, and when it has the right shape every semantic rule is checked;
//!   all violations are reported together, not just the first.
//! - Discreet: a workload's `secrets` values are never quoted, whole or in part, in any
//!   message (a value that is not an ARN may be the secret itself); the node tree used
//!   for locations keeps no scalar values at all.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::io::Read;
use std::net::SocketAddr;
use std::path::Path;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::{Location, MessageFormatter, Spanned, UserMessageFormatter};

use crate::condition::Condition;
use crate::document::{
    API_VERSION, AnalysisStep, AnalysisTemplate, Application, BlueGreenStrategy, CanaryStep,
    CanaryStrategy, DurationSpec, HealthCheck, KIND, LogConfiguration, MetricProvider, Model,
    Platform, Route, Slot, Strategy, Workload,
};
use crate::document::{ContainerOptions, DependencyCondition, Sidecar, Toggle, Volume};
use crate::plan::service_name;

/// Largest document accepted, in bytes. Real documents are a few kilobytes; the cap keeps
/// a mistaken or hostile input from costing more than a moment to refuse.
pub const MAX_DOCUMENT_BYTES: usize = 1024 * 1024;

/// Environment variables tugboat sets itself on a workload that serves a model.
pub const RESERVED_MODEL_VARIABLES: [&str; 3] = ["MODEL_URI", "MODEL_VERSION", "MODEL_SHA256"];

/// Largest `desiredCount` accepted: a guard against a stray digit, not an ECS limit.
pub const MAX_DESIRED_COUNT: u32 = 1000;

/// One problem in a document: where it is and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationError {
    /// Document path such as `spec.workloads[1].cpu`; empty for the document as a whole.
    pub path: String,
    /// 1-based line, when the parser knows it.
    pub line: Option<u64>,
    /// 1-based column, when the parser knows it.
    pub column: Option<u64>,
    pub message: String,
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let (Some(line), Some(column)) = (self.line, self.column) {
            write!(f, "{line}:{column}: ")?;
        }
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// Every problem found in one document. `Display` prints one line per problem:
/// `manifests/prod.yaml:34:7: spec.workloads[1].cpu: ...`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ValidationErrors {
    /// Where the document came from (a file path, an S3 URI), for messages.
    pub origin: String,
    /// Never empty.
    pub errors: Vec<ValidationError>,
}

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.errors.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            // A located error already starts with `line:column: `.
            let separator = if error.line.is_some() && error.column.is_some() {
                ":"
            } else {
                ": "
            };
            write!(f, "{}{separator}{error}", self.origin)?;
        }
        Ok(())
    }
}

/// Why [`load_file`] produced no document.
#[derive(Debug, thiserror::Error)]
pub enum LoadFileError {
    #[error("cannot read {path}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Invalid(#[from] ValidationErrors),
}

/// Reads, parses and validates the document at `path`. Files larger than
/// [`MAX_DOCUMENT_BYTES`] are refused without being read in full.
pub fn load_file(path: impl AsRef<Path>) -> Result<Application, LoadFileError> {
    let path = path.as_ref();
    let origin = path.display().to_string();
    let file = std::fs::File::open(path).map_err(|source| LoadFileError::Read {
        path: origin.clone(),
        source,
    })?;
    load_reader(file, &origin)
}

/// Reads at most [`MAX_DOCUMENT_BYTES`] (plus one, to detect more) from `reader`, then
/// parses and validates the document. For standard input and other streams.
pub fn load_reader(reader: impl Read, origin: &str) -> Result<Application, LoadFileError> {
    // Bound the read itself rather than trusting a reported size, so pipes and special
    // files cannot make us buffer more than the cap.
    let mut bytes = Vec::new();
    reader
        .take(MAX_DOCUMENT_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|source| LoadFileError::Read {
            path: origin.to_string(),
            source,
        })?;
    if bytes.len() > MAX_DOCUMENT_BYTES {
        return Err(too_large(origin, None).into());
    }
    let text = String::from_utf8(bytes).map_err(|e| ValidationErrors {
        origin: origin.to_string(),
        errors: vec![whole_document(format!(
            "not UTF-8 text (invalid byte at offset {})",
            e.utf8_error().valid_up_to()
        ))],
    })?;
    Ok(load(&text, origin)?)
}

/// Parses and validates one document. `origin` names it in messages.
///
/// Every unknown field is reported, not just the first: the document's node tree is
/// walked against the generated JSON Schema ([`crate::schema::json_schema`], so the set
/// of known keys is the types' own), and the document is then read with unknown keys
/// skipped, so the semantic rules still run and their findings are reported beside.
pub fn load(text: &str, origin: &str) -> Result<Application, ValidationErrors> {
    if text.len() > MAX_DOCUMENT_BYTES {
        return Err(too_large(origin, Some(text.len())));
    }
    let fail = |errors| ValidationErrors {
        origin: origin.to_string(),
        errors,
    };
    let tree = read_tree(text);
    let index = tree
        .as_ref()
        .map(LocationIndex::from_tree)
        .unwrap_or_default();
    let unknown: Vec<ValidationError> = tree
        .as_ref()
        .map(unknown_keys)
        .unwrap_or_default()
        .into_iter()
        .map(|u| u.located(&index))
        .collect();
    let (typed, skipped) = parse_typed(text);
    let mut errors = match typed {
        Ok(app) => {
            let mut errors = unknown;
            if errors.is_empty() && skipped > 0 {
                // The reader and the schema disagree on a key: never load a document
                // with a setting silently dropped.
                errors.push(whole_document(format!(
                    "{skipped} field(s) that the document types do not declare were skipped without being reported (a tugboat bug: please report it); refusing the document rather than ignoring them"
                )));
            }
            errors.extend(
                check(&app)
                    .into_iter()
                    .map(|f| index.locate(f.path, f.message)),
            );
            if errors.is_empty() {
                return Ok(app);
            }
            errors
        }
        Err(mut parse_error) => {
            // A document of another kind fails on its first unfamiliar field; "this is
            // not a tugboat Application" is the more useful message.
            if let Some(explained) = explain_failure(text) {
                return Err(fail(explained));
            }
            if parse_error.line.is_none() && !parse_error.path.is_empty() {
                let located = index.locate_text(&parse_error.path);
                parse_error.line = located.map(|l| l.line());
                parse_error.column = located.map(|l| l.column());
            }
            let mut errors = unknown;
            // An unknown variant is already reported by the schema walk.
            let covered = errors
                .iter()
                .any(|e| e.path == parse_error.path && e.message.starts_with("unknown "));
            if !covered {
                errors.push(parse_error);
            }
            errors
        }
    };
    errors.dedup();
    Err(fail(errors))
}

/// Checks the rules the types cannot express. Returns every violation, without line
/// numbers (the document has no source text); empty means valid.
pub fn validate(app: &Application) -> Vec<ValidationError> {
    check(app)
        .into_iter()
        .map(|f| ValidationError {
            path: f.path.to_string(),
            line: None,
            column: None,
            message: f.message,
        })
        .collect()
}

fn too_large(origin: &str, size: Option<usize>) -> ValidationErrors {
    let message = match size {
        Some(n) => {
            format!(
                "document too large: the limit is {MAX_DOCUMENT_BYTES} bytes, this is {n} bytes"
            )
        }
        None => format!("document too large: the limit is {MAX_DOCUMENT_BYTES} bytes"),
    };
    ValidationErrors {
        origin: origin.to_string(),
        errors: vec![whole_document(message)],
    }
}

fn whole_document(message: String) -> ValidationError {
    ValidationError {
        path: String::new(),
        line: None,
        column: None,
        message,
    }
}

// ---------------------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------------------

/// Parser settings: strict, and budgeted far above any real document but far below
/// anything that could hurt.
fn parse_options() -> serde_saphyr::Options {
    let mut budget = serde_saphyr::Budget::default();
    budget.max_reader_input_bytes = Some(MAX_DOCUMENT_BYTES);
    budget.max_depth = 32;
    budget.max_documents = 1;
    budget.max_nodes = 100_000;
    budget.max_events = 200_000;
    budget.max_aliases = 1_000;
    budget.max_anchors = 1_000;
    budget.max_merge_keys = 1_000;
    budget.max_total_scalar_bytes = 2 * MAX_DOCUMENT_BYTES;
    budget.max_recorded_anchor_events = 100_000;
    budget.max_recorded_anchor_bytes = 2 * MAX_DOCUMENT_BYTES;

    // Reusing a health check or an environment through aliases replays tens of events;
    // a "billion laughs" document needs about 10^9. The cap sits well between.
    let mut alias_limits = serde_saphyr::options::AliasLimits::default();
    alias_limits.max_total_replayed_events = 10_000;
    alias_limits.max_replay_stack_depth = 16;

    let mut options = serde_saphyr::Options::default();
    options.budget = Some(budget);
    options.alias_limits = alias_limits;
    options.duplicate_keys = serde_saphyr::DuplicateKeyPolicy::Error;
    // `yes`/`on` as booleans is YAML 1.1's trap (the "Norway problem").
    options.strict_booleans = true;
    // Messages are one line each (`file:line:column: path: message`), no source snippet.
    options.with_snippet = false;
    options
}

/// Deserializes into the document types, skipping keys the types do not declare (the
/// schema walk reports them) and recording the path of the first failure. Also returns
/// how many keys were skipped.
fn parse_typed(text: &str) -> (Result<Application, ValidationError>, usize) {
    let mut failed_at: Option<serde_path_to_error::Path> = None;
    let skipped = std::cell::Cell::new(0);
    let result = serde_saphyr::with_deserializer_from_str_with_options(
        text,
        parse_options(),
        |deserializer| {
            let lenient = lenient::Lenient::new(deserializer, &skipped);
            serde_path_to_error::deserialize::<_, Application>(lenient).map_err(|e| {
                failed_at = Some(e.path().clone());
                e.into_inner()
            })
        },
    );
    (
        result.map_err(|error| parser_error(text, failed_at.map(DocPath::from), &error)),
        skipped.get(),
    )
}

fn parser_error(text: &str, path: Option<DocPath>, error: &serde_saphyr::Error) -> ValidationError {
    let mut path = path.unwrap_or_default();
    // serde stops the path at the mapping that holds the duplicate; name the key too.
    if let serde_saphyr::Error::DuplicateMappingKey { key: Some(key), .. } = original_error(error) {
        path = path.key(key);
    }
    let location = error.location().filter(|l| l.line() > 0);
    let message = if is_secret_path(&path) {
        // The parser's words may quote the value; under `secrets` it may be a secret.
        format!(
            "cannot be read as `NAME: ARN` entries, each ARN being {SECRET_SHAPE}; check the YAML here (the text is not shown: it may be a secret)"
        )
    } else {
        parse_message(text, &path, original_error(error))
    };
    ValidationError {
        path: path.to_string(),
        line: location.map(|l| l.line()),
        column: location.map(|l| l.column()),
        message,
    }
}

/// The error a wrapper (source snippet, alias use site) was built around.
fn original_error(mut error: &serde_saphyr::Error) -> &serde_saphyr::Error {
    loop {
        match error {
            serde_saphyr::Error::WithSnippet { error: inner, .. }
            | serde_saphyr::Error::AliasError { error: inner, .. } => error = inner,
            other => return other,
        }
    }
}

/// Whether the parser gave up because of its budget rather than the content's shape.
fn is_budget_error(error: &serde_saphyr::Error) -> bool {
    use serde_saphyr::Error as E;
    matches!(
        original_error(error),
        E::Budget { .. }
            | E::AliasReplayLimitExceeded { .. }
            | E::AliasExpansionLimitExceeded { .. }
            | E::AliasReplayStackDepthExceeded { .. }
            | E::AliasReplayCounterOverflow { .. }
    )
}

/// A parser error in the words of someone writing the document.
fn parse_message(text: &str, path: &DocPath, error: &serde_saphyr::Error) -> String {
    use serde_saphyr::Error as E;
    use serde_saphyr::budget::BudgetBreach as B;
    const MULTIPLE: &str =
        "more than one YAML document (`---`): a file holds exactly one Application";
    match error {
        E::Eof { .. } => {
            "empty document: expected a tugboat Application (apiVersion, kind, metadata, spec)"
                .to_string()
        }
        E::MultipleDocuments { .. } => MULTIPLE.to_string(),
        E::DuplicateMappingKey { .. } => "duplicate key: each key may appear once".to_string(),
        E::ExpectedMappingEndAfterEnumVariantValue { .. } => {
            "takes exactly one key (one platform, one strategy, one kind of step); found more"
                .to_string()
        }
        E::Unexpected { .. } if path.0.is_empty() => {
            "the document must be a mapping with apiVersion, kind, metadata and spec".to_string()
        }
        E::Unexpected { expected, .. } => {
            let expected = match *expected {
                "mapping start" => "a mapping (`key: value` lines)",
                "sequence start" => "a list",
                other => other,
            };
            format!("expected {expected}{}", found(text, error))
        }
        E::InvalidScalar { ty, .. } => {
            let expected = match *ty {
                "u16" => "a whole number from 0 to 65535",
                "u32" => "a whole number from 0 to 4294967295",
                "u64" => "a non-negative whole number",
                "bool" => "true or false",
                "f64" | "f32" => "a number",
                other => other,
            };
            format!("expected {expected}{}", found(text, error))
        }
        E::Budget { breach, .. } => match breach {
            B::Documents { .. } => MULTIPLE.to_string(),
            B::Depth { depth } => {
                format!("nested too deeply ({depth} levels); no tugboat document needs that")
            }
            B::Aliases { aliases } => format!("too many aliases ({aliases}); refusing"),
            B::Anchors { anchors } => format!("too many anchors ({anchors}); refusing"),
            other => format!("document too large or complex for the parser's limits ({other:?})"),
        },
        E::AliasReplayLimitExceeded {
            max_total_replayed_events,
            ..
        } => format!(
            "aliases expand to more than {max_total_replayed_events} YAML events; refusing (an alias bomb?)"
        ),
        E::AliasExpansionLimitExceeded { .. } | E::AliasReplayStackDepthExceeded { .. } => {
            "aliases nest or repeat too much; refusing (an alias bomb?)".to_string()
        }
        other => UserMessageFormatter.format_message(other).into_owned(),
    }
}

/// `, got `text`` when the error's span covers a short piece of the source.
fn found(text: &str, error: &serde_saphyr::Error) -> String {
    let snippet = error.location().and_then(|location| {
        let span = location.span();
        let start = usize::try_from(span.byte_offset()?).ok()?;
        let len = usize::try_from(span.byte_len()?).ok()?;
        text.get(start..start.checked_add(len)?)
    });
    match snippet {
        Some(s) if !s.is_empty() && s.len() <= 80 && !s.contains('\n') => format!(", got `{s}`"),
        _ => String::new(),
    }
}

/// `apiVersion` and `kind`, read leniently so a foreign document is recognised as such.
#[derive(Deserialize)]
struct Header {
    #[serde(rename = "apiVersion")]
    api_version: Option<Spanned<String>>,
    kind: Option<Spanned<String>>,
}

/// Re-reads a document that failed to deserialize, looking for a better explanation than
/// the first unfamiliar field: it is not a tugboat Application at all, or it exceeded the
/// parser's budget (an alias bomb hidden under an unknown key). `None` means no better
/// explanation was found.
fn explain_failure(text: &str) -> Option<Vec<ValidationError>> {
    let header = match serde_saphyr::from_str_with_options::<Header>(text, parse_options()) {
        Ok(header) => header,
        Err(error) if is_budget_error(&error) => {
            return Some(vec![parser_error(text, None, &error)]);
        }
        Err(_) => return None,
    };
    let mut errors = Vec::new();
    for (field, value, expected) in [
        ("apiVersion", header.api_version, API_VERSION),
        ("kind", header.kind, KIND),
    ] {
        if let Some(value) = value
            && value.value != expected
        {
            errors.push(ValidationError {
                path: field.to_string(),
                line: Some(value.referenced.line()).filter(|&l| l > 0),
                column: Some(value.referenced.column()).filter(|&c| c > 0),
                message: format!("must be `{expected}` (got `{}`)", value.value),
            });
        }
    }
    (!errors.is_empty()).then_some(errors)
}

// ---------------------------------------------------------------------------------------
// Document paths and their source locations
// ---------------------------------------------------------------------------------------

/// A path into the document, rendered as `spec.workloads[1].route.priority`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
struct DocPath(Vec<Segment>);

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Segment {
    Key(String),
    Index(usize),
}

impl DocPath {
    fn key(&self, key: &str) -> DocPath {
        let mut path = self.clone();
        path.0.push(Segment::Key(key.to_string()));
        path
    }

    fn index(&self, index: usize) -> DocPath {
        let mut path = self.clone();
        path.0.push(Segment::Index(index));
        path
    }

    fn parent(&self) -> Option<DocPath> {
        let mut path = self.clone();
        path.0.pop().map(|_| path)
    }
}

impl From<serde_path_to_error::Path> for DocPath {
    fn from(path: serde_path_to_error::Path) -> Self {
        use serde_path_to_error::Segment as S;
        DocPath(
            path.iter()
                .filter_map(|segment| match segment {
                    S::Seq { index } => Some(Segment::Index(*index)),
                    S::Map { key } | S::Enum { variant: key } => Some(Segment::Key(key.clone())),
                    S::Unknown => None,
                })
                .collect(),
        )
    }
}

impl fmt::Display for DocPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, segment) in self.0.iter().enumerate() {
            match segment {
                Segment::Index(n) => write!(f, "[{n}]")?,
                // Keys such as label names may contain dots; quote them so the path
                // stays unambiguous.
                Segment::Key(k)
                    if k.is_empty()
                        || !k
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') =>
                {
                    write!(f, "[{k:?}]")?
                }
                Segment::Key(k) if i == 0 => f.write_str(k)?,
                Segment::Key(k) => write!(f, ".{k}")?,
            }
        }
        Ok(())
    }
}

/// Where each node of a parsed document sits in its source text: values by their path,
/// and mapping keys by the path of the entry they start.
#[derive(Debug, Default)]
struct LocationIndex {
    values: HashMap<DocPath, Location>,
    keys: HashMap<DocPath, Location>,
}

/// The document's node tree, shape and locations only; `None` when the text is not YAML
/// the parser accepts under its budget (the typed read then reports why).
fn read_tree(text: &str) -> Option<Node> {
    serde_saphyr::from_str_with_options::<Node>(text, parse_options()).ok()
}

impl LocationIndex {
    fn from_tree(root: &Node) -> LocationIndex {
        let mut index = LocationIndex::default();
        index.insert(DocPath::default(), root);
        index
    }

    fn insert(&mut self, path: DocPath, node: &Node) {
        match &node.kind {
            NodeKind::Map(entries) => {
                for entry in entries {
                    let child = path.key(&entry.key);
                    self.keys.insert(child.clone(), entry.at);
                    self.insert(child, &entry.value);
                }
            }
            NodeKind::Seq(items) => {
                for (i, child) in items.iter().enumerate() {
                    self.insert(path.index(i), child);
                }
            }
            NodeKind::Scalar => {}
        }
        self.values.insert(path, node.location);
    }

    /// The location of a node, or of its nearest ancestor present in the source.
    fn nearest(&self, path: &DocPath) -> Option<Location> {
        let mut probe = Some(path.clone());
        while let Some(p) = probe {
            if let Some(l) = self.values.get(&p) {
                return Some(*l).filter(|l| l.line() > 0);
            }
            probe = p.parent();
        }
        None
    }

    /// [`LocationIndex::nearest`] for a path already rendered as text.
    fn locate_text(&self, rendered: &str) -> Option<Location> {
        self.values
            .iter()
            .filter(|(path, _)| rendered.starts_with(&path.to_string()))
            .max_by_key(|(path, _)| path.0.len())
            .map(|(_, l)| *l)
            .filter(|l| l.line() > 0)
    }

    /// A finding at its own node, or at the nearest ancestor present in the source (a
    /// missing `route` is reported at its workload).
    fn locate(&self, path: DocPath, message: String) -> ValidationError {
        let location = self.nearest(&path);
        ValidationError {
            path: path.to_string(),
            line: location.map(|l| l.line()),
            column: location.map(|l| l.column()),
            message,
        }
    }
}

/// A YAML node with its location, shape only: scalar values are not kept, so nothing
/// built from the tree can echo one (a `secrets` value, say).
struct Node {
    location: Location,
    kind: NodeKind,
}

enum NodeKind {
    Map(Vec<Entry>),
    Seq(Vec<Node>),
    Scalar,
}

/// One `key: value` of a mapping, with where the key is written.
struct Entry {
    key: String,
    at: Location,
    value: Node,
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let spanned = Spanned::<NodeKind>::deserialize(deserializer)?;
        Ok(Node {
            location: spanned.referenced,
            kind: spanned.value,
        })
    }
}

impl<'de> Deserialize<'de> for NodeKind {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = NodeKind;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML node")
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<NodeKind, E> {
        Ok(NodeKind::Scalar)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<NodeKind, E> {
        Ok(NodeKind::Scalar)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<NodeKind, E> {
        Ok(NodeKind::Scalar)
    }
    fn visit_i128<E: de::Error>(self, _: i128) -> Result<NodeKind, E> {
        Ok(NodeKind::Scalar)
    }
    fn visit_u128<E: de::Error>(self, _: u128) -> Result<NodeKind, E> {
        Ok(NodeKind::Scalar)
    }
    fn visit_bytes<E: de::Error>(self, _: &[u8]) -> Result<NodeKind, E> {
        Ok(NodeKind::Scalar)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<NodeKind, E> {
        Ok(NodeKind::Scalar)
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<NodeKind, E> {
        Ok(NodeKind::Scalar)
    }
    fn visit_unit<E: de::Error>(self) -> Result<NodeKind, E> {
        Ok(NodeKind::Scalar)
    }
    fn visit_none<E: de::Error>(self) -> Result<NodeKind, E> {
        Ok(NodeKind::Scalar)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<NodeKind, D::Error> {
        NodeKind::deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<NodeKind, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Node>()? {
            items.push(item);
        }
        Ok(NodeKind::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<NodeKind, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<Spanned<KeyText>>()? {
            entries.push(Entry {
                key: key.value.0,
                at: key.referenced,
                value: map.next_value::<Node>()?,
            });
        }
        Ok(NodeKind::Map(entries))
    }
}

/// A scalar mapping key as text.
struct KeyText(String);

impl<'de> Deserialize<'de> for KeyText {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl Visitor<'_> for KeyVisitor {
            type Value = KeyText;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a scalar key")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<KeyText, E> {
                Ok(KeyText(v.to_string()))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<KeyText, E> {
                Ok(KeyText(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<KeyText, E> {
                Ok(KeyText(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<KeyText, E> {
                Ok(KeyText(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<KeyText, E> {
                Ok(KeyText(v.to_string()))
            }
            fn visit_unit<E: de::Error>(self) -> Result<KeyText, E> {
                Ok(KeyText(String::new()))
            }
        }
        deserializer.deserialize_any(KeyVisitor)
    }
}

// ---------------------------------------------------------------------------------------
// Unknown fields
// ---------------------------------------------------------------------------------------

/// A key the document types do not have.
struct UnknownKey {
    /// The mapping that holds it.
    parent: DocPath,
    key: String,
    /// The keys that mapping does take, for the suggestion.
    known: Vec<String>,
    /// The mapping is a choice of exactly one key (`strategy`, `platform`, a canary step,
    /// `provider`), so the key names an unknown variant rather than a field.
    choice: bool,
}

impl UnknownKey {
    fn located(self, index: &LocationIndex) -> ValidationError {
        let entry = self.parent.key(&self.key);
        let location = index
            .keys
            .get(&entry)
            .copied()
            .filter(|l| l.line() > 0)
            .or_else(|| index.nearest(&entry));
        let hint = match closest(&self.key, &self.known) {
            Some(close) => format!("; did you mean `{close}`?"),
            None if self.known.is_empty() => String::new(),
            None => {
                let list: Vec<String> = self.known.iter().map(|k| format!("`{k}`")).collect();
                format!(", expected one of {}", list.join(", "))
            }
        };
        let (path, message) = if self.choice {
            (self.parent, format!("unknown variant `{}`{hint}", self.key))
        } else {
            (entry, format!("unknown field `{}`{hint}", self.key))
        };
        ValidationError {
            path: path.to_string(),
            line: location.map(|l| l.line()),
            column: location.map(|l| l.column()),
            message,
        }
    }
}

/// The document's JSON Schema, generated once: the source of the known keys per type.
fn document_schema() -> &'static serde_json::Value {
    static SCHEMA: std::sync::OnceLock<serde_json::Value> = std::sync::OnceLock::new();
    SCHEMA.get_or_init(crate::schema::json_schema)
}

/// Every key of the tree that the schema does not allow where it is, in document order.
fn unknown_keys(root: &Node) -> Vec<UnknownKey> {
    let schema = document_schema();
    let mut found = Vec::new();
    walk(schema, schema, root, &DocPath::default(), &mut found);
    found
}

type SchemaObject = serde_json::Map<String, serde_json::Value>;

/// The object schemas a schema node allows, with `$ref` followed and `anyOf`, `oneOf`
/// and `allOf` opened (an `Option<T>` is `anyOf: [T, null]`; an externally tagged enum
/// is `oneOf` of one-key objects).
fn alternatives<'a>(
    root: &'a serde_json::Value,
    schema: &'a serde_json::Value,
    depth: usize,
    out: &mut Vec<&'a SchemaObject>,
) {
    let Some(object) = schema.as_object() else {
        return;
    };
    // The document types are not recursive; the bound only guards a future mistake.
    if depth > 16 {
        return;
    }
    if let Some(name) = object
        .get("$ref")
        .and_then(serde_json::Value::as_str)
        .and_then(|r| r.strip_prefix("#/definitions/"))
        && let Some(target) = root.get("definitions").and_then(|d| d.get(name))
    {
        alternatives(root, target, depth + 1, out);
    }
    for junctor in ["anyOf", "oneOf", "allOf"] {
        if let Some(branches) = object.get(junctor).and_then(serde_json::Value::as_array) {
            for branch in branches {
                alternatives(root, branch, depth + 1, out);
            }
        }
    }
    if ["properties", "additionalProperties", "items"]
        .iter()
        .any(|k| object.contains_key(*k))
    {
        out.push(object);
    }
}

fn walk(
    root: &serde_json::Value,
    schema: &serde_json::Value,
    node: &Node,
    path: &DocPath,
    found: &mut Vec<UnknownKey>,
) {
    let mut shapes = Vec::new();
    alternatives(root, schema, 0, &mut shapes);
    match &node.kind {
        NodeKind::Map(entries) => {
            let objects: Vec<&SchemaObject> = shapes
                .into_iter()
                .filter(|s| s.contains_key("properties") || s.contains_key("additionalProperties"))
                .collect();
            // Not a mapping where one is expected: the typed read reports that.
            if objects.is_empty() {
                return;
            }
            let open = objects
                .iter()
                .find_map(|s| s.get("additionalProperties").filter(|v| v.is_object()));
            let closed = open.is_none()
                && objects.iter().all(|s| {
                    s.get("additionalProperties") == Some(&serde_json::Value::Bool(false))
                });
            let property = |key: &str| {
                objects
                    .iter()
                    .find_map(|s| s.get("properties")?.as_object()?.get(key))
            };
            for entry in entries {
                match property(&entry.key).or(open) {
                    Some(child) => walk(root, child, &entry.value, &path.key(&entry.key), found),
                    None if closed => found.push(UnknownKey {
                        parent: path.clone(),
                        key: entry.key.clone(),
                        known: objects
                            .iter()
                            .filter_map(|s| s.get("properties")?.as_object())
                            .flat_map(|p| p.keys().cloned())
                            .collect(),
                        choice: objects.len() > 1,
                    }),
                    None => {}
                }
            }
        }
        NodeKind::Seq(items) => {
            if let Some(item_schema) = shapes.iter().find_map(|s| s.get("items")) {
                for (i, item) in items.iter().enumerate() {
                    walk(root, item_schema, item, &path.index(i), found);
                }
            }
        }
        NodeKind::Scalar => {}
    }
}

/// The known key a typo most likely meant: the same but for case, or within a small
/// edit distance (a third of the key's length, at least one edit).
fn closest<'a>(key: &str, known: &'a [String]) -> Option<&'a str> {
    let budget = (key.chars().count() / 3).max(1);
    known
        .iter()
        .map(|k| {
            let distance = if k.eq_ignore_ascii_case(key) {
                0
            } else {
                edit_distance(&key.to_ascii_lowercase(), &k.to_ascii_lowercase())
            };
            (distance, k)
        })
        .filter(|(d, _)| *d <= budget)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k.as_str())
}

/// Optimal string alignment distance: insertions, deletions, substitutions and swaps of
/// neighbours (`desiredCuont`) each cost one.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

/// A deserializer adapter that skips the keys a struct does not declare, so a document
/// with unknown fields is still read and checked. The keys themselves are reported by
/// the schema walk ([`unknown_keys`]); the adapter only counts what it skipped, as a
/// cross-check. Everything else passes through unchanged, including the types' own
/// error messages.
mod lenient {
    use std::cell::Cell;
    use std::fmt;

    use serde::de::{
        self, DeserializeSeed, Deserializer, EnumAccess, MapAccess, SeqAccess, VariantAccess,
        Visitor,
    };

    use super::KeyText;

    pub(super) struct Lenient<'s, D> {
        inner: D,
        skipped: &'s Cell<usize>,
    }

    impl<'s, D> Lenient<'s, D> {
        pub(super) fn new(inner: D, skipped: &'s Cell<usize>) -> Self {
            Lenient { inner, skipped }
        }
    }

    struct Wrap<'s, V> {
        inner: V,
        fields: Option<&'static [&'static str]>,
        skipped: &'s Cell<usize>,
    }

    macro_rules! forward_deserialize {
        ($($method:ident)*) => {$(
            fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
                self.inner.$method(Wrap { inner: visitor, fields: None, skipped: self.skipped })
            }
        )*};
    }

    impl<'de, D: Deserializer<'de>> Deserializer<'de> for Lenient<'_, D> {
        type Error = D::Error;

        forward_deserialize! {
            deserialize_any deserialize_bool deserialize_i8 deserialize_i16 deserialize_i32
            deserialize_i64 deserialize_i128 deserialize_u8 deserialize_u16 deserialize_u32
            deserialize_u64 deserialize_u128 deserialize_f32 deserialize_f64 deserialize_char
            deserialize_str deserialize_string deserialize_bytes deserialize_byte_buf
            deserialize_option deserialize_unit deserialize_seq deserialize_map
            deserialize_identifier deserialize_ignored_any
        }

        fn deserialize_unit_struct<V: Visitor<'de>>(
            self,
            name: &'static str,
            visitor: V,
        ) -> Result<V::Value, D::Error> {
            let skipped = self.skipped;
            self.inner
                .deserialize_unit_struct(name, wrap(visitor, None, skipped))
        }
        fn deserialize_newtype_struct<V: Visitor<'de>>(
            self,
            name: &'static str,
            visitor: V,
        ) -> Result<V::Value, D::Error> {
            let skipped = self.skipped;
            self.inner
                .deserialize_newtype_struct(name, wrap(visitor, None, skipped))
        }
        fn deserialize_tuple<V: Visitor<'de>>(
            self,
            len: usize,
            visitor: V,
        ) -> Result<V::Value, D::Error> {
            let skipped = self.skipped;
            self.inner
                .deserialize_tuple(len, wrap(visitor, None, skipped))
        }
        fn deserialize_tuple_struct<V: Visitor<'de>>(
            self,
            name: &'static str,
            len: usize,
            visitor: V,
        ) -> Result<V::Value, D::Error> {
            let skipped = self.skipped;
            self.inner
                .deserialize_tuple_struct(name, len, wrap(visitor, None, skipped))
        }
        fn deserialize_struct<V: Visitor<'de>>(
            self,
            name: &'static str,
            fields: &'static [&'static str],
            visitor: V,
        ) -> Result<V::Value, D::Error> {
            let skipped = self.skipped;
            self.inner
                .deserialize_struct(name, fields, wrap(visitor, Some(fields), skipped))
        }
        fn deserialize_enum<V: Visitor<'de>>(
            self,
            name: &'static str,
            variants: &'static [&'static str],
            visitor: V,
        ) -> Result<V::Value, D::Error> {
            let skipped = self.skipped;
            self.inner
                .deserialize_enum(name, variants, wrap(visitor, None, skipped))
        }
        fn is_human_readable(&self) -> bool {
            self.inner.is_human_readable()
        }
    }

    fn wrap<'s, V>(
        inner: V,
        fields: Option<&'static [&'static str]>,
        skipped: &'s Cell<usize>,
    ) -> Wrap<'s, V> {
        Wrap {
            inner,
            fields,
            skipped,
        }
    }

    macro_rules! forward_visit {
        ($($method:ident: $ty:ty)*) => {$(
            fn $method<E: de::Error>(self, v: $ty) -> Result<V::Value, E> {
                self.inner.$method(v)
            }
        )*};
    }

    impl<'de, V: Visitor<'de>> Visitor<'de> for Wrap<'_, V> {
        type Value = V::Value;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            self.inner.expecting(f)
        }

        forward_visit! {
            visit_bool: bool visit_i8: i8 visit_i16: i16 visit_i32: i32 visit_i64: i64
            visit_i128: i128 visit_u8: u8 visit_u16: u16 visit_u32: u32 visit_u64: u64
            visit_u128: u128 visit_f32: f32 visit_f64: f64 visit_char: char
            visit_str: &str visit_borrowed_str: &'de str visit_string: String
            visit_bytes: &[u8] visit_borrowed_bytes: &'de [u8] visit_byte_buf: Vec<u8>
        }

        fn visit_none<E: de::Error>(self) -> Result<V::Value, E> {
            self.inner.visit_none()
        }
        fn visit_unit<E: de::Error>(self) -> Result<V::Value, E> {
            self.inner.visit_unit()
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<V::Value, D::Error> {
            self.inner.visit_some(Lenient::new(d, self.skipped))
        }
        fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<V::Value, D::Error> {
            self.inner
                .visit_newtype_struct(Lenient::new(d, self.skipped))
        }
        fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<V::Value, A::Error> {
            self.inner.visit_seq(Seq {
                inner: seq,
                skipped: self.skipped,
            })
        }
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<V::Value, A::Error> {
            self.inner.visit_map(Map {
                inner: map,
                fields: self.fields,
                skipped: self.skipped,
            })
        }
        fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<V::Value, A::Error> {
            self.inner.visit_enum(Enum {
                inner: data,
                skipped: self.skipped,
            })
        }
    }

    struct Seed<'s, S> {
        inner: S,
        skipped: &'s Cell<usize>,
    }

    impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for Seed<'_, S> {
        type Value = S::Value;
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<S::Value, D::Error> {
            self.inner.deserialize(Lenient::new(d, self.skipped))
        }
    }

    struct Seq<'s, A> {
        inner: A,
        skipped: &'s Cell<usize>,
    }

    impl<'de, A: SeqAccess<'de>> SeqAccess<'de> for Seq<'_, A> {
        type Error = A::Error;
        fn next_element_seed<T: DeserializeSeed<'de>>(
            &mut self,
            seed: T,
        ) -> Result<Option<T::Value>, A::Error> {
            self.inner.next_element_seed(Seed {
                inner: seed,
                skipped: self.skipped,
            })
        }
        fn size_hint(&self) -> Option<usize> {
            self.inner.size_hint()
        }
    }

    struct Map<'s, A> {
        inner: A,
        /// The struct's declared keys; `None` for a plain map, whose keys are all data.
        fields: Option<&'static [&'static str]>,
        skipped: &'s Cell<usize>,
    }

    impl<'de, A: MapAccess<'de>> MapAccess<'de> for Map<'_, A> {
        type Error = A::Error;
        fn next_key_seed<K: DeserializeSeed<'de>>(
            &mut self,
            seed: K,
        ) -> Result<Option<K::Value>, A::Error> {
            let Some(fields) = self.fields else {
                return self.inner.next_key_seed(Seed {
                    inner: seed,
                    skipped: self.skipped,
                });
            };
            loop {
                let Some(KeyText(key)) = self.inner.next_key::<KeyText>()? else {
                    return Ok(None);
                };
                if fields.contains(&key.as_str()) {
                    let key: de::value::StringDeserializer<A::Error> =
                        de::IntoDeserializer::into_deserializer(key);
                    return seed.deserialize(key).map(Some);
                }
                self.inner.next_value::<de::IgnoredAny>()?;
                self.skipped.set(self.skipped.get() + 1);
            }
        }
        fn next_value_seed<T: DeserializeSeed<'de>>(
            &mut self,
            seed: T,
        ) -> Result<T::Value, A::Error> {
            self.inner.next_value_seed(Seed {
                inner: seed,
                skipped: self.skipped,
            })
        }
        fn size_hint(&self) -> Option<usize> {
            self.inner.size_hint()
        }
    }

    struct Enum<'s, A> {
        inner: A,
        skipped: &'s Cell<usize>,
    }

    impl<'de, 's, A: EnumAccess<'de>> EnumAccess<'de> for Enum<'s, A> {
        type Error = A::Error;
        type Variant = Variant<'s, A::Variant>;
        fn variant_seed<S: DeserializeSeed<'de>>(
            self,
            seed: S,
        ) -> Result<(S::Value, Self::Variant), A::Error> {
            let (value, variant) = self.inner.variant_seed(seed)?;
            Ok((
                value,
                Variant {
                    inner: variant,
                    skipped: self.skipped,
                },
            ))
        }
    }

    struct Variant<'s, A> {
        inner: A,
        skipped: &'s Cell<usize>,
    }

    impl<'de, A: VariantAccess<'de>> VariantAccess<'de> for Variant<'_, A> {
        type Error = A::Error;
        fn unit_variant(self) -> Result<(), A::Error> {
            self.inner.unit_variant()
        }
        fn newtype_variant_seed<T: DeserializeSeed<'de>>(
            self,
            seed: T,
        ) -> Result<T::Value, A::Error> {
            self.inner.newtype_variant_seed(Seed {
                inner: seed,
                skipped: self.skipped,
            })
        }
        fn tuple_variant<V: Visitor<'de>>(
            self,
            len: usize,
            visitor: V,
        ) -> Result<V::Value, A::Error> {
            self.inner
                .tuple_variant(len, wrap(visitor, None, self.skipped))
        }
        fn struct_variant<V: Visitor<'de>>(
            self,
            fields: &'static [&'static str],
            visitor: V,
        ) -> Result<V::Value, A::Error> {
            self.inner
                .struct_variant(fields, wrap(visitor, Some(fields), self.skipped))
        }
    }
}

// ---------------------------------------------------------------------------------------
// Semantic rules
// ---------------------------------------------------------------------------------------

/// A rule violation before it is given a source location.
struct Finding {
    path: DocPath,
    message: String,
}

#[derive(Default)]
struct Checker {
    findings: Vec<Finding>,
}

impl Checker {
    fn fail(&mut self, path: &DocPath, message: impl Into<String>) {
        self.findings.push(Finding {
            path: path.clone(),
            message: message.into(),
        });
    }

    fn dns_name(&mut self, path: &DocPath, name: &str) {
        if let Err(problem) = dns_label(name) {
            self.fail(path, problem);
        }
    }

    fn range(&mut self, path: &DocPath, value: u32, low: u32, high: u32) {
        if !(low..=high).contains(&value) {
            self.fail(
                path,
                format!("must be between {low} and {high} (got {value})"),
            );
        }
    }

    fn positive_duration(&mut self, path: &DocPath, duration: Option<&DurationSpec>) {
        if let Some(d) = duration
            && d.0.is_zero()
        {
            self.fail(path, "must be longer than 0s");
        }
    }
}

fn check(app: &Application) -> Vec<Finding> {
    let mut c = Checker::default();
    let root = DocPath::default();
    if app.api_version != API_VERSION {
        c.fail(
            &root.key("apiVersion"),
            format!("must be `{API_VERSION}` (got `{}`)", app.api_version),
        );
    }
    if app.kind != KIND {
        c.fail(
            &root.key("kind"),
            format!("must be `{KIND}` (got `{}`)", app.kind),
        );
    }
    check_metadata(&mut c, app, &root.key("metadata"));

    let spec = root.key("spec");
    check_platform(&mut c, app, &spec.key("platform"));

    let templates: BTreeSet<&str> = app
        .spec
        .analysis_templates
        .iter()
        .map(|t| t.name.as_str())
        .collect();
    let models: BTreeSet<&str> = app.spec.models.iter().map(|m| m.name.as_str()).collect();

    let workloads = spec.key("workloads");
    if app.spec.workloads.is_empty() {
        c.fail(&workloads, "at least one workload is required");
    }
    unique_names(
        &mut c,
        &workloads,
        app.spec.workloads.iter().map(|w| w.name.as_str()),
        "workload",
    );
    for (i, workload) in app.spec.workloads.iter().enumerate() {
        check_workload(
            &mut c,
            app,
            workload,
            &workloads.index(i),
            &templates,
            &models,
        );
    }
    check_routes_together(&mut c, app, &workloads);
    check_service_names(&mut c, app, &workloads);
    check_discovery_names(&mut c, app, &workloads);
    for (i, w) in app.spec.workloads.iter().enumerate() {
        if let Some(scaling) = &w.auto_scaling {
            check_auto_scaling(
                &mut c,
                app,
                w,
                scaling,
                &workloads.index(i).key("autoScaling"),
            );
        }
    }

    let template_path = spec.key("analysisTemplates");
    unique_names(
        &mut c,
        &template_path,
        app.spec.analysis_templates.iter().map(|t| t.name.as_str()),
        "analysis template",
    );
    for (i, template) in app.spec.analysis_templates.iter().enumerate() {
        check_template(&mut c, template, &template_path.index(i));
    }
    check_analysis_usage(&mut c, app, &workloads);

    let model_path = spec.key("models");
    unique_names(
        &mut c,
        &model_path,
        app.spec.models.iter().map(|m| m.name.as_str()),
        "model",
    );
    for (i, model) in app.spec.models.iter().enumerate() {
        check_model(&mut c, model, &model_path.index(i));
    }

    check_notifications(&mut c, app, &spec.key("notifications"));

    if let Some(overrides) = &app.spec.overrides {
        let path = spec.key("overrides").key("ssmPrefix");
        if let Err(problem) = ssm_parameter_name(&overrides.ssm_prefix) {
            c.fail(&path, problem);
        } else if !overrides.ssm_prefix.starts_with('/') {
            c.fail(
                &path,
                "must start with `/`, e.g. `/tugboat/prod/prediction-app`",
            );
        }
    }
    let progressive: Vec<String> = app
        .spec
        .workloads
        .iter()
        .filter(|w| w.is_progressive())
        .map(|w| format!("`{}`", w.name))
        .collect();
    if app.spec.status.is_none() && !progressive.is_empty() {
        let example = match app.spec.platform {
            Platform::Aws(_) => format!(
                "`status: {{uri: s3://BUCKET/{}/{}/status.json}}`",
                app.metadata.name, app.metadata.environment
            ),
            Platform::Local(_) => "`status: {uri: file://.tugboat/status.json}`".to_string(),
        };
        c.fail(
            &spec.key("status"),
            format!(
                "required because {} roll out through canary or blueGreen steps: the step, pause and analysis a rollout has reached are kept there, and after a restart without them a rollout cannot be resumed safely (a canary paused at 60% could be taken as finished); add e.g. {example}",
                progressive.join(", ")
            ),
        );
    }
    if let Some(status) = &app.spec.status {
        let path = spec.key("status").key("uri");
        let valid = match status.uri.split_once("://") {
            Some(("s3", rest)) => rest
                .split_once('/')
                .is_some_and(|(bucket, key)| s3_bucket(bucket).is_ok() && !key.is_empty()),
            Some(("file", rest)) => !rest.is_empty(),
            _ => false,
        };
        if !valid {
            c.fail(
                &path,
                format!(
                    "must be `s3://bucket/key` or `file://path` (got `{}`)",
                    status.uri
                ),
            );
        }
    }
    c.findings
}

fn check_metadata(c: &mut Checker, app: &Application, path: &DocPath) {
    c.dns_name(&path.key("name"), &app.metadata.name);
    c.dns_name(&path.key("environment"), &app.metadata.environment);
    let labels = path.key("labels");
    for (key, value) in &app.metadata.labels {
        let label = labels.key(key);
        // Labels become AWS tags: the same limits apply.
        if key.is_empty() || key.chars().count() > 128 {
            c.fail(
                &label,
                "label keys must be 1 to 128 characters (AWS tag keys)",
            );
        } else if key.to_ascii_lowercase().starts_with("aws:") {
            c.fail(
                &label,
                "the `aws:` prefix is reserved by AWS for its own tags",
            );
        }
        if value.chars().count() > 256 {
            c.fail(
                &label,
                "label values must be at most 256 characters (AWS tag values)",
            );
        }
    }
}

fn check_platform(c: &mut Checker, app: &Application, path: &DocPath) {
    match &app.spec.platform {
        Platform::Aws(aws) => {
            let path = path.key("aws");
            if !is_region(&aws.region) {
                c.fail(
                    &path.key("region"),
                    format!(
                        "`{}` is not an AWS region name such as `ap-south-1`",
                        aws.region
                    ),
                );
            }
            if aws.cluster.trim().is_empty() {
                c.fail(&path.key("cluster"), "must name an ECS cluster");
            }
            if aws.subnets.is_empty() {
                c.fail(&path.key("subnets"), "at least one subnet is required");
            }
            for (i, subnet) in aws.subnets.iter().enumerate() {
                if !subnet.starts_with("subnet-") {
                    c.fail(
                        &path.key("subnets").index(i),
                        format!("`{subnet}` is not a subnet id (`subnet-...`)"),
                    );
                }
            }
            if aws.security_groups.is_empty() {
                c.fail(
                    &path.key("securityGroups"),
                    "at least one security group is required",
                );
            }
            for (i, group) in aws.security_groups.iter().enumerate() {
                if !group.starts_with("sg-") {
                    c.fail(
                        &path.key("securityGroups").index(i),
                        format!("`{group}` is not a security group id (`sg-...`)"),
                    );
                }
            }
            arn_of(
                c,
                &path.key("executionRoleArn"),
                &aws.execution_role_arn,
                &["iam"],
            );
            if let Some(role) = &aws.task_role_arn {
                arn_of(c, &path.key("taskRoleArn"), role, &["iam"]);
            }
            match &aws.listener_arn {
                Some(listener) => arn_of(
                    c,
                    &path.key("listenerArn"),
                    listener,
                    &["elasticloadbalancing"],
                ),
                None => {
                    if let Some(routed) = app.spec.workloads.iter().find(|w| w.route.is_some()) {
                        c.fail(
                            &path.key("listenerArn"),
                            format!(
                                "required: workload `{}` has a route, and routes are rules on this ALB listener",
                                routed.name
                            ),
                        );
                    }
                }
            }
        }
        Platform::Local(local) => {
            let localhost = local
                .listen
                .strip_prefix("localhost:")
                .is_some_and(|port| port.parse::<u16>().is_ok());
            if !localhost && local.listen.parse::<SocketAddr>().is_err() {
                c.fail(
                    &path.key("local").key("listen"),
                    format!(
                        "`{}` is not an address and port such as `127.0.0.1:8080`",
                        local.listen
                    ),
                );
            }
            if let Some(dir) = &local.state_dir
                && dir.trim().is_empty()
            {
                c.fail(&path.key("local").key("stateDir"), "must not be empty");
            }
        }
    }
}

fn check_workload(
    c: &mut Checker,
    app: &Application,
    w: &Workload,
    path: &DocPath,
    templates: &BTreeSet<&str>,
    models: &BTreeSet<&str>,
) {
    c.dns_name(&path.key("name"), &w.name);
    if w.image.trim().is_empty() || w.image.chars().any(char::is_whitespace) {
        c.fail(
            &path.key("image"),
            format!("`{}` is not an image reference", w.image),
        );
    }
    check_fargate_size(c, w, path);
    if w.desired_count > MAX_DESIRED_COUNT {
        c.fail(
            &path.key("desiredCount"),
            format!(
                "must be at most {MAX_DESIRED_COUNT} (got {})",
                w.desired_count
            ),
        );
    }
    if w.desired_count == 0 && w.is_progressive() {
        c.fail(
            &path.key("desiredCount"),
            format!(
                "must be at least 1 for the {} strategy: a slot with no tasks has no unhealthy targets either, so weight could move onto a slot that cannot serve a request; use `rolling` for a workload scaled to zero, or remove the workload",
                strategy_name(&w.strategy)
            ),
        );
    }
    match w.container_port {
        Some(0) => c.fail(&path.key("containerPort"), "must be between 1 and 65535"),
        None if w.route.is_some() => c.fail(
            &path.key("containerPort"),
            "required with a route: the load balancer sends traffic to this port of the main container",
        ),
        _ => {}
    }
    check_variables(c, w, path);
    check_containers(c, w, path);
    if let Some(settings) = &w.service {
        check_service_settings(c, w, settings, &path.key("service"));
        check_discovery(c, w, settings, path);
    }
    if let Some(route) = &w.route {
        check_additional_target_groups(c, w, route, &path.key("route"));
        check_route_conditions(c, route, &path.key("route"));
    }
    if let Some(hc) = &w.health_check {
        check_health_check(c, hc, &path.key("healthCheck"));
    }
    if let Some(logs) = &w.log_configuration {
        check_logs(c, logs, &path.key("logConfiguration"));
    }
    if let Some(route) = &w.route {
        check_route(c, app, w, route, &path.key("route"));
    } else if w.is_progressive() {
        c.fail(
            &path.key("route"),
            format!(
                "required for the {} strategy: traffic moves between the route's two target groups",
                strategy_name(&w.strategy)
            ),
        );
    }
    let strategy = path.key("strategy");
    match &w.strategy {
        Strategy::Rolling(rolling) => {
            let path = strategy.key("rolling");
            if let Some(max) = rolling.maximum_percent
                && max < 100
            {
                c.fail(
                    &path.key("maximumPercent"),
                    format!("must be at least 100 (got {max})"),
                );
            }
            if let Some(min) = rolling.minimum_healthy_percent
                && min > 100
            {
                c.fail(
                    &path.key("minimumHealthyPercent"),
                    format!("must be between 0 and 100 (got {min})"),
                );
            }
            if rolling.maximum_percent == Some(100)
                && rolling.minimum_healthy_percent.unwrap_or(100) == 100
            {
                c.fail(
                    &path,
                    "maximumPercent 100 with minimumHealthyPercent 100 leaves ECS no room to start a new task",
                );
            }
        }
        Strategy::BlueGreen(bg) => {
            check_blue_green(c, bg, &strategy.key("blueGreen"), templates);
        }
        Strategy::Canary(canary) => {
            check_canary(c, canary, &strategy.key("canary"), templates);
            check_header_routes(c, w, canary, &strategy.key("canary"));
        }
    }
    if let Some(model) = &w.model
        && !models.contains(model.as_str())
    {
        c.fail(
            &path.key("model"),
            format!("no model named `{model}` in spec.models{}", known(models)),
        );
    }
}

// ---------------------------------------------------------------------------------------
// Containers of one task: the main container, its sidecars, volumes and task settings
// ---------------------------------------------------------------------------------------

/// Fargate's longest `stopTimeout`, in seconds.
const MAX_STOP_TIMEOUT: u32 = 120;

/// One container of a workload's task, seen the same way whether main or sidecar.
struct TaskContainer<'a> {
    name: &'a str,
    path: DocPath,
    /// Where the container's options sit: the workload's `container`, or the sidecar.
    options_path: DocPath,
    options: ContainerOptions,
    has_health_check: bool,
    log_driver: Option<&'a str>,
}

fn task_containers<'a>(w: &'a Workload, path: &DocPath) -> Vec<TaskContainer<'a>> {
    let mut out = vec![TaskContainer {
        name: crate::taskdef::main_container_name(w),
        path: path.clone(),
        options_path: path.key("container"),
        options: w.container.clone().unwrap_or_default(),
        has_health_check: w.health_check.is_some(),
        log_driver: w.log_configuration.as_ref().map(|l| l.log_driver.as_str()),
    }];
    for (i, s) in w.sidecars.iter().enumerate() {
        let p = path.key("sidecars").index(i);
        out.push(TaskContainer {
            name: &s.name,
            path: p.clone(),
            options_path: p,
            options: s.options(),
            has_health_check: s.health_check.is_some(),
            log_driver: s.log_configuration.as_ref().map(|l| l.log_driver.as_str()),
        });
    }
    out
}

/// Rules over the task's containers together: names, essential, dependencies, sizes,
/// ports, volumes, FireLens, roles and task settings.
fn check_containers(c: &mut Checker, w: &Workload, path: &DocPath) {
    let containers = task_containers(w, path);
    // Names: ECS's pattern, unique in the task.
    let mut seen: BTreeMap<&str, &DocPath> = BTreeMap::new();
    for tc in &containers {
        let name_path = if tc.path == *path {
            path.key("containerName")
        } else {
            tc.path.key("name")
        };
        if !is_container_name(tc.name) {
            c.fail(
                &name_path,
                format!(
                    "`{}` is not a container name (up to 255 letters, digits, `-` and `_`)",
                    tc.name
                ),
            );
        }
        if let Some(first) = seen.get(tc.name) {
            c.fail(
                &name_path,
                format!(
                    "duplicate container name `{}` (first at {first}); container names are unique in a task",
                    tc.name
                ),
            );
        } else {
            seen.insert(tc.name, &tc.path);
        }
    }
    if !containers
        .iter()
        .any(|tc| tc.options.essential.unwrap_or(true))
    {
        c.fail(
            &path.key("container").key("essential"),
            "at least one container of the task must be essential (ECS refuses a task definition without one)",
        );
    }
    for (i, s) in w.sidecars.iter().enumerate() {
        check_sidecar(c, s, &path.key("sidecars").index(i));
    }
    check_dependencies(c, &containers);
    check_container_sizes(c, w, &containers);
    check_ports(c, w, &containers);
    check_volumes(c, w, &containers, path);
    check_firelens(c, &containers);
    for (field, arn) in [
        ("taskRoleArn", &w.task_role_arn),
        ("executionRoleArn", &w.execution_role_arn),
    ] {
        if let Some(arn) = arn {
            arn_of(c, &path.key(field), arn, &["iam"]);
        }
    }
    if let Some(e) = &w.ephemeral_storage {
        c.range(
            &path.key("ephemeralStorage").key("sizeInGiB"),
            e.size_in_gib,
            21,
            200,
        );
    }
    for tc in &containers {
        let o = &tc.options;
        if let Some(t) = o.stop_timeout
            && t > MAX_STOP_TIMEOUT
        {
            c.fail(
                &tc.options_path.key("stopTimeout"),
                format!("must be at most {MAX_STOP_TIMEOUT} seconds on Fargate (got {t})"),
            );
        }
        for (j, u) in o.ulimits.iter().enumerate() {
            if u.soft_limit > u.hard_limit {
                c.fail(
                    &tc.options_path.key("ulimits").index(j),
                    format!(
                        "softLimit {} is above hardLimit {}",
                        u.soft_limit, u.hard_limit
                    ),
                );
            }
        }
        if let Some(rc) = &o.repository_credentials {
            arn_of(
                c,
                &tc.options_path
                    .key("repositoryCredentials")
                    .key("credentialsParameter"),
                &rc.credentials_parameter,
                &["secretsmanager"],
            );
        }
    }
}

fn is_container_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        && !name.starts_with(['-', '_'])
}

fn check_sidecar(c: &mut Checker, s: &Sidecar, path: &DocPath) {
    if s.image.trim().is_empty() || s.image.chars().any(char::is_whitespace) {
        c.fail(
            &path.key("image"),
            format!("`{}` is not an image reference", s.image),
        );
    }
    for (section, vars) in [("environment", &s.environment), ("secrets", &s.secrets)] {
        for name in vars.keys() {
            if !is_env_name(name) {
                c.fail(
                    &path.key(section).key(name),
                    "not a valid environment variable name (letters, digits and `_`, not starting with a digit)",
                );
            }
        }
    }
    for (name, value) in &s.secrets {
        let var = path.key("secrets").key(name);
        if s.environment.contains_key(name) {
            c.fail(
                &var,
                format!("`{name}` is also set in environment; a variable has one source"),
            );
        }
        secret_reference(c, &var, name, value);
    }
    if let Some(hc) = &s.health_check {
        check_health_check(c, hc, &path.key("healthCheck"));
    }
    if let Some(logs) = &s.log_configuration {
        check_logs(c, logs, &path.key("logConfiguration"));
    }
}

fn check_dependencies(c: &mut Checker, containers: &[TaskContainer<'_>]) {
    let by_name: BTreeMap<&str, &TaskContainer<'_>> =
        containers.iter().map(|tc| (tc.name, tc)).collect();
    for tc in containers {
        for (j, dep) in tc.options.depends_on.iter().enumerate() {
            let dep_path = tc.options_path.key("dependsOn").index(j);
            match by_name.get(dep.container_name.as_str()) {
                None => c.fail(
                    &dep_path.key("containerName"),
                    format!(
                        "no container named `{}` in this task (containers: {})",
                        dep.container_name,
                        containers
                            .iter()
                            .map(|t| format!("`{}`", t.name))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ),
                Some(target) if target.name == tc.name => c.fail(
                    &dep_path.key("containerName"),
                    "a container cannot depend on itself",
                ),
                Some(target)
                    if dep.condition == DependencyCondition::Healthy
                        && !target.has_health_check =>
                {
                    c.fail(
                        &dep_path.key("condition"),
                        format!(
                            "HEALTHY needs a healthCheck on `{}`, which has none",
                            target.name
                        ),
                    )
                }
                Some(target)
                    if matches!(
                        dep.condition,
                        DependencyCondition::Complete | DependencyCondition::Success
                    ) && target.options.essential.unwrap_or(true) =>
                {
                    c.fail(
                        &dep_path.key("condition"),
                        format!(
                            "{} waits for `{}` to exit, but it is essential: its exit stops the task; mark it `essential: false`",
                            dep.condition.as_str(),
                            target.name
                        ),
                    )
                }
                Some(_) => {}
            }
        }
    }
    // A cycle would keep every container in it from ever starting.
    for start in containers {
        let mut stack: Vec<&str> = vec![start.name];
        let mut visited: BTreeSet<&str> = BTreeSet::new();
        while let Some(name) = stack.pop() {
            let Some(tc) = by_name.get(name) else {
                continue;
            };
            for dep in &tc.options.depends_on {
                if dep.container_name == start.name && dep.container_name != tc.name {
                    c.fail(
                        &start.options_path.key("dependsOn"),
                        format!(
                            "`{}` depends on itself through `{}`: no container of the cycle could start",
                            start.name, tc.name
                        ),
                    );
                    stack.clear();
                    break;
                }
                if visited.insert(dep.container_name.as_str()) {
                    stack.push(dep.container_name.as_str());
                }
            }
        }
    }
}

fn check_container_sizes(c: &mut Checker, w: &Workload, containers: &[TaskContainer<'_>]) {
    let cpu: u32 = containers.iter().filter_map(|tc| tc.options.cpu).sum();
    if cpu > w.cpu {
        let at = containers
            .iter()
            .rev()
            .find(|tc| tc.options.cpu.is_some())
            .map(|tc| tc.options_path.key("cpu"))
            .unwrap_or_default();
        c.fail(
            &at,
            format!(
                "the containers reserve {cpu} CPU units together, more than the task's cpu {}",
                w.cpu
            ),
        );
    }
    let mut reserved = 0;
    for tc in containers {
        let o = &tc.options;
        if let Some(m) = o.memory
            && m > w.memory
        {
            c.fail(
                &tc.options_path.key("memory"),
                format!("{m} MiB is more than the task's memory {} MiB", w.memory),
            );
        }
        if let (Some(soft), Some(hard)) = (o.memory_reservation, o.memory)
            && soft > hard
        {
            c.fail(
                &tc.options_path.key("memoryReservation"),
                format!("{soft} MiB is above the container's memory limit {hard} MiB"),
            );
        }
        reserved += o.memory_reservation.or(o.memory).unwrap_or(0);
    }
    if reserved > w.memory {
        c.fail(
            &containers
                .iter()
                .rev()
                .find(|tc| tc.options.memory.or(tc.options.memory_reservation).is_some())
                .map(|tc| tc.options_path.clone())
                .unwrap_or_default(),
            format!(
                "the containers reserve {reserved} MiB together (memoryReservation, else memory), more than the task's memory {} MiB",
                w.memory
            ),
        );
    }
}

fn check_ports(c: &mut Checker, w: &Workload, containers: &[TaskContainer<'_>]) {
    // awsvpc: the containers of a task share one network namespace, so a port is bound
    // once in the whole task; port names are Service Connect's handles.
    let mut ports: BTreeMap<(u16, bool), &str> = BTreeMap::new();
    let mut names: BTreeMap<&str, &str> = BTreeMap::new();
    for tc in containers {
        let main = tc.path.key("container") == tc.options_path;
        if main
            && !tc
                .options
                .port_mappings
                .iter()
                .any(|p| Some(p.container_port) == w.container_port)
            && let Some(port) = w.container_port
        {
            // containerPort is registered first when portMappings does not list it.
            ports.insert((port, false), tc.name);
        }
        for (j, p) in tc.options.port_mappings.iter().enumerate() {
            let p_path = tc.options_path.key("portMappings").index(j);
            if p.container_port == 0 {
                c.fail(&p_path.key("containerPort"), "must be between 1 and 65535");
            }
            if let Some(host) = p.host_port
                && host != p.container_port
            {
                c.fail(
                    &p_path.key("hostPort"),
                    format!(
                        "must equal containerPort {} on Fargate (awsvpc), or be left out (got {host})",
                        p.container_port
                    ),
                );
            }
            let udp = p.protocol == Some(crate::document::PortProtocol::Udp);
            if let Some(other) = ports.insert((p.container_port, udp), tc.name) {
                c.fail(
                    &p_path.key("containerPort"),
                    format!(
                        "port {} is already mapped by `{other}`; the containers of a Fargate task share one network",
                        p.container_port
                    ),
                );
            }
            if let Some(name) = &p.name {
                if dns_label(name).is_err() {
                    c.fail(
                        &p_path.key("name"),
                        format!("`{name}` is not a port name (lower-case letters, digits and `-`)"),
                    );
                }
                if let Some(other) = names.insert(name, tc.name) {
                    c.fail(
                        &p_path.key("name"),
                        format!("port name `{name}` is already used by `{other}`"),
                    );
                }
            }
        }
    }
}

fn check_volumes(c: &mut Checker, w: &Workload, containers: &[TaskContainer<'_>], path: &DocPath) {
    let volumes = path.key("volumes");
    unique_names(
        c,
        &volumes,
        w.volumes.iter().map(|v| v.name.as_str()),
        "volume",
    );
    for (i, v) in w.volumes.iter().enumerate() {
        check_volume(c, v, &volumes.index(i));
    }
    let names: BTreeSet<&str> = w.volumes.iter().map(|v| v.name.as_str()).collect();
    for tc in containers {
        for (j, m) in tc.options.mount_points.iter().enumerate() {
            let m_path = tc.options_path.key("mountPoints").index(j);
            if !names.contains(m.source_volume.as_str()) {
                c.fail(
                    &m_path.key("sourceVolume"),
                    format!(
                        "no volume named `{}` in this workload's volumes{}",
                        m.source_volume,
                        known(&names)
                    ),
                );
            }
            if !m.container_path.starts_with('/') {
                c.fail(
                    &m_path.key("containerPath"),
                    format!("`{}` is not an absolute path", m.container_path),
                );
            }
        }
    }
}

fn check_volume(c: &mut Checker, v: &Volume, path: &DocPath) {
    if !is_container_name(&v.name) {
        c.fail(
            &path.key("name"),
            format!(
                "`{}` is not a volume name (up to 255 letters, digits, `-` and `_`)",
                v.name
            ),
        );
    }
    let Some(efs) = &v.efs_volume_configuration else {
        return;
    };
    let efs_path = path.key("efsVolumeConfiguration");
    if !efs.file_system_id.starts_with("fs-") {
        c.fail(
            &efs_path.key("fileSystemId"),
            format!(
                "`{}` is not an EFS file system id (`fs-...`)",
                efs.file_system_id
            ),
        );
    }
    let auth = efs.authorization_config.as_ref();
    let access_point = auth.and_then(|a| a.access_point_id.as_ref());
    let iam = auth.and_then(|a| a.iam) == Some(Toggle::Enabled);
    if (access_point.is_some() || iam) && efs.transit_encryption != Some(Toggle::Enabled) {
        c.fail(
            &efs_path.key("transitEncryption"),
            "must be ENABLED with an access point or IAM authorization (ECS refuses it otherwise)",
        );
    }
    if access_point.is_some() && efs.root_directory.as_deref().is_some_and(|r| r != "/") {
        c.fail(
            &efs_path.key("rootDirectory"),
            "must be `/` or left out with an access point: the access point sets the directory",
        );
    }
    if efs.transit_encryption_port.is_some() && efs.transit_encryption != Some(Toggle::Enabled) {
        c.fail(
            &efs_path.key("transitEncryptionPort"),
            "only applies with transitEncryption ENABLED",
        );
    }
}

fn check_firelens(c: &mut Checker, containers: &[TaskContainer<'_>]) {
    let routers: Vec<&TaskContainer<'_>> = containers
        .iter()
        .filter(|tc| tc.options.firelens_configuration.is_some())
        .collect();
    if let [_, second, ..] = routers.as_slice() {
        c.fail(
            &second.options_path.key("firelensConfiguration"),
            format!(
                "`{}` is a second FireLens log router; a task has at most one",
                second.name
            ),
        );
    }
    if routers.is_empty() {
        for tc in containers {
            if tc.log_driver == Some("awsfirelens") {
                c.fail(
                    &tc.path.key("logConfiguration").key("logDriver"),
                    "awsfirelens needs a log router: a sidecar with `firelensConfiguration` (e.g. aws-for-fluent-bit)",
                );
            }
        }
    }
}

/// A further target group pairs a port some container of the task maps with a target
/// group of its own, on a rolling workload.
fn check_additional_target_groups(c: &mut Checker, w: &Workload, route: &Route, path: &DocPath) {
    let list = path.key("additionalTargetGroups");
    if !route.additional_target_groups.is_empty() && w.is_progressive() {
        c.fail(
            &list,
            format!(
                "only for rolling workloads: the {} strategy moves weight on the route's rule alone, so traffic to a further port would not follow the rollout",
                strategy_name(&w.strategy)
            ),
        );
    }
    let containers = task_containers(w, &DocPath::default());
    let mut seen: BTreeSet<&str> = [
        route.target_groups.blue.as_str(),
        route.target_groups.green.as_str(),
    ]
    .into();
    let mut pairs = BTreeSet::new();
    if let Some(port) = w.container_port {
        pairs.insert((crate::taskdef::main_container_name(w), port));
    }
    for (i, more) in route.additional_target_groups.iter().enumerate() {
        let at = list.index(i);
        arn_of(
            c,
            &at.key("targetGroupArn"),
            &more.target_group_arn,
            &["elasticloadbalancing"],
        );
        if !seen.insert(more.target_group_arn.as_str()) {
            c.fail(
                &at.key("targetGroupArn"),
                "already used by this route: one target group per port",
            );
        }
        let name = more
            .container_name
            .as_deref()
            .unwrap_or(crate::taskdef::main_container_name(w));
        match containers.iter().find(|tc| tc.name == name) {
            None => c.fail(
                &at.key("containerName"),
                format!("no container named `{name}` in this task"),
            ),
            Some(tc) => {
                let main = tc.name == crate::taskdef::main_container_name(w);
                let mapped = tc
                    .options
                    .port_mappings
                    .iter()
                    .any(|p| p.container_port == more.container_port)
                    || (main && w.container_port == Some(more.container_port));
                if !mapped {
                    c.fail(
                        &at.key("containerPort"),
                        format!(
                            "`{name}` maps no port {}: add it to its portMappings",
                            more.container_port
                        ),
                    );
                }
            }
        }
        if !pairs.insert((name, more.container_port)) {
            c.fail(
                &at.key("containerPort"),
                format!(
                    "port {} of `{name}` is already behind a target group of this route",
                    more.container_port
                ),
            );
        }
    }
}

/// ECS service settings: capacity providers of Fargate only (Spot through
/// `capacityProviderStrategy`, never as a launch type), a grace period only behind a load
/// balancer, no ECS rollback on a progressive slot.
fn check_service_settings(
    c: &mut Checker,
    w: &Workload,
    settings: &crate::document::ServiceSettings,
    path: &DocPath,
) {
    let strategy = path.key("capacityProviderStrategy");
    let mut seen = BTreeSet::new();
    let mut with_base = 0;
    for (i, item) in settings.capacity_provider_strategy.iter().enumerate() {
        let at = strategy.index(i);
        if !matches!(item.capacity_provider.as_str(), "FARGATE" | "FARGATE_SPOT") {
            c.fail(
                &at.key("capacityProvider"),
                format!(
                    "`{}` is not a Fargate capacity provider: tugboat runs tasks on FARGATE or FARGATE_SPOT",
                    item.capacity_provider
                ),
            );
        }
        if !seen.insert(item.capacity_provider.as_str()) {
            c.fail(
                &at.key("capacityProvider"),
                format!("`{}` is listed twice", item.capacity_provider),
            );
        }
        if item.base.is_some_and(|b| b > 0) {
            with_base += 1;
            if with_base > 1 {
                c.fail(
                    &at.key("base"),
                    "only one capacity provider may have a base (ECS refuses more)",
                );
            }
        }
        if item.base.is_some_and(|b| b > 100_000) {
            c.fail(&at.key("base"), "must be at most 100000");
        }
        if item.weight.is_some_and(|b| b > 1000) {
            c.fail(&at.key("weight"), "must be at most 1000");
        }
    }
    if !settings.capacity_provider_strategy.is_empty()
        && settings
            .capacity_provider_strategy
            .iter()
            .all(|i| i.weight.unwrap_or(0) == 0)
    {
        c.fail(
            &strategy,
            "at least one capacity provider needs a weight above 0, or ECS places no task beyond the base",
        );
    }
    if settings.health_check_grace_period_seconds.is_some() && w.route.is_none() {
        c.fail(
            &path.key("healthCheckGracePeriodSeconds"),
            "only applies to a service behind a load balancer: the workload has no route",
        );
    }
    if let Some(version) = &settings.platform_version
        && version != "LATEST"
        && !version
            .split('.')
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
    {
        c.fail(
            &path.key("platformVersion"),
            format!("`{version}` is not a Fargate platform version such as `1.4.0` or `LATEST`"),
        );
    }
    if let Some(b) = &settings.deployment_circuit_breaker
        && b.rollback
        && w.is_progressive()
    {
        c.fail(
            &path.key("deploymentCircuitBreaker").key("rollback"),
            format!(
                "must be false for the {} strategy: tugboat rolls a slot back by moving weight, and an ECS rollback of the canary slot would fight it",
                strategy_name(&w.strategy)
            ),
        );
    }
    if let Some(b) = &settings.deployment_circuit_breaker
        && b.rollback
        && !b.enable
    {
        c.fail(
            &path.key("deploymentCircuitBreaker").key("rollback"),
            "rollback needs enable: true",
        );
    }
}

/// Service discovery of one workload. Publishing (Service Connect `services`, Cloud Map
/// `serviceRegistries`) is for rolling workloads and workers only: a canary or blueGreen
/// workload is two ECS services that cannot both hold one discovery name, and a call over
/// Service Connect goes straight to a task, past the ALB weights, so a canary would not be
/// weighted for it. Such a workload is reached through its route; it may still be a client.
fn check_discovery(
    c: &mut Checker,
    w: &Workload,
    settings: &crate::document::ServiceSettings,
    workload_path: &DocPath,
) {
    let containers = task_containers(w, workload_path);
    let path = &workload_path.key("service");
    let port_names: BTreeSet<&str> = containers
        .iter()
        .flat_map(|tc| tc.options.port_mappings.iter())
        .filter_map(|p| p.name.as_deref())
        .collect();
    if let Some(sc) = &settings.service_connect_configuration {
        let sc_path = path.key("serviceConnectConfiguration");
        if !sc.enabled && !sc.services.is_empty() {
            c.fail(
                &sc_path.key("enabled"),
                "must be true when `services` publishes a port",
            );
        }
        if !sc.services.is_empty() && w.is_progressive() {
            c.fail(
                &sc_path.key("services"),
                format!(
                    "a {} workload cannot publish through Service Connect: its two slots are two ECS services that cannot share one discovery name, and calls over Service Connect would bypass the ALB weights; leave `services` out (the tasks stay clients) and call it through its route on the load balancer",
                    strategy_name(&w.strategy)
                ),
            );
        }
        if let Some(ns) = &sc.namespace
            && ns.is_empty()
        {
            c.fail(&sc_path.key("namespace"), "must not be empty");
        }
        let mut discovery = BTreeSet::new();
        for (i, svc) in sc.services.iter().enumerate() {
            let at = sc_path.key("services").index(i);
            if !port_names.contains(svc.port_name.as_str()) {
                let known: Vec<String> = port_names.iter().map(|n| format!("`{n}`")).collect();
                c.fail(
                    &at.key("portName"),
                    format!(
                        "`{}` names no port of the task: give a `portMappings` entry that `name` (named ports: {})",
                        svc.port_name,
                        if known.is_empty() {
                            "none".to_string()
                        } else {
                            known.join(", ")
                        }
                    ),
                );
            }
            let name = svc.discovery_name.as_deref().unwrap_or(&svc.port_name);
            if let Some(d) = &svc.discovery_name
                && let Err(e) = dns_label(d)
            {
                c.fail(&at.key("discoveryName"), e);
            }
            if !discovery.insert(name) {
                c.fail(
                    &at.key("discoveryName"),
                    format!("discovery name `{name}` is published twice by this service"),
                );
            }
            for (j, alias) in svc.client_aliases.iter().enumerate() {
                let a_path = at.key("clientAliases").index(j);
                if alias.port == 0 {
                    c.fail(&a_path.key("port"), "must be between 1 and 65535");
                }
                if let Some(dns) = &alias.dns_name
                    && (dns.is_empty() || dns.split('.').any(|label| dns_label(label).is_err()))
                {
                    c.fail(
                        &a_path.key("dnsName"),
                        format!(
                            "`{dns}` is not a DNS name (labels of lower-case letters, digits and `-`, joined by `.`)"
                        ),
                    );
                }
            }
        }
        if let Some(logs) = &sc.log_configuration {
            check_logs(c, logs, &sc_path.key("logConfiguration"));
        }
    }
    let registries = path.key("serviceRegistries");
    if !settings.service_registries.is_empty() && w.is_progressive() {
        c.fail(
            &registries,
            format!(
                "a {} workload cannot register in Cloud Map: both slots' tasks would answer to one name, past the ALB weights; call it through its route on the load balancer",
                strategy_name(&w.strategy)
            ),
        );
    }
    if settings.service_registries.len() > 1 {
        c.fail(&registries, "ECS takes one service registry per service");
    }
    for (i, r) in settings.service_registries.iter().enumerate() {
        let at = registries.index(i);
        arn_of(
            c,
            &at.key("registryArn"),
            &r.registry_arn,
            &["servicediscovery"],
        );
        if r.container_port.is_some() != r.container_name.is_some() {
            c.fail(
                &at,
                "`containerName` and `containerPort` go together (awsvpc SRV records name a container's port)",
            );
        }
        if let (Some(name), Some(port)) = (&r.container_name, r.container_port) {
            match containers.iter().find(|tc| tc.name == name) {
                None => c.fail(
                    &at.key("containerName"),
                    format!("`{name}` is not a container of the task"),
                ),
                Some(tc) => {
                    let main = tc.path.key("container") == tc.options_path;
                    let mapped = tc
                        .options
                        .port_mappings
                        .iter()
                        .any(|p| p.container_port == port)
                        || (main && w.container_port == Some(port));
                    if !mapped {
                        c.fail(
                            &at.key("containerPort"),
                            format!("`{name}` maps no port {port}: add it to its portMappings"),
                        );
                    }
                }
            }
        }
    }
}

/// Application Auto Scaling: a range that holds `desiredCount` (the count a new service
/// starts with), one policy per metric, request counts only behind the ALB, scheduled
/// actions ECS's scheduler accepts, and the AWS platform (the local one has no scaler).
fn check_auto_scaling(
    c: &mut Checker,
    app: &Application,
    w: &Workload,
    scaling: &crate::document::AutoScaling,
    path: &DocPath,
) {
    if matches!(app.spec.platform, Platform::Local(_)) {
        c.fail(
            path,
            "needs the aws platform: the local platform runs the tasks desiredCount says and has no scaler",
        );
    }
    if scaling.max_capacity > MAX_DESIRED_COUNT {
        c.fail(
            &path.key("maxCapacity"),
            format!("must be at most {MAX_DESIRED_COUNT}"),
        );
    }
    if scaling.min_capacity > scaling.max_capacity {
        c.fail(
            &path.key("minCapacity"),
            format!(
                "must not exceed maxCapacity {} (got {})",
                scaling.max_capacity, scaling.min_capacity
            ),
        );
    } else if w.desired_count < scaling.min_capacity || w.desired_count > scaling.max_capacity {
        c.fail(
            path,
            format!(
                "desiredCount {} is outside minCapacity..maxCapacity ({}..{}): it is the count a new service starts with",
                w.desired_count, scaling.min_capacity, scaling.max_capacity
            ),
        );
    }
    if w.is_progressive() && scaling.min_capacity == 0 {
        c.fail(
            &path.key("minCapacity"),
            format!(
                "must be at least 1 for the {} strategy: a stable slot scaled to 0 has no healthy targets to move weight back to",
                strategy_name(&w.strategy)
            ),
        );
    }
    if scaling.target_tracking.is_empty() && scaling.scheduled_actions.is_empty() {
        c.fail(
            path,
            "needs a targetTracking policy or a scheduled action: a range alone never changes the count",
        );
    }
    let mut metrics = BTreeSet::new();
    for (i, t) in scaling.target_tracking.iter().enumerate() {
        let at = path.key("targetTracking").index(i);
        if !metrics.insert(t.predefined_metric) {
            c.fail(
                &at.key("predefinedMetric"),
                format!("`{}` has a policy already", t.predefined_metric.as_str()),
            );
        }
        if !(t.target_value.is_finite() && t.target_value > 0.0) {
            c.fail(&at.key("targetValue"), "must be a number above 0");
        }
        let percent = matches!(
            t.predefined_metric,
            crate::document::PredefinedMetric::EcsServiceAverageCpuUtilization
                | crate::document::PredefinedMetric::EcsServiceAverageMemoryUtilization
        );
        if percent && t.target_value > 100.0 {
            c.fail(&at.key("targetValue"), "is a percentage: at most 100");
        }
        if t.predefined_metric == crate::document::PredefinedMetric::AlbRequestCountPerTarget
            && w.route.is_none()
        {
            c.fail(
                &at.key("predefinedMetric"),
                "ALBRequestCountPerTarget needs a route: the metric is the target group's",
            );
        }
    }
    let mut names = BTreeSet::new();
    for (i, a) in scaling.scheduled_actions.iter().enumerate() {
        let at = path.key("scheduledActions").index(i);
        let name_ok = !a.scheduled_action_name.is_empty()
            && a.scheduled_action_name.len() <= 256
            && a.scheduled_action_name
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_');
        if !name_ok {
            c.fail(
                &at.key("scheduledActionName"),
                format!(
                    "`{}` is not a scheduled action name (letters, digits, `-` and `_`)",
                    a.scheduled_action_name
                ),
            );
        }
        if !names.insert(a.scheduled_action_name.as_str()) {
            c.fail(
                &at.key("scheduledActionName"),
                format!("`{}` is used twice", a.scheduled_action_name),
            );
        }
        let form = ["at(", "rate(", "cron("]
            .iter()
            .any(|p| a.schedule.starts_with(p) && a.schedule.ends_with(')'));
        if !form {
            c.fail(
                &at.key("schedule"),
                format!(
                    "`{}` is not a schedule: write `at(2026-12-24T08:00:00)`, `rate(5 minutes)` or `cron(0 8 ? * MON-FRI *)`",
                    a.schedule
                ),
            );
        }
        let range = &a.scalable_target_action;
        if range.min_capacity.is_none() && range.max_capacity.is_none() {
            c.fail(
                &at.key("scalableTargetAction"),
                "needs minCapacity or maxCapacity",
            );
        }
        if let (Some(lo), Some(hi)) = (range.min_capacity, range.max_capacity)
            && lo > hi
        {
            c.fail(
                &at.key("scalableTargetAction").key("minCapacity"),
                format!("must not exceed maxCapacity {hi}"),
            );
        }
        if range.max_capacity.is_some_and(|m| m > MAX_DESIRED_COUNT) {
            c.fail(
                &at.key("scalableTargetAction").key("maxCapacity"),
                format!("must be at most {MAX_DESIRED_COUNT}"),
            );
        }
        if w.is_progressive() && range.min_capacity == Some(0) {
            c.fail(
                &at.key("scalableTargetAction").key("minCapacity"),
                "must be at least 1 for a canary or blueGreen workload",
            );
        }
    }
}

/// Listener-rule conditions in ELB's shape: each `field` with its own `*Config` block
/// and no other, ELB's value syntax, host-header / http-request-method / source-ip at
/// most once, at most 5 condition values on the rule (ELB's quota, the paths included);
/// stickiness with a duration ELB accepts.
fn check_route_conditions(c: &mut Checker, route: &Route, path: &DocPath) {
    use crate::document::ConditionField as F;
    let mut once = BTreeSet::new();
    let mut values = route.path_patterns.len();
    for (i, cond) in route.conditions.iter().enumerate() {
        let at = path.key("conditions").index(i);
        let present: Vec<(&str, bool)> = vec![
            ("hostHeaderConfig", cond.host_header_config.is_some()),
            ("httpHeaderConfig", cond.http_header_config.is_some()),
            (
                "httpRequestMethodConfig",
                cond.http_request_method_config.is_some(),
            ),
            ("queryStringConfig", cond.query_string_config.is_some()),
            ("sourceIpConfig", cond.source_ip_config.is_some()),
        ];
        let want = cond.field.config_key();
        for (key, set) in &present {
            if *set && *key != want {
                c.fail(
                    &at.key(key),
                    format!(
                        "does not go with field `{}` (it takes `{want}`)",
                        cond.field.as_str()
                    ),
                );
            }
        }
        if !present.iter().any(|(key, set)| *set && *key == want) {
            c.fail(
                &at,
                format!("field `{}` needs `{want}`", cond.field.as_str()),
            );
        }
        if matches!(
            cond.field,
            F::HostHeader | F::HttpRequestMethod | F::SourceIp
        ) && !once.insert(cond.field)
        {
            c.fail(
                &at.key("field"),
                format!(
                    "`{}` may appear once on a rule (list its values together)",
                    cond.field.as_str()
                ),
            );
        }
        let config = at.key(want).key("values");
        let mut check_values =
            |c: &mut Checker, list: &[String], ok: &dyn Fn(&str) -> bool, what: &str| {
                if list.is_empty() {
                    c.fail(&config, "needs at least one value");
                }
                values += list.len();
                for (j, v) in list.iter().enumerate() {
                    if !ok(v) {
                        c.fail(&config.index(j), format!("`{v}` is not {what}"));
                    }
                }
            };
        match cond.field {
            F::HostHeader => {
                if let Some(h) = &cond.host_header_config {
                    check_values(
                        c,
                        &h.values,
                        &|v| {
                            !v.is_empty()
                                && v.len() <= 128
                                && v.chars()
                                    .all(|ch| ch.is_ascii_alphanumeric() || "-.*?".contains(ch))
                        },
                        "a host name (letters, digits, `-`, `.`, and the wildcards `*` and `?`)",
                    );
                }
            }
            F::HttpHeader => {
                if let Some(h) = &cond.http_header_config {
                    let token = !h.http_header_name.is_empty()
                        && h.http_header_name.len() <= 40
                        && h.http_header_name
                            .chars()
                            .all(|ch| ch.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(ch));
                    if !token {
                        c.fail(
                            &at.key("httpHeaderConfig").key("httpHeaderName"),
                            format!("`{}` is not an HTTP header name", h.http_header_name),
                        );
                    }
                    check_values(
                        c,
                        &h.values,
                        &|v| !v.is_empty() && v.len() <= 128,
                        "a header value of 1 to 128 characters",
                    );
                }
            }
            F::HttpRequestMethod => {
                if let Some(m) = &cond.http_request_method_config {
                    check_values(
                        c,
                        &m.values,
                        &|v| {
                            !v.is_empty()
                                && v.len() <= 40
                                && v.chars()
                                    .all(|ch| ch.is_ascii_uppercase() || ch == '-' || ch == '_')
                        },
                        "an HTTP method in capitals, such as `GET`",
                    );
                }
            }
            F::SourceIp => {
                if let Some(ips) = &cond.source_ip_config {
                    check_values(
                        c,
                        &ips.values,
                        &|v| is_cidr(v),
                        "a CIDR block such as `10.0.0.0/8` or `2001:db8::/32`",
                    );
                }
            }
            F::QueryString => {
                if let Some(q) = &cond.query_string_config {
                    if q.values.is_empty() {
                        c.fail(&config, "needs at least one value");
                    }
                    values += q.values.len();
                    for (j, kv) in q.values.iter().enumerate() {
                        if kv.value.is_empty() || kv.key.as_deref() == Some("") {
                            c.fail(
                                &config.index(j),
                                "a query-string pair needs a non-empty `value` (and a non-empty `key` if given)",
                            );
                        }
                    }
                }
            }
        }
    }
    if values > 5 {
        c.fail(
            path,
            format!(
                "the rule would have {values} condition values (path patterns included); ELB allows 5 per rule"
            ),
        );
    }
    if let Some(sticky) = &route.target_group_stickiness_config {
        let at = path
            .key("targetGroupStickinessConfig")
            .key("durationSeconds");
        match sticky.duration_seconds {
            None if sticky.enabled => c.fail(&at, "required when stickiness is enabled"),
            Some(d) if !(1..=604_800).contains(&d) => {
                c.fail(&at, format!("must be 1 to 604800 seconds (got {d})"));
            }
            _ => {}
        }
    }
}

/// `address/prefix`, IPv4 or IPv6, as ELB's source-ip condition takes it.
fn is_cidr(v: &str) -> bool {
    let Some((addr, prefix)) = v.split_once('/') else {
        return false;
    };
    let Ok(prefix) = prefix.parse::<u8>() else {
        return false;
    };
    match addr.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(_)) => prefix <= 32,
        Ok(std::net::IpAddr::V6(_)) => prefix <= 128,
        Err(_) => false,
    }
}

/// Across workloads: a discovery name, and a client alias's name and port, are held by
/// one service in a namespace (ECS refuses a second).
fn check_discovery_names(c: &mut Checker, app: &Application, workloads: &DocPath) {
    let mut names: BTreeMap<(String, String), &str> = BTreeMap::new();
    let mut aliases: BTreeMap<(String, String, u16), &str> = BTreeMap::new();
    for (i, w) in app.spec.workloads.iter().enumerate() {
        let Some(sc) = w
            .service
            .as_ref()
            .and_then(|s| s.service_connect_configuration.as_ref())
        else {
            continue;
        };
        let ns = sc.namespace.clone().unwrap_or_default();
        let at = workloads
            .index(i)
            .key("service")
            .key("serviceConnectConfiguration")
            .key("services");
        for (j, svc) in sc.services.iter().enumerate() {
            let name = svc.discovery_name.clone().unwrap_or(svc.port_name.clone());
            if let Some(other) = names.insert((ns.clone(), name.clone()), &w.name)
                && other != w.name
            {
                c.fail(
                    &at.index(j),
                    format!(
                        "discovery name `{name}` is already published by workload `{other}` in the same namespace"
                    ),
                );
            }
            for (k, alias) in svc.client_aliases.iter().enumerate() {
                let dns = alias
                    .dns_name
                    .clone()
                    .unwrap_or_else(|| format!("{name}.{ns}"));
                if let Some(other) = aliases.insert((ns.clone(), dns.clone(), alias.port), &w.name)
                    && other != w.name
                {
                    c.fail(
                        &at.index(j).key("clientAliases").index(k),
                        format!(
                            "client alias `{dns}:{}` is already taken by workload `{other}` in the same namespace",
                            alias.port
                        ),
                    );
                }
            }
        }
    }
}

fn strategy_name(strategy: &Strategy) -> &'static str {
    match strategy {
        Strategy::Rolling(_) => "rolling",
        Strategy::BlueGreen(_) => "blueGreen",
        Strategy::Canary(_) => "canary",
    }
}

/// Fargate's valid memory sizes (MiB) for a CPU size, as AWS documents them.
pub fn fargate_memory_choices(cpu: u32) -> Option<Vec<u32>> {
    let (low, high, step) = match cpu {
        256 => return Some(vec![512, 1024, 2048]),
        512 => (1024, 4096, 1024),
        1024 => (2048, 8192, 1024),
        2048 => (4096, 16384, 1024),
        4096 => (8192, 30720, 1024),
        8192 => (16384, 61440, 4096),
        16384 => (32768, 122880, 8192),
        _ => return None,
    };
    Some((low..=high).step_by(step).collect())
}

fn check_fargate_size(c: &mut Checker, w: &Workload, path: &DocPath) {
    match fargate_memory_choices(w.cpu) {
        None => c.fail(
            &path.key("cpu"),
            format!(
                "must be a Fargate CPU size: 256, 512, 1024, 2048, 4096, 8192 or 16384 (got {})",
                w.cpu
            ),
        ),
        Some(choices) if !choices.contains(&w.memory) => {
            let allowed = if w.cpu == 256 {
                "512, 1024 or 2048".to_string()
            } else {
                let step = choices[1] - choices[0];
                format!(
                    "{} to {} in steps of {step}",
                    choices[0],
                    choices[choices.len() - 1]
                )
            };
            c.fail(
                &path.key("memory"),
                format!(
                    "{} MiB is not a Fargate size for cpu {}: choose {allowed}",
                    w.memory, w.cpu
                ),
            );
        }
        Some(_) => {}
    }
}

fn check_variables(c: &mut Checker, w: &Workload, path: &DocPath) {
    let reserved: &[&str] = if w.model.is_some() {
        &RESERVED_MODEL_VARIABLES
    } else {
        &[]
    };
    for (section, vars) in [("environment", &w.environment), ("secrets", &w.secrets)] {
        for name in vars.keys() {
            let var = path.key(section).key(name);
            if !is_env_name(name) {
                c.fail(
                    &var,
                    "not a valid environment variable name (letters, digits and `_`, not starting with a digit)",
                );
            }
            if reserved.contains(&name.as_str()) {
                c.fail(
                    &var,
                    format!("`{name}` is set by tugboat for workloads that serve a model"),
                );
            }
        }
    }
    for (name, arn) in &w.secrets {
        let var = path.key("secrets").key(name);
        if w.environment.contains_key(name) {
            c.fail(
                &var,
                format!("`{name}` is also set in environment; a variable has one source"),
            );
        }
        secret_reference(c, &var, name, arn);
    }
}

/// What a `secrets` value must be, for messages that never show the value itself.
const SECRET_SHAPE: &str = "the ARN of a Secrets Manager secret or an SSM parameter \
     (`arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME` or \
     `arn:aws:ssm:REGION:ACCOUNT:parameter/NAME`), or the name of an SSM parameter in the \
     task's region (`/app/db-password`), which ECS passes as `valueFrom`";

/// Checks one `secrets` entry without quoting its value, nor any part of it: a value that
/// is not an ARN may well be the secret itself, pasted where its reference belongs.
fn secret_reference(c: &mut Checker, path: &DocPath, name: &str, value: &str) {
    let parts: Vec<&str> = value.splitn(6, ':').collect();
    let valid = parts.len() == 6
        && parts[0] == "arn"
        && parts[1].starts_with("aws")
        && matches!(parts[2], "secretsmanager" | "ssm")
        && !parts[5].is_empty();
    // ECS also takes an SSM parameter of the task's region by its name. Only a
    // hierarchical name (`/app/db-password`) is taken for one: a bare word is as likely
    // to be the secret itself, pasted where its reference belongs.
    let ssm_name = value.starts_with('/') && ssm_parameter_name(value).is_ok() && value.len() > 1;
    if !valid && !ssm_name {
        c.fail(
            path,
            format!(
                "`{name}` must be {SECRET_SHAPE}; the value given is not one (it is not shown: it may be the secret itself)"
            ),
        );
    }
}

/// Whether `path` is a workload's or a sidecar's `secrets` or inside it: values there are
/// never quoted.
fn is_secret_path(path: &DocPath) -> bool {
    matches!(
        path.0.as_slice(),
        [Segment::Key(spec), Segment::Key(workloads), Segment::Index(_), Segment::Key(secrets), ..]
            if spec == "spec" && workloads == "workloads" && secrets == "secrets"
    ) || matches!(
        path.0.as_slice(),
        [Segment::Key(spec), Segment::Key(workloads), Segment::Index(_), Segment::Key(sidecars), Segment::Index(_), Segment::Key(secrets), ..]
            if spec == "spec" && workloads == "workloads" && sidecars == "sidecars" && secrets == "secrets"
    )
}

fn check_health_check(c: &mut Checker, hc: &HealthCheck, path: &DocPath) {
    match hc.command.first().map(String::as_str) {
        None => c.fail(
            &path.key("command"),
            "must not be empty; e.g. [\"CMD-SHELL\", \"curl -f http://localhost:8000/health || exit 1\"]",
        ),
        Some("CMD" | "CMD-SHELL") if hc.command.len() < 2 => c.fail(
            &path.key("command"),
            "needs the command after `CMD` or `CMD-SHELL`",
        ),
        Some("CMD" | "CMD-SHELL" | "NONE") => {}
        Some(other) => c.fail(
            &path.key("command").index(0),
            format!("must be `CMD`, `CMD-SHELL` or `NONE`, as in ECS (got `{other}`)"),
        ),
    }
    c.range(&path.key("interval"), hc.interval, 5, 300);
    c.range(&path.key("timeout"), hc.timeout, 2, 60);
    c.range(&path.key("retries"), hc.retries, 1, 10);
    c.range(&path.key("startPeriod"), hc.start_period, 0, 300);
}

fn check_logs(c: &mut Checker, logs: &LogConfiguration, path: &DocPath) {
    if logs.log_driver.trim().is_empty() {
        c.fail(
            &path.key("logDriver"),
            "must name a log driver, e.g. `awslogs`",
        );
    }
    if logs.log_driver == "awslogs" {
        // Fargate refuses awslogs without these three.
        for option in ["awslogs-group", "awslogs-region", "awslogs-stream-prefix"] {
            if !logs.options.contains_key(option) {
                c.fail(
                    &path.key("options"),
                    format!("the awslogs driver on Fargate needs `{option}`"),
                );
            }
        }
    }
}

fn check_route(c: &mut Checker, app: &Application, w: &Workload, route: &Route, path: &DocPath) {
    let patterns = path.key("pathPatterns");
    if route.path_patterns.is_empty() {
        c.fail(
            &patterns,
            "at least one path pattern is required, e.g. `/api/*`",
        );
    }
    for (i, pattern) in route.path_patterns.iter().enumerate() {
        if !pattern.starts_with('/') {
            c.fail(
                &patterns.index(i),
                format!("must start with `/` (got `{pattern}`)"),
            );
        } else if pattern.len() > 128 {
            c.fail(
                &patterns.index(i),
                "must be at most 128 characters (ALB limit)",
            );
        }
    }
    c.range(&path.key("priority"), route.priority, 1, 50000);
    let groups = path.key("targetGroups");
    if w.is_progressive() && route.target_groups.blue == route.target_groups.green {
        c.fail(
            &groups.key("green"),
            format!(
                "must differ from blue: the {} strategy shifts traffic between two target groups",
                strategy_name(&w.strategy)
            ),
        );
    }
    for (slot, group) in [
        ("blue", &route.target_groups.blue),
        ("green", &route.target_groups.green),
    ] {
        if group.trim().is_empty() {
            c.fail(&groups.key(slot), "must name a target group");
        } else if matches!(app.spec.platform, Platform::Aws(_)) {
            arn_of(c, &groups.key(slot), group, &["elasticloadbalancing"]);
        }
    }
}

/// Rules across workloads: listener rule priorities and target groups are not shared.
fn check_routes_together(c: &mut Checker, app: &Application, workloads: &DocPath) {
    let mut priorities: BTreeMap<u32, &str> = BTreeMap::new();
    let mut groups: BTreeMap<&str, &str> = BTreeMap::new();
    for (i, w) in app.spec.workloads.iter().enumerate() {
        let Some(route) = &w.route else { continue };
        let path = workloads.index(i).key("route");
        if let Some(other) = priorities.insert(route.priority, &w.name) {
            c.fail(
                &path.key("priority"),
                format!(
                    "priority {} is already used by workload `{other}`; listener rule priorities are unique",
                    route.priority
                ),
            );
        }
        let mut slots = vec![("blue", route.target_groups.blue.as_str())];
        if w.is_progressive() {
            slots.push(("green", route.target_groups.green.as_str()));
        }
        for (slot, group) in slots {
            if let Some(other) = groups.get(group)
                && *other != w.name
            {
                c.fail(
                    &path.key("targetGroups").key(slot),
                    format!("target group is already used by workload `{other}`"),
                );
            }
            groups.entry(group).or_insert(&w.name);
        }
    }
    // A workload's header route sits at its route's priority minus one, so it is judged
    // just before the weighted rule; that priority must be free on the listener.
    for (i, w) in app.spec.workloads.iter().enumerate() {
        let (Some(route), Strategy::Canary(canary)) = (&w.route, &w.strategy) else {
            continue;
        };
        if !canary
            .steps
            .iter()
            .any(|s| matches!(s, CanaryStep::SetHeaderRoute(_)))
        {
            continue;
        }
        let path = workloads.index(i).key("route").key("priority");
        let header = route.priority.saturating_sub(1);
        if header == 0 {
            c.fail(
                &path,
                "a workload with a header route needs priority 2 or more: its header route takes the priority just before it",
            );
        } else if let Some(other) = priorities.get(&header) {
            c.fail(
                &path,
                format!(
                    "the header route takes priority {header} (the route's minus one), which workload `{other}`'s route uses"
                ),
            );
        } else {
            priorities.insert(header, &w.name);
        }
    }
}

/// The ECS services a workload owns: `<name>-blue` and `<name>-green` for a progressive
/// one, `<name>` for a rolling one (the planner's own naming).
fn owned_services(w: &Workload) -> Vec<String> {
    if w.is_progressive() {
        vec![
            service_name(&w.name, Some(Slot::Blue)),
            service_name(&w.name, Some(Slot::Green)),
        ]
    } else {
        vec![service_name(&w.name, None)]
    }
}

/// Rules across workloads: every ECS service has exactly one owner (a rolling `api-blue`
/// beside a canary `api` would both drive the service `api-blue`), and every derived
/// name is one ECS accepts.
fn check_service_names(c: &mut Checker, app: &Application, workloads: &DocPath) {
    let mut owners: BTreeMap<String, &Workload> = BTreeMap::new();
    for (i, w) in app.spec.workloads.iter().enumerate() {
        let path = workloads.index(i).key("name");
        for service in owned_services(w) {
            // An invalid workload name is reported as such; its derived names would only
            // repeat it.
            if dns_label(&w.name).is_ok() && !is_ecs_service_name(&service) {
                c.fail(
                    &path,
                    format!(
                        "the ECS service name `{service}` derived from it is not valid (letters, digits, `-` and `_`, at most 255 characters)"
                    ),
                );
            }
            match owners.get(&service) {
                // The same name twice is reported as a duplicate workload name.
                Some(other) if other.name == w.name => {}
                Some(other) => c.fail(
                    &path,
                    format!(
                        "workload `{}` ({}) and workload `{}` ({}) would both own the ECS service `{service}`; rename one of them",
                        w.name,
                        services_phrase(w),
                        other.name,
                        services_phrase(other),
                    ),
                ),
                None => {
                    owners.insert(service, w);
                }
            }
        }
    }
}

/// `canary, services `api-blue` and `api-green`` or `rolling, service `api``.
fn services_phrase(w: &Workload) -> String {
    let names: Vec<String> = owned_services(w).iter().map(|s| format!("`{s}`")).collect();
    match names.as_slice() {
        [one] => format!("{}, service {one}", strategy_name(&w.strategy)),
        _ => format!(
            "{}, services {}",
            strategy_name(&w.strategy),
            names.join(" and ")
        ),
    }
}

/// ECS's rule for service names: letters, digits, hyphens and underscores, 1 to 255.
fn is_ecs_service_name(name: &str) -> bool {
    (1..=255).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

fn check_analysis_refs(
    c: &mut Checker,
    step: &AnalysisStep,
    path: &DocPath,
    templates: &BTreeSet<&str>,
) {
    let refs = path.key("templates");
    if step.templates.is_empty() {
        c.fail(&refs, "at least one template is required");
    }
    for (i, template) in step.templates.iter().enumerate() {
        if !templates.contains(template.template_name.as_str()) {
            c.fail(
                &refs.index(i).key("templateName"),
                format!(
                    "no analysis template named `{}` in spec.analysisTemplates{}",
                    template.template_name,
                    known(templates)
                ),
            );
        }
    }
}

fn check_blue_green(
    c: &mut Checker,
    bg: &BlueGreenStrategy,
    path: &DocPath,
    templates: &BTreeSet<&str>,
) {
    if let Some(analysis) = &bg.pre_promotion_analysis {
        check_analysis_refs(c, analysis, &path.key("prePromotionAnalysis"), templates);
    }
    if let Some(analysis) = &bg.post_promotion_analysis {
        check_analysis_refs(c, analysis, &path.key("postPromotionAnalysis"), templates);
    }
    if bg.auto_promotion_delay.is_some() && !bg.auto_promotion_enabled {
        c.fail(
            &path.key("autoPromotionDelay"),
            "only applies with `autoPromotionEnabled: true`; without it the rollout waits for the `promote` action override",
        );
    }
    c.positive_duration(&path.key("progressDeadline"), bg.progress_deadline.as_ref());
}

/// `setHeaderRoute` steps: on a routed workload, one route name per workload (it is one
/// listener rule), and each match in Argo's shape that the ALB can compare (an HTTP
/// header name; exactly one of `exact`, `prefix`, `regex`, and not `regex`, which the
/// ALB's `http-header` condition has no form for).
fn check_header_routes(c: &mut Checker, w: &Workload, canary: &CanaryStrategy, path: &DocPath) {
    let mut name: Option<(&str, usize)> = None;
    for (i, step) in canary.steps.iter().enumerate() {
        let CanaryStep::SetHeaderRoute(h) = step else {
            continue;
        };
        let at = path.key("steps").index(i).key("setHeaderRoute");
        if w.route.is_none() {
            c.fail(
                &at,
                "a header route needs the workload's `route`: it is a second listener rule beside it",
            );
        }
        if h.name.trim().is_empty() {
            c.fail(&at.key("name"), "must name the route");
        }
        match name {
            Some((first, j)) if first != h.name => c.fail(
                &at.key("name"),
                format!(
                    "`{}` differs from `{first}` at steps[{j}]: a workload has one header route",
                    h.name
                ),
            ),
            Some(_) => {}
            None => name = Some((&h.name, i)),
        }
        let Some(matches) = &h.matches else { continue };
        if let Some(route) = &w.route {
            let values = route.path_patterns.len()
                + route
                    .conditions
                    .iter()
                    .map(|c| {
                        [
                            &c.host_header_config,
                            &c.http_request_method_config,
                            &c.source_ip_config,
                        ]
                        .iter()
                        .map(|v| v.as_ref().map_or(0, |v| v.values.len()))
                        .sum::<usize>()
                            + c.http_header_config.as_ref().map_or(0, |h| h.values.len())
                            + c.query_string_config.as_ref().map_or(0, |q| q.values.len())
                    })
                    .sum::<usize>()
                + matches.len();
            if values > 5 {
                c.fail(
                    &at.key("match"),
                    format!(
                        "the header route's rule would have {values} condition values (the route's and one per match); ELB allows 5 per rule"
                    ),
                );
            }
        }
        if matches.is_empty() {
            c.fail(
                &at.key("match"),
                "at least one header match; to remove the route give only `name`",
            );
        }
        for (k, m) in matches.iter().enumerate() {
            let mat = at.key("match").index(k);
            let token = !m.header_name.is_empty()
                && m.header_name.len() <= 40
                && m.header_name
                    .chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(ch));
            if !token {
                c.fail(
                    &mat.key("headerName"),
                    format!("`{}` is not an HTTP header name", m.header_name),
                );
            }
            let v = &m.header_value;
            let given = [&v.exact, &v.prefix, &v.regex]
                .iter()
                .filter(|x| x.is_some())
                .count();
            if given != 1 {
                c.fail(
                    &mat.key("headerValue"),
                    format!("exactly one of `exact`, `prefix`, `regex` (got {given})"),
                );
            } else if v.regex.is_some() {
                c.fail(
                    &mat.key("headerValue").key("regex"),
                    "the ALB's http-header condition has no regular expressions; use `exact` or `prefix`",
                );
            } else if let Some(value) = v.alb_value()
                && (value.is_empty() || value == "*" || value.len() > 128)
            {
                c.fail(
                    &mat.key("headerValue"),
                    "a header value of 1 to 128 characters (a prefix of 1 to 127)",
                );
            } else if [&v.exact, &v.prefix]
                .iter()
                .any(|x| x.as_ref().is_some_and(|x| x.contains(['*', '?'])))
            {
                // The ALB reads them as wildcards: `exact` would not be exact.
                c.fail(
                    &mat.key("headerValue"),
                    "`*` and `?` are the ALB's wildcards; use `prefix` for a value that starts with something",
                );
            }
        }
    }
}

fn check_canary(
    c: &mut Checker,
    canary: &CanaryStrategy,
    path: &DocPath,
    templates: &BTreeSet<&str>,
) {
    let steps = path.key("steps");
    if canary.steps.is_empty() {
        c.fail(
            &steps,
            "at least one step is required, ending with `setWeight: 100`",
        );
    }
    let mut previous: Option<(usize, u32)> = None;
    for (i, step) in canary.steps.iter().enumerate() {
        let step_path = steps.index(i);
        match step {
            CanaryStep::SetWeight(weight) => {
                let weight_path = step_path.key("setWeight");
                if *weight > 100 {
                    c.fail(
                        &weight_path,
                        format!("must be between 0 and 100 (got {weight})"),
                    );
                }
                if let Some((j, before)) = previous
                    && *weight < before
                {
                    c.fail(
                        &weight_path,
                        format!(
                            "weights never decrease: {weight} comes after {before} at steps[{j}]"
                        ),
                    );
                }
                previous = Some((i, *weight));
            }
            CanaryStep::Pause(_) | CanaryStep::SetHeaderRoute(_) => {}
            CanaryStep::Gate(gate) => check_gate(c, gate, &step_path.key("gate")),
            CanaryStep::Analysis(analysis) => {
                check_analysis_refs(c, analysis, &step_path.key("analysis"), templates);
            }
        }
    }
    // A last setWeight below 100 (or none) is allowed: the rollout finishes at 100, as
    // Argo Rollouts' does (`plan::steps::implicit_full_weight`; `tugboat diff` says so).
    c.positive_duration(
        &path.key("progressDeadline"),
        canary.progress_deadline.as_ref(),
    );
    if let Some(background) = &canary.analysis {
        let step = AnalysisStep {
            templates: background.templates.clone(),
            args: background.args.clone(),
        };
        check_analysis_refs(c, &step, &path.key("analysis"), templates);
        if let Some(start) = background.starting_step
            && start as usize >= canary.steps.len()
        {
            c.fail(
                &path.key("analysis").key("startingStep"),
                format!(
                    "must name a step, from 0 to {} (got {start})",
                    canary.steps.len().saturating_sub(1)
                ),
            );
        }
    }
}

fn check_template(c: &mut Checker, t: &AnalysisTemplate, path: &DocPath) {
    c.dns_name(&path.key("name"), &t.name);
    check_template_args(c, t, path);
    if t.query.trim().is_empty() {
        c.fail(&path.key("query"), "must not be empty");
    }
    if let Err(e) = Condition::parse(&t.success_condition) {
        c.fail(&path.key("successCondition"), e.to_string());
    }
    if let Some(failure) = &t.failure_condition
        && let Err(e) = Condition::parse(failure)
    {
        c.fail(&path.key("failureCondition"), e.to_string());
    }
    c.positive_duration(&path.key("interval"), t.interval.as_ref());
    if t.count == Some(0) {
        c.fail(&path.key("count"), "must be at least 1 (got 0)");
    }
    match (&t.minimum_samples, &t.sample_query) {
        (Some(_), None) => c.fail(
            &path.key("minimumSamples"),
            "needs `sampleQuery`, the query that counts the samples behind a measurement",
        ),
        (_, Some(q)) if q.trim().is_empty() => {
            c.fail(&path.key("sampleQuery"), "must not be empty")
        }
        _ => {}
    }
    let provider = path.key("provider");
    match &t.provider {
        MetricProvider::Cloudwatch(cw) => {
            check_cloudwatch_template(c, t, cw, path);
            if let Some(period) = &cw.period {
                let secs = period.0.as_secs();
                let valid = period.0.subsec_nanos() == 0
                    && (matches!(secs, 1 | 5 | 10 | 30) || (secs > 0 && secs % 60 == 0));
                if !valid {
                    c.fail(
                        &provider.key("cloudwatch").key("period"),
                        format!(
                            "CloudWatch periods are 1s, 5s, 10s, 30s or a multiple of 60s (got {period})"
                        ),
                    );
                }
            }
        }
        MetricProvider::Prometheus(p) => {
            let at = provider.key("prometheus");
            c.positive_duration(&at.key("timeout"), p.timeout.as_ref());
            if let Some(auth) = &p.authentication {
                let at = at.key("authentication");
                match (&auth.basic, &auth.bearer) {
                    (Some(_), Some(_)) => c.fail(&at, "give either `basic` or `bearer`, not both"),
                    (None, None) => c.fail(
                        &at,
                        "needs `basic: {username, password}` or `bearer: {env|ssm: NAME}`",
                    ),
                    (Some(basic), None) => {
                        check_secret_source(c, &basic.password, &at.key("basic").key("password"))
                    }
                    (None, Some(token)) => check_secret_source(c, token, &at.key("bearer")),
                }
            }
            if !is_http_url(&p.address) {
                c.fail(
                    &provider.key("prometheus").key("address"),
                    format!("must be an http:// or https:// URL (got `{}`)", p.address),
                );
            }
        }
        MetricProvider::Web(web) => {
            if !is_http_url(&web.url) {
                c.fail(
                    &provider.key("web").key("url"),
                    format!("must be an http:// or https:// URL (got `{}`)", web.url),
                );
            }
            c.positive_duration(&provider.key("web").key("timeout"), web.timeout.as_ref());
            check_web_headers(c, web, &provider.key("web"));
            if !t.query.is_empty() && !t.query.starts_with('/') {
                c.fail(
                    &path.key("query"),
                    format!(
                        "for the web provider, a JSON pointer such as `/error_rate` (got `{}`)",
                        t.query
                    ),
                );
            }
        }
    }
}

/// A template's `args`: unique names, every `{{args.NAME}}` it writes declared, and the
/// measurement schedule (`count` above 1 needs an `interval`).
fn check_template_args(c: &mut Checker, t: &AnalysisTemplate, path: &DocPath) {
    let args = path.key("args");
    unique_names(c, &args, t.args.iter().map(|a| a.name.as_str()), "argument");
    let declared: BTreeSet<&str> = t.args.iter().map(|a| a.name.as_str()).collect();
    let mut texts: Vec<(DocPath, &str)> = vec![(path.key("query"), t.query.as_str())];
    if let Some(q) = &t.sample_query {
        texts.push((path.key("sampleQuery"), q));
    }
    let provider = path.key("provider");
    match &t.provider {
        MetricProvider::Web(web) => {
            texts.push((provider.key("web").key("url"), &web.url));
            if let Some(body) = &web.body {
                texts.push((provider.key("web").key("body"), body));
            }
            for (i, h) in web.headers.iter().enumerate() {
                if let Some(v) = &h.value {
                    texts.push((provider.key("web").key("headers").index(i).key("value"), v));
                }
            }
        }
        MetricProvider::Prometheus(p) => {
            texts.push((provider.key("prometheus").key("address"), &p.address));
        }
        MetricProvider::Cloudwatch(cw) => {
            if let Some(tg) = &cw.target_group {
                texts.push((provider.key("cloudwatch").key("targetGroup"), tg));
            }
            if let Some(lb) = &cw.load_balancer {
                texts.push((provider.key("cloudwatch").key("loadBalancer"), lb));
            }
        }
    }
    for (at, text) in texts {
        match crate::analysis::placeholders(text) {
            Err(e) => c.fail(&at, e.to_string()),
            Ok(names) => {
                for name in names {
                    if !declared.contains(name.as_str()) {
                        c.fail(
                            &at,
                            format!(
                                "`{{{{args.{name}}}}}` is not declared: add `{{name: {name}}}` to the template's `args`"
                            ),
                        );
                    }
                }
            }
        }
    }
}

fn check_cloudwatch_template(
    c: &mut Checker,
    t: &AnalysisTemplate,
    cw: &crate::document::CloudwatchProvider,
    path: &DocPath,
) {
    for (key, query) in [
        ("query", Some(&t.query)),
        ("sampleQuery", t.sample_query.as_ref()),
    ] {
        if let Some(q) = query
            && let Err(e) = crate::analysis::parse_alb_query(q)
        {
            c.fail(&path.key(key), e.to_string());
        }
    }
    if cw.target_group.is_none() {
        c.fail(
            &path.key("provider").key("cloudwatch").key("targetGroup"),
            "required: the target group to measure, e.g. `{{args.canary-target-group}}` with the step passing `valueFrom: canaryTargetGroup`",
        );
    }
    c.positive_duration(
        &path.key("provider").key("cloudwatch").key("window"),
        cw.window.as_ref(),
    );
}

fn check_web_headers(c: &mut Checker, web: &crate::document::WebProvider, path: &DocPath) {
    for (i, h) in web.headers.iter().enumerate() {
        let at = path.key("headers").index(i);
        if h.key.trim().is_empty() {
            c.fail(&at.key("key"), "must not be empty");
        }
        match (&h.value, &h.value_from) {
            (Some(_), Some(_)) => c.fail(&at, "give either `value` or `valueFrom`, not both"),
            (None, None) => c.fail(
                &at,
                "needs `value` or `valueFrom` (`{env: NAME}` or `{ssm: NAME}`)",
            ),
            (None, Some(secret)) => check_secret_source(c, secret, &at.key("valueFrom")),
            _ => {}
        }
    }
    if web.body.is_some() && web.method == crate::document::WebMethod::Get {
        c.fail(&path.key("body"), "a body needs `method: POST`");
    }
}

/// A gate: an http(s) URL and a positive timeout.
fn check_gate(c: &mut Checker, gate: &crate::document::GateStep, path: &DocPath) {
    if !is_http_url(&gate.url) {
        c.fail(
            &path.key("url"),
            format!("must be an http:// or https:// URL (got `{}`)", gate.url),
        );
    }
    c.positive_duration(&path.key("timeout"), Some(&gate.timeout));
}

/// Webhooks: an http(s) URL, no event named twice, a secret named in exactly one place.
fn check_notifications(c: &mut Checker, app: &Application, path: &DocPath) {
    for (i, n) in app.spec.notifications.iter().enumerate() {
        let at = path.index(i);
        if !is_http_url(&n.url) {
            c.fail(
                &at.key("url"),
                format!("must be an http:// or https:// URL (got `{}`)", n.url),
            );
        }
        let mut seen = BTreeSet::new();
        for (j, e) in n.events.iter().enumerate() {
            if !seen.insert(*e) {
                c.fail(&at.key("events").index(j), "names an event twice");
            }
        }
        if let Some(secret) = &n.secret {
            check_secret_source(c, secret, &at.key("secret"));
        }
    }
}

fn check_secret_source(c: &mut Checker, secret: &crate::document::SecretSource, path: &DocPath) {
    match (&secret.env, &secret.ssm) {
        (Some(_), Some(_)) => c.fail(path, "give either `env` or `ssm`, not both"),
        (None, None) => c.fail(
            path,
            "needs `env: NAME` (an environment variable) or `ssm: NAME` (an SSM SecureString)",
        ),
        (Some(name), None) | (None, Some(name)) if name.trim().is_empty() => {
            c.fail(path, "the name must not be empty")
        }
        _ => {}
    }
}

/// Where templates are used: the arguments a step passes fit what its templates declare
/// (each passed one is declared, each declared one without a default is passed, each has
/// `value` or `valueFrom`), and a template measured until stopped (an `interval` without
/// a `count`) is used only by background analysis, where the rollout's end stops it.
fn check_analysis_usage(c: &mut Checker, app: &Application, workloads: &DocPath) {
    for (w, workload) in app.spec.workloads.iter().enumerate() {
        let strategy = workloads.index(w).key("strategy");
        let mut uses: Vec<(DocPath, &AnalysisStep, bool)> = Vec::new();
        let background_step;
        match &workload.strategy {
            crate::document::Strategy::Canary(canary) => {
                let steps = strategy.key("canary").key("steps");
                for (i, step) in canary.steps.iter().enumerate() {
                    if let CanaryStep::Analysis(a) = step {
                        uses.push((steps.index(i).key("analysis"), a, false));
                    }
                }
                if let Some(b) = &canary.analysis {
                    background_step = AnalysisStep {
                        templates: b.templates.clone(),
                        args: b.args.clone(),
                    };
                    uses.push((
                        strategy.key("canary").key("analysis"),
                        &background_step,
                        true,
                    ));
                }
            }
            crate::document::Strategy::BlueGreen(bg) => {
                let at = strategy.key("blueGreen");
                if let Some(a) = &bg.pre_promotion_analysis {
                    uses.push((at.key("prePromotionAnalysis"), a, false));
                }
                if let Some(a) = &bg.post_promotion_analysis {
                    uses.push((at.key("postPromotionAnalysis"), a, false));
                }
            }
            crate::document::Strategy::Rolling(_) => {}
        }
        for (at, step, background) in uses {
            let templates: Vec<&AnalysisTemplate> = step
                .templates
                .iter()
                .filter_map(|r| crate::analysis::template(app, &r.template_name))
                .collect();
            for (i, t) in templates.iter().enumerate() {
                if !background && t.interval.is_some() && t.count.is_none() {
                    c.fail(
                        &at.key("templates").index(i),
                        format!(
                            "template `{}` has an `interval` and no `count`, so it measures until stopped; a step would never finish: give it a `count`, or use it as the canary's background `analysis`",
                            t.name
                        ),
                    );
                }
            }
            let declared: BTreeSet<&str> = templates
                .iter()
                .flat_map(|t| t.args.iter().map(|a| a.name.as_str()))
                .collect();
            let args = at.key("args");
            unique_names(
                c,
                &args,
                step.args.iter().map(|a| a.name.as_str()),
                "argument",
            );
            for (i, a) in step.args.iter().enumerate() {
                let here = args.index(i);
                if !declared.contains(a.name.as_str()) {
                    c.fail(
                        &here.key("name"),
                        format!(
                            "no template of this analysis declares an argument `{}`{}",
                            a.name,
                            known(&declared)
                        ),
                    );
                }
                match (&a.value, &a.value_from) {
                    (Some(_), Some(_)) => {
                        c.fail(&here, "give either `value` or `valueFrom`, not both")
                    }
                    (None, None) => c.fail(
                        &here,
                        "needs `value` or `valueFrom` (e.g. `valueFrom: canaryTargetGroup`)",
                    ),
                    _ => {}
                }
                if a.value_from == Some(crate::document::ArgSource::ModelVersion)
                    && workload.model.is_none()
                {
                    c.fail(
                        &here.key("valueFrom"),
                        format!(
                            "`modelVersion`: workload `{}` serves no model",
                            workload.name
                        ),
                    );
                }
            }
            for t in &templates {
                for a in t.args.iter().filter(|a| a.value.is_none()) {
                    if !step.args.iter().any(|p| p.name == a.name) {
                        c.fail(
                            &args,
                            format!(
                                "template `{}` needs argument `{}`: pass it, e.g. `{{name: {}, valueFrom: canaryTargetGroup}}`",
                                t.name, a.name, a.name
                            ),
                        );
                    }
                }
            }
        }
    }
}

fn check_model(c: &mut Checker, m: &Model, path: &DocPath) {
    c.dns_name(&path.key("name"), &m.name);
    if let Err(problem) = store_uri(&m.store_uri) {
        c.fail(&path.key("storeUri"), problem);
    }
    match (&m.version, &m.version_parameter) {
        (Some(_), Some(_)) => c.fail(
            &path.key("versionParameter"),
            "give either `version` or `versionParameter`, not both",
        ),
        (None, None) => c.fail(
            path,
            "needs `version` (fixed) or `versionParameter` (an SSM parameter holding it)",
        ),
        _ => {}
    }
    if let Some(version) = &m.version {
        let valid = !version.is_empty()
            && version != "."
            && version != ".."
            && version
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
        if !valid {
            c.fail(
                &path.key("version"),
                format!(
                    "`{version}` cannot be a path segment; use letters, digits, `.`, `_` and `-`"
                ),
            );
        }
    }
    if let Some(parameter) = &m.version_parameter
        && let Err(problem) = ssm_parameter_name(parameter)
    {
        c.fail(&path.key("versionParameter"), problem);
    }
    if let Some(sha) = &m.sha256 {
        if m.version.is_none() {
            c.fail(
                &path.key("sha256"),
                "only with a fixed `version`; with `versionParameter` the checksum comes from metadata.json",
            );
        }
        let digits = sha.strip_prefix("sha256:").unwrap_or(sha);
        if digits.len() != 64 || !digits.chars().all(|c| c.is_ascii_hexdigit()) {
            c.fail(
                &path.key("sha256"),
                format!(
                    "must be 64 hexadecimal digits, optionally prefixed `sha256:` (got {} characters)",
                    digits.len()
                ),
            );
        }
    }
}

fn unique_names<'a>(
    c: &mut Checker,
    list: &DocPath,
    names: impl Iterator<Item = &'a str>,
    what: &str,
) {
    let mut first_seen: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, name) in names.enumerate() {
        if let Some(first) = first_seen.get(name) {
            c.fail(
                &list.index(i).key("name"),
                format!("duplicate {what} name `{name}` (first at index {first})"),
            );
        } else {
            first_seen.insert(name, i);
        }
    }
}

fn known(names: &BTreeSet<&str>) -> String {
    if names.is_empty() {
        " (there are none)".to_string()
    } else {
        let list: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
        format!(" (known: {})", list.join(", "))
    }
}

// ---------------------------------------------------------------------------------------
// Small syntactic predicates
// ---------------------------------------------------------------------------------------

/// Lower-case letters, digits and `-`, starting and ending alphanumeric, at most 63: fits
/// a DNS label, an ECS service name and an SSM path segment alike.
fn dns_label(name: &str) -> Result<(), String> {
    let valid_chars = name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if name.is_empty() {
        Err("must not be empty".to_string())
    } else if name.len() > 63 {
        Err(format!(
            "must be at most 63 characters (got {})",
            name.len()
        ))
    } else if !valid_chars || name.starts_with('-') || name.ends_with('-') {
        Err(format!(
            "`{name}` is not DNS-like: use lower-case letters, digits and `-`, starting and ending with a letter or digit"
        ))
    } else {
        Ok(())
    }
}

fn is_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn is_region(region: &str) -> bool {
    let parts: Vec<&str> = region.split('-').collect();
    parts.len() >= 3
        && parts[0].len() == 2
        && parts[..parts.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_lowercase()))
        && parts[parts.len() - 1].chars().all(|c| c.is_ascii_digit())
        && !parts[parts.len() - 1].is_empty()
}

fn is_http_url(url: &str) -> bool {
    ["http://", "https://"].iter().any(|scheme| {
        url.strip_prefix(scheme)
            .is_some_and(|rest| !rest.is_empty() && !rest.starts_with('/'))
    })
}

/// Checks `arn:partition:service:region:account:resource` with one of `services`.
fn arn_of(c: &mut Checker, path: &DocPath, arn: &str, services: &[&str]) {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let well_formed = parts.len() == 6
        && parts[0] == "arn"
        && parts[1].starts_with("aws")
        && !parts[5].is_empty();
    if !well_formed {
        c.fail(
            path,
            format!(
                "`{arn}` is not an ARN (`arn:aws:{}:region:account:resource`)",
                services[0]
            ),
        );
    } else if !services.contains(&parts[2]) {
        c.fail(
            path,
            format!(
                "must be an ARN of service {} (got `{}`)",
                services.join(" or "),
                parts[2]
            ),
        );
    }
}

fn ssm_parameter_name(name: &str) -> Result<(), String> {
    let valid_chars = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | '/'));
    if name.is_empty() || !valid_chars || name.len() > 1011 {
        Err(format!(
            "`{name}` is not an SSM parameter name (letters, digits, `_`, `.`, `-`, `/`)"
        ))
    } else if name.contains('/') && !name.starts_with('/') {
        Err(format!(
            "hierarchical SSM names start with `/` (got `{name}`)"
        ))
    } else {
        Ok(())
    }
}

fn s3_bucket(bucket: &str) -> Result<(), String> {
    let valid_chars = bucket
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-');
    let edges_ok = bucket
        .chars()
        .next()
        .zip(bucket.chars().last())
        .is_some_and(|(a, b)| a.is_ascii_alphanumeric() && b.is_ascii_alphanumeric());
    if (3..=63).contains(&bucket.len()) && valid_chars && edges_ok {
        Ok(())
    } else {
        Err(format!("`{bucket}` is not an S3 bucket name"))
    }
}

fn store_uri(uri: &str) -> Result<(), String> {
    match uri.split_once("://") {
        Some(("s3", rest)) => {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            s3_bucket(bucket)?;
            if prefix.contains("//") {
                return Err(format!("`{uri}` has an empty path segment"));
            }
            Ok(())
        }
        Some(("file", rest)) if !rest.is_empty() => Ok(()),
        _ => Err(format!(
            "must be `s3://bucket/prefix` or `file://path` (got `{uri}`)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_render_like_the_document() {
        let p = DocPath::default()
            .key("spec")
            .key("workloads")
            .index(1)
            .key("strategy")
            .key("canary")
            .key("steps")
            .index(2)
            .key("setWeight");
        assert_eq!(
            p.to_string(),
            "spec.workloads[1].strategy.canary.steps[2].setWeight"
        );
        let label = DocPath::default()
            .key("metadata")
            .key("labels")
            .key("app.kubernetes.io/name");
        assert_eq!(
            label.to_string(),
            "metadata.labels[\"app.kubernetes.io/name\"]"
        );
    }

    #[test]
    fn fargate_table_matches_the_documented_sizes() {
        assert_eq!(fargate_memory_choices(256), Some(vec![512, 1024, 2048]));
        assert_eq!(
            fargate_memory_choices(512),
            Some(vec![1024, 2048, 3072, 4096])
        );
        let c4096 = fargate_memory_choices(4096).unwrap_or_default();
        assert_eq!(
            (c4096[0], c4096[c4096.len() - 1], c4096.len()),
            (8192, 30720, 23)
        );
        let c8192 = fargate_memory_choices(8192).unwrap_or_default();
        assert_eq!(
            (c8192[0], c8192[c8192.len() - 1], c8192[1]),
            (16384, 61440, 20480)
        );
        let c16384 = fargate_memory_choices(16384).unwrap_or_default();
        assert_eq!(
            (c16384[0], c16384[c16384.len() - 1], c16384[1]),
            (32768, 122880, 40960)
        );
        assert_eq!(fargate_memory_choices(300), None);
    }

    #[test]
    fn name_predicates_accept_and_refuse_what_they_say() {
        assert!(dns_label("prediction-app").is_ok());
        assert!(dns_label("Backend").is_err());
        assert!(dns_label("-x").is_err());
        assert!(dns_label(&"a".repeat(64)).is_err());
        assert!(is_env_name("ML_SERVICE_URL"));
        assert!(!is_env_name("1ABC"));
        assert!(!is_env_name("A-B"));
        assert!(is_region("ap-south-1"));
        assert!(is_region("us-gov-west-1"));
        assert!(!is_region("mumbai"));
        assert!(store_uri("s3://ml-models-bucket/churn").is_ok());
        assert!(store_uri("s3://ml-models-bucket").is_ok());
        assert!(store_uri("file://workloads/inference/models").is_ok());
        assert!(store_uri("s3://Bad_Bucket/x").is_err());
        assert!(store_uri("https://example.com/models").is_err());
        assert!(ssm_parameter_name("/ml-service/model-version").is_ok());
        assert!(ssm_parameter_name("ml-service/model-version").is_err());
    }

    #[test]
    fn every_valid_workload_name_derives_valid_ecs_service_names() {
        let longest = "a".repeat(63);
        for name in ["a", "api", "prediction-app-0", longest.as_str()] {
            assert!(dns_label(name).is_ok(), "{name}");
            for slot in [None, Some(Slot::Blue), Some(Slot::Green)] {
                let service = service_name(name, slot);
                assert!(is_ecs_service_name(&service), "{service}");
            }
        }
        assert!(is_ecs_service_name(&"a".repeat(255)));
        assert!(!is_ecs_service_name(&"a".repeat(256)));
        assert!(!is_ecs_service_name("api.blue"));
        assert!(!is_ecs_service_name(""));
        assert!(is_ecs_service_name("API_blue-2"));
    }

    #[test]
    fn typos_find_the_key_they_meant() {
        let known: Vec<String> = ["desiredCount", "image", "spec", "failureLimit", "url"]
            .iter()
            .map(|k| k.to_string())
            .collect();
        assert_eq!(closest("desiredCuont", &known), Some("desiredCount"));
        assert_eq!(closest("desiredcount", &known), Some("desiredCount"));
        assert_eq!(closest("imagee", &known), Some("image"));
        assert_eq!(closest("specs", &known), Some("spec"));
        assert_eq!(closest("method", &known), None);
        assert_eq!(closest("uri", &known), Some("url"));
        assert_eq!(edit_distance("abc", "abc"), 0);
        assert_eq!(edit_distance("ab", "ba"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
    }

    #[test]
    fn the_location_index_points_at_nested_values() {
        let text = "a:\n  b:\n    - x: 1\n    - x: 2\n";
        let index = read_tree(text)
            .map(|tree| LocationIndex::from_tree(&tree))
            .unwrap_or_default();
        let path = DocPath::default().key("a").key("b").index(1).key("x");
        let found = index.locate(path, "m".into());
        assert_eq!((found.line, found.column), (Some(4), Some(10)));
        let missing = DocPath::default().key("a").key("b").index(1).key("y");
        let found = index.locate(missing, "m".into());
        assert_eq!(found.line, Some(4), "falls back to the nearest ancestor");
    }
}
