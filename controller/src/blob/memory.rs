//! A [`BlobStore`] in memory: for tests, and for the local platform's state that need not
//! outlive the process.
//!
//! Guarantees: every operation runs under one lock, so conditional writes are exact (two
//! racing `Update(v)` writers: exactly one wins). Versions come from one counter and are
//! never reused, so a value written twice with the same bytes still gets a new version.
//! Tests can make the next reads or writes fail ([`MemoryStore::fail_next_get`]) to
//! script what a flaky backend does.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard};

use super::{BlobError, BlobStore, BoxFuture, GetOptions, GetResult, PutMode, Version};

/// Values in memory, by location.
#[derive(Debug, Default)]
pub struct MemoryStore {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    values: HashMap<String, (Vec<u8>, Version)>,
    /// The last version handed out.
    counter: u64,
    /// Errors the next reads (heads included) answer, oldest first.
    failing_gets: VecDeque<BlobError>,
    /// Errors the next writes answer, oldest first; the value is left as it was.
    failing_puts: VecDeque<BlobError>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes the next read (`get` or `head`) fail with `error` instead of reading. Queued:
    /// calling it twice fails the next two reads.
    pub fn fail_next_get(&self, error: BlobError) {
        self.lock().failing_gets.push_back(error);
    }

    /// Makes the next write fail with `error`, leaving the stored value as it was.
    pub fn fail_next_put(&self, error: BlobError) {
        self.lock().failing_puts.push_back(error);
    }

    /// A transient error as a throttled or unreachable backend gives, for
    /// [`MemoryStore::fail_next_get`].
    pub fn transient(&self, location: &str) -> BlobError {
        BlobError::Transient {
            doing: "reading",
            uri: self.uri(location),
            detail: "the test made this read fail".to_owned(),
            source: Box::new(std::io::Error::from(std::io::ErrorKind::ConnectionReset)),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves the map consistent (every change is one
        // insert), so a poisoned lock is still usable.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn get_now(&self, location: &str, options: GetOptions<'_>) -> Result<GetResult, BlobError> {
        let mut state = self.lock();
        if let Some(error) = state.failing_gets.pop_front() {
            return Err(error);
        }
        let Some((bytes, version)) = state.values.get(location) else {
            return Err(BlobError::NotFound {
                uri: self.uri(location),
            });
        };
        if options.if_none_match == Some(version) {
            return Ok(GetResult::NotModified);
        }
        if bytes.len() as u64 > options.max_bytes {
            return Err(BlobError::TooLarge {
                uri: self.uri(location),
                size: bytes.len() as u64,
                limit: options.max_bytes,
                what: "the reader accepts",
            });
        }
        Ok(GetResult::Found {
            bytes: bytes.clone(),
            version: version.clone(),
        })
    }

    fn head_now(&self, location: &str) -> Result<Version, BlobError> {
        let mut state = self.lock();
        if let Some(error) = state.failing_gets.pop_front() {
            return Err(error);
        }
        state
            .values
            .get(location)
            .map(|(_, version)| version.clone())
            .ok_or_else(|| BlobError::NotFound {
                uri: self.uri(location),
            })
    }

    fn put_now(&self, location: &str, bytes: Vec<u8>, mode: PutMode) -> Result<Version, BlobError> {
        let mut state = self.lock();
        if let Some(error) = state.failing_puts.pop_front() {
            return Err(error);
        }
        let current = state.values.get(location).map(|(_, version)| version);
        match (&mode, current) {
            (PutMode::Overwrite, _) | (PutMode::Create, None) => {}
            (PutMode::Create, Some(_)) => {
                return Err(BlobError::AlreadyExists {
                    uri: self.uri(location),
                });
            }
            (PutMode::Update(expected), current) => {
                if current != Some(expected) {
                    return Err(BlobError::Precondition {
                        uri: self.uri(location),
                        expected: expected.clone(),
                    });
                }
            }
        }
        state.counter += 1;
        let version = Version(format!("mem:{}", state.counter));
        state
            .values
            .insert(location.to_owned(), (bytes, version.clone()));
        Ok(version)
    }
}

impl BlobStore for MemoryStore {
    fn uri(&self, location: &str) -> String {
        format!("memory:{location}")
    }

    fn get_opts<'a>(
        &'a self,
        location: &'a str,
        options: GetOptions<'a>,
    ) -> BoxFuture<'a, Result<GetResult, BlobError>> {
        Box::pin(async move { self.get_now(location, options) })
    }

    fn head<'a>(&'a self, location: &'a str) -> BoxFuture<'a, Result<Version, BlobError>> {
        Box::pin(async move { self.head_now(location) })
    }

    fn put<'a>(
        &'a self,
        location: &'a str,
        bytes: Vec<u8>,
        mode: PutMode,
    ) -> BoxFuture<'a, Result<Version, BlobError>> {
        Box::pin(async move { self.put_now(location, bytes, mode) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn injected_failures_fail_the_next_calls_in_order_then_stop() {
        let store = MemoryStore::new();
        let first = store.put("k", b"one".to_vec(), PutMode::Create).await;
        let first = first.expect("created");
        store.fail_next_get(store.transient("k"));
        store.fail_next_put(store.transient("k"));

        let read = store.get("k", None).await;
        assert!(matches!(read, Err(BlobError::Transient { .. })), "{read:?}");
        let write = store.put("k", b"two".to_vec(), PutMode::Overwrite).await;
        assert!(
            matches!(write, Err(BlobError::Transient { .. })),
            "{write:?}"
        );

        // The failed write changed nothing, and the failures were used up.
        assert_eq!(
            store.get("k", None).await.expect("read"),
            GetResult::Found {
                bytes: b"one".to_vec(),
                version: first,
            }
        );
    }
}
