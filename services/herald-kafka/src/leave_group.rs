//! A stopping consumer's last commit and goodbye to its group, bounded in time.
//!
//! Both block inside librdkafka until the group coordinator answers: a synchronous commit waits
//! for its reply, and dropping a consumer's last reference closes it, which waits for the group to
//! be left. While the broker is away neither ever returns. They therefore run on a thread of their
//! own and the caller waits at most its timeout: a tokio blocking task would instead hold the
//! runtime's shutdown, and the process, for as long as librdkafka waits (a worker stopped together
//! with its broker once took more than 15 s to exit because of one).
//!
//! Giving up loses nothing: the partitions' next owner reads the records since the last commit
//! again, and every consumer of Herald's topics is idempotent over records it has seen.

use std::time::Duration;

/// Runs `commit_and_close` (which commits and then drops the consumer it owns) on a thread of its
/// own and waits at most `timeout` for it. Returns whether it finished in time; when it did not, the
/// thread is left behind and ends with the process.
pub async fn commit_and_leave_within(
    consumer_name: &str,
    timeout: Duration,
    commit_and_close: impl FnOnce() + Send + 'static,
) -> bool {
    let (left, leaving) = tokio::sync::oneshot::channel::<()>();
    let spawned = std::thread::Builder::new()
        .name("consumer-leave".to_owned())
        .spawn(move || {
            commit_and_close();
            let _ = left.send(());
        });
    if let Err(error) = spawned {
        tracing::warn!(%error, consumer_name, "no thread to commit and leave the group on; the group's session expires instead");
        return false;
    }
    if tokio::time::timeout(timeout, leaving).await.is_ok() {
        return true;
    }
    tracing::warn!(
        consumer_name,
        timeout_ms = timeout.as_millis() as u64,
        "the last offset commit and leaving the group did not finish (is the broker reachable?): \
         stopping without them; the records since the last commit are read again by the \
         partitions' next owner, which handles none of them twice"
    );
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_commit_that_never_returns_is_given_up_after_the_timeout() {
        let (_never_released, blocked_until) = std::sync::mpsc::channel::<()>();
        let started = std::time::Instant::now();
        let finished = commit_and_leave_within("test", Duration::from_millis(200), move || {
            let _ = blocked_until.recv();
        })
        .await;
        assert!(!finished);
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
    }

    #[tokio::test]
    async fn a_commit_that_returns_is_waited_for() {
        let (done, was_done) = std::sync::mpsc::channel::<()>();
        let finished = commit_and_leave_within("test", Duration::from_secs(5), move || {
            std::thread::sleep(Duration::from_millis(50));
            done.send(()).unwrap();
        })
        .await;
        assert!(finished);
        assert!(was_done.try_recv().is_ok());
    }
}
