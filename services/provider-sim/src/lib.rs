//! Herald's provider simulator: the SendGrid Mail Send and Twilio Messages APIs with the real
//! paths, authentication, validation and response shapes, plus configurable latency and faults,
//! and an inspection API (`/_sim/*`) that lets tests prove every delivery was sent exactly once.
//!
//! `main.rs` is a thin CLI over this library; tests start the same server with [`run`].

pub mod behaviour;
pub mod cli;
pub mod config;
pub mod inspection;
pub mod json_error;
pub mod provider;
pub mod records;
pub mod runtime_config;
pub mod sendgrid;
pub mod simulation;
pub mod startup;
pub mod state;
pub mod twilio;
pub mod validation;

pub use behaviour::{FaultKind, ProviderBehaviour};
pub use config::{SendGridConfig, SimulatorConfig, TwilioConfig};
pub use provider::Provider;
pub use startup::run;
