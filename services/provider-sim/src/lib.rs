//! Herald's provider simulator: the SendGrid Mail Send and Twilio Messages APIs, Slack incoming
//! webhooks, Discord webhooks, the Telegram Bot API's `sendMessage` and Pushover's Message API
//! with the real paths, authentication, validation and response shapes, and a receiver that
//! verifies Standard Webhooks signatures, an SMTP sink for the email fallback, plus configurable
//! latency and faults, and an inspection API (`/_sim/*`) that lets tests prove every delivery
//! was sent exactly once.
//!
//! Each API is modelled as far as Herald's worker uses it: what Herald sends is validated as the
//! real API validates it, what Herald reads is answered in the real shape, and request parts
//! Herald never sends (SendGrid templates, Twilio media, Discord embeds, Telegram's form bodies,
//! …) are accepted and ignored rather than modelled (README, "What is modelled").
//!
//! `main.rs` is a thin CLI over this library; tests start the same server with [`run`] or, with
//! SMTP on a listener they bound, [`run_with_smtp`].
//!
//! A provider is its module (its routes and checks, `configure` for the HTTP server) and its
//! line in [`provider`]'s list; besides those, its config section and CLI flags
//! ([`config`], `cli/<provider>_flags.rs`), its `configure` line in [`startup`], and a field in
//! [`state`] only if it keeps state of its own. Stats, behaviours, reset and the start-up log
//! cover every provider in [`Provider::ALL`] by themselves.

pub mod behaviour;
pub mod cli;
pub mod config;
pub mod delivery_reference;
pub mod discord;
pub mod inspection;
pub mod json_error;
pub mod provider;
pub mod pushover;
pub mod records;
pub mod retry_after;
pub mod runtime_config;
pub mod sendgrid;
pub mod simulation;
pub mod slack;
pub mod smtp;
pub mod startup;
pub mod state;
pub mod telegram;
pub mod twilio;
pub mod validation;
pub mod webhook;

pub use behaviour::{FaultKind, ProviderBehaviour};
pub use config::{
    DiscordConfig, PushoverConfig, SendGridConfig, SimulatorConfig, SlackConfig, SmtpConfig,
    TelegramConfig, TwilioConfig, WebhookReceiverConfig,
};
pub use provider::Provider;
pub use startup::{run, run_with_smtp};
