//! No task stops silently: a panic is caught, counted and logged, and the task is started again.

use std::any::Any;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::time::Duration;

use futures::FutureExt;
use tokio_util::sync::CancellationToken;

use crate::metrics::{PANICS_CAUGHT, TASK_RESTARTS};

const FIRST_PAUSE: Duration = Duration::from_millis(100);
const LONGEST_PAUSE: Duration = Duration::from_secs(30);

/// Runs the future `start` makes until one returns; each panic is counted under `task` and followed
/// by a fresh start after a pause that doubles up to 30 s.
pub async fn supervise<Start, Task>(task: &'static str, mut start: Start)
where
    Start: FnMut() -> Task,
    Task: Future<Output = ()>,
{
    let mut pause = FIRST_PAUSE;
    loop {
        match AssertUnwindSafe(start()).catch_unwind().await {
            Ok(()) => return,
            Err(panic) => {
                TASK_RESTARTS.with_label_values(&[task]).inc();
                tracing::error!(task, panic = %panic_message(&panic), ?pause, "task panicked; restarting it");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(LONGEST_PAUSE);
            }
        }
    }
}

/// Runs `pass` every `interval` until `shutdown` is cancelled: the first at once, a late one
/// delaying the next rather than bunching them, one in progress abandoned at shutdown.
pub async fn every<Pass, PassFuture>(
    interval: Duration,
    shutdown: &CancellationToken,
    mut pass: Pass,
) where
    Pass: FnMut() -> PassFuture,
    PassFuture: Future<Output = ()>,
{
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = shutdown.cancelled() => return,
        }
        tokio::select! {
            _ = pass() => {}
            _ = shutdown.cancelled() => return,
        }
    }
}

/// Runs one unit of work, turning a panic into an error that names `site` (counted).
pub async fn catch_panic<T>(
    site: &'static str,
    work: impl Future<Output = T>,
) -> Result<T, String> {
    AssertUnwindSafe(work)
        .catch_unwind()
        .await
        .map_err(|panic| {
            PANICS_CAUGHT.with_label_values(&[site]).inc();
            let message = panic_message(&panic);
            tracing::error!(site, panic = %message, "panic caught");
            message
        })
}

pub fn panic_message(panic: &Box<dyn Any + Send>) -> String {
    if let Some(text) = panic.downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = panic.downcast_ref::<String>() {
        text.clone()
    } else {
        "a panic without a message".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_panicking_task_is_restarted_and_counted_until_it_returns() {
        let starts = Arc::new(AtomicUsize::new(0));
        let before = TASK_RESTARTS.with_label_values(&["test-task"]).get();
        supervise("test-task", || {
            let starts = starts.clone();
            async move {
                if starts.fetch_add(1, Ordering::SeqCst) < 3 {
                    panic!("boom");
                }
            }
        })
        .await;
        assert_eq!(starts.load(Ordering::SeqCst), 4);
        assert_eq!(
            TASK_RESTARTS.with_label_values(&["test-task"]).get() - before,
            3
        );
    }

    #[tokio::test]
    async fn a_caught_panic_becomes_an_error_with_its_message() {
        let result: Result<(), String> =
            catch_panic("test-site", async { panic!("bad record {}", 7) }).await;
        assert_eq!(result.unwrap_err(), "bad record 7");
        assert_eq!(catch_panic("test-site", async { 5 }).await, Ok(5));
    }
}
