//! sea-orm entities of the tables whose rows are read and written one at a time by key: these go
//! through sea-orm's query builder. The tables written and read in sets (notifications,
//! deliveries, the queues) are reached by hand-written SQL in the modules beside this one, with
//! rows mapped into typed structs by name (`columns::row!`); an entity for them would only be a
//! second, unchecked description of the same columns.

pub mod api_keys;
pub mod tenants;
pub mod users;
