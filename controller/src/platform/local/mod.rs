//! The local platform (in progress).

pub mod router;
pub mod stats;
