//! A request body that would be `total` bytes but is produced lazily in chunks,
//! counting how many bytes the server actually pulled: a server that enforces its
//! body limit stops pulling near the limit, whatever the declared size.
#![allow(dead_code)]

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use axum::body::Bytes;
use http_body::Frame;

pub const CHUNK: usize = 64 * 1024;

#[derive(Debug)]
pub struct EndlessBody {
    left: usize,
    pulled: Arc<AtomicUsize>,
    chunk: Bytes,
}

impl EndlessBody {
    /// A `[0,0,0,...` JSON prefix that never closes, `total` bytes long.
    pub fn new(total: usize) -> (Self, Arc<AtomicUsize>) {
        let pulled = Arc::new(AtomicUsize::new(0));
        let mut chunk = b"{\"features\": [".to_vec();
        while chunk.len() < CHUNK {
            chunk.extend_from_slice(b"0,");
        }
        chunk.truncate(CHUNK);
        (
            Self {
                left: total,
                pulled: Arc::clone(&pulled),
                chunk: Bytes::from(chunk),
            },
            pulled,
        )
    }
}

impl http_body::Body for EndlessBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        if self.left == 0 {
            return Poll::Ready(None);
        }
        let n = self.left.min(CHUNK);
        self.left -= n;
        self.pulled.fetch_add(n, Ordering::Relaxed);
        Poll::Ready(Some(Ok(Frame::data(self.chunk.slice(..n)))))
    }
}
