//! What the listener shows is the loop's published
//! [`crate::control::Snapshot`], read without asking the loop; the run
//! durations of its sparklines are kept per check as a
//! [`crate::control::snapshot::Recent`] (one byte a run).

pub use crate::control::snapshot::{Recent, DAYS, RECENT};
