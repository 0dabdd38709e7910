//! Delivers webhook notifications (`spec.notifications`) without ever holding up a pass.
//!
//! Guarantees:
//! - [`Notifier::enqueue`] never waits: notices go into a bounded queue
//!   ([`NotifyConfig::capacity`]); when it is full the notice is dropped, counted and
//!   logged (by event and URL, never with a secret). One task POSTs them, in order.
//! - A delivery is retried with exponential backoff (connection errors, timeouts, 5xx and
//!   429) up to [`NotifyConfig::attempts`] times; any other answer ends it.
//! - A secret is read when its notice is sent ([`Secrets`]) and used only to sign the
//!   body; a secret that cannot be read skips the delivery (an unsigned POST to a
//!   receiver that checks signatures would be rejected anyway) and logs why, without the
//!   value.
//! - What a pass tells is derived from the status it persisted
//!   ([`tugboat_core::notify::derive`]); notices still queued when the process stops are
//!   lost (at most once per status change, documented in the README).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::mpsc;

use crate::analysis::{EnvSecrets, Secrets};
use crate::document::{Application, SecretSource};
use tugboat_core::notify::{self, Notice, SIGNATURE_HEADER};

/// Queue, retry and timeout settings.
#[derive(Debug, Clone, Copy)]
pub struct NotifyConfig {
    /// Notices waiting for delivery, at most.
    pub capacity: usize,
    /// Tries per notice, the first included.
    pub attempts: u32,
    /// Wait before the second try; doubles after each failed try.
    pub first_backoff: Duration,
    pub max_backoff: Duration,
    /// Per request.
    pub timeout: Duration,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        Self {
            capacity: 256,
            attempts: 5,
            first_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            timeout: Duration::from_secs(10),
        }
    }
}

/// Why one try failed (never holds the secret or the body).
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("POST {url} failed: {reason}")]
    Request { url: String, reason: String },
    #[error("POST {url} answered {status}")]
    Status { url: String, status: u16 },
}

impl NotifyError {
    fn is_retryable(&self) -> bool {
        match self {
            NotifyError::Request { .. } => true,
            NotifyError::Status { status, .. } => *status >= 500 || *status == 429,
        }
    }
}

#[derive(Debug)]
struct Delivery {
    url: String,
    secret: Option<SecretSource>,
    event: tugboat_core::document::NotificationEvent,
    body: Vec<u8>,
}

/// The sending side of the queue; cheap to clone.
#[derive(Debug, Clone)]
pub struct Notifier {
    tx: mpsc::Sender<Delivery>,
    dropped: Arc<AtomicU64>,
    delivered: Arc<AtomicU64>,
}

impl Notifier {
    /// Starts the delivery task on the current tokio runtime. It ends when every
    /// `Notifier` clone is dropped and the queue is drained.
    pub fn spawn(secrets: Arc<dyn Secrets>, config: NotifyConfig) -> Self {
        let (tx, rx) = mpsc::channel(config.capacity.max(1));
        let delivered = Arc::new(AtomicU64::new(0));
        tokio::spawn(worker(rx, secrets, config, delivered.clone()));
        Self {
            tx,
            dropped: Arc::new(AtomicU64::new(0)),
            delivered,
        }
    }

    /// Secrets from the controller's environment, default settings.
    pub fn from_env() -> Self {
        Self::spawn(Arc::new(EnvSecrets), NotifyConfig::default())
    }

    /// Queues `notices` for every webhook of `app` that wants them. Never waits; returns
    /// how many deliveries were queued.
    pub fn enqueue(&self, app: &Application, notices: &[Notice]) -> usize {
        let mut queued = 0;
        for notice in notices {
            let body = notify::body(notice);
            for target in app
                .spec
                .notifications
                .iter()
                .filter(|t| notify::wants(t, notice.event))
            {
                let delivery = Delivery {
                    url: target.url.clone(),
                    secret: target.secret.clone(),
                    event: notice.event,
                    body: body.clone(),
                };
                match self.tx.try_send(delivery) {
                    Ok(()) => queued += 1,
                    Err(_) => {
                        self.dropped.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(url = %target.url, event = ?notice.event, "notification queue full (or closed); notice dropped");
                    }
                }
            }
        }
        queued
    }

    /// Notices dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Notices a receiver accepted (2xx).
    pub fn delivered(&self) -> u64 {
        self.delivered.load(Ordering::Relaxed)
    }
}

async fn worker(
    mut rx: mpsc::Receiver<Delivery>,
    secrets: Arc<dyn Secrets>,
    config: NotifyConfig,
    delivered: Arc<AtomicU64>,
) {
    let client = match reqwest::Client::builder().timeout(config.timeout).build() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "no HTTP client; notifications are not sent");
            return;
        }
    };
    while let Some(d) = rx.recv().await {
        let signature = match &d.secret {
            None => None,
            Some(source) => match secrets.read(source).await {
                Ok(key) => Some(notify::signature(key.as_bytes(), &d.body)),
                Err(e) => {
                    tracing::warn!(url = %d.url, event = ?d.event, error = %e, "notification not sent: its secret cannot be read");
                    continue;
                }
            },
        };
        let mut backoff = config.first_backoff;
        for attempt in 1..=config.attempts.max(1) {
            match post(&client, &d, signature.as_deref()).await {
                Ok(()) => {
                    delivered.fetch_add(1, Ordering::Relaxed);
                    break;
                }
                Err(e) if e.is_retryable() && attempt < config.attempts => {
                    tracing::debug!(error = %e, attempt, "notification failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(config.max_backoff);
                }
                Err(e) => {
                    tracing::warn!(error = %e, event = ?d.event, attempt, "notification given up");
                    break;
                }
            }
        }
    }
}

async fn post(
    client: &reqwest::Client,
    d: &Delivery,
    signature: Option<&str>,
) -> Result<(), NotifyError> {
    let mut request = client
        .post(&d.url)
        .header("content-type", "application/json")
        .body(d.body.clone());
    if let Some(sig) = signature {
        request = request.header(SIGNATURE_HEADER, sig);
    }
    let response = request.send().await.map_err(|e| NotifyError::Request {
        url: d.url.clone(),
        reason: super::reconciler::error_chain(&e),
    })?;
    let status = response.status();
    if status.is_success() {
        Ok(())
    } else {
        Err(NotifyError::Status {
            url: d.url.clone(),
            status: status.as_u16(),
        })
    }
}
