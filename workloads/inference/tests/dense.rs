//! The dense evaluator against tract, op by op, on small hand-built ONNX graphs: each
//! graph must load with the dense plan (which happens only if it agreed with tract on
//! the load-time check rows), and then answer random rows as tract alone does.
//! The committed models cover only part of the ops (Sub, Mul, Cast, MatMul, Add,
//! Relu, Sigmoid, Concat and a two-model LinearClassifier); these cover the rest.

use prost::Message as _;
use tract_onnx::pb::tensor_shape_proto::{Dimension, dimension};
use tract_onnx::pb::type_proto::{Tensor as TensorType, Value as TypeValue};
use tract_onnx::pb::{
    AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorProto,
    TensorShapeProto, TypeProto, ValueInfoProto, attribute_proto::AttributeType,
};
use tugboat_inference::model::close;
use tugboat_inference::{Engine, LoadedModel, ModelMetadata};

const WIDTH: usize = 4;

fn constant(name: &str, dims: &[i64], values: &[f32]) -> TensorProto {
    TensorProto {
        name: name.to_owned(),
        dims: dims.to_vec(),
        data_type: 1,
        float_data: values.to_vec(),
        ..TensorProto::default()
    }
}

fn node(
    op: &str,
    domain: &str,
    inputs: &[&str],
    outputs: &[&str],
    attrs: Vec<AttributeProto>,
) -> NodeProto {
    NodeProto {
        op_type: op.to_owned(),
        domain: domain.to_owned(),
        name: format!("{op}_{}", outputs[0]),
        input: inputs.iter().map(|s| (*s).to_owned()).collect(),
        output: outputs.iter().map(|s| (*s).to_owned()).collect(),
        attribute: attrs,
        ..NodeProto::default()
    }
}

fn int(name: &str, i: i64) -> AttributeProto {
    AttributeProto {
        name: name.to_owned(),
        i,
        r#type: AttributeType::Int as i32,
        ..Default::default()
    }
}

fn float(name: &str, f: f32) -> AttributeProto {
    AttributeProto {
        name: name.to_owned(),
        f,
        r#type: AttributeType::Float as i32,
        ..Default::default()
    }
}

fn floats(name: &str, floats: &[f32]) -> AttributeProto {
    AttributeProto {
        name: name.to_owned(),
        floats: floats.to_vec(),
        r#type: AttributeType::Floats as i32,
        ..Default::default()
    }
}

fn ints(name: &str, ints: &[i64]) -> AttributeProto {
    AttributeProto {
        name: name.to_owned(),
        ints: ints.to_vec(),
        r#type: AttributeType::Ints as i32,
        ..Default::default()
    }
}

fn string(name: &str, s: &str) -> AttributeProto {
    AttributeProto {
        name: name.to_owned(),
        s: s.as_bytes().to_vec(),
        r#type: AttributeType::String as i32,
        ..Default::default()
    }
}

fn input() -> ValueInfoProto {
    let dim = |value| Dimension {
        value: Some(value),
        ..Dimension::default()
    };
    ValueInfoProto {
        name: "input".to_owned(),
        r#type: Some(TypeProto {
            value: Some(TypeValue::TensorType(TensorType {
                elem_type: 1,
                shape: Some(TensorShapeProto {
                    dim: vec![
                        dim(dimension::Value::DimParam("N".to_owned())),
                        dim(dimension::Value::DimValue(WIDTH as i64)),
                    ],
                }),
            })),
            ..TypeProto::default()
        }),
        ..ValueInfoProto::default()
    }
}

fn output(name: &str) -> ValueInfoProto {
    ValueInfoProto {
        name: name.to_owned(),
        ..ValueInfoProto::default()
    }
}

/// A model whose `probabilities` are `nodes`' output `probabilities`, with the label
/// made as skl2onnx makes it for an MLP (ArgMax, then a lookup of the class).
fn model(nodes: Vec<NodeProto>, initializers: Vec<TensorProto>, classes: usize) -> Vec<u8> {
    let mut nodes = nodes;
    let mut initializers = initializers;
    if !nodes.iter().any(|n| n.output.iter().any(|o| o == "label")) {
        initializers.push(TensorProto {
            name: "classes".to_owned(),
            dims: vec![classes as i64],
            data_type: 7,
            int64_data: (0..classes as i64).collect(),
            ..TensorProto::default()
        });
        nodes.push(node(
            "ArgMax",
            "",
            &["probabilities"],
            &["argmax"],
            vec![int("axis", 1), int("keepdims", 0)],
        ));
        nodes.push(node(
            "ArrayFeatureExtractor",
            "ai.onnx.ml",
            &["classes", "argmax"],
            &["label"],
            vec![],
        ));
    }
    ModelProto {
        ir_version: 8,
        opset_import: vec![
            OperatorSetIdProto {
                domain: String::new(),
                version: 17,
            },
            OperatorSetIdProto {
                domain: "ai.onnx.ml".to_owned(),
                version: 3,
            },
        ],
        graph: Some(GraphProto {
            name: "test".to_owned(),
            node: nodes,
            initializer: initializers,
            input: vec![input()],
            output: vec![output("label"), output("probabilities")],
            ..GraphProto::default()
        }),
        ..ModelProto::default()
    }
    .encode_to_vec()
}

fn metadata(classes: usize) -> ModelMetadata {
    serde_json::from_value(serde_json::json!({
        "version": "test",
        "sha256": "0",
        "input_width": WIDTH,
        "class_labels": (0..classes as i64).collect::<Vec<_>>(),
    }))
    .unwrap()
}

/// Loads with the dense plan, and answers 200 pseudo-random rows (of several
/// magnitudes) as tract does: the same class, probabilities within `close`.
fn assert_dense_matches_tract(name: &str, onnx: &[u8], classes: usize) {
    let model =
        LoadedModel::from_bytes(onnx, metadata(classes)).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(
        model.engine(),
        Engine::Dense,
        "{name}: {:?}",
        model.dense_refusal()
    );
    let tract = model.tract_only();
    let mut state = 0x1234_5678_u64;
    let mut rows = Vec::new();
    for r in 0..200 {
        for _ in 0..WIDTH {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1);
            let unit = (state >> 40) as f32 / (1u64 << 24) as f32;
            rows.push((unit * 2.0 - 1.0) * 10f32.powi(r % 4 - 1));
        }
    }
    let dense = model.predict(&rows, 200).unwrap();
    let reference = tract.predict(&rows, 200).unwrap();
    let mut compared = 0;
    for (i, (d, t)) in dense.iter().zip(&reference).enumerate() {
        assert_eq!(d.probabilities.len(), classes, "{name} row {i}");
        for (a, b) in d.probabilities.iter().zip(&t.probabilities) {
            assert!(
                close(*a, *b),
                "{name} row {i}: dense {:?} vs tract {:?}",
                d.probabilities,
                t.probabilities
            );
        }
        // The class may differ only where two probabilities tie within the tolerance.
        let mut sorted = t.probabilities.clone();
        sorted.sort_by(|a, b| b.total_cmp(a));
        if sorted[0] - sorted[1] > 1e-4 {
            assert_eq!(d.prediction, t.prediction, "{name} row {i}");
            compared += 1;
        }
    }
    assert!(
        compared > 100,
        "{name}: only {compared} rows had a clear class"
    );
    // One row at a time answers as the batch does.
    let single = model.predict(&rows[..WIDTH], 1).unwrap();
    assert_eq!(single[0], dense[0], "{name}");
}

const COEFFICIENTS: [f32; 12] = [
    0.5, -1.25, 2.0, 0.75, -0.3, 0.9, -1.1, 0.2, 1.5, -0.6, 0.05, -2.0,
];

fn linear_classifier(
    coefficients: &[f32],
    intercepts: Option<&[f32]>,
    post: &str,
    classes: usize,
) -> Vec<u8> {
    let mut attrs = vec![
        ints("classlabels_ints", &(0..classes as i64).collect::<Vec<_>>()),
        floats("coefficients", coefficients),
        string("post_transform", post),
    ];
    if let Some(intercepts) = intercepts {
        attrs.push(floats("intercepts", intercepts));
    }
    model(
        vec![node(
            "LinearClassifier",
            "ai.onnx.ml",
            &["input"],
            &["label", "probabilities"],
            attrs,
        )],
        vec![],
        classes,
    )
}

#[test]
fn a_binary_linear_classifier_with_one_model_in_each_post_transform() {
    for post in ["LOGISTIC", "NONE", "SOFTMAX"] {
        let onnx = linear_classifier(&COEFFICIENTS[..WIDTH], Some(&[0.3]), post, 2);
        assert_dense_matches_tract(&format!("binary {post}"), &onnx, 2);
    }
    let onnx = linear_classifier(&COEFFICIENTS[..WIDTH], None, "LOGISTIC", 2);
    assert_dense_matches_tract("binary without intercepts", &onnx, 2);
}

#[test]
fn a_three_class_linear_classifier_in_each_post_transform() {
    for post in ["SOFTMAX", "LOGISTIC", "NONE"] {
        let onnx = linear_classifier(&COEFFICIENTS, Some(&[0.1, -0.2, 0.3]), post, 3);
        assert_dense_matches_tract(&format!("three classes {post}"), &onnx, 3);
    }
}

#[test]
fn a_perceptron_with_gemm_tanh_and_softmax() {
    // Gemm with transB (weights stored [out, in], as PyTorch writes them), alpha, beta.
    let onnx = model(
        vec![
            node(
                "Gemm",
                "",
                &["input", "w1", "b1"],
                &["h"],
                vec![int("transB", 1), float("alpha", 0.5), float("beta", 2.0)],
            ),
            node("Tanh", "", &["h"], &["t"], vec![]),
            node("MatMul", "", &["t", "w2"], &["s"], vec![]),
            node(
                "Softmax",
                "",
                &["s"],
                &["probabilities"],
                vec![int("axis", -1)],
            ),
        ],
        vec![
            constant("w1", &[3, WIDTH as i64], &COEFFICIENTS),
            constant("b1", &[3], &[0.1, 0.2, -0.3]),
            constant(
                "w2",
                &[3, 3],
                &[1.0, -1.0, 0.5, 0.25, 2.0, -0.75, -1.5, 0.3, 1.2],
            ),
        ],
        3,
    );
    assert_dense_matches_tract("gemm tanh softmax", &onnx, 3);
}

#[test]
fn elementwise_ops_and_concat() {
    // p = sigmoid(|leaky(x·w)| / 3 - exp(-(x·v))) for the second class, 1 - p the first.
    let onnx = model(
        vec![
            node("MatMul", "", &["input", "w"], &["a"], vec![]),
            node("LeakyRelu", "", &["a"], &["b"], vec![float("alpha", 0.2)]),
            node("Abs", "", &["b"], &["c"], vec![]),
            node("Div", "", &["c", "three"], &["d"], vec![]),
            node("MatMul", "", &["input", "v"], &["e"], vec![]),
            node("Neg", "", &["e"], &["f"], vec![]),
            node("Exp", "", &["f"], &["g"], vec![]),
            node("Sub", "", &["d", "g"], &["h"], vec![]),
            node("Identity", "", &["h"], &["i"], vec![]),
            node("Sigmoid", "", &["i"], &["p"], vec![]),
            node("Sub", "", &["one", "p"], &["q"], vec![]),
            node(
                "Concat",
                "",
                &["q", "p"],
                &["probabilities"],
                vec![int("axis", 1)],
            ),
        ],
        vec![
            constant("w", &[WIDTH as i64, 1], &COEFFICIENTS[..WIDTH]),
            constant("v", &[WIDTH as i64, 1], &COEFFICIENTS[WIDTH..2 * WIDTH]),
            constant("three", &[], &[3.0]),
            constant("one", &[1, 1], &[1.0]),
        ],
        2,
    );
    assert_dense_matches_tract("elementwise", &onnx, 2);
}

#[test]
fn a_graph_with_an_op_the_evaluator_lacks_is_served_by_tract_and_says_which() {
    let onnx = model(
        vec![
            node("MatMul", "", &["input", "w"], &["a"], vec![]),
            node("Floor", "", &["a"], &["b"], vec![]),
            node(
                "Softmax",
                "",
                &["b"],
                &["probabilities"],
                vec![int("axis", 1)],
            ),
        ],
        vec![constant(
            "w",
            &[WIDTH as i64, 2],
            &COEFFICIENTS[..2 * WIDTH],
        )],
        2,
    );
    let model = LoadedModel::from_bytes(&onnx, metadata(2)).unwrap();
    assert_eq!(model.engine(), Engine::Tract);
    let why = model.dense_refusal().unwrap();
    assert!(why.contains("Floor"), "{why}");
    assert_eq!(model.predict(&[1.0; WIDTH], 1).unwrap().len(), 1);
}
