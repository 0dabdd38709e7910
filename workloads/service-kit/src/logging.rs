//! JSON logs through `tracing-subscriber`.
//!
//! Guarantees: after [`init`] succeeds, every `tracing` event is written to stdout as
//! one JSON object per line, filtered by the level or directive string given (the
//! seed's `LOG_LEVEL`, e.g. `INFO`, `debug`, or `tugboat_inference=debug,info`).

use tracing_subscriber::EnvFilter;

/// What went wrong setting up logging.
#[derive(Debug, thiserror::Error)]
pub enum LoggingError {
    /// `LOG_LEVEL` is neither a level nor a valid filter directive.
    #[error("LOG_LEVEL {value:?} is not a log level or filter directive")]
    InvalidFilter {
        value: String,
        #[source]
        source: tracing_subscriber::filter::ParseError,
    },
    /// A global subscriber was already installed (only tests do this twice).
    #[error("a global tracing subscriber is already installed")]
    AlreadyInstalled,
}

/// Install the global JSON subscriber with `level` as the filter.
pub fn init(level: &str) -> Result<(), LoggingError> {
    // The seed writes levels in upper case (`LOG_LEVEL=INFO`); EnvFilter wants lower.
    let directive = level.trim().to_ascii_lowercase();
    let filter = EnvFilter::try_new(&directive).map_err(|source| LoggingError::InvalidFilter {
        value: level.to_owned(),
        source,
    })?;
    tracing_subscriber::fmt()
        .json()
        .with_current_span(false)
        .with_span_list(false)
        .with_ansi(false)
        .with_env_filter(filter)
        .try_init()
        .map_err(|_| LoggingError::AlreadyInstalled)
}
