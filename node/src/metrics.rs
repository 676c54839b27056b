//! The node's Prometheus metrics. Counters and histograms are fed as things happen (reorgs,
//! connected blocks); gauges are set from the node's state just before each scrape.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// Label of the branch-tip gauge: Bitcoin Core's `getchaintips` status.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TipLabels {
    /// `active`, `valid-fork`, `valid-headers`, `headers-only` or `invalid`.
    pub status: String,
}

type FloatGauge = Gauge<f64, AtomicU64>;

/// Every metric the node exports, under the `quarry_` prefix.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// Height of the best chain.
    pub height: Gauge,
    /// Height of the best known header.
    pub headers: Gauge,
    /// Branch tips by status.
    pub tips: Family<TipLabels, Gauge>,
    /// Blocks connected to the best chain.
    pub blocks_connected: Counter,
    /// Reorganisations (the best chain lost at least one block).
    pub reorgs: Counter,
    /// Blocks disconnected by each reorganisation.
    pub reorg_depth: Histogram,
    /// Blocks disconnected by the last reorganisation.
    pub last_reorg_depth: Gauge,
    /// Blocks held waiting for their parent.
    pub orphan_blocks: Gauge,
    /// Valid blocks off the best chain (tips of valid forks).
    pub stale_blocks: Gauge,
    /// 1 once the chain store failed (a full disk): the node is shutting down.
    pub store_failed: Gauge,
    /// Transactions in the mempool.
    pub mempool_transactions: Gauge,
    /// Bytes of transactions in the mempool.
    pub mempool_bytes: Gauge,
    /// Connected peers.
    pub peers: Gauge,
    /// This node's miner, hashes per second.
    pub local_hash_rate: FloatGauge,
    /// The network's hash rate estimated from the last 120 blocks.
    pub network_hash_rate: FloatGauge,
    /// Difficulty of the next block.
    pub difficulty: FloatGauge,
    /// Seconds from a block's timestamp to its connection here.
    pub block_delay: Histogram,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A fresh set of metrics, registered.
    pub fn new() -> Self {
        let mut metrics = Self {
            height: Gauge::default(),
            headers: Gauge::default(),
            tips: Family::default(),
            blocks_connected: Counter::default(),
            reorgs: Counter::default(),
            reorg_depth: Histogram::new([1.0, 2.0, 3.0, 4.0, 6.0, 10.0, 20.0, 50.0, 100.0]),
            last_reorg_depth: Gauge::default(),
            orphan_blocks: Gauge::default(),
            stale_blocks: Gauge::default(),
            store_failed: Gauge::default(),
            mempool_transactions: Gauge::default(),
            mempool_bytes: Gauge::default(),
            peers: Gauge::default(),
            local_hash_rate: FloatGauge::default(),
            network_hash_rate: FloatGauge::default(),
            difficulty: FloatGauge::default(),
            // 10 ms to about 11 minutes.
            block_delay: Histogram::new(exponential_buckets(0.01, 2.0, 17)),
            registry: Registry::with_prefix("quarry"),
        };
        let registry = &mut metrics.registry;
        registry.register("height", "Height of the best chain", metrics.height.clone());
        registry.register(
            "headers",
            "Height of the best known header",
            metrics.headers.clone(),
        );
        registry.register("chain_tips", "Branch tips by status", metrics.tips.clone());
        registry.register(
            "blocks_connected",
            "Blocks connected to the best chain",
            metrics.blocks_connected.clone(),
        );
        registry.register(
            "reorgs",
            "Reorganisations: the best chain lost at least one block",
            metrics.reorgs.clone(),
        );
        registry.register(
            "reorg_depth",
            "Blocks disconnected by each reorganisation",
            metrics.reorg_depth.clone(),
        );
        registry.register(
            "last_reorg_depth",
            "Blocks disconnected by the last reorganisation",
            metrics.last_reorg_depth.clone(),
        );
        registry.register(
            "orphan_blocks",
            "Blocks held waiting for their parent",
            metrics.orphan_blocks.clone(),
        );
        registry.register(
            "stale_blocks",
            "Tips of valid branches off the best chain",
            metrics.stale_blocks.clone(),
        );
        registry.register(
            "store_failed",
            "1 once the chain store failed (a full disk); the node then shuts down",
            metrics.store_failed.clone(),
        );
        registry.register(
            "mempool_transactions",
            "Transactions in the mempool",
            metrics.mempool_transactions.clone(),
        );
        registry.register(
            "mempool_bytes",
            "Bytes of transactions in the mempool",
            metrics.mempool_bytes.clone(),
        );
        registry.register("peers", "Connected peers", metrics.peers.clone());
        registry.register(
            "local_hash_rate",
            "Hashes per second of this node's miner",
            metrics.local_hash_rate.clone(),
        );
        registry.register(
            "network_hash_rate",
            "Network hashes per second estimated from the last 120 blocks",
            metrics.network_hash_rate.clone(),
        );
        registry.register(
            "difficulty",
            "Difficulty of the next block (1 at the network's easiest target)",
            metrics.difficulty.clone(),
        );
        registry.register(
            "block_delay_seconds",
            "Seconds from a block's timestamp to its connection here: propagation plus the \
             time its miner spent on the template",
            metrics.block_delay.clone(),
        );
        metrics
    }

    /// The metrics in the OpenMetrics text format (what Prometheus asks for first).
    pub fn encode(&self) -> String {
        let mut text = String::new();
        encode(&mut text, &self.registry).expect("writing to a String cannot fail");
        text
    }

    /// The metrics in Prometheus' classic text format (`text/plain; version=0.0.4`), for
    /// scrapers and tools that do not speak OpenMetrics: no `# EOF` or `# UNIT` lines, and a
    /// counter's `HELP` and `TYPE` name its `_total` sample.
    pub fn encode_classic(&self) -> String {
        let open = self.encode();
        let counters: std::collections::HashSet<&str> = open
            .lines()
            .filter_map(|line| line.strip_prefix("# TYPE "))
            .filter_map(|rest| rest.strip_suffix(" counter"))
            .collect();
        let mut text = String::with_capacity(open.len());
        for line in open.lines() {
            if line == "# EOF" || line.starts_with("# UNIT ") {
                continue;
            }
            let renamed = ["# HELP ", "# TYPE "].iter().find_map(|prefix| {
                let rest = line.strip_prefix(prefix)?;
                let (name, tail) = rest.split_once(' ')?;
                counters
                    .contains(name)
                    .then(|| format!("{prefix}{name}_total {tail}"))
            });
            text.push_str(renamed.as_deref().unwrap_or(line));
            text.push('\n');
        }
        text
    }
}

/// Follows chain events and counts reorganisations: a run of disconnections ended by a
/// connection is one reorganisation of that depth.
#[derive(Debug, Default)]
pub struct ReorgTracker {
    disconnected: u64,
}

impl ReorgTracker {
    /// Records a disconnection.
    pub fn disconnected(&mut self) {
        self.disconnected += 1;
    }

    /// Records a connection; returns the depth of the reorganisation it completes, if any.
    pub fn connected(&mut self) -> Option<u64> {
        (self.disconnected > 0).then(|| std::mem::take(&mut self.disconnected))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_of_disconnections_is_one_reorganisation() {
        let mut tracker = ReorgTracker::default();
        assert_eq!(tracker.connected(), None);
        tracker.disconnected();
        tracker.disconnected();
        assert_eq!(tracker.connected(), Some(2));
        assert_eq!(tracker.connected(), None);
    }

    #[test]
    fn the_exposition_names_every_metric() {
        let metrics = Metrics::new();
        metrics.height.set(42);
        metrics.reorg_depth.observe(3.0);
        metrics
            .tips
            .get_or_create(&TipLabels {
                status: "active".into(),
            })
            .set(1);
        let text = metrics.encode();
        for line in [
            "quarry_height 42",
            "quarry_chain_tips{status=\"active\"} 1",
            "quarry_reorg_depth_count 1",
            "# TYPE quarry_block_delay_seconds histogram",
            "# TYPE quarry_mempool_bytes gauge",
            "# TYPE quarry_reorgs counter",
        ] {
            assert!(text.contains(line), "{line} missing from:\n{text}");
        }
    }

    #[test]
    fn the_classic_format_names_counter_samples_and_has_no_eof() {
        let metrics = Metrics::new();
        metrics.reorgs.inc();
        metrics.height.set(7);
        let open = metrics.encode();
        assert!(open.ends_with("# EOF\n"), "{open}");
        let classic = metrics.encode_classic();
        for line in [
            "# TYPE quarry_reorgs_total counter",
            "quarry_reorgs_total 1",
            "# TYPE quarry_height gauge",
            "quarry_height 7",
        ] {
            assert!(
                classic.lines().any(|l| l == line),
                "{line} missing from:\n{classic}"
            );
        }
        assert!(!classic.contains("# EOF"));
        assert!(!classic.contains("# TYPE quarry_reorgs counter"));
        // Everything but the renamed comments and the end marker is the same.
        let samples = |text: &str| -> Vec<String> {
            text.lines()
                .filter(|l| !l.starts_with('#'))
                .map(str::to_owned)
                .collect()
        };
        assert_eq!(samples(&open), samples(&classic));
    }
}
