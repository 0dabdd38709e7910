//! Client-side token buckets, one per AWS quota class, so a large application never
//! trips the account's API rate limits.
//!
//! AWS limits some APIs per account and region, shared by every caller: ECS
//! RegisterTaskDefinition sustains about 1/s, ELB mutating calls about 3/s for the whole
//! account. The SDK's retries only react after a call was throttled; these buckets keep
//! the controller under the limits in the first place. [`Budgets::process_wide`] is one
//! set of buckets per process, shared by every application the process reconciles
//! (`tugboat run --source s3://bucket/prefix/` hands the same `Arc` to every
//! application's platform and side inputs: [`crate::runtime::fleet`]).
//!
//! Guarantees: `acquire` never fails, it waits; waiting is FIFO-fair per bucket (each
//! caller reserves the next token and sleeps until it is due); the clock is tokio's, so
//! tests run on a paused clock.

use std::fmt;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

/// A family of API calls that share one AWS rate limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum QuotaClass {
    /// ECS RegisterTaskDefinition.
    RegisterTaskDefinition,
    /// ECS CreateService / UpdateService.
    EcsServiceChange,
    /// ECS Describe* and List*.
    EcsDescribe,
    /// ELBv2 ModifyRule / CreateRule / ModifyTargetGroupAttributes / AddTags: account-wide.
    ElbMutate,
    /// ELBv2 Describe*.
    ElbDescribe,
    /// SSM GetParameter(s) / GetParametersByPath.
    Ssm,
    /// S3 object reads and writes.
    S3,
    /// Application Auto Scaling's Describe*, Register*, Put*, Delete* (one quota family).
    Scaling,
}

impl QuotaClass {
    pub const ALL: [QuotaClass; 8] = [
        QuotaClass::RegisterTaskDefinition,
        QuotaClass::EcsServiceChange,
        QuotaClass::EcsDescribe,
        QuotaClass::ElbMutate,
        QuotaClass::ElbDescribe,
        QuotaClass::Ssm,
        QuotaClass::S3,
        QuotaClass::Scaling,
    ];

    /// Sustained calls per second and burst, from AWS's published quotas (with margin).
    pub fn default_limit(self) -> Limit {
        let (per_second, burst) = match self {
            QuotaClass::RegisterTaskDefinition => (1.0, 20),
            QuotaClass::EcsServiceChange => (5.0, 50),
            QuotaClass::EcsDescribe => (20.0, 100),
            QuotaClass::ElbMutate => (3.0, 20),
            QuotaClass::ElbDescribe => (10.0, 40),
            QuotaClass::Ssm => (40.0, 40),
            QuotaClass::S3 => (100.0, 100),
            QuotaClass::Scaling => (5.0, 20),
        };
        Limit { per_second, burst }
    }

    fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for QuotaClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// A sustained rate and a burst.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Limit {
    pub per_second: f64,
    pub burst: u32,
}

/// One token bucket. Tokens may go negative: a negative balance is the queue of callers
/// that reserved a token and are sleeping until it is due.
#[derive(Debug)]
pub struct TokenBucket {
    limit: Limit,
    state: Mutex<BucketState>,
}

#[derive(Debug)]
struct BucketState {
    tokens: f64,
    refilled_at: Instant,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(limit: Limit) -> Self {
        Self {
            limit,
            state: Mutex::new(BucketState {
                tokens: f64::from(limit.burst),
                refilled_at: Instant::now(),
            }),
        }
    }

    /// Takes one token, waiting until it is due.
    pub async fn acquire(&self) {
        let wait = self.reserve();
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }

    /// Reserves a token and returns how long until it may be used.
    fn reserve(&self) -> Duration {
        let mut state = self.lock_refilled();
        state.tokens -= 1.0;
        if state.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-state.tokens / self.limit.per_second)
        }
    }

    /// Whole tokens available right now (0 when callers are queued).
    pub fn headroom(&self) -> u32 {
        let state = self.lock_refilled();
        state.tokens.max(0.0).floor() as u32
    }

    pub fn limit(&self) -> Limit {
        self.limit
    }

    fn lock_refilled(&self) -> std::sync::MutexGuard<'_, BucketState> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let elapsed = now.saturating_duration_since(state.refilled_at);
        state.tokens = (state.tokens + elapsed.as_secs_f64() * self.limit.per_second)
            .min(f64::from(self.limit.burst));
        state.refilled_at = now;
        state
    }
}

/// One bucket per quota class.
#[derive(Debug)]
pub struct Budgets {
    buckets: Vec<TokenBucket>,
}

impl Default for Budgets {
    fn default() -> Self {
        Self::new()
    }
}

impl Budgets {
    /// Full buckets at the default limits.
    pub fn new() -> Self {
        Self {
            buckets: QuotaClass::ALL
                .iter()
                .map(|c| TokenBucket::new(c.default_limit()))
                .collect(),
        }
    }

    /// The process's shared buckets: every application reconciled by this process draws
    /// from them, because AWS counts the calls per account, not per application.
    pub fn process_wide() -> Arc<Budgets> {
        static SHARED: OnceLock<Arc<Budgets>> = OnceLock::new();
        SHARED.get_or_init(|| Arc::new(Budgets::new())).clone()
    }

    pub async fn acquire(&self, class: QuotaClass) {
        self.buckets[class.index()].acquire().await;
    }

    pub fn headroom(&self, class: QuotaClass) -> u32 {
        self.buckets[class.index()].headroom()
    }

    /// Headroom of every class, for status and metrics.
    pub fn headroom_all(&self) -> Vec<(QuotaClass, u32)> {
        QuotaClass::ALL
            .iter()
            .map(|&c| (c, self.headroom(c)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn register_limit() -> Limit {
        QuotaClass::RegisterTaskDefinition.default_limit()
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_bucket_serves_its_burst_without_waiting() {
        let bucket = TokenBucket::new(register_limit());
        let start = Instant::now();
        for _ in 0..20 {
            bucket.acquire().await;
        }
        assert_eq!(start.elapsed(), Duration::ZERO);
        assert_eq!(bucket.headroom(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn past_the_burst_calls_are_spaced_at_the_sustained_rate() {
        let bucket = TokenBucket::new(register_limit());
        for _ in 0..20 {
            bucket.acquire().await;
        }
        let start = Instant::now();
        bucket.acquire().await;
        assert_eq!(start.elapsed(), Duration::from_secs(1));
        bucket.acquire().await;
        bucket.acquire().await;
        assert_eq!(start.elapsed(), Duration::from_secs(3));
    }

    #[tokio::test(start_paused = true)]
    async fn tokens_come_back_over_time_up_to_the_burst() {
        let bucket = TokenBucket::new(QuotaClass::ElbMutate.default_limit());
        for _ in 0..20 {
            bucket.acquire().await;
        }
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(bucket.headroom(), 6, "3/s for 2 s");
        tokio::time::advance(Duration::from_secs(60)).await;
        assert_eq!(bucket.headroom(), 20, "never more than the burst");
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_waiters_are_served_one_interval_apart() {
        let bucket = Arc::new(TokenBucket::new(Limit {
            per_second: 2.0,
            burst: 1,
        }));
        bucket.acquire().await;
        let start = Instant::now();
        let waiters: Vec<_> = (0..4)
            .map(|_| {
                let bucket = bucket.clone();
                tokio::spawn(async move {
                    bucket.acquire().await;
                    start.elapsed()
                })
            })
            .collect();
        let mut finished = Vec::new();
        for w in waiters {
            finished.push(w.await.expect("waiter task"));
        }
        finished.sort();
        let expected: Vec<_> = [500, 1000, 1500, 2000]
            .into_iter()
            .map(Duration::from_millis)
            .collect();
        assert_eq!(finished, expected);
    }

    #[tokio::test(start_paused = true)]
    async fn budgets_keep_classes_apart() {
        let budgets = Budgets::new();
        for _ in 0..20 {
            budgets.acquire(QuotaClass::RegisterTaskDefinition).await;
        }
        assert_eq!(budgets.headroom(QuotaClass::RegisterTaskDefinition), 0);
        assert_eq!(budgets.headroom(QuotaClass::EcsServiceChange), 50);
    }

    /// Issue 12: one controller for many applications draws every application's calls
    /// from one set of buckets, so together they stay under the account's quota. Two
    /// applications each needing 20 ELB mutations share ELB's burst of 20 and 3/s: the
    /// last of the 40 calls waits (40 - 20) / 3 s, where buckets of their own would let
    /// all 40 through at once (and past AWS's limit).
    #[tokio::test(start_paused = true)]
    async fn applications_sharing_the_account_buckets_share_its_rate() {
        let shared = Arc::new(Budgets::new());
        let start = Instant::now();
        let apps: Vec<_> = (0..2)
            .map(|_| {
                let budgets = shared.clone();
                tokio::spawn(async move {
                    for _ in 0..20 {
                        budgets.acquire(QuotaClass::ElbMutate).await;
                    }
                    start.elapsed()
                })
            })
            .collect();
        let mut last = Duration::ZERO;
        for app in apps {
            last = last.max(app.await.expect("app task"));
        }
        let expected = Duration::from_secs_f64(20.0 / 3.0);
        assert!(
            last >= expected && last < expected + Duration::from_millis(10),
            "the 40th call at {last:?}, expected about {expected:?}"
        );
    }

    #[test]
    fn the_process_wide_budgets_are_one_instance() {
        assert!(Arc::ptr_eq(
            &Budgets::process_wide(),
            &Budgets::process_wide()
        ));
    }
}
