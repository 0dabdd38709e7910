//! `backend`: parse the configuration (flags or the seed's environment names),
//! start logging and serve until SIGTERM.

use std::net::IpAddr;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use tugboat_backend::{AppState, Settings, UpstreamSettings};

/// The tugboat backend API: validates predictions and forwards them to the
/// inference service at ML_SERVICE_URL.
#[derive(Debug, Parser)]
#[command(name = "backend", version)]
struct Args {
    /// Address to listen on.
    #[arg(long, env = "HOST", default_value = "0.0.0.0")]
    host: IpAddr,
    /// Port to listen on.
    #[arg(long, env = "PORT", default_value_t = 8000)]
    port: u16,
    /// Base URL of the inference service (http:// only); /predict is appended.
    #[arg(
        long,
        env = "ML_SERVICE_URL",
        default_value = "http://ml-model-service:8000"
    )]
    ml_service_url: String,
    /// Per-attempt timeout of the inference call, in milliseconds.
    #[arg(long, env = "ML_TIMEOUT_MS", default_value_t = 3000)]
    ml_timeout_ms: u64,
    /// Retries after a connect failure or a 503 from the inference service.
    #[arg(long, env = "ML_RETRIES", default_value_t = 2)]
    ml_retries: u32,
    /// Pause before the first retry in milliseconds, doubled for each next one.
    #[arg(long, env = "ML_RETRY_BACKOFF_MS", default_value_t = 50)]
    ml_retry_backoff_ms: u64,
    /// Runtime worker threads (default: one per CPU the task may use). On a
    /// fractional-vCPU task, 1 avoids cross-thread wake-ups that buy nothing.
    #[arg(long, env = "WORKER_THREADS")]
    worker_threads: Option<usize>,
    /// Log level or filter directive (e.g. INFO, debug).
    #[arg(long, env = "LOG_LEVEL", default_value = "info")]
    log_level: String,
    /// Largest request body in bytes.
    #[arg(long, env = "MAX_BODY_BYTES", default_value_t = 64 * 1024)]
    max_body_bytes: usize,
    /// Deadline for one /api/predict in milliseconds, retries included.
    #[arg(long, env = "REQUEST_TIMEOUT_MS", default_value_t = 10_000)]
    request_timeout_ms: u64,
    /// Most /api/predict requests in flight.
    #[arg(long, env = "MAX_CONCURRENCY", default_value_t = 512)]
    max_concurrency: usize,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    service_kit::logging::init(&args.log_level)?;
    service_kit::runtime(args.worker_threads)
        .context("cannot start the async runtime")?
        .block_on(serve(args))
}

async fn serve(args: Args) -> anyhow::Result<()> {
    let state = AppState::new(
        Settings {
            max_body_bytes: args.max_body_bytes,
            request_timeout: Duration::from_millis(args.request_timeout_ms),
            max_concurrency: args.max_concurrency,
        },
        UpstreamSettings {
            base_url: args.ml_service_url.clone(),
            timeout: Duration::from_millis(args.ml_timeout_ms),
            retries: args.ml_retries,
            retry_backoff: Duration::from_millis(args.ml_retry_backoff_ms),
        },
    )?;
    let listener = tokio::net::TcpListener::bind((args.host, args.port))
        .await
        .with_context(|| format!("cannot listen on {}:{}", args.host, args.port))?;
    tracing::info!(
        addr = %listener.local_addr()?,
        ml_service_url = %args.ml_service_url,
        "listening"
    );
    tugboat_backend::run(listener, state, service_kit::shutdown::signal()).await?;
    tracing::info!("stopped");
    Ok(())
}
