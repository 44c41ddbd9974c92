//! The Herald worker: consumes accepted notifications from Kafka and delivers them through the
//! providers exactly once per delivery (see docs/DESIGN.md). `main.rs` is a thin CLI.

pub mod backoff;
pub mod batch;
pub mod consumer;
pub mod context;
pub mod dead_letter;
pub mod metrics;
pub mod providers;
pub mod recipients;
pub mod sender;
pub mod startup;
pub mod sweeper;
pub mod work;

pub use startup::Worker;
