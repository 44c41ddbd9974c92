//! The Herald ingest API: authenticate, validate, group-commit to PostgreSQL, publish to Kafka.
//! `main.rs` is a thin CLI over this library; tests build the same `Application`.

pub mod auth;
pub mod cli;
pub mod client_address;
pub mod error;
pub mod ingest;
pub mod json_body;
pub mod metrics;
pub mod read_permits;
pub mod references;
pub mod request_span;
pub mod routes;
pub mod startup;
pub mod state;
pub mod tenant_limits;
pub mod timing;

pub use startup::Application;
