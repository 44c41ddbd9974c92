//! Logging set-up, shared with the worker.

pub use herald_telemetry::init_logging;
