//! The metrics' gauges, set from the node's state just before each scrape.

use std::sync::Arc;

use super::error::{ErrorCode, RpcError};
use super::methods::{best_header_height, network_hash_rate};
use super::render;
use crate::node::Node;

/// Sets the metrics' gauges from the node's current state, before a scrape.
pub async fn refresh_metrics(node: &Arc<Node>) -> Result<(), RpcError> {
    let peers = node.client().peers().await?.len();
    let reading = Arc::clone(node);
    tokio::task::spawn_blocking(move || {
        let node = &reading;
        let metrics = node.metrics();
        let tip = node.tip();
        let summary = node.reader().summary();
        metrics.height.set(i64::from(tip.height));
        metrics.headers.set(i64::from(best_header_height(node)));
        metrics.tips.clear();
        for (status, count) in &summary.tips {
            metrics
                .tips
                .get_or_create(&crate::metrics::TipLabels {
                    status: status.name().into(),
                })
                .set(*count as i64);
        }
        metrics.stale_blocks.set(summary.stale_tips() as i64);
        metrics.orphan_blocks.set(summary.orphans as i64);
        metrics
            .store_failed
            .set(i64::from(node.reader().store_failure().is_some()));
        let (count, bytes) = node.with_mempool(|pool| (pool.len(), pool.bytes()));
        metrics.mempool_transactions.set(count as i64);
        metrics.mempool_bytes.set(bytes as i64);
        metrics.peers.set(peers as i64);
        metrics
            .local_hash_rate
            .set(node.miner().hash_rate().current);
        metrics
            .network_hash_rate
            .set(network_hash_rate(node, 120, -1)?);
        metrics
            .difficulty
            .set(render::difficulty(node.params(), tip.next.bits));
        Ok(())
    })
    .await
    .map_err(|join| RpcError::new(ErrorCode::InternalError, join.to_string()))?
}
