//! The Herald worker: consumes accepted notifications from Kafka and delivers them through the
//! providers, once per delivery outside the documented in-doubt set (see docs/DESIGN.md).
//! `main.rs` is a thin CLI.

pub mod admission;
pub mod backoff;
pub mod cancellations;
pub mod circuit_breaker;
pub mod cli;
pub mod consumer;
pub mod consumer_lag;
pub mod content;
pub mod context;
pub mod dead_letter;
pub mod destinations;
pub mod group_expander;
pub mod held;
pub mod lane;
pub mod lane_queue;
pub mod metrics;
pub mod outcome;
pub mod parking;
pub mod pump;
pub mod rate_limit;
pub mod recipients;
pub mod recorder;
pub mod routing;
pub mod session;
pub mod shutdown;
pub mod startup;
pub mod status_events;
pub mod sweeper;
pub mod templates;
pub mod tenant_shares;
pub mod traces;
pub mod work;

pub use startup::Worker;
