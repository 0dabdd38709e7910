//! `inference`: parse the configuration (flags or the seed's environment names),
//! start logging, load the model in the background and serve until SIGTERM.

use std::net::IpAddr;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use tugboat_inference::{AppState, Expected, Faults, ModelSource, RetryPolicy, Settings};

/// The tugboat inference service: serves an ONNX classifier over HTTP.
///
/// The model is read from MODEL_URI (s3://bucket/prefix or a local directory), or
/// from S3_MODEL_BUCKET + S3_MODEL_KEY, or from models/<MODEL_VERSION>; it is served
/// only if its sha256 matches metadata.json and MODEL_SHA256 (when set).
#[derive(Debug, Parser)]
#[command(name = "inference", version)]
struct Args {
    /// Address to listen on.
    #[arg(long, env = "HOST", default_value = "0.0.0.0")]
    host: IpAddr,
    /// Port to listen on.
    #[arg(long, env = "PORT", default_value_t = 8000)]
    port: u16,
    /// Model location: s3://bucket/prefix[/model.onnx], or a local directory or file.
    #[arg(long, env = "MODEL_URI")]
    model_uri: Option<String>,
    /// S3 bucket holding the model (used when MODEL_URI is unset).
    #[arg(long, env = "S3_MODEL_BUCKET")]
    s3_model_bucket: Option<String>,
    /// S3 key of model.onnx (default <MODEL_VERSION>/model.onnx).
    #[arg(long, env = "S3_MODEL_KEY")]
    s3_model_key: Option<String>,
    /// Model version the deployment expects; must equal metadata.json's version.
    #[arg(long, env = "MODEL_VERSION")]
    model_version: Option<String>,
    /// Hex sha256 model.onnx must have.
    #[arg(long, env = "MODEL_SHA256")]
    model_sha256: Option<String>,
    /// Runtime worker threads (default: one per CPU the task may use). On a
    /// fractional-vCPU task, 1 avoids cross-thread wake-ups that buy nothing.
    #[arg(long, env = "WORKER_THREADS")]
    worker_threads: Option<usize>,
    /// Log level or filter directive (e.g. INFO, debug).
    #[arg(long, env = "LOG_LEVEL", default_value = "info")]
    log_level: String,
    /// Most rows accepted by /predict/batch.
    #[arg(long, env = "MAX_BATCH", default_value_t = 256)]
    max_batch: usize,
    /// Largest request body in bytes.
    #[arg(long, env = "MAX_BODY_BYTES", default_value_t = 512 * 1024)]
    max_body_bytes: usize,
    /// Deadline for a prediction request in milliseconds, queueing included.
    #[arg(long, env = "REQUEST_TIMEOUT_MS", default_value_t = 5000)]
    request_timeout_ms: u64,
    /// Most prediction requests processed at once.
    #[arg(long, env = "MAX_CONCURRENCY", default_value_t = 256)]
    max_concurrency: usize,
    /// Attempts to load the model in all; only transient failures (S3 unreachable,
    /// throttled, 5xx) are retried, never a failed checksum or version check.
    #[arg(long, env = "MODEL_LOAD_ATTEMPTS", default_value_t = 10)]
    model_load_attempts: u32,
    /// Pause after the first failed load attempt in milliseconds, doubled after each.
    #[arg(long, env = "MODEL_LOAD_BACKOFF_MS", default_value_t = 500)]
    model_load_backoff_ms: u64,
    /// Fault switch (off by default): the share (0 to 1) of prediction requests
    /// answered 500 on purpose, e.g. 0.2.
    #[arg(long, env = "FAULT_RATE", default_value = "0", value_parser = Faults::parse_rate)]
    fault_rate: f64,
    /// Fault switch (off by default): delay added to every prediction request, e.g. 50ms.
    #[arg(long, env = "FAULT_LATENCY", default_value = "0", value_parser = Faults::parse_latency)]
    fault_latency: Duration,
    /// Longest pause between load attempts in milliseconds.
    #[arg(long, env = "MODEL_LOAD_MAX_BACKOFF_MS", default_value_t = 30_000)]
    model_load_max_backoff_ms: u64,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    service_kit::logging::init(&args.log_level)?;
    service_kit::runtime(args.worker_threads)
        .context("cannot start the async runtime")?
        .block_on(serve(args))
}

async fn serve(args: Args) -> anyhow::Result<()> {
    let source = ModelSource::resolve(
        args.model_uri.as_deref(),
        args.s3_model_bucket.as_deref(),
        args.s3_model_key.as_deref(),
        args.model_version.as_deref(),
    )?;
    let expected = Expected {
        sha256: args.model_sha256.clone(),
        version: args.model_version.clone(),
    };
    let state = AppState::new(Settings {
        max_batch: args.max_batch,
        max_body_bytes: args.max_body_bytes,
        request_timeout: Duration::from_millis(args.request_timeout_ms),
        max_concurrency: args.max_concurrency,
        faults: Faults {
            rate: args.fault_rate,
            latency: args.fault_latency,
        },
    });
    if state.settings().faults.is_active() {
        tracing::warn!(
            fault_rate = args.fault_rate,
            fault_latency_ms = u64::try_from(args.fault_latency.as_millis()).unwrap_or(u64::MAX),
            "fault switch is ON: prediction requests are slowed and/or failed on purpose"
        );
    }
    let listener = tokio::net::TcpListener::bind((args.host, args.port))
        .await
        .with_context(|| format!("cannot listen on {}:{}", args.host, args.port))?;
    tracing::info!(addr = %listener.local_addr()?, "listening");
    let policy = RetryPolicy {
        attempts: args.model_load_attempts.max(1),
        initial_backoff: Duration::from_millis(args.model_load_backoff_ms),
        max_backoff: Duration::from_millis(args.model_load_max_backoff_ms),
    };
    let loader = tokio::spawn(tugboat_inference::load_and_install_with(
        state.clone(),
        source,
        expected,
        policy,
        None,
    ));
    tugboat_inference::run(listener, state, service_kit::shutdown::signal()).await?;
    loader.abort();
    tracing::info!("stopped");
    Ok(())
}
