//! Leader election for several controller replicas, in kube-rs's shape
//! ([`Elector::run`] takes the work to do while leading): a lease object held through
//! the blob store's conditional writes (`Create` when there is none, `Update` on the
//! version read to renew or take over), with the decisions made by the pure
//! [`crate::lease::decide`].
//!
//! Guarantees:
//! - The work runs only while this replica holds the lease. It is dropped (cancelled
//!   where it stands, like a crash: passes are level-triggered and idempotent) as soon as
//!   the renew deadline passes since the last renewal *started*, whether or not the
//!   lease store answers, or when a read shows another holder. Because the renew
//!   deadline is shorter than the lease duration ([`Durations::validate`]), the work has
//!   stopped before any follower may take the lease over.
//! - A follower takes the lease over once its record has not changed for the record's
//!   lease duration on the follower's own clock (client-go's rule; wall clocks are never
//!   compared), or at once when its holder released it.
//! - Two replicas racing to acquire cannot both win: the write is conditional on the
//!   version (or absence) they read, and S3 evaluates the condition with the write.
//! - On shutdown the leader lets the work finish (the pass under way), then releases the
//!   lease (empty holder, `If-Match`), so a follower takes over at its next look.
//! - Who leads is published on a [`tokio::sync::watch`] ([`Elector::subscribe`]) for
//!   `/readyz`, `/status` and `/metrics`.
//!
//! SSM is refused as a lease store: it has no conditional write (see [`crate::blob::ssm`]).

use std::future::Future;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::blob::{Blob, BlobError, BlobUri, GetResult, PutMode, Version};
use crate::lease::{self, Decision, Durations, DurationsError, LeaseRecord, View};
use crate::status::Timestamp;

/// Why an elector cannot be set up, or a lease read or write failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ElectorError {
    #[error("the lease cannot live at {uri}: {problem}")]
    UnsupportedLeaseUri { uri: String, problem: &'static str },
    #[error(transparent)]
    Durations(#[from] DurationsError),
    #[error("the lease at {uri} is not a tugboat lease record (delete it to start over)")]
    ParseLease {
        uri: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("reading or writing the lease")]
    Store(#[from] BlobError),
}

/// Who this replica is and how the election is timed.
#[derive(Debug, Clone)]
pub struct ElectionConfig {
    /// This replica's name in the lease record (unique per replica).
    pub identity: String,
    pub durations: Durations,
}

impl ElectionConfig {
    /// An identity for this process: `<hostname>-<pid>-<random>`, so two replicas on one
    /// host (or a restart with the same pid) never share one.
    pub fn default_identity() -> String {
        let host = std::env::var("HOSTNAME")
            .ok()
            .filter(|h| !h.is_empty())
            .or_else(|| {
                std::fs::read_to_string("/etc/hostname")
                    .ok()
                    .map(|h| h.trim().to_string())
            })
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "tugboat".to_string());
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or_default();
        format!("{host}-{}-{nanos:08x}", std::process::id())
    }
}

/// What this replica knows of the election, as `/status` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Leadership {
    /// This replica's identity.
    pub identity: String,
    /// Where the lease lives.
    pub lease: String,
    /// Whether this replica leads (runs passes) now.
    pub leading: bool,
    /// The holder of the lease as last read; `None` when nobody holds it or it could not
    /// be read.
    pub leader: Option<String>,
    /// The holder's promise (its wall clock) of when the lease ends without a renewal.
    pub expires_at: Option<Timestamp>,
    /// How many times this replica became leader.
    pub terms: u64,
    /// The last lease read or write that failed, if the latest one did.
    pub error: Option<String>,
    /// Internal: when (monotonic) the current term must stop without a renewal.
    #[serde(skip)]
    deadline: Option<Instant>,
}

impl Leadership {
    pub(crate) fn starting(identity: &str, lease: &str) -> Self {
        Self {
            identity: identity.to_string(),
            lease: lease.to_string(),
            leading: false,
            leader: None,
            expires_at: None,
            terms: 0,
            error: None,
            deadline: None,
        }
    }
}

/// The lease object: one location in a blob store holding a [`LeaseRecord`] as JSON.
#[derive(Debug, Clone)]
pub struct LeaseStore {
    blob: Blob,
}

impl LeaseStore {
    /// The lease at `uri` (`s3://bucket/key` or `file://path`), using `s3` for S3.
    pub fn open(uri: &str, s3: Option<crate::aws::S3Client>) -> Result<Self, ElectorError> {
        let unsupported = |problem| ElectorError::UnsupportedLeaseUri {
            uri: uri.to_string(),
            problem,
        };
        let parsed: BlobUri = uri
            .parse()
            .map_err(|_| unsupported("use s3://BUCKET/KEY (or file://PATH on one machine)"))?;
        if matches!(parsed, BlobUri::Ssm { .. }) {
            return Err(unsupported(
                "SSM has no conditional write, so two replicas could both take the lease: use s3://BUCKET/KEY",
            ));
        }
        let blob = parsed
            .open_with(crate::blob::Clients { s3, ssm: None })
            .map_err(ElectorError::Store)?;
        Ok(Self { blob })
    }

    /// A lease at a location of a store the caller built (tests: a memory store).
    pub fn with_blob(blob: Blob) -> Self {
        Self { blob }
    }

    pub fn uri(&self) -> String {
        self.blob.uri()
    }

    /// The record and its version; `None` when there is no lease object.
    pub async fn read(&self) -> Result<Option<(LeaseRecord, Version)>, ElectorError> {
        match self.blob.get(None).await {
            Ok(GetResult::Found { bytes, version }) => {
                let record =
                    serde_json::from_slice(&bytes).map_err(|source| ElectorError::ParseLease {
                        uri: self.uri(),
                        source,
                    })?;
                Ok(Some((record, version)))
            }
            Ok(GetResult::NotModified) => Ok(None),
            Err(BlobError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Writes `record` under `mode` (`Create` or `Update(version read)`).
    pub async fn write(
        &self,
        record: &LeaseRecord,
        mode: PutMode,
    ) -> Result<Version, ElectorError> {
        let bytes = serde_json::to_vec_pretty(record).unwrap_or_default();
        Ok(self.blob.put(bytes, mode).await?)
    }
}

/// One term of leadership, handed to the work.
#[derive(Debug)]
pub struct Term {
    /// Counts this replica's terms from 1.
    pub number: u64,
    stopping: watch::Receiver<bool>,
}

impl Term {
    /// Resolves when the process is shutting down and the work should end at its next
    /// safe point (the loop: after the pass under way); work still running a renew
    /// deadline later is dropped. Losing the lease does not wait for this: the work is
    /// dropped at once.
    pub async fn stopping(mut self) {
        let _ = self.stopping.wait_for(|stop| *stop).await;
    }
}

/// Runs work only while this replica holds the lease.
#[derive(Debug)]
pub struct Elector {
    store: LeaseStore,
    config: ElectionConfig,
    state: watch::Sender<Leadership>,
}

impl Elector {
    pub fn new(store: LeaseStore, config: ElectionConfig) -> Result<Self, ElectorError> {
        config.durations.validate()?;
        let state = watch::Sender::new(Leadership::starting(&config.identity, &store.uri()));
        Ok(Self {
            store,
            config,
            state,
        })
    }

    /// Who leads, as this replica sees it; updated at every lease read.
    pub fn subscribe(&self) -> watch::Receiver<Leadership> {
        self.state.subscribe()
    }

    /// Runs `work` each time this replica becomes leader, until `shutdown` resolves or the
    /// work returns by itself. The work is dropped when leadership is lost (see the
    /// module's guarantees); it gets a [`Term`] whose [`Term::stopping`] resolves on
    /// shutdown. Returns after releasing the lease if it held it.
    pub async fn run<W, F>(self, mut work: W, shutdown: impl Future<Output = ()>)
    where
        W: FnMut(Term) -> F,
        F: Future<Output = ()>,
    {
        let (release_tx, release_rx) = watch::channel(false);
        let mut leadership = self.state.subscribe();
        let keeper = tokio::spawn(keep(
            self.store.clone(),
            self.config.clone(),
            self.state.clone(),
            release_rx,
        ));
        tokio::pin!(shutdown);
        loop {
            let term = tokio::select! {
                () = &mut shutdown => break,
                term = became_leader(&mut leadership) => term,
            };
            let Some(number) = term else { break };
            let (stop_tx, stop_rx) = watch::channel(false);
            let done = work(Term {
                number,
                stopping: stop_rx,
            });
            tokio::pin!(done);
            tracing::info!(term = number, identity = %self.config.identity, "leading: running passes");
            let ended = tokio::select! {
                () = &mut done => true,
                () = lost(leadership.clone(), number) => {
                    tracing::warn!(term = number, "leadership lost: stopped acting");
                    false
                }
                () = &mut shutdown => {
                    let _ = stop_tx.send(true);
                    // The pass under way may finish, within one renew deadline.
                    tokio::select! {
                        () = &mut done => {}
                        () = lost(leadership.clone(), number) => {
                            tracing::warn!(term = number, "leadership lost while shutting down: stopped acting");
                        }
                        () = tokio::time::sleep(self.config.durations.renew_deadline) => {
                            tracing::warn!(term = number, "the work did not stop within the renew deadline; dropped");
                        }
                    }
                    true
                }
            };
            if ended {
                break;
            }
        }
        let _ = release_tx.send(true);
        let _ = keeper.await;
    }
}

/// Resolves with the term number once `leadership` says this replica leads; `None` when
/// the keeper is gone.
async fn became_leader(leadership: &mut watch::Receiver<Leadership>) -> Option<u64> {
    leadership
        .wait_for(|l| l.leading)
        .await
        .ok()
        .map(|l| l.terms)
}

/// Resolves when term `number` is over: the keeper says this replica no longer leads (or
/// a new term began), or the term's renew deadline passes without a renewal. The
/// deadline is enforced here, on its own timer, so a lease store that hangs cannot keep
/// the work running.
async fn lost(mut leadership: watch::Receiver<Leadership>, number: u64) {
    loop {
        let deadline = {
            let l = leadership.borrow_and_update();
            match (l.leading, l.terms == number, l.deadline) {
                (true, true, Some(deadline)) => deadline,
                _ => return,
            }
        };
        tokio::select! {
            () = tokio::time::sleep_until(deadline) => return,
            changed = leadership.changed() => if changed.is_err() { return },
        }
    }
}

/// The lease keeper: reads the lease every retry period, decides, writes, publishes.
/// Ends when `release` turns true, releasing the lease if it holds it.
async fn keep(
    store: LeaseStore,
    config: ElectionConfig,
    state: watch::Sender<Leadership>,
    mut release: watch::Receiver<bool>,
) {
    let epoch = Instant::now();
    let mono = || Timestamp(epoch.elapsed().as_millis() as u64);
    let durations = config.durations;
    let me = config.identity.as_str();
    // The version last read and when (my clock) it was first seen.
    let mut observed: Option<(Version, Timestamp)> = None;
    // When my last successful write started, while I lead.
    let mut renewed_at: Option<Timestamp> = None;
    // The record and version I last wrote, for the release.
    let mut mine: Option<(LeaseRecord, Version)> = None;
    loop {
        let read = store.read().await;
        let now = mono();
        let (view, current, error) = match &read {
            Ok(None) => {
                observed = None;
                (View::Absent, None, None)
            }
            Ok(Some((record, version))) => {
                let at = match &observed {
                    Some((v, at)) if v == version => *at,
                    _ => now,
                };
                observed = Some((version.clone(), at));
                (
                    View::Record {
                        record,
                        observed_at: at,
                    },
                    Some((record, version)),
                    None,
                )
            }
            Err(e) => (
                View::Unreadable,
                None,
                Some(crate::runtime::reconciler::error_chain(e)),
            ),
        };
        let decision = lease::decide(view, me, now, renewed_at, &durations);
        let mut leader = current
            .filter(|(r, _)| !r.is_released())
            .map(|(r, _)| r.holder.clone());
        let mut expires_at = current.map(|(r, _)| r.expires_at);
        let mut error = error;
        match decision {
            Decision::Acquire | Decision::Renew => {
                let started = mono();
                let wall = Timestamp::now();
                let (record, mode) = match (&decision, current) {
                    (Decision::Renew, Some((r, v))) => {
                        (r.renewed(&durations, wall), PutMode::Update(v.clone()))
                    }
                    (_, Some((r, v))) => (
                        LeaseRecord::acquired(Some(r), me, &durations, wall),
                        PutMode::Update(v.clone()),
                    ),
                    (_, None) => (
                        LeaseRecord::acquired(None, me, &durations, wall),
                        PutMode::Create,
                    ),
                };
                match store.write(&record, mode).await {
                    Ok(version) => {
                        let new_term = renewed_at.is_none();
                        renewed_at = Some(started);
                        observed = Some((version.clone(), mono()));
                        leader = Some(me.to_string());
                        expires_at = Some(record.expires_at);
                        mine = Some((record, version));
                        if new_term {
                            tracing::info!(identity = me, lease = %store.uri(), "acquired the lease");
                        }
                        state.send_modify(|l| {
                            if new_term {
                                l.terms += 1;
                            }
                            l.leading = true;
                            l.deadline = Some(
                                epoch + Duration::from_millis(started.0) + durations.renew_deadline,
                            );
                        });
                    }
                    Err(e) => {
                        // Lost a race (another replica wrote first) or the store failed:
                        // the next read decides; the deadline keeps running meanwhile.
                        tracing::debug!(error = %crate::runtime::reconciler::error_chain(&e), "lease write failed");
                        error = Some(crate::runtime::reconciler::error_chain(&e));
                    }
                }
            }
            Decision::Hold => {}
            Decision::Follow { .. } => {}
            Decision::StepDown { why } => {
                tracing::warn!(identity = me, ?why, "stepping down: no longer acting");
                renewed_at = None;
                mine = None;
                state.send_modify(|l| {
                    l.leading = false;
                    l.deadline = None;
                });
            }
        }
        state.send_modify(|l| {
            l.leader = leader;
            l.expires_at = expires_at;
            l.error = error;
        });
        let releasing = tokio::select! {
            () = tokio::time::sleep(durations.retry_period) => false,
            _ = release.wait_for(|r| *r) => true,
        };
        if releasing {
            if let (Some(_), Some((record, version))) = (renewed_at, mine.take()) {
                let released = record.released(Timestamp::now());
                match store.write(&released, PutMode::Update(version)).await {
                    Ok(_) => tracing::info!(identity = me, "released the lease"),
                    Err(e) => {
                        tracing::warn!(error = %crate::runtime::reconciler::error_chain(&e), "releasing the lease failed; followers take over when it expires")
                    }
                }
            }
            state.send_modify(|l| {
                l.leading = false;
                l.deadline = None;
            });
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::blob::memory::MemoryStore;

    fn durations() -> Durations {
        Durations {
            lease: Duration::from_secs(3),
            renew_deadline: Duration::from_secs(2),
            retry_period: Duration::from_millis(500),
        }
    }

    fn elector(store: &Arc<MemoryStore>, identity: &str) -> Elector {
        Elector::new(
            LeaseStore::with_blob(Blob::new(store.clone(), "lease")),
            ElectionConfig {
                identity: identity.to_string(),
                durations: durations(),
            },
        )
        .expect("valid durations")
    }

    /// Work that counts, every 100 ms, the instants at which it runs.
    fn ticking(
        counter: Arc<AtomicUsize>,
    ) -> impl FnMut(Term) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send>> + Send {
        move |_term| {
            let counter = counter.clone();
            Box::pin(async move {
                loop {
                    counter.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            })
        }
    }

    #[tokio::test(start_paused = true)]
    async fn one_of_two_leads_and_the_other_takes_over_when_it_stops() {
        let store = Arc::new(MemoryStore::new());
        let a = elector(&store, "a");
        let b = elector(&store, "b");
        let (a_state, b_state) = (a.subscribe(), b.subscribe());
        let (a_runs, b_runs) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let (stop_a, a_stop) = tokio::sync::oneshot::channel::<()>();
        let a_task = tokio::spawn(a.run(ticking(a_runs.clone()), async {
            let _ = a_stop.await;
        }));
        tokio::time::sleep(Duration::from_millis(50)).await;
        let b_task = tokio::spawn(b.run(ticking(b_runs.clone()), std::future::pending()));
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert!(a_state.borrow().leading, "{:?}", a_state.borrow());
        assert!(!b_state.borrow().leading);
        assert_eq!(b_state.borrow().leader.as_deref(), Some("a"));
        assert_eq!(b_runs.load(Ordering::SeqCst), 0, "the follower never ran");
        assert!(a_runs.load(Ordering::SeqCst) > 10);

        // A shuts down cleanly: it releases, and B takes over at its next look.
        let _ = stop_a.send(());
        a_task.await.expect("a ends");
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(b_state.borrow().leading, "{:?}", b_state.borrow());
        assert!(b_runs.load(Ordering::SeqCst) > 0);
        b_task.abort();
    }

    /// A view of a store that can be cut off: every read and write fails while `cut`.
    #[derive(Debug)]
    struct CutOff {
        inner: Arc<MemoryStore>,
        cut: std::sync::atomic::AtomicBool,
    }

    impl crate::blob::BlobStore for CutOff {
        fn uri(&self, location: &str) -> String {
            self.inner.uri(location)
        }
        fn get_opts<'a>(
            &'a self,
            location: &'a str,
            options: crate::blob::GetOptions<'a>,
        ) -> crate::blob::BoxFuture<'a, Result<GetResult, BlobError>> {
            if self.cut.load(Ordering::SeqCst) {
                let e = self.inner.transient(location);
                return Box::pin(async move { Err(e) });
            }
            self.inner.get_opts(location, options)
        }
        fn head<'a>(
            &'a self,
            location: &'a str,
        ) -> crate::blob::BoxFuture<'a, Result<Version, BlobError>> {
            self.inner.head(location)
        }
        fn put<'a>(
            &'a self,
            location: &'a str,
            bytes: Vec<u8>,
            mode: PutMode,
        ) -> crate::blob::BoxFuture<'a, Result<Version, BlobError>> {
            if self.cut.load(Ordering::SeqCst) {
                let e = self.inner.transient(location);
                return Box::pin(async move { Err(e) });
            }
            self.inner.put(location, bytes, mode)
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_leader_that_cannot_renew_stops_before_a_follower_takes_over() {
        let store = Arc::new(MemoryStore::new());
        let a_view = Arc::new(CutOff {
            inner: store.clone(),
            cut: Default::default(),
        });
        let a = Elector::new(
            LeaseStore::with_blob(Blob::new(a_view.clone(), "lease")),
            ElectionConfig {
                identity: "a".into(),
                durations: durations(),
            },
        )
        .expect("valid");
        let a_state = a.subscribe();
        let a_runs = Arc::new(AtomicUsize::new(0));
        let a_task = tokio::spawn(a.run(ticking(a_runs.clone()), std::future::pending()));
        let b = elector(&store, "b");
        let b_state = b.subscribe();
        let b_runs = Arc::new(AtomicUsize::new(0));
        tokio::time::sleep(Duration::from_millis(50)).await;
        let b_task = tokio::spawn(b.run(ticking(b_runs.clone()), std::future::pending()));
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert!(a_state.borrow().leading);
        assert!(!b_state.borrow().leading);

        // From now on A cannot reach the lease; B can.
        a_view.cut.store(true, Ordering::SeqCst);
        let cut_at = Instant::now();
        // Walk in 50 ms steps and check at each that they never both run.
        let mut a_stopped_at = None;
        let mut b_started_at = None;
        for _ in 0..200 {
            let (a_before, b_before) =
                (a_runs.load(Ordering::SeqCst), b_runs.load(Ordering::SeqCst));
            tokio::time::sleep(Duration::from_millis(100)).await;
            let a_ran = a_runs.load(Ordering::SeqCst) > a_before;
            let b_ran = b_runs.load(Ordering::SeqCst) > b_before;
            assert!(!(a_ran && b_ran), "both acted at {:?}", cut_at.elapsed());
            if !a_ran && a_stopped_at.is_none() {
                a_stopped_at = Some(cut_at.elapsed());
            }
            if b_ran && b_started_at.is_none() {
                b_started_at = Some(cut_at.elapsed());
            }
        }
        let a_stopped = a_stopped_at.expect("A stopped");
        let b_started = b_started_at.expect("B took over");
        // A's last renewal started at most one retry period before the cut.
        assert!(
            a_stopped <= durations().renew_deadline + Duration::from_millis(100),
            "A acted past its renew deadline: {a_stopped:?}"
        );
        assert!(
            b_started
                >= a_stopped + (durations().lease - durations().renew_deadline)
                    - durations().retry_period,
            "B took over too early: A stopped at {a_stopped:?}, B started at {b_started:?}"
        );
        assert!(!a_state.borrow().leading);
        assert!(b_state.borrow().leading);
        assert_eq!(b_state.borrow().terms, 1);
        a_task.abort();
        b_task.abort();
    }

    #[test]
    fn ssm_is_refused_as_a_lease_store() {
        let err = LeaseStore::open("ssm:/tugboat/lease", None).expect_err("no conditional write");
        assert!(err.to_string().contains("conditional write"), "{err}");
    }
}
