//! The watcher-to-loop feed: turns the source [`Watcher`]'s updates into the one value
//! the loop reads before each pass.
//!
//! Guarantees: the feed always holds the document in force (the last valid revision)
//! once one has been seen; a source that becomes unreadable or invalid never replaces
//! it, it only sets [`Feed::problem`] (shown as the `DocumentInvalid` condition), and the
//! problem clears only when the watcher says it is over (a valid revision was read). The loop is woken only when the feed
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

/// [`apply`], for the fleet's members, which pump their own watchers.
#[cfg(feature = "aws")]
pub(crate) fn apply_update(watcher: &Watcher, update: Update, feed: &watch::Sender<Feed>) {
    apply(watcher, update, feed);
}

/// Folds one update into the feed. The watcher's [`Watcher::problem`] is the whole truth
/// after every update (an invalid revision stays a problem through read errors and
/// `NotModified` answers, see the source's docs), so the feed republishes it each time
/// rather than deciding from the kind of update which problem to clear.
fn apply(watcher: &Watcher, update: Update, feed: &watch::Sender<Feed>) {
    let problem = watcher.problem().map(ToString::to_string);
    match update {
        Update::Applied { revision } => {
            tracing::info!(%revision, "new document revision in force");
            let document = watcher.in_force().map(desired);
            feed.send_replace(Feed { document, problem });
        }
        Update::Rejected { .. }
        | Update::Unreadable
        | Update::Recovered
        | Update::Unchanged
        | Update::Resync => {
            if matches!(update, Update::Rejected { .. } | Update::Unreadable) {
                tracing::error!(
                    problem = problem.as_deref().unwrap_or(""),
                    "the last good document stays in force"
                );
            }
            feed.send_if_modified(|f| {
                let changed = f.problem != problem;
                f.problem = problem;
                changed
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::blob::memory::MemoryStore;
    use crate::blob::{Blob, BlobStore, PutMode};
    use crate::source::{DocumentSource, SourceUri, WatchConfig};

    fn document(image: &str) -> String {
        format!(
            "apiVersion: tugboat.dev/v1alpha1
kind: Application
metadata: {{name: demo, environment: test}}
spec:
  platform:
    local: {{listen: 127.0.0.1:8080}}
  workloads:
    - name: backend
      image: {image}
      cpu: 256
      memory: 512
      desiredCount: 1
      containerPort: 8000
      strategy: {{rolling: {{}}}}
"
        )
    }

    /// Issue 7: a transient read error while the source holds an invalid revision must
    /// not clear `DocumentInvalid`. Through the real feed: before, `Recovered` (the read
    /// after the error) cleared the problem while the source still held the bad document.
    #[tokio::test(start_paused = true)]
    async fn the_feed_keeps_document_invalid_through_transient_read_errors() {
        let store = Arc::new(MemoryStore::new());
        let put = |text: String| {
            let store = store.clone();
            async move {
                store
                    .put("app.yaml", text.into_bytes(), PutMode::Overwrite)
                    .await
                    .expect("a memory write")
            }
        };
        let uri: SourceUri = "file:///scripted/app.yaml".parse().expect("a valid URI");
        let source = DocumentSource::with_blob(uri, Blob::new(store.clone(), "app.yaml"));
        let mut watcher = Watcher::new(source, WatchConfig::default());
        let (feed, rx) = watch::channel(Feed::default());

        put(document("backend:1")).await;
        let update = watcher.next().await;
        apply(&watcher, update, &feed);
        assert!(rx.borrow().problem.is_none());
        put(document("backend:2").replace("cpu: 256", "cpus: 256")).await;
        let update = watcher.next().await;
        apply(&watcher, update, &feed);
        assert!(
            rx.borrow()
                .problem
                .as_deref()
                .unwrap_or("")
                .contains("cpus")
        );

        store.fail_next_get(store.transient("app.yaml"));
        store.fail_next_get(store.transient("app.yaml"));
        for read in 0..5 {
            let update = watcher.next().await;
            apply(&watcher, update, &feed);
            let shown = rx.borrow().problem.clone().unwrap_or_default();
            assert!(shown.contains("cpus"), "read {read}: {shown:?}");
        }
        let in_force = rx
            .borrow()
            .document
            .clone()
            .expect("the last good document");
        assert_eq!(in_force.app.spec.workloads[0].image, "backend:1");

        put(document("backend:3")).await;
        let update = watcher.next().await;
        apply(&watcher, update, &feed);
        assert!(rx.borrow().problem.is_none(), "a valid revision clears it");
    }
}
