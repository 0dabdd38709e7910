//! One model call, at batch 1 and batch 64, for each committed model version, by the
//! engine that serves it (the dense plan) and by tract alone. Run with
//! `cargo bench -p tugboat-inference`.
//!
//! This is the floor under `/predict`'s latency: what the HTTP figures in
//! `bench/http.sh` add on top is parsing, validation and the network stack.

use std::hint::black_box;
use std::path::Path;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use tugboat_inference::{LoadedModel, ModelMetadata};

fn load(version: &str) -> LoadedModel {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("models")
        .join(version);
    let onnx = std::fs::read(dir.join("model.onnx")).expect("committed model.onnx");
    let metadata: ModelMetadata = serde_json::from_slice(
        &std::fs::read(dir.join("metadata.json")).expect("committed metadata.json"),
    )
    .expect("valid metadata.json");
    LoadedModel::from_bytes(&onnx, metadata).expect("model loads")
}

fn model_call(c: &mut Criterion) {
    let mut group = c.benchmark_group("model_call");
    for version in ["v1", "v2"] {
        let served = load(version);
        // The engine that serves the committed models, and tract alone beside it.
        for model in [served.tract_only(), served] {
            let width = model.input_width();
            let engine = model.engine().as_str();
            for batch in [1usize, 64] {
                // Plausible inputs: the scaler centres them, so zeros sit at the mean.
                let features: Vec<f32> = (0..batch * width).map(|i| (i % 7) as f32 * 0.5).collect();
                group.throughput(Throughput::Elements(batch as u64));
                group.bench_with_input(
                    BenchmarkId::new(format!("{version}/{engine}"), format!("batch{batch}")),
                    &features,
                    |b, features| {
                        b.iter(|| {
                            model
                                .predict(black_box(features), batch)
                                .expect("prediction")
                        })
                    },
                );
            }
        }
    }
    group.finish();
}

criterion_group!(benches, model_call);
criterion_main!(benches);
