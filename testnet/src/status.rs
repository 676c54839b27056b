//! The live status table of a testnet.

use std::fmt::Write;

use quarry_chain::{BlockHash, TipStatus};
use quarry_rpc::types::{BlockWithTransactions, BlockchainInfo, ChainTip, MiningInfo};
use serde_json::json;

use crate::cluster::Testnet;

/// One node's line.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct NodeStatus {
    /// The node.
    pub name: String,
    /// Best chain height, or `None` when the node does not answer.
    pub height: Option<u64>,
    /// Its tip, shortened.
    pub tip: String,
    /// Connected peers.
    pub peers: u64,
    /// Mempool transactions.
    pub mempool: u64,
    /// This node's miner, hashes per second.
    pub hash_rate: f64,
    /// Difficulty of the tip.
    pub difficulty: f64,
    /// Branch tips off the best chain it knows.
    pub forks: u64,
    /// Reorganisations it went through.
    pub reorgs: u64,
    /// The share of the hash rate it was given (0: not a miner).
    pub share_asked: f64,
    /// The share of the recent blocks whose coinbase pays it.
    pub share_measured: Option<f64>,
}

/// Blocks looked at to measure the miners' shares.
pub const SHARE_WINDOW: u64 = 100;

/// For every node, the fraction of the last [`SHARE_WINDOW`] blocks (as `reader` sees them)
/// whose coinbase pays the node's wallet.
fn measured_shares(testnet: &Testnet, reader: usize) -> anyhow::Result<Vec<Option<f64>>> {
    let tip: u64 = testnet.call(reader, "getblockcount", json!([]))?;
    let start = tip.saturating_sub(SHARE_WINDOW) + 1;
    let addresses: Vec<String> = testnet
        .state
        .nodes
        .iter()
        .map(|node| node.address(&testnet.params).to_string())
        .collect();
    let mut counts = vec![0u64; addresses.len()];
    for height in start..=tip {
        let hash: BlockHash = testnet.call(reader, "getblockhash", json!([height]))?;
        let block: BlockWithTransactions = testnet.call(reader, "getblock", json!([hash, 2]))?;
        let payee = block
            .tx
            .first()
            .and_then(|coinbase| coinbase.vout.first())
            .map(|output| output.script_pubkey.address.as_str());
        if let Some(index) = addresses
            .iter()
            .position(|address| payee == Some(address.as_str()))
        {
            counts[index] += 1;
        }
    }
    let blocks = (tip + 1 - start) as f64;
    Ok(counts
        .into_iter()
        .map(|count| (blocks > 0.0).then(|| count as f64 / blocks))
        .collect())
}

fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

/// The status of every node (a node that does not answer shows as down).
pub fn collect(testnet: &Testnet) -> Vec<NodeStatus> {
    let shares = measured_shares(testnet, 0).unwrap_or_default();
    (0..testnet.state.nodes.len())
        .map(|index| {
            let name = testnet.state.nodes[index].name.clone();
            let share_asked = testnet.state.nodes[index].share;
            let share_measured = shares.get(index).copied().flatten();
            let query = || -> anyhow::Result<NodeStatus> {
                let chain: BlockchainInfo = testnet.call(index, "getblockchaininfo", json!([]))?;
                let mining: MiningInfo = testnet.call(index, "getmininginfo", json!([]))?;
                let tips: Vec<ChainTip> = testnet.call(index, "getchaintips", json!([]))?;
                let peers: u64 = testnet.call(index, "getconnectioncount", json!([]))?;
                let metrics = ureq::get(&format!(
                    "http://{}/metrics",
                    testnet.state.nodes[index].metrics
                ))
                .call()
                .ok()
                .and_then(|mut response| response.body_mut().read_to_string().ok())
                .unwrap_or_default();
                Ok(NodeStatus {
                    name: name.clone(),
                    height: Some(u64::from(chain.blocks)),
                    tip: chain.bestblockhash.to_string().chars().take(12).collect(),
                    peers,
                    mempool: mining.pooledtx as u64,
                    hash_rate: mining.hashespersec,
                    difficulty: chain.difficulty,
                    forks: tips
                        .iter()
                        .filter(|tip| tip.status != TipStatus::Active)
                        .count() as u64,
                    reorgs: metric(&metrics, "quarry_reorgs_total").unwrap_or(0.0) as u64,
                    share_asked,
                    share_measured,
                })
            };
            query().unwrap_or(NodeStatus {
                name,
                height: None,
                tip: "down".into(),
                peers: 0,
                mempool: 0,
                hash_rate: 0.0,
                difficulty: 0.0,
                forks: 0,
                reorgs: 0,
                share_asked,
                share_measured,
            })
        })
        .collect()
}

/// What the columns of [`render`] mean, in lines of at most 80 characters.
pub const LEGEND: &str = "\
tip: start of the best block's hash  pool: transactions in the mempool
hash/s: this node's miner  diff: difficulty of the tip  forks: branch tips off
the best chain  reorgs: reorganisations so far  share: hash-rate share asked /
share of the last 100 blocks found";

/// A hash rate in at most 7 characters: `950`, `12.5k`, `3.2M`.
fn rate(hashes: f64) -> String {
    match hashes {
        h if h < 1e3 => format!("{h:.0}"),
        h if h < 1e6 => format!("{:.1}k", h / 1e3),
        h if h < 1e9 => format!("{:.1}M", h / 1e6),
        h => format!("{:.1}G", h / 1e9),
    }
}

/// The status table: one line per node, fitting 80 columns for names up to 13 characters.
pub fn render(rows: &[NodeStatus]) -> String {
    let name_width = rows
        .iter()
        .map(|row| row.name.chars().count())
        .chain([4])
        .max()
        .unwrap_or(4);
    let mut table = String::new();
    let _ = writeln!(
        table,
        "{:<name_width$} {:>7} {:<8} {:>5} {:>4} {:>7} {:>7} {:>5} {:>6} {:>9}",
        "node", "height", "tip", "peers", "pool", "hash/s", "diff", "forks", "reorgs", "share"
    );
    for row in rows {
        let height = row
            .height
            .map_or_else(|| "-".into(), |height| height.to_string());
        let seen = row
            .share_measured
            .map_or_else(|| "-".into(), |share| format!("{share:.2}"));
        let share = format!("{:.2}/{seen}", row.share_asked);
        let tip: String = row.tip.chars().take(8).collect();
        let _ = writeln!(
            table,
            "{:<name_width$} {:>7} {:<8} {:>5} {:>4} {:>7} {:>7.3} {:>5} {:>6} {:>9}",
            row.name,
            height,
            tip,
            row.peers,
            row.mempool,
            rate(row.hash_rate),
            row.difficulty,
            row.forks,
            row.reorgs,
            share
        );
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_are_read_by_exact_name() {
        let text = "quarry_reorgs_total 3\nquarry_reorgs_total_x 9\n# HELP quarry_height x\nquarry_height 12\n";
        assert_eq!(metric(text, "quarry_reorgs_total"), Some(3.0));
        assert_eq!(metric(text, "quarry_height"), Some(12.0));
        assert_eq!(metric(text, "quarry_missing"), None);
    }

    #[test]
    fn the_table_lines_up() {
        let row = NodeStatus {
            name: "n0".into(),
            height: Some(42),
            tip: "0123456789ab".into(),
            peers: 2,
            mempool: 1,
            hash_rate: 10_000.0,
            difficulty: 1.5,
            forks: 1,
            reorgs: 0,
            share_asked: 0.5,
            share_measured: Some(0.48),
        };
        let down = NodeStatus {
            height: None,
            tip: "down".into(),
            ..row.clone()
        };
        let table = render(&[row, down]);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[1].contains("42") && lines[1].contains("01234567 "));
        assert!(lines[1].contains(" 10.0k "), "{table}");
        assert!(lines[2].contains("down"));
        assert!(lines[1].ends_with("0.50/0.48"), "{table}");
        assert!(
            lines
                .iter()
                .all(|line| line.chars().count() == lines[0].chars().count()),
            "every line as wide as the header:\n{table}"
        );
        assert!(lines[0].chars().count() <= 80, "{table}");
        assert!(LEGEND.lines().all(|line| line.chars().count() <= 80));
        assert_eq!(rate(950.0), "950");
        assert_eq!(rate(3_250_000.0), "3.2M");
    }
}
