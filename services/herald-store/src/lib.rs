//! PostgreSQL access for Herald: sea-orm entities for the simple tables and hand-written SQL where
//! one statement must do the work of many (the group-committed insert, the outbox lease).

pub mod connect;
pub mod deliveries;
pub mod entities;
pub mod notifications;
pub mod outbox;
pub mod tenants;
pub mod users;

pub use connect::connect;
pub use sea_orm::{DatabaseConnection, DbErr};
