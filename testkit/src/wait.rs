//! Waiting for a condition in tests without a fixed sleep.

use std::future::Future;
use std::time::Duration;

/// Longest wait for anything a test expects; only a hung test ever reaches it.
pub const PATIENCE: Duration = Duration::from_secs(15);

/// Re-checks `condition` every 10 ms until it holds; fails the test after [`PATIENCE`].
pub async fn until<F, Fut>(what: &str, condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    until_within(PATIENCE, what, condition).await;
}

/// Like [`until`], for a test whose work takes longer than most (`patience` is still only
/// ever reached by a hung test).
pub async fn until_within<F, Fut>(patience: Duration, what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let waiting = async {
        while !condition().await {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(patience, waiting)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting until {what}"));
}
