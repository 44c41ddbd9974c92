//! The worker's session (docs/DESIGN.md, "Sessions and ownership"): one heartbeat leases every
//! claim the worker holds, and the worker fences itself before anyone could take a claim over.
//!
//! * The heartbeat renews `worker_sessions.heartbeat_at` (database clock) every `lease / 10`; a
//!   session whose heartbeat is older than the lease can never be renewed again (the statement
//!   refuses it), so a takeover and a late heartbeat cannot both succeed.
//! * The worker measures, on its own monotonic clock, the time since the *start* of its last
//!   successful heartbeat. Past `fence_after` it starts no provider call; past the lease it gives the
//!   session up, drops what it holds and registers a new one.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use herald_store::{sessions, Database};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::metrics;

/// Whether a delivery claimed under some session may be sent now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendPermission {
    Yes,
    /// The heartbeat is late: wait until it is renewed (or the session is lost).
    Wait,
    /// The session it was claimed under is gone: the claim is someone else's now.
    Never,
}

struct SessionState {
    id: Uuid,
    /// Start of the last heartbeat the database confirmed.
    confirmed_at: Instant,
}

pub struct Session {
    database: Database,
    host: String,
    lease: Duration,
    heartbeat_interval: Duration,
    fence_after: Duration,
    state: Mutex<SessionState>,
    /// Bumped when the heartbeat state changes, so waiting lanes wake up.
    changes: watch::Sender<u64>,
}

impl Session {
    /// Registers a new session. `longest_send` is the longest a provider call can take (the
    /// longest provider timeout): a call started before the fence ends before the lease does.
    pub async fn register(
        database: Database,
        lease: Duration,
        heartbeat_interval: Duration,
        longest_send: Duration,
    ) -> anyhow::Result<Session> {
        let host = hostname();
        let started = Instant::now();
        let id = sessions::register(&database, &host).await?;
        let fence_after = lease
            .saturating_sub(longest_send)
            .saturating_sub(heartbeat_interval * 2);
        debug_assert!(
            !fence_after.is_zero(),
            "validated: lease >= 2 x longest provider timeout"
        );
        tracing::info!(session = %id, %host, "worker session registered");
        Ok(Session {
            database,
            host,
            lease,
            heartbeat_interval,
            fence_after,
            state: Mutex::new(SessionState {
                id,
                confirmed_at: started,
            }),
            changes: watch::channel(0).0,
        })
    }

    pub fn id(&self) -> Uuid {
        self.state.lock().expect("session state poisoned").id
    }

    pub fn permission(&self, claimed_under: Uuid) -> SendPermission {
        let state = self.state.lock().expect("session state poisoned");
        if state.id != claimed_under {
            SendPermission::Never
        } else if state.confirmed_at.elapsed() < self.fence_after {
            SendPermission::Yes
        } else {
            SendPermission::Wait
        }
    }

    /// Waits until a delivery claimed under `claimed_under` may be sent (`Yes`) or never (`Never`).
    pub async fn wait_for_permission(&self, claimed_under: Uuid) -> SendPermission {
        let mut changes = self.changes.subscribe();
        loop {
            match self.permission(claimed_under) {
                SendPermission::Wait => {
                    // Re-check at least every heartbeat interval: time alone can change the answer.
                    let _ = tokio::time::timeout(self.heartbeat_interval, changes.changed()).await;
                }
                decided => return decided,
            }
        }
    }

    /// Whether the session is currently fenced (for readiness).
    pub fn is_fenced(&self) -> bool {
        let state = self.state.lock().expect("session state poisoned");
        state.confirmed_at.elapsed() >= self.fence_after
    }

    /// Renews the heartbeat until `shutdown`; replaces a lost session.
    pub async fn run_heartbeat(&self, shutdown: CancellationToken) {
        let mut ticks = tokio::time::interval(self.heartbeat_interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticks.tick() => {}
                _ = shutdown.cancelled() => return,
            }
            self.beat().await;
        }
    }

    async fn beat(&self) {
        let (id, confirmed_at) = {
            let state = self.state.lock().expect("session state poisoned");
            (state.id, state.confirmed_at)
        };
        let started = Instant::now();
        match sessions::heartbeat(&self.database, id, self.lease).await {
            Ok(true) => self.update(|state| state.confirmed_at = started),
            Ok(false) => self.replace(id, "its heartbeat expired").await,
            Err(error) if confirmed_at.elapsed() >= self.lease => {
                tracing::warn!(%error, "heartbeat failing for longer than the lease");
                self.replace(id, "its heartbeat failed for longer than the lease")
                    .await;
            }
            Err(error) => tracing::warn!(%error, session = %id, "heartbeat failed; retrying"),
        }
        metrics::SESSION_FENCED.set(i64::from(self.is_fenced()));
    }

    /// Gives up session `lost` and registers a new one: what `lost` held is someone else's.
    async fn replace(&self, lost: Uuid, why: &str) {
        metrics::SESSIONS_LOST.inc();
        tracing::error!(session = %lost, why, "worker session lost; dropping what it holds");
        let started = Instant::now();
        match sessions::register(&self.database, &self.host).await {
            Ok(id) => {
                tracing::info!(session = %id, "worker session registered");
                self.update(|state| {
                    state.id = id;
                    state.confirmed_at = started;
                });
            }
            Err(error) => {
                // Still fenced; the old claims are never sent. Try again on the next beat.
                tracing::warn!(%error, "registering a new session failed");
                self.update(|state| state.id = Uuid::nil());
            }
        }
    }

    fn update(&self, change: impl FnOnce(&mut SessionState)) {
        change(&mut self.state.lock().expect("session state poisoned"));
        self.changes.send_modify(|version| *version += 1);
    }
}

fn hostname() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|name| !name.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|name| name.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".into())
}
