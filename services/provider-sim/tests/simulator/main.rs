//! Integration tests of the provider simulator: each test starts its own server on port 0 and
//! talks to it over HTTP, as Herald's worker and tests do.

mod discord;
mod faults;
mod helpers;
mod inspection;
mod pushover;
mod runtime_config;
mod schema;
mod sendgrid;
mod slack;
mod smtp;
mod telegram;
mod twilio;
mod webhooks;
