//! The watcher-to-loop feed: turns the source [`Watcher`]'s updates into the one value
//! the loop reads before each pass.
//!
//! Guarantees: the feed always holds the document in force (the last valid revision)
//! once one has been seen; a source that becomes unreadable or invalid never replaces
//! it, it only sets [`Feed::problem`] (shown as the `DocumentInvalid` condition), and a
//! source that recovers clears the problem. The loop is woken only when the feed
//! actually changed.

use tokio::sync::watch;

use crate::document::Application;
use crate::source::{InForce, Update, Watcher};

/// A validated document and the revision it came from (S3 ETag, SSM version, file hash).
#[derive(Debug, Clone, PartialEq)]
pub struct DesiredDocument {
    pub app: Application,
    pub revision: String,
}

/// What the source watcher publishes to the loop: the document in force (the last valid
/// one) and, when the source now holds something unusable, what is wrong with it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Feed {
    pub document: Option<DesiredDocument>,
    /// e.g. `s3://b/k (revision "abc") is not a valid tugboat document: ...`.
    pub problem: Option<String>,
}

impl From<DesiredDocument> for Feed {
    fn from(document: DesiredDocument) -> Self {
        Feed {
            document: Some(document),
            problem: None,
        }
    }
}

/// Why there is no document to run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FeedError {
    /// With `once`, the source is unreadable or invalid; the message says what is wrong
    /// and where (e.g. `file://app.yaml (revision ...):3:7: spec.workloads[0]...`).
    #[error("{0}")]
    NoValidDocument(String),
}

/// The document a watcher holds in force.
pub fn desired(in_force: &InForce) -> DesiredDocument {
    DesiredDocument {
        app: (*in_force.document).clone(),
        revision: in_force.revision.clone(),
    }
}

/// Waits for the first valid document. With `once`, a source that is unreadable or
/// invalid is an error at once rather than something to wait out.
pub async fn first_document(
    watcher: &mut Watcher,
    once: bool,
) -> Result<DesiredDocument, FeedError> {
    loop {
        match watcher.next().await {
            Update::Applied { .. } => {
                if let Some(in_force) = watcher.in_force() {
                    return Ok(desired(in_force));
                }
            }
            Update::Rejected { .. } | Update::Unreadable => {
                let problem = watcher
                    .problem()
                    .map(ToString::to_string)
                    .unwrap_or_default();
                if once {
                    return Err(FeedError::NoValidDocument(problem));
                }
                tracing::error!(%problem, "no valid document yet; waiting for one");
            }
            Update::Unchanged | Update::Resync | Update::Recovered => {}
        }
    }
}

/// Publishes the watcher's updates on `feed` until the receiver side is gone.
pub async fn pump(mut watcher: Watcher, feed: watch::Sender<Feed>) {
    while !feed.is_closed() {
        let update = watcher.next().await;
        apply(&watcher, update, &feed);
    }
}

/// Folds one update into the feed.
fn apply(watcher: &Watcher, update: Update, feed: &watch::Sender<Feed>) {
    match update {
        Update::Applied { revision } => {
            tracing::info!(%revision, "new document revision in force");
            let document = watcher.in_force().map(desired);
            feed.send_replace(Feed {
                document,
                problem: None,
            });
        }
        Update::Rejected { .. } | Update::Unreadable => {
            let problem = watcher.problem().map(ToString::to_string);
            tracing::error!(
                problem = problem.as_deref().unwrap_or(""),
                "the last good document stays in force"
            );
            feed.send_if_modified(|f| {
                let changed = f.problem != problem;
                f.problem = problem;
                changed
            });
        }
        Update::Recovered => {
            feed.send_if_modified(|f| f.problem.take().is_some());
        }
        Update::Unchanged | Update::Resync => {}
    }
}
