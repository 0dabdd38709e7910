//! Leader election's pure half: what a replica does next, given the lease record it read,
//! its own identity, the time and the election's durations. The shell
//! (`tugboat::runtime::elector`) reads and writes the record with conditional writes and
//! acts on the [`Decision`]; nothing here does I/O or reads a clock.
//!
//! The rules are client-go's `leaderelection` (leaseDuration, renewDeadline,
//! retryPeriod):
//! - A lease held by another replica expires, for me, when its record has not changed for
//!   the record's `leaseDurationMs` **on my own clock** since I first saw that version
//!   ([`View::Record::observed_at`]). Wall-clock times inside the record (`renewedAt`,
//!   `expiresAt`) are for people and `tugboat status`; no decision compares them with
//!   this replica's clock, so clock skew between replicas cannot shorten a lease.
//! - The leader renews every retry period, and stops acting once
//!   `renew_deadline` has passed since its last renewal *started* (the time taken before
//!   the write was sent, not when it was answered). Because `renew_deadline <
//!   lease_duration` and a follower's clock for a version starts no earlier than the write
//!   that made it, the old leader has stopped before any follower may take over; the
//!   difference is the margin for a pass that is cancelled mid-call and for clock rates.
//! - A released lease (empty holder: a leader that shut down cleanly) may be taken at
//!   once.
//!
//! All times given to [`decide`] are on one clock of the caller's (the runtime passes
//! milliseconds of a monotonic clock), as [`Timestamp`]s.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::status::Timestamp;

/// The lease object's content (JSON, camelCase), written only by conditional writes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LeaseRecord {
    /// Who holds the lease; empty when its last holder released it.
    pub holder: String,
    /// How long the lease lasts after a renewal, as the holder promises it.
    pub lease_duration_ms: u64,
    /// Wall clock of the holder when it took the lease (for people).
    pub acquired_at: Timestamp,
    /// Wall clock of the holder at its last renewal (for people).
    pub renewed_at: Timestamp,
    /// `renewed_at` plus the duration, on the holder's clock (for people and `/status`).
    pub expires_at: Timestamp,
    /// How many times the lease changed hands.
    pub transitions: u64,
}

impl LeaseRecord {
    /// Whether nobody holds it (released).
    pub fn is_released(&self) -> bool {
        self.holder.is_empty()
    }

    /// The record `me` writes to take the lease over from `previous` (none: creating it),
    /// at wall-clock `wall`.
    pub fn acquired(
        previous: Option<&LeaseRecord>,
        me: &str,
        durations: &Durations,
        wall: Timestamp,
    ) -> Self {
        let transitions = match previous {
            None => 0,
            Some(p) if p.holder == me => p.transitions,
            Some(p) => p.transitions + 1,
        };
        Self {
            holder: me.to_string(),
            lease_duration_ms: durations.lease.as_millis() as u64,
            acquired_at: wall,
            renewed_at: wall,
            expires_at: wall.plus(durations.lease),
            transitions,
        }
    }

    /// The same lease renewed at wall-clock `wall`.
    pub fn renewed(&self, durations: &Durations, wall: Timestamp) -> Self {
        Self {
            lease_duration_ms: durations.lease.as_millis() as u64,
            renewed_at: wall,
            expires_at: wall.plus(durations.lease),
            ..self.clone()
        }
    }

    /// The lease given up at wall-clock `wall`: no holder, expired now, so a follower
    /// takes it at its next look instead of waiting a whole lease duration.
    pub fn released(&self, wall: Timestamp) -> Self {
        Self {
            holder: String::new(),
            renewed_at: wall,
            expires_at: wall,
            ..self.clone()
        }
    }
}

/// The election's three durations, as client-go names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Durations {
    /// How long followers wait, after the record last changed, before taking it over.
    pub lease: Duration,
    /// How long the leader keeps acting without a successful renewal.
    pub renew_deadline: Duration,
    /// How often every replica reads (and the leader renews) the lease.
    pub retry_period: Duration,
}

impl Default for Durations {
    /// client-go's defaults for controllers: 15 s, 10 s, 2 s.
    fn default() -> Self {
        Self {
            lease: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }
}

/// Durations that cannot keep one leader at a time.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationsError {
    #[error(
        "the renew deadline ({renew_deadline:?}) must be shorter than the lease duration \
         ({lease:?}): a leader that cannot renew has to stop before a follower may take over"
    )]
    DeadlineNotBeforeExpiry {
        renew_deadline: Duration,
        lease: Duration,
    },
    #[error(
        "the retry period ({retry_period:?}) must be shorter than the renew deadline \
         ({renew_deadline:?}) so the leader gets at least one more try to renew"
    )]
    RetryNotBeforeDeadline {
        retry_period: Duration,
        renew_deadline: Duration,
    },
    #[error("the retry period must be more than zero")]
    ZeroRetryPeriod,
}

impl Durations {
    /// Checks `retry_period < renew_deadline < lease`, as client-go does.
    pub fn validate(&self) -> Result<(), DurationsError> {
        if self.retry_period.is_zero() {
            return Err(DurationsError::ZeroRetryPeriod);
        }
        if self.renew_deadline >= self.lease {
            return Err(DurationsError::DeadlineNotBeforeExpiry {
                renew_deadline: self.renew_deadline,
                lease: self.lease,
            });
        }
        if self.retry_period >= self.renew_deadline {
            return Err(DurationsError::RetryNotBeforeDeadline {
                retry_period: self.retry_period,
                renew_deadline: self.renew_deadline,
            });
        }
        Ok(())
    }
}

/// What the last read of the lease found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View<'a> {
    /// There is no lease object.
    Absent,
    /// The record, and when (on my clock) I first read this version of it.
    Record {
        record: &'a LeaseRecord,
        observed_at: Timestamp,
    },
    /// The read failed (throttled, unreachable, unparseable).
    Unreadable,
}

/// Who holds the lease, as far as this replica can tell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseState {
    /// No object, a released record, or one whose holder has let it expire.
    Unheld,
    /// Another replica holds it; it is expired for me at `expires` (my clock).
    HeldByOther { holder: String, expires: Timestamp },
    /// The record names me.
    HeldBySelf,
    /// The read failed: nothing is known.
    Unknown,
}

/// The lease's state from what was read, at `now` (my clock).
pub fn state(view: View<'_>, me: &str, now: Timestamp) -> LeaseState {
    match view {
        View::Absent => LeaseState::Unheld,
        View::Unreadable => LeaseState::Unknown,
        View::Record { record, .. } if record.is_released() => LeaseState::Unheld,
        View::Record { record, .. } if record.holder == me => LeaseState::HeldBySelf,
        View::Record {
            record,
            observed_at,
        } => {
            let expires = observed_at.plus(Duration::from_millis(record.lease_duration_ms));
            if now >= expires {
                LeaseState::Unheld
            } else {
                LeaseState::HeldByOther {
                    holder: record.holder.clone(),
                    expires,
                }
            }
        }
    }
}

/// What the replica does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Write a record naming me: `Create` when there is none, else `Update` on the version
    /// read (so two followers racing for it cannot both win).
    Acquire,
    /// Write the renewed record with `Update` on the version read.
    Renew,
    /// Do not act; another replica leads (`leader`, if known), or nobody can be known to.
    Follow { leader: Option<String> },
    /// Stop acting now: the renew deadline passed, or another replica holds the lease.
    StepDown { why: StepDownReason },
    /// Keep leading without writing (the read failed but the renew deadline has not
    /// passed); try again at the next retry.
    Hold,
}

/// Why a leader stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepDownReason {
    /// No renewal succeeded within the renew deadline.
    RenewDeadlinePassed,
    /// The record names someone else (or was released or deleted under me).
    LostTheLease,
}

/// The next step at `now`. `renewed_at` is when (my clock) my last successful write of
/// the lease *started*, if I lead; `None` when I do not lead.
///
/// Worked example with 15 s / 10 s / 2 s: I renewed at t=100 s; reads fail from then on.
/// At t=108 s the decision is [`Decision::Hold`]; at t=110 s it is
/// [`Decision::StepDown`]. A follower that first saw my t=100 s record at t=100.3 s takes
/// over from t=115.3 s, 5.3 s after I stopped.
pub fn decide(
    view: View<'_>,
    me: &str,
    now: Timestamp,
    renewed_at: Option<Timestamp>,
    durations: &Durations,
) -> Decision {
    if let Some(renewed) = renewed_at
        && now >= renewed.plus(durations.renew_deadline)
    {
        return Decision::StepDown {
            why: StepDownReason::RenewDeadlinePassed,
        };
    }
    let leading = renewed_at.is_some();
    match (state(view, me, now), leading) {
        (LeaseState::HeldBySelf, true) => Decision::Renew,
        // A record naming me that I do not know I hold (my earlier life with the same
        // identity): take it as mine again through a conditional write.
        (LeaseState::HeldBySelf, false) | (LeaseState::Unheld, false) => Decision::Acquire,
        (LeaseState::Unheld | LeaseState::HeldByOther { .. }, true) => Decision::StepDown {
            why: StepDownReason::LostTheLease,
        },
        (LeaseState::HeldByOther { holder, .. }, false) => Decision::Follow {
            leader: Some(holder),
        },
        (LeaseState::Unknown, true) => Decision::Hold,
        (LeaseState::Unknown, false) => Decision::Follow { leader: None },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: Durations = Durations {
        lease: Duration::from_secs(15),
        renew_deadline: Duration::from_secs(10),
        retry_period: Duration::from_secs(2),
    };

    fn ms(n: u64) -> Timestamp {
        Timestamp(n)
    }

    fn held_by(holder: &str) -> LeaseRecord {
        LeaseRecord::acquired(None, holder, &D, ms(1_000_000))
    }

    fn seen(record: &LeaseRecord, at: u64) -> View<'_> {
        View::Record {
            record,
            observed_at: ms(at),
        }
    }

    #[test]
    fn no_lease_object_is_acquired() {
        assert_eq!(
            decide(View::Absent, "a", ms(0), None, &D),
            Decision::Acquire
        );
    }

    #[test]
    fn another_holders_lease_is_followed_until_one_lease_duration_after_it_was_seen() {
        let record = held_by("b");
        let view = seen(&record, 10_000);
        assert_eq!(
            decide(view, "a", ms(24_999), None, &D),
            Decision::Follow {
                leader: Some("b".into())
            },
            "1 ms before expiry on my clock"
        );
        assert_eq!(
            decide(view, "a", ms(25_000), None, &D),
            Decision::Acquire,
            "at exactly observed + lease duration it is expired"
        );
    }

    #[test]
    fn the_holders_wall_clock_never_decides_expiry() {
        // The holder's clock is far behind (its expiresAt is long past for us) but the
        // record was seen just now: still held.
        let mut record = held_by("b");
        record.expires_at = ms(5);
        let view = seen(&record, 50_000);
        assert!(matches!(
            decide(view, "a", ms(50_001), None, &D),
            Decision::Follow { .. }
        ));
    }

    #[test]
    fn the_records_own_duration_counts_not_mine() {
        let mut record = held_by("b");
        record.lease_duration_ms = 60_000;
        let view = seen(&record, 0);
        assert!(matches!(
            decide(view, "a", ms(59_999), None, &D),
            Decision::Follow { .. }
        ));
        assert_eq!(decide(view, "a", ms(60_000), None, &D), Decision::Acquire);
    }

    #[test]
    fn a_released_lease_is_taken_at_once() {
        let record = held_by("b").released(ms(2_000_000));
        assert_eq!(
            decide(seen(&record, 100), "a", ms(100), None, &D),
            Decision::Acquire
        );
    }

    #[test]
    fn the_leader_renews_until_its_renew_deadline_then_steps_down() {
        let record = held_by("a");
        let view = seen(&record, 0);
        assert_eq!(
            decide(view, "a", ms(9_999), Some(ms(0)), &D),
            Decision::Renew
        );
        assert_eq!(
            decide(view, "a", ms(10_000), Some(ms(0)), &D),
            Decision::StepDown {
                why: StepDownReason::RenewDeadlinePassed
            },
            "exactly at the deadline it stops"
        );
    }

    #[test]
    fn a_leader_that_cannot_read_holds_until_the_deadline() {
        assert_eq!(
            decide(View::Unreadable, "a", ms(9_999), Some(ms(0)), &D),
            Decision::Hold
        );
        assert!(matches!(
            decide(View::Unreadable, "a", ms(10_000), Some(ms(0)), &D),
            Decision::StepDown { .. }
        ));
        assert_eq!(
            decide(View::Unreadable, "a", ms(0), None, &D),
            Decision::Follow { leader: None },
            "a follower that cannot read never acquires"
        );
    }

    #[test]
    fn a_leader_whose_lease_names_another_steps_down_at_once() {
        let record = held_by("b");
        assert_eq!(
            decide(seen(&record, 0), "a", ms(1), Some(ms(0)), &D),
            Decision::StepDown {
                why: StepDownReason::LostTheLease
            }
        );
        assert!(matches!(
            decide(View::Absent, "a", ms(1), Some(ms(0)), &D),
            Decision::StepDown { .. }
        ));
    }

    /// The safety property over a grid of times: with a record renewed (write started) at
    /// `r` and first seen by a follower at `seen >= r`, there is no instant at which the
    /// leader still acts and the follower may acquire.
    #[test]
    fn leader_and_follower_never_both_act() {
        let record = held_by("a");
        for seen_after in [0u64, 1, 300, 4_999] {
            for now in (0..30_000).step_by(250) {
                let leader_acts = matches!(
                    decide(seen(&record, 0), "a", ms(now), Some(ms(0)), &D),
                    Decision::Renew | Decision::Hold
                );
                let follower_acquires =
                    decide(seen(&record, seen_after), "b", ms(now), None, &D) == Decision::Acquire;
                assert!(
                    !(leader_acts && follower_acquires),
                    "both at {now} ms (seen {seen_after} ms after the renewal)"
                );
            }
        }
    }

    #[test]
    fn durations_must_keep_the_deadline_before_expiry() {
        assert!(D.validate().is_ok());
        let equal = Durations {
            renew_deadline: D.lease,
            ..D
        };
        assert!(matches!(
            equal.validate(),
            Err(DurationsError::DeadlineNotBeforeExpiry { .. })
        ));
        let slow_retry = Durations {
            retry_period: D.renew_deadline,
            ..D
        };
        assert!(matches!(
            slow_retry.validate(),
            Err(DurationsError::RetryNotBeforeDeadline { .. })
        ));
        assert!(Durations::default().validate().is_ok());
    }

    #[test]
    fn records_count_transitions_between_holders() {
        let first = LeaseRecord::acquired(None, "a", &D, ms(0));
        assert_eq!(first.transitions, 0);
        let again = LeaseRecord::acquired(Some(&first), "a", &D, ms(1));
        assert_eq!(again.transitions, 0);
        let other = LeaseRecord::acquired(Some(&first), "b", &D, ms(2));
        assert_eq!(other.transitions, 1);
        assert_eq!(other.expires_at, ms(15_002));
        let json = serde_json::to_value(&other).unwrap();
        assert_eq!(json["holder"], "b");
        assert_eq!(json["leaseDurationMs"], 15_000);
    }
}
