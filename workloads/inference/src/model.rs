//! The model: its metadata, and running it with tract.
//!
//! A [`LoadedModel`] exists only for bytes whose checksum was verified (see
//! [`crate::artifact`]) and which tract parsed, optimised for a symbolic batch size,
//! and ran once on a zero row with outputs of the shape the metadata promises. So
//! anything that holds one can serve predictions; nothing else can.
//!
//! The ONNX graphs come from skl2onnx without ZipMap: input `float32 [N, width]`,
//! outputs `label` (`int64 [N]`) and `probabilities` (`float32 [N, classes]`).

use std::io::Cursor;
use std::sync::{Arc, Mutex, PoisonError};

use serde::{Deserialize, Serialize};
use tract_onnx::prelude::*;

use crate::dense::DensePlan;

/// `metadata.json` beside `model.onnx` (written by `training/train.py`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ModelMetadata {
    pub version: String,
    /// Hex sha256 of `model.onnx`.
    pub sha256: String,
    pub input_width: usize,
    #[serde(default)]
    pub feature_names: Vec<String>,
    /// The values the `label` output takes, in probability-column order.
    pub class_labels: Vec<i64>,
    /// Human names for `class_labels`, same order; may be empty.
    #[serde(default)]
    pub class_names: Vec<String>,
    /// Evaluation figures of the training run (e.g. `accuracy`).
    #[serde(default)]
    #[schema(value_type = Object)]
    pub metrics: serde_json::Map<String, serde_json::Value>,
    #[serde(default)]
    pub trained_date: Option<String>,
    /// Anything else the training script recorded, passed through to `GET /model`
    /// (documented as additional properties of the object).
    #[serde(flatten)]
    #[schema(ignore)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// Why a model could not be loaded or run.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// tract could not parse, type or optimise the graph.
    #[error("tract could not load the ONNX graph: {source}")]
    Parse {
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The metadata contradicts itself.
    #[error("metadata.json is inconsistent: {0}")]
    InconsistentMetadata(String),
    /// The graph's outputs are not the `label` + `probabilities` pair we expect.
    #[error("the model's outputs are not label + probabilities: {0}")]
    UnexpectedOutputs(String),
    /// tract failed while running the graph.
    #[error("running the model failed: {source}")]
    Run {
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// One row's answer.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Prediction {
    /// The class label, as the training framework's `predict` returns it.
    pub prediction: i64,
    /// The class's human name, when the metadata has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// The probability of the predicted class.
    pub confidence: f32,
    /// Probabilities per class, in `class_labels` order.
    pub probabilities: Vec<f32>,
}

/// A verified, runnable model.
///
/// tract parses, types and optimises every graph and is the reference: two plans of
/// it, one with a concrete batch of 1 (the `/predict` path, where tract has no symbol
/// to resolve per call) and one with a symbolic batch `N` for `/predict/batch`. Run
/// states of the single-row plan are pooled and reused: `/predict` profiles showed
/// state setup costing as much as the maths.
///
/// When the graph is dense (a linear model or a perceptron: see [`crate::dense`]),
/// every row, single or batched, is evaluated by its [`DensePlan`] instead: a profile
/// of `/predict` put tract's plan at 28% of the service's CPU for 30 multiply-adds.
/// That plan is used only after it agreed with both tract plans, at load time, on
/// every check row ([`check_rows`]): the same label, and probabilities within
/// [`AGREEMENT`]. A graph without a plan, or whose plan disagrees, is served by tract.
///
/// tract's single-row plan computes only `probabilities` when that gives the model's
/// own labels: tract builds a classifier's `label` as the class at the first maximum
/// of `probabilities` (ArgMax, cast, lookup: 3 more ops per call, ~10% of a `/predict`'s
/// CPU in a profile), so picking that class from the probabilities here is the same
/// answer. It is used only after both ways agreed on every check row; a graph whose
/// labels come otherwise keeps the full plan. The dense plan's labels are picked the
/// same way and checked the same way.
#[derive(Debug, Clone)]
pub struct LoadedModel {
    /// Set when the dense plan agreed with tract; then it answers every row.
    dense: Option<Arc<DensePlan>>,
    /// Why the graph has no dense plan, or why it was not used (for the load log).
    dense_refusal: Option<String>,
    single: Arc<TypedRunnableModel>,
    /// Whether `single` outputs only `probabilities` (labels picked by [`argmax`]).
    single_probabilities_only: bool,
    batched: Arc<TypedRunnableModel>,
    // Held only while a state is taken or returned, never across a model call; its
    // size is bounded by the number of threads that predict at once.
    idle_single_states: Arc<Mutex<Vec<TypedSimpleState>>>,
    metadata: Arc<ModelMetadata>,
}

/// How far the dense plan's probabilities may be from tract's on a check row (see
/// [`close`]): tract computes in `f32` (with an approximated sigmoid), the plan in
/// `f64`; the parity test holds both to 1e-5 of scikit-learn's.
pub const AGREEMENT: f32 = 1e-5;

/// Which engine answers predictions (for logs and tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// [`DensePlan`], checked against tract at load.
    Dense,
    /// tract's plans.
    Tract,
}

impl Engine {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Dense => "dense",
            Self::Tract => "tract",
        }
    }
}

impl LoadedModel {
    /// Parse and prepare `onnx` (already checksum-verified) described by `metadata`.
    pub fn from_bytes(onnx: &[u8], metadata: ModelMetadata) -> Result<Self, ModelError> {
        let width = metadata.input_width;
        let classes = metadata.class_labels.len();
        if width == 0 {
            return Err(ModelError::InconsistentMetadata(
                "input_width is 0".to_owned(),
            ));
        }
        if classes < 2 {
            return Err(ModelError::InconsistentMetadata(format!(
                "class_labels has {classes} entries, a classifier needs at least 2"
            )));
        }
        if !metadata.class_names.is_empty() && metadata.class_names.len() != classes {
            return Err(ModelError::InconsistentMetadata(format!(
                "{} class_names for {classes} class_labels",
                metadata.class_names.len()
            )));
        }
        let parse = |e: TractError| ModelError::Parse { source: e.into() };
        // Decoded once; tract's graph and the dense plan are both built from it.
        let proto = tract_onnx::onnx()
            .proto_model_for_read(&mut Cursor::new(onnx))
            .map_err(parse)?;
        let graph = tract_onnx::onnx()
            .model_for_proto_model(&proto)
            .map_err(parse)?;
        let batched = prepare(graph.clone(), width, None, false).map_err(parse)?;
        let full = Self {
            dense: None,
            dense_refusal: None,
            single: prepare(graph.clone(), width, Some(1), false).map_err(parse)?,
            single_probabilities_only: false,
            batched,
            idle_single_states: Arc::new(Mutex::new(Vec::new())),
            metadata: Arc::new(metadata),
        };
        // Run both plans once now so a graph that parses but cannot run (or answers
        // in another shape) is refused at load time instead of failing every request.
        full.predict(&vec![0.0; width], 1)?;
        full.predict(&vec![0.0; 2 * width], 2)?;
        let tract = full.with_fast_single(graph).unwrap_or_else(|full| *full);
        let plan = match &proto.graph {
            Some(graph) => DensePlan::compile(graph, width, classes).map_err(|e| e.to_string()),
            None => Err("the file has no graph".to_owned()),
        };
        Ok(match plan {
            Ok(plan) => tract.with_dense(plan),
            Err(why) => Self {
                dense_refusal: Some(why),
                ..tract
            },
        })
    }

    /// This model answered by `plan`, if the plan agrees with both tract plans on every
    /// [`check_rows`] row; else the model as it was, with the reason recorded.
    fn with_dense(self, plan: DensePlan) -> Self {
        let width = self.metadata.input_width;
        let rows = check_rows(width);
        let count = rows.len() / width;
        let dense = Self {
            dense: Some(Arc::new(plan)),
            ..self.clone()
        };
        let disagreement = match (self.predict(&rows, count), dense.predict(&rows, count)) {
            (Ok(batched), Ok(got)) => {
                batched
                    .iter()
                    .zip(&got)
                    .enumerate()
                    .find_map(|(i, (b, g))| {
                        let single = self.predict(&rows[i * width..(i + 1) * width], 1);
                        let agree = matches!(&single, Ok(s) if agrees(&s[0], g)) && agrees(b, g);
                        (!agree).then(|| format!("check row {i}: tract {b:?}, dense plan {g:?}"))
                    })
            }
            (Err(e), _) | (_, Err(e)) => Some(e.to_string()),
        };
        match disagreement {
            None => dense,
            Some(why) => Self {
                dense_refusal: Some(format!("it disagreed with tract: {why}")),
                ..self
            },
        }
    }

    /// Which engine answers this model's predictions.
    pub fn engine(&self) -> Engine {
        if self.dense.is_some() {
            Engine::Dense
        } else {
            Engine::Tract
        }
    }

    /// Why the dense plan is not used, when it is not.
    pub fn dense_refusal(&self) -> Option<&str> {
        self.dense_refusal.as_deref()
    }

    /// The same model answered by tract alone: the reference the dense plan is
    /// checked against (the parity tests and `benches/model.rs` measure both).
    pub fn tract_only(&self) -> Self {
        Self {
            dense: None,
            dense_refusal: Some("tract only, on request".to_owned()),
            ..self.clone()
        }
    }

    /// This model with the probabilities-only single-row plan, if it gives the same
    /// answers as the full graph on every [`check_rows`] row; else the model as it was.
    fn with_fast_single(self, graph: InferenceModel) -> Result<Self, Box<Self>> {
        let width = self.metadata.input_width;
        let Ok(single) = prepare(graph, width, Some(1), true) else {
            return Err(Box::new(self));
        };
        let fast = Self {
            single,
            single_probabilities_only: true,
            idle_single_states: Arc::new(Mutex::new(Vec::new())),
            ..self.clone()
        };
        // Against the full single-row plan: the same batch shape, so any difference is
        // the label's, not a kernel's rounding.
        let agrees = check_rows(width).chunks_exact(width).all(|row| {
            matches!((self.predict(row, 1), fast.predict(row, 1)), (Ok(want), Ok(got)) if want == got)
        });
        if agrees {
            Ok(fast)
        } else {
            Err(Box::new(self))
        }
    }

    /// Whether `/predict` runs the probabilities-only plan (see [`LoadedModel`]).
    pub fn single_row_plan_is_probabilities_only(&self) -> bool {
        self.single_probabilities_only
    }

    pub fn metadata(&self) -> &ModelMetadata {
        &self.metadata
    }

    pub fn version(&self) -> &str {
        &self.metadata.version
    }

    pub fn input_width(&self) -> usize {
        self.metadata.input_width
    }

    /// Predict one row of `input_width` finite values (the `/predict` path: no vector
    /// of one answer).
    pub fn predict_one(&self, row: &[f32]) -> Result<Prediction, ModelError> {
        if let Some(plan) = &self.dense
            && row.len() == plan.width()
        {
            return Ok(self.dense_prediction(plan, row));
        }
        self.predict(row, 1)?
            .pop()
            .ok_or_else(|| ModelError::UnexpectedOutputs("no rows".to_owned()))
    }

    /// Predict `rows` rows laid out row-major in `features` (`rows * input_width`
    /// values, all finite; the HTTP layer guarantees both).
    pub fn predict(&self, features: &[f32], rows: usize) -> Result<Vec<Prediction>, ModelError> {
        let width = self.metadata.input_width;
        if let Some(plan) = &self.dense {
            if features.len() != rows * width {
                return Err(ModelError::UnexpectedOutputs(format!(
                    "{} values for {rows} rows of {width}",
                    features.len()
                )));
            }
            return Ok(features
                .chunks_exact(width)
                .map(|row| self.dense_prediction(plan, row))
                .collect());
        }
        let input = Tensor::from_shape(&[rows, width], features)
            .map_err(|e| ModelError::Run { source: e.into() })?;
        let outputs = if rows == 1 {
            self.run_single(input)
        } else {
            self.batched.run(tvec![input.into_tvalue()])
        }
        .map_err(|e| ModelError::Run { source: e.into() })?;
        if rows == 1 && self.single_probabilities_only {
            return self.prediction_from_probabilities(&outputs);
        }
        if outputs.len() != 2 {
            return Err(ModelError::UnexpectedOutputs(format!(
                "{} outputs",
                outputs.len()
            )));
        }
        let labels = outputs[0]
            .cast_to::<i64>()
            .map_err(|e| ModelError::Run { source: e.into() })?;
        let labels = labels
            .try_as_plain_ram()
            .and_then(|view| view.as_slice::<i64>())
            .map_err(|e| ModelError::UnexpectedOutputs(e.to_string()))?;
        let probabilities = outputs[1]
            .try_as_plain_ram()
            .and_then(|view| view.as_slice::<f32>())
            .map_err(|e| ModelError::UnexpectedOutputs(e.to_string()))?;
        let classes = self.metadata.class_labels.len();
        if labels.len() != rows || probabilities.len() != rows * classes {
            return Err(ModelError::UnexpectedOutputs(format!(
                "{} labels and {} probabilities for {rows} rows of {classes} classes",
                labels.len(),
                probabilities.len()
            )));
        }
        Ok(labels
            .iter()
            .zip(probabilities.chunks_exact(classes))
            .map(|(&label, probs)| self.prediction(label, probs))
            .collect())
    }

    /// One row's prediction from a probabilities-only run: the label is the class at
    /// the first maximum, as tract's own ArgMax + lookup would give it.
    fn prediction_from_probabilities(
        &self,
        outputs: &[TValue],
    ) -> Result<Vec<Prediction>, ModelError> {
        let classes = &self.metadata.class_labels;
        let probabilities = outputs
            .first()
            .ok_or_else(|| ModelError::UnexpectedOutputs("no outputs".to_owned()))?
            .try_as_plain_ram()
            .and_then(|view| view.as_slice::<f32>())
            .map_err(|e| ModelError::UnexpectedOutputs(e.to_string()))?;
        if probabilities.len() != classes.len() {
            return Err(ModelError::UnexpectedOutputs(format!(
                "{} probabilities for 1 row of {} classes",
                probabilities.len(),
                classes.len()
            )));
        }
        Ok(vec![
            self.prediction(classes[argmax(probabilities)], probabilities),
        ])
    }

    /// The answer for one row: its label and the probabilities per class.
    fn prediction(&self, label: i64, probabilities: &[f32]) -> Prediction {
        self.prediction_with(label, probabilities.to_vec())
    }

    /// One row's answer from the dense plan: the label is the class at the first
    /// maximum, as for tract's probabilities-only plan.
    fn dense_prediction(&self, plan: &DensePlan, row: &[f32]) -> Prediction {
        let probabilities = plan.probabilities(row);
        let label = self.metadata.class_labels[argmax(&probabilities)];
        self.prediction_with(label, probabilities)
    }

    fn prediction_with(&self, label: i64, probabilities: Vec<f32>) -> Prediction {
        Prediction {
            prediction: label,
            label: self.class_name(label),
            confidence: probabilities.iter().copied().fold(0.0, f32::max),
            probabilities,
        }
    }

    fn run_single(&self, input: Tensor) -> TractResult<TVec<TValue>> {
        let idle = self
            .idle_single_states
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        let mut state = match idle {
            Some(state) => state,
            None => self.single.spawn()?,
        };
        let outputs = state.run(tvec![input.into_tvalue()])?;
        // Only a state that ran cleanly goes back to the pool.
        self.idle_single_states
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(state);
        Ok(outputs)
    }

    fn class_name(&self, label: i64) -> Option<String> {
        let index = self
            .metadata
            .class_labels
            .iter()
            .position(|&l| l == label)?;
        self.metadata.class_names.get(index).cloned()
    }
}

/// Whether the dense plan's answer `got` is tract's `want`: the same class, and each
/// probability within [`AGREEMENT`].
fn agrees(want: &Prediction, got: &Prediction) -> bool {
    want.prediction == got.prediction
        && want.probabilities.len() == got.probabilities.len()
        && want
            .probabilities
            .iter()
            .zip(&got.probabilities)
            .all(|(w, g)| close(*w, *g))
}

/// Within [`AGREEMENT`], relative to the larger magnitude once it is above 1: a graph
/// without a final transform answers raw scores (thousands on the check rows), where
/// `f32` and `f64` sums part in the seventh digit.
pub fn close(a: f32, b: f32) -> bool {
    (a - b).abs() <= AGREEMENT * a.abs().max(b.abs()).max(1.0)
}

/// The index of the first largest value (ONNX ArgMax with `select_last_index` 0); a
/// NaN is never larger than anything, as in tract's reducer.
///
/// ```text
/// [0.2, 0.8] -> 1;  [0.5, 0.5] -> 0;  [0.1, 0.7, 0.7] -> 1
/// ```
fn argmax(values: &[f32]) -> usize {
    let mut best = 0;
    for (i, v) in values.iter().enumerate().skip(1) {
        if *v > values[best] {
            best = i;
        }
    }
    best
}

/// Rows the fast single-row plan must answer as the full graph does before it is used:
/// the zero row and 63 pseudo-random rows whose values span many magnitudes (raw
/// features of the committed models run from 1e-3 to 4e3), so both classes and rows
/// near the boundary turn up.
fn check_rows(width: usize) -> Vec<f32> {
    let mut state: u64 = 0x7467_626f_6174; // fixed: the check is the same on every load
    let mut rows = vec![0.0; width];
    for _ in 1..64 {
        for _ in 0..width {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let unit = (state >> 40) as f32 / (1u64 << 24) as f32; // [0, 1)
            let magnitude = 10f32.powi(((state >> 20) % 7) as i32 - 3); // 1e-3..1e3
            rows.push((unit * 2.0 - 1.0) * 4.0 * magnitude);
        }
    }
    rows
}

/// tract needs the input's type and shape: float32, `[batch, width]`, with `batch`
/// either fixed or the symbol `N` so one optimised plan serves every batch size.
/// The graph's declared output shapes are dropped (skl2onnx names its own batch
/// symbols there) and re-inferred.
///
/// `probabilities_only`: the plan keeps only the second output (`probabilities`), and
/// tract drops the ops that only the `label` needed.
fn prepare(
    model: InferenceModel,
    width: usize,
    batch: Option<usize>,
    probabilities_only: bool,
) -> TractResult<Arc<TypedRunnableModel>> {
    let batch = match batch {
        Some(rows) => rows.to_dim(),
        None => model.sym("N").to_dim(),
    };
    let output_count = model.outputs.len();
    let mut model = model.with_input_fact(0, f32::fact([batch, width.to_dim()]).into())?;
    for ix in 0..output_count {
        model = model.with_output_fact(ix, InferenceFact::default())?;
    }
    if probabilities_only {
        let probabilities = *model.output_outlets()?.get(1).ok_or_else(|| {
            TractError::msg(format!(
                "the graph has {output_count} outputs, no probabilities"
            ))
        })?;
        model = model.with_output_outlets(&[probabilities])?;
    }
    model.into_optimized()?.into_runnable()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argmax_takes_the_first_largest_as_onnx_argmax_does() {
        assert_eq!(argmax(&[0.2, 0.8]), 1);
        assert_eq!(argmax(&[0.5, 0.5]), 0);
        assert_eq!(argmax(&[0.1, 0.7, 0.7]), 1);
        assert_eq!(argmax(&[0.9, f32::NAN, 0.1]), 0);
        assert_eq!(argmax(&[0.3]), 0);
    }

    #[test]
    fn check_rows_are_fixed_and_span_magnitudes() {
        let rows = check_rows(30);
        assert_eq!(rows.len(), 64 * 30);
        assert_eq!(rows, check_rows(30), "the same rows on every load");
        assert!(
            rows[..30].iter().all(|v| *v == 0.0),
            "the zero row comes first"
        );
        let largest = rows.iter().fold(0f32, |m, v| m.max(v.abs()));
        let smallest = rows[30..].iter().fold(f32::MAX, |m, v| m.min(v.abs()));
        assert!(largest > 100.0 && smallest < 0.01, "{smallest}..{largest}");
    }
}
