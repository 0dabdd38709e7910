//! A straight-line evaluator for the dense graphs that scikit-learn's and PyTorch's
//! ONNX exporters write for linear models and multi-layer perceptrons.
//!
//! Why: a `/predict` through tract's plan costs several microseconds of per-op tensor
//! bookkeeping for a model whose arithmetic is a few hundred multiply-adds (the
//! committed v1 is 30, v2 about 500). [`DensePlan::compile`] turns the ops between the
//! graph's input and its `probabilities` output into a list of [`Step`]s over one
//! scratch buffer, and [`DensePlan::probabilities`] runs them with one allocation.
//!
//! Guarantees:
//! - A plan exists only if every op that `probabilities` depends on is one listed in
//!   [`compile`](DensePlan::compile)'s docs, with operands of the shapes checked there
//!   (one row `[1, n]`, constants broadcast along its last axis, weight matrices
//!   `[k, n]`). Anything else is refused with [`DenseError`] naming the node, and the
//!   caller keeps tract. Ops only the `label` output needs are not compiled: the label
//!   is the class at the first largest probability, which [`crate::model`] checks
//!   against tract's own labels before it uses a plan.
//! - Each op is computed as ONNX defines it, in `f64` from the `f32` input and the
//!   `f32` (or `f64`) constants of the file, and the probabilities are rounded to `f32`
//!   once at the end. scikit-learn computes in `f64`, so this is at least as close to
//!   the trained model's own answers as tract's `f32` kernels (the parity test holds
//!   both to 1e-5).
//! - Evaluating a compiled plan cannot fail for a row of its input width.

use std::collections::{HashMap, HashSet};

use tract_onnx::pb::{AttributeProto, GraphProto, NodeProto, TensorProto};

/// Why a graph has no dense plan. Never a reason to refuse the model: tract serves it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DenseError {
    /// The graph is not the one-input, `label` + `probabilities` shape served here.
    #[error("graph: {0}")]
    Graph(String),
    /// An op the evaluator does not implement (or not with these attributes).
    #[error("node {node} ({op}): {why}")]
    Unsupported {
        node: String,
        op: String,
        why: String,
    },
    /// A constant whose type or layout is not read here (e.g. stored outside the file).
    #[error("constant {name}: {why}")]
    Constant { name: String, why: String },
}

/// A contiguous part of the scratch buffer holding one value (a row of `len` numbers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Span {
    start: usize,
    len: usize,
}

impl Span {
    fn range(self) -> std::ops::Range<usize> {
        self.start..self.start + self.len
    }
}

/// One operand of an elementwise op: a computed row, or a constant broadcast to it.
#[derive(Debug, Clone, PartialEq)]
enum Operand {
    Row(Span),
    /// One value (broadcast) or one per element of the output.
    Const(Box<[f64]>),
}

impl Operand {
    fn len(&self) -> usize {
        match self {
            Self::Row(span) => span.len,
            Self::Const(values) => values.len(),
        }
    }

    /// Element `i` of the broadcast operand (length 1 repeats).
    fn at(&self, scratch: &[f64], i: usize) -> f64 {
        match self {
            Self::Row(span) if span.len == 1 => scratch[span.start],
            Self::Row(span) => scratch[span.start + i],
            Self::Const(values) if values.len() == 1 => values[0],
            Self::Const(values) => values[i],
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Binary {
    Add,
    Sub,
    Mul,
    Div,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Unary {
    Relu,
    LeakyRelu(f64),
    Sigmoid,
    Tanh,
    Exp,
    Neg,
    Abs,
}

/// What ONNX-ML's `LinearClassifier` does with its scores (`post_transform`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PostTransform {
    None,
    Logistic,
    Softmax,
}

/// One op over the scratch buffer; every output span lies after all its inputs.
#[derive(Debug, Clone, PartialEq)]
enum Step {
    Binary {
        op: Binary,
        a: Operand,
        b: Operand,
        out: Span,
    },
    /// `out = alpha * input · weights + beta * bias` (MatMul: alpha 1, no bias).
    MatMul {
        input: Span,
        /// `[input.len, out.len]`, row-major.
        weights: Box<[f64]>,
        alpha: f64,
        /// `beta * C` of Gemm, broadcast (length 1 or `out.len`).
        bias: Option<Box<[f64]>>,
        out: Span,
    },
    Unary {
        op: Unary,
        input: Span,
        out: Span,
    },
    Softmax {
        input: Span,
        out: Span,
    },
    Concat {
        inputs: Vec<Span>,
        out: Span,
    },
    /// ONNX-ML `LinearClassifier`'s scores, laid out as tract and onnxruntime do.
    LinearClassifier {
        input: Span,
        /// `[models, input.len]`, row-major, as the attribute stores them.
        coefficients: Box<[f64]>,
        /// One per model, or none.
        intercepts: Option<Box<[f64]>>,
        /// Two classes from one model: scores `[-s, s]` before the transform, or
        /// `[1 - sigmoid(s), sigmoid(s)]` with `Logistic`.
        binary: bool,
        post: PostTransform,
        out: Span,
    },
}

/// A compiled graph: [`Step`]s from one input row to its class probabilities.
#[derive(Debug, Clone, PartialEq)]
pub struct DensePlan {
    width: usize,
    steps: Vec<Step>,
    scratch_len: usize,
    output: Span,
}

/// Scratch slots kept on the stack (4 KiB) when a plan needs no more.
const STACK_SCRATCH: usize = 512;

/// A value while compiling: computed at run time, or known from the file.
#[derive(Debug, Clone)]
enum Value {
    Row(Span),
    Const { data: Vec<f64>, dims: Vec<usize> },
}

const FLOAT: i32 = 1;
const DOUBLE: i32 = 11;

impl DensePlan {
    /// Compile the path from `graph`'s input (a row of `width` values) to its second
    /// output (`probabilities`, `classes` of them).
    ///
    /// Ops evaluated (the default ONNX domain unless said): `Add`, `Sub`, `Mul`, `Div`
    /// (row with row or with a constant broadcast along the last axis), `MatMul` (row
    /// by a constant `[k, n]`), `Gemm` (the same, with `alpha`, `beta`, `transB` and a
    /// constant `C`), `Relu`, `LeakyRelu`, `Sigmoid`, `Tanh`, `Exp`, `Neg`, `Abs`,
    /// `Softmax` (last axis), `Concat` (last axis, rows only), `Identity`, `Cast` to
    /// float or double, `Constant`, and ONNX-ML's `LinearClassifier` (post transforms
    /// `NONE`, `LOGISTIC`, `SOFTMAX`).
    pub fn compile(graph: &GraphProto, width: usize, classes: usize) -> Result<Self, DenseError> {
        // Read when an op uses them: graphs also hold constants of other types (class
        // labels, shapes) that only the label's ops need.
        let initializers: HashMap<&str, &TensorProto> = graph
            .initializer
            .iter()
            .map(|t| (t.name.as_str(), t))
            .collect();
        let inputs: Vec<&str> = graph
            .input
            .iter()
            .map(|i| i.name.as_str())
            .filter(|name| !initializers.contains_key(name))
            .collect();
        let [input] = inputs[..] else {
            return Err(DenseError::Graph(format!(
                "{} inputs besides constants, expected 1",
                inputs.len()
            )));
        };
        let output = match &graph.output[..] {
            [_label, probabilities] => probabilities.name.as_str(),
            other => {
                return Err(DenseError::Graph(format!(
                    "{} outputs, expected label and probabilities",
                    other.len()
                )));
            }
        };
        let needed = needed_nodes(&graph.node, output);
        let mut compiler = Compiler {
            initializers,
            values: HashMap::new(),
            steps: Vec::new(),
            next: width,
        };
        compiler.values.insert(
            input,
            Value::Row(Span {
                start: 0,
                len: width,
            }),
        );
        for (node, _) in graph.node.iter().zip(&needed).filter(|(_, n)| **n) {
            compiler.node(node)?;
        }
        let out = match compiler.values.get(output) {
            Some(Value::Row(span)) => *span,
            Some(Value::Const { .. }) => {
                return Err(DenseError::Graph(format!("output {output} is a constant")));
            }
            None => {
                return Err(DenseError::Graph(format!(
                    "output {output} is not computed by any node"
                )));
            }
        };
        if out.len != classes {
            return Err(DenseError::Graph(format!(
                "output {output} has {} values per row, the metadata {classes} classes",
                out.len
            )));
        }
        Ok(Self {
            width,
            steps: compiler.steps,
            scratch_len: compiler.next,
            output: out,
        })
    }

    /// The number of values a row has.
    pub fn width(&self) -> usize {
        self.width
    }

    /// The class probabilities of `row` (`width` finite values).
    ///
    /// # Panics
    /// If `row` does not have [`width`](Self::width) values: callers validate widths.
    pub fn probabilities(&self, row: &[f32]) -> Vec<f32> {
        assert_eq!(row.len(), self.width, "row width");
        // On the stack for the graphs served here (v2 needs 98 slots); the heap only
        // for a larger one.
        let mut stack = [0.0f64; STACK_SCRATCH];
        let mut heap = Vec::new();
        let scratch = if self.scratch_len <= STACK_SCRATCH {
            &mut stack[..self.scratch_len]
        } else {
            heap.resize(self.scratch_len, 0.0);
            &mut heap[..]
        };
        for (slot, value) in scratch.iter_mut().zip(row) {
            *slot = f64::from(*value);
        }
        for step in &self.steps {
            step.run(scratch);
        }
        // Rounding once, here, is the only f32 step after the input.
        #[allow(clippy::cast_possible_truncation)]
        scratch[self.output.range()]
            .iter()
            .map(|&p| p as f32)
            .collect()
    }
}

/// Which nodes `output` depends on (ONNX lists nodes in topological order).
fn needed_nodes(nodes: &[NodeProto], output: &str) -> Vec<bool> {
    let mut wanted: HashSet<&str> = HashSet::from([output]);
    let mut needed = vec![false; nodes.len()];
    for (i, node) in nodes.iter().enumerate().rev() {
        if node.output.iter().any(|o| wanted.contains(o.as_str())) {
            needed[i] = true;
            wanted.extend(
                node.input
                    .iter()
                    .map(String::as_str)
                    .filter(|s| !s.is_empty()),
            );
        }
    }
    needed
}

struct Compiler<'g> {
    initializers: HashMap<&'g str, &'g TensorProto>,
    values: HashMap<&'g str, Value>,
    steps: Vec<Step>,
    /// The first free slot of the scratch buffer.
    next: usize,
}

impl<'g> Compiler<'g> {
    fn alloc(&mut self, len: usize) -> Span {
        let span = Span {
            start: self.next,
            len,
        };
        self.next += len;
        span
    }

    fn node(&mut self, node: &'g NodeProto) -> Result<(), DenseError> {
        let unsupported = |why: String| DenseError::Unsupported {
            node: node.name.clone(),
            op: node.op_type.clone(),
            why,
        };
        let domain = node.domain.as_str();
        let op = node.op_type.as_str();
        let standard = domain.is_empty() || domain == "ai.onnx";
        let value = match (standard, domain, op) {
            (true, _, "Add" | "Sub" | "Mul" | "Div") => {
                let op = match op {
                    "Add" => Binary::Add,
                    "Sub" => Binary::Sub,
                    "Mul" => Binary::Mul,
                    _ => Binary::Div,
                };
                let [a, b] = self.inputs::<2>(node)?;
                self.binary(op, a, b).map_err(unsupported)?
            }
            (true, _, "MatMul") => {
                let [a, b] = self.inputs::<2>(node)?;
                self.matmul(a, b, false, 1.0, None).map_err(unsupported)?
            }
            (true, _, "Gemm") => self.gemm(node).map_err(unsupported)?,
            (true, _, "Relu" | "Sigmoid" | "Tanh" | "Exp" | "Neg" | "Abs" | "LeakyRelu") => {
                let op = match op {
                    "Relu" => Unary::Relu,
                    "Sigmoid" => Unary::Sigmoid,
                    "Tanh" => Unary::Tanh,
                    "Exp" => Unary::Exp,
                    "Neg" => Unary::Neg,
                    "Abs" => Unary::Abs,
                    _ => Unary::LeakyRelu(f64::from(attr_float(node, "alpha").unwrap_or(0.01))),
                };
                let [input] = self.inputs::<1>(node)?;
                let input = row(input).map_err(unsupported)?;
                let out = self.alloc(input.len);
                self.steps.push(Step::Unary { op, input, out });
                Value::Row(out)
            }
            (true, _, "Softmax") => {
                let axis = attr_int(node, "axis").unwrap_or(-1);
                if axis != 1 && axis != -1 {
                    return Err(unsupported(format!("axis {axis}, only the last")));
                }
                let [input] = self.inputs::<1>(node)?;
                let input = row(input).map_err(unsupported)?;
                let out = self.alloc(input.len);
                self.steps.push(Step::Softmax { input, out });
                Value::Row(out)
            }
            (true, _, "Concat") => {
                let axis = attr_int(node, "axis").unwrap_or(0);
                if axis != 1 && axis != -1 {
                    return Err(unsupported(format!("axis {axis}, only the last")));
                }
                let mut inputs = Vec::with_capacity(node.input.len());
                for name in &node.input {
                    inputs.push(row(self.value(node, name)?).map_err(unsupported)?);
                }
                let out = self.alloc(inputs.iter().map(|s| s.len).sum());
                self.steps.push(Step::Concat { inputs, out });
                Value::Row(out)
            }
            (true, _, "Identity") => {
                let [input] = self.inputs::<1>(node)?;
                input
            }
            (true, _, "Cast") => {
                let to = attr_int(node, "to").unwrap_or(0);
                if to != i64::from(FLOAT) && to != i64::from(DOUBLE) {
                    return Err(unsupported(format!("to type {to}, only float or double")));
                }
                let [input] = self.inputs::<1>(node)?;
                input
            }
            (true, _, "Constant") => {
                let tensor = node
                    .attribute
                    .iter()
                    .find(|a| a.name == "value")
                    .and_then(|a| a.t.as_ref())
                    .ok_or_else(|| unsupported("no tensor `value`".to_owned()))?;
                let (data, dims) = read_constant(tensor)?;
                Value::Const { data, dims }
            }
            (false, "ai.onnx.ml", "LinearClassifier") => {
                self.linear_classifier(node).map_err(unsupported)?
            }
            _ => return Err(unsupported("not an op of the dense evaluator".to_owned())),
        };
        let Some(first) = node.output.first() else {
            return Err(unsupported("no outputs".to_owned()));
        };
        // LinearClassifier's scores are its second output; every other op has one.
        let name = if op == "LinearClassifier" {
            node.output
                .get(1)
                .ok_or_else(|| unsupported("no scores output".to_owned()))?
        } else {
            first
        };
        self.values.insert(name.as_str(), value);
        Ok(())
    }

    fn value(&self, node: &NodeProto, name: &str) -> Result<Value, DenseError> {
        if let Some(value) = self.values.get(name) {
            return Ok(value.clone());
        }
        if let Some(tensor) = self.initializers.get(name) {
            let (data, dims) = read_constant(tensor)?;
            return Ok(Value::Const { data, dims });
        }
        Err(DenseError::Unsupported {
            node: node.name.clone(),
            op: node.op_type.clone(),
            why: format!("input {name} is not computed before it"),
        })
    }

    fn inputs<const N: usize>(&self, node: &NodeProto) -> Result<[Value; N], DenseError> {
        if node.input.len() != N {
            return Err(DenseError::Unsupported {
                node: node.name.clone(),
                op: node.op_type.clone(),
                why: format!("{} inputs, expected {N}", node.input.len()),
            });
        }
        let mut values = Vec::with_capacity(N);
        for name in &node.input {
            values.push(self.value(node, name)?);
        }
        Ok(values
            .try_into()
            .unwrap_or_else(|_| unreachable!("N values")))
    }

    fn binary(&mut self, op: Binary, a: Value, b: Value) -> Result<Value, String> {
        let (a, b) = match (a, b) {
            (Value::Const { .. }, Value::Const { .. }) => {
                return Err("both operands are constants".to_owned());
            }
            (a, b) => (operand(a)?, operand(b)?),
        };
        let len = match (a.len(), b.len()) {
            (x, y) if x == y => x,
            (1, y) => y,
            (x, 1) => x,
            (x, y) => return Err(format!("operands of {x} and {y} values do not broadcast")),
        };
        let out = self.alloc(len);
        self.steps.push(Step::Binary { op, a, b, out });
        Ok(Value::Row(out))
    }

    fn matmul(
        &mut self,
        a: Value,
        b: Value,
        transpose_b: bool,
        alpha: f64,
        bias: Option<Value>,
    ) -> Result<Value, String> {
        let input = row(a)?;
        let Value::Const { data, dims } = b else {
            return Err("the right operand is computed, only constant weights".to_owned());
        };
        let &[rows, cols] = &dims[..] else {
            return Err(format!("weights of shape {dims:?}, expected [k, n]"));
        };
        let (k, n) = if transpose_b {
            (cols, rows)
        } else {
            (rows, cols)
        };
        if k != input.len {
            return Err(format!(
                "weights [{k}, {n}] for a row of {} values",
                input.len
            ));
        }
        let weights: Box<[f64]> = if transpose_b {
            (0..k)
                .flat_map(|i| (0..n).map(move |j| (i, j)))
                .map(|(i, j)| data[j * k + i])
                .collect()
        } else {
            data.into()
        };
        let bias = match bias {
            None => None,
            Some(Value::Const { data, dims }) => {
                broadcast_len(&dims, n)?;
                Some(data.into())
            }
            Some(Value::Row(_)) => return Err("C is computed, only a constant".to_owned()),
        };
        let out = self.alloc(n);
        self.steps.push(Step::MatMul {
            input,
            weights,
            alpha,
            bias,
            out,
        });
        Ok(Value::Row(out))
    }

    fn gemm(&mut self, node: &NodeProto) -> Result<Value, String> {
        if attr_int(node, "transA").unwrap_or(0) != 0 {
            return Err("transA, only an untransposed row".to_owned());
        }
        let transpose_b = attr_int(node, "transB").unwrap_or(0) != 0;
        let alpha = f64::from(attr_float(node, "alpha").unwrap_or(1.0));
        let beta = f64::from(attr_float(node, "beta").unwrap_or(1.0));
        let value = |name: &str| self.value(node, name).map_err(|e| e.to_string());
        let (a, b, c) = match &node.input[..] {
            [a, b] => (value(a)?, value(b)?, None),
            [a, b, c] if c.is_empty() => (value(a)?, value(b)?, None),
            [a, b, c] => (value(a)?, value(b)?, Some(value(c)?)),
            other => return Err(format!("{} inputs, expected 2 or 3", other.len())),
        };
        let c = c.map(|c| match c {
            Value::Const { data, dims } => Value::Const {
                data: data.into_iter().map(|v| beta * v).collect(),
                dims,
            },
            row => row,
        });
        self.matmul(a, b, transpose_b, alpha, c)
    }

    fn linear_classifier(&mut self, node: &NodeProto) -> Result<Value, String> {
        let [input] = self.inputs::<1>(node).map_err(|e| e.to_string())?;
        let input = row(input)?;
        let classes = match (
            node.attribute.iter().find(|a| a.name == "classlabels_ints"),
            node.attribute
                .iter()
                .find(|a| a.name == "classlabels_strings"),
        ) {
            (Some(ints), None) => ints.ints.len(),
            (None, Some(strings)) => strings.strings.len(),
            _ => {
                return Err("needs exactly one of classlabels_ints and classlabels_strings".into());
            }
        };
        let coefficients: Vec<f64> = attr(node, "coefficients")
            .map(|a| a.floats.iter().map(|&v| f64::from(v)).collect())
            .unwrap_or_default();
        let intercepts: Option<Vec<f64>> =
            attr(node, "intercepts").map(|a| a.floats.iter().map(|&v| f64::from(v)).collect());
        let multi_class = attr_int(node, "multi_class").unwrap_or(0);
        let post = match attr(node, "post_transform").map(|a| a.s.as_slice()) {
            None | Some(b"NONE") => PostTransform::None,
            Some(b"LOGISTIC") => PostTransform::Logistic,
            Some(b"SOFTMAX") => PostTransform::Softmax,
            Some(other) => {
                return Err(format!("post_transform {}", String::from_utf8_lossy(other)));
            }
        };
        // The number of models, as tract's and onnxruntime's LinearClassifier take it.
        let models = match &intercepts {
            Some(i) => i.len(),
            None if classes == 2 && multi_class == 0 => 1,
            None => classes,
        };
        if coefficients.is_empty() || models == 0 || coefficients.len() != models * input.len {
            return Err(format!(
                "{} coefficients for {models} models of a row of {} values",
                coefficients.len(),
                input.len
            ));
        }
        let binary = classes == 2 && models == 1 && multi_class == 0;
        if !binary && models != classes {
            return Err(format!("{models} models for {classes} classes"));
        }
        let out = self.alloc(classes);
        self.steps.push(Step::LinearClassifier {
            input,
            coefficients: coefficients.into(),
            intercepts: intercepts.map(Into::into),
            binary,
            post,
            out,
        });
        Ok(Value::Row(out))
    }
}

fn row(value: Value) -> Result<Span, String> {
    match value {
        Value::Row(span) => Ok(span),
        Value::Const { .. } => Err("a constant where a computed row is expected".to_owned()),
    }
}

/// An elementwise operand: a row, or a constant that broadcasts along the last axis.
fn operand(value: Value) -> Result<Operand, String> {
    match value {
        Value::Row(span) => Ok(Operand::Row(span)),
        Value::Const { data, dims } => {
            let len = data.len();
            broadcast_len(&dims, len)?;
            Ok(Operand::Const(data.into()))
        }
    }
}

/// Whether a constant of `dims` holds `len` values laid along the last axis only
/// (`[]`, `[n]`, `[1, n]`, `[1, 1, n]`, ...), which is what broadcasts over one row.
fn broadcast_len(dims: &[usize], len: usize) -> Result<(), String> {
    let count: usize = dims.iter().product();
    let leading_ones = dims.iter().rev().skip(1).all(|&d| d == 1);
    if count == 0 || !leading_ones || (count != len && count != 1) {
        return Err(format!(
            "a constant of shape {dims:?} does not broadcast over one row"
        ));
    }
    Ok(())
}

fn attr<'n>(node: &'n NodeProto, name: &str) -> Option<&'n AttributeProto> {
    node.attribute.iter().find(|a| a.name == name)
}

fn attr_int(node: &NodeProto, name: &str) -> Option<i64> {
    attr(node, name).map(|a| a.i)
}

fn attr_float(node: &NodeProto, name: &str) -> Option<f32> {
    attr(node, name).map(|a| a.f)
}

/// A float or double tensor stored in the file, as `f64`s and its dimensions.
fn read_constant(t: &TensorProto) -> Result<(Vec<f64>, Vec<usize>), DenseError> {
    let fail = |why: String| DenseError::Constant {
        name: t.name.clone(),
        why,
    };
    let dims = t
        .dims
        .iter()
        .map(|&d| usize::try_from(d).map_err(|_| fail(format!("dimension {d}"))))
        .collect::<Result<Vec<usize>, _>>()?;
    if t.data_location == Some(1) {
        return Err(fail("stored outside the model file".to_owned()));
    }
    let data: Vec<f64> = match t.data_type {
        FLOAT if !t.raw_data.is_empty() => t
            .raw_data
            .chunks_exact(4)
            .map(|b| f64::from(f32::from_le_bytes([b[0], b[1], b[2], b[3]])))
            .collect(),
        FLOAT => t.float_data.iter().map(|&v| f64::from(v)).collect(),
        DOUBLE if !t.raw_data.is_empty() => t
            .raw_data
            .chunks_exact(8)
            .map(|b| f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]))
            .collect(),
        DOUBLE => t.double_data.clone(),
        other => return Err(fail(format!("element type {other}, only float or double"))),
    };
    let count: usize = dims.iter().product();
    if data.len() != count {
        return Err(fail(format!("{} values for shape {dims:?}", data.len())));
    }
    Ok((data, dims))
}

impl Step {
    fn run(&self, scratch: &mut [f64]) {
        match self {
            Self::Binary { op, a, b, out } => {
                for i in 0..out.len {
                    let (x, y) = (a.at(scratch, i), b.at(scratch, i));
                    scratch[out.start + i] = match op {
                        Binary::Add => x + y,
                        Binary::Sub => x - y,
                        Binary::Mul => x * y,
                        Binary::Div => x / y,
                    };
                }
            }
            Self::MatMul {
                input,
                weights,
                alpha,
                bias,
                out,
            } => {
                let (x, y) = input_and_output(scratch, *input, *out);
                y.fill(0.0);
                // Row-major weights: one pass over them, each output summed in k order.
                for (xi, w) in x.iter().zip(weights.chunks_exact(out.len)) {
                    for (yj, wij) in y.iter_mut().zip(w) {
                        *yj += xi * wij;
                    }
                }
                for (j, yj) in y.iter_mut().enumerate() {
                    *yj *= alpha;
                    if let Some(bias) = bias {
                        *yj += if bias.len() == 1 { bias[0] } else { bias[j] };
                    }
                }
            }
            Self::Unary { op, input, out } => {
                for i in 0..out.len {
                    let x = scratch[input.start + i];
                    scratch[out.start + i] = match op {
                        Unary::Relu => x.max(0.0),
                        Unary::LeakyRelu(alpha) => {
                            if x < 0.0 {
                                alpha * x
                            } else {
                                x
                            }
                        }
                        Unary::Sigmoid => sigmoid(x),
                        Unary::Tanh => x.tanh(),
                        Unary::Exp => x.exp(),
                        Unary::Neg => -x,
                        Unary::Abs => x.abs(),
                    };
                }
            }
            Self::Softmax { input, out } => {
                let (x, y) = input_and_output(scratch, *input, *out);
                y.copy_from_slice(x);
                softmax(y);
            }
            Self::Concat { inputs, out } => {
                let mut at = out.start;
                for input in inputs {
                    scratch.copy_within(input.range(), at);
                    at += input.len;
                }
            }
            Self::LinearClassifier {
                input,
                coefficients,
                intercepts,
                binary,
                post,
                out,
            } => {
                let (x, y) = input_and_output(scratch, *input, *out);
                let score = |m: usize| {
                    let w = &coefficients[m * x.len()..(m + 1) * x.len()];
                    let dot: f64 = x.iter().zip(w).map(|(a, b)| a * b).sum();
                    dot + intercepts.as_ref().map_or(0.0, |i| i[m])
                };
                if *binary {
                    let s = score(0);
                    match post {
                        PostTransform::Logistic => {
                            let p = sigmoid(s);
                            y[0] = 1.0 - p;
                            y[1] = p;
                        }
                        PostTransform::None => {
                            y[0] = -s;
                            y[1] = s;
                        }
                        PostTransform::Softmax => {
                            y[0] = -s;
                            y[1] = s;
                            softmax(y);
                        }
                    }
                } else {
                    for (m, ym) in y.iter_mut().enumerate() {
                        *ym = score(m);
                    }
                    match post {
                        PostTransform::None => {}
                        PostTransform::Logistic => y.iter_mut().for_each(|v| *v = sigmoid(*v)),
                        PostTransform::Softmax => softmax(y),
                    }
                }
            }
        }
    }
}

/// `1 / (1 + e^-x)`, without overflow for large `|x|`.
fn sigmoid(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

/// `e^(x - max) / sum` in place, the usual stable form.
fn softmax(x: &mut [f64]) {
    let max = x.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let mut sum = 0.0;
    for v in x.iter_mut() {
        *v = (*v - max).exp();
        sum += *v;
    }
    for v in x.iter_mut() {
        *v /= sum;
    }
}

/// A step's input and its output in the scratch buffer (outputs lie after inputs).
fn input_and_output(scratch: &mut [f64], input: Span, out: Span) -> (&[f64], &mut [f64]) {
    let (before, after) = scratch.split_at_mut(out.start);
    (&before[input.range()], &mut after[..out.len])
}
