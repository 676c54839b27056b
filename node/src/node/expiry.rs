//! The mempool's expiry task: transactions older than the policy allows leave the pool.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use quarry_chain::clock::unix_now;

use quarry_mempool::{Mempool, MempoolConfig};
use tracing::info;

use super::lock;

/// How often the mempool is swept for expired transactions and orphans: every minute, or
/// more often when an expiry is shorter (a local test network's, say).
pub(super) fn expiry_interval(config: &MempoolConfig) -> Duration {
    let shortest = config.expiry_secs.min(config.orphan_expiry_secs);
    Duration::from_secs((shortest / 2).clamp(1, 60))
}

/// Drops transactions and orphans past their expiry (Bitcoin Core's `-mempoolexpiry`), with
/// their descendants.
pub(super) async fn expire_mempool(mempool: Arc<Mutex<Mempool>>, every: Duration) {
    let mut ticks = tokio::time::interval(every);
    loop {
        ticks.tick().await;
        let mempool = Arc::clone(&mempool);
        let expired = tokio::task::spawn_blocking(move || lock(&mempool).expire(unix_now())).await;
        if let Ok(expired) = expired {
            if !expired.is_empty() {
                info!(
                    transactions = expired.len(),
                    "expired transactions left the mempool"
                );
            }
        }
    }
}
