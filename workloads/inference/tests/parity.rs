//! Correctness: the served predictions (the dense plan's, and tract's alone) equal scikit-learn's on the held-out rows that
//! training/train.py stored beside each model (`heldout.json`): same class, and
//! probabilities within 1e-5 (the model computes in f32, scikit-learn in f64).

mod common;

use axum::http::StatusCode;
use common::{call, held_out, load_committed, ready_state};
use tugboat_inference::{Engine, LoadedModel, Settings, app};

const TOLERANCE: f64 = 1e-5;

fn assert_close(version: &str, engine: &str, row: usize, got: &[f32], want: &[f64]) {
    assert_eq!(
        got.len(),
        want.len(),
        "{version} {engine} row {row}: class count"
    );
    for (class, (g, w)) in got.iter().zip(want).enumerate() {
        let diff = (f64::from(*g) - w).abs();
        assert!(
            diff <= TOLERANCE,
            "{version} row {row} class {class}: {engine} {g} vs scikit-learn {w} (diff {diff:e})"
        );
    }
}

/// Both engines: the dense plan that serves the committed models, and tract alone
/// (the reference it was checked against at load, and what serves any other graph).
#[test]
fn every_version_matches_scikit_learn_row_by_row_and_in_one_batch() {
    for version in ["v1", "v2"] {
        let model = load_committed(version);
        assert_eq!(
            model.engine(),
            Engine::Dense,
            "{version}: the dense plan was not used: {:?}",
            model.dense_refusal()
        );
        let tract = model.tract_only();
        assert_eq!(tract.engine(), Engine::Tract);
        // tract's /predict path runs the probabilities-only plan for the committed
        // models (its labels checked against the full graph at load time).
        assert!(
            tract.single_row_plan_is_probabilities_only(),
            "{version}: the single-row plan fell back to the full graph"
        );
        for model in [&model, &tract] {
            matches_row_by_row_and_in_one_batch(version, model);
        }
    }
}

fn matches_row_by_row_and_in_one_batch(version: &str, model: &LoadedModel) {
    let engine = model.engine().as_str();
    let held = held_out(version);
    assert_eq!(held.version, version);
    assert!(held.rows.len() >= 20, "{version}: too few held-out rows");

    // Row by row (the /predict path).
    for (i, row) in held.rows.iter().enumerate() {
        let features: Vec<f32> = row.features.iter().map(|&v| v as f32).collect();
        let got = model.predict(&features, 1).unwrap().remove(0);
        assert_eq!(
            got.prediction, row.prediction,
            "{version} {engine} row {i}: class"
        );
        assert_close(version, engine, i, &got.probabilities, &row.probabilities);
    }

    // All at once (the /predict/batch path): batching must not change answers.
    let flat: Vec<f32> = held
        .rows
        .iter()
        .flat_map(|r| r.features.iter().map(|&v| v as f32))
        .collect();
    let batch = model.predict(&flat, held.rows.len()).unwrap();
    assert_eq!(batch.len(), held.rows.len());
    for (i, (got, row)) in batch.iter().zip(&held.rows).enumerate() {
        assert_eq!(
            got.prediction, row.prediction,
            "{version} {engine} batch row {i}: class"
        );
        assert_close(version, engine, i, &got.probabilities, &row.probabilities);
    }
}

#[test]
fn the_two_versions_are_different_models() {
    let v1 = load_committed("v1");
    let v2 = load_committed("v2");
    assert_ne!(v1.metadata().sha256, v2.metadata().sha256);
    let rows = held_out("v1").rows;
    let differs = rows.iter().any(|row| {
        let f: Vec<f32> = row.features.iter().map(|&v| v as f32).collect();
        let a = v1.predict(&f, 1).unwrap().remove(0).probabilities;
        let b = v2.predict(&f, 1).unwrap().remove(0).probabilities;
        (a[0] - b[0]).abs() > 1e-3
    });
    assert!(
        differs,
        "v1 and v2 give the same probabilities on every row"
    );
}

/// The same parity through HTTP and JSON, so number formatting on the way in and
/// out loses nothing that matters.
#[tokio::test]
async fn parity_holds_through_the_http_api() {
    for version in ["v1", "v2"] {
        let state = ready_state(
            version,
            Settings {
                max_batch: 1024,
                max_body_bytes: 4 * 1024 * 1024,
                ..Settings::default()
            },
        );
        let held = held_out(version);
        let instances: Vec<_> = held.rows.iter().map(|r| r.features.clone()).collect();
        let body = serde_json::json!({ "instances": instances }).to_string();
        let answer = call(app(state), "POST", "/predict/batch", Some(&body), None).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
        let predictions = answer.body["predictions"].as_array().unwrap();
        // Zip stops at the shorter side: without this, a short (or empty) answer passes.
        assert!(held.rows.len() >= 20, "{version}: too few held-out rows");
        assert_eq!(
            predictions.len(),
            held.rows.len(),
            "{version}: one prediction per instance"
        );
        for (i, (p, row)) in predictions.iter().zip(&held.rows).enumerate() {
            assert_eq!(p["prediction"], row.prediction);
            let got: Vec<f32> = p["probabilities"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap() as f32)
                .collect();
            assert_close(version, "http", i, &got, &row.probabilities);
        }
    }
}
