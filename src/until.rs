//! Sleeping until an optional deadline: `None` never wakes, for `select!` arms that are off.

use tokio::time::Instant;

pub async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
