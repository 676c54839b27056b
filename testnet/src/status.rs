//! The live status table of a testnet.

use std::fmt::Write;

use quarry_chain::{Address, Amount, BlockHash, OutputKey, TipStatus};
use quarry_rpc::types::{AddressUtxo, BlockWithTransactions, BlockchainInfo, ChainTip, MiningInfo};
use serde_json::json;

use crate::cluster::{wallet_seed, Testnet};

/// One node's line.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct NodeStatus {
    /// The node.
    pub name: String,
    /// Best chain height, or `None` when the node does not answer.
    pub height: Option<u64>,
    /// Its tip's hash ("down" when it does not answer).
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
    /// The share of the recent blocks (of every branch, funding excluded) whose coinbase pays
    /// it.
    pub share_measured: Option<f64>,
    /// The coins its wallet has confirmed on its best chain, in sats.
    pub balance_sats: Option<u64>,
}

/// Blocks looked at per branch to measure the miners' shares.
pub const SHARE_WINDOW: u64 = 100;

/// Addresses of each node's wallet counted in its balance: the wallet's watched pool.
const WALLET_ADDRESSES: u32 = 100;

/// For every node, the fraction of the blocks found in the background (not the funding ones)
/// whose coinbase pays the node's wallet: the last [`SHARE_WINDOW`] blocks of every branch a
/// node is on, each block counted once, so the shares stay right while a partition splits
/// the miners.
fn measured_shares(testnet: &Testnet, branches: &[Branch]) -> anyhow::Result<Vec<Option<f64>>> {
    let addresses: Vec<String> = testnet
        .state
        .nodes
        .iter()
        .map(|node| node.address(&testnet.params).to_string())
        .collect();
    let mut counts = vec![0u64; addresses.len()];
    let mut seen = std::collections::HashSet::new();
    for branch in branches {
        let reader = branch.nodes[0];
        let start = branch
            .height
            .saturating_sub(SHARE_WINDOW - 1)
            .max(testnet.state.mined_from.max(1));
        for height in start..=branch.height {
            let hash: BlockHash = testnet.call(reader, "getblockhash", json!([height]))?;
            if !seen.insert(hash) {
                continue;
            }
            let block: BlockWithTransactions =
                testnet.call(reader, "getblock", json!([hash, 2]))?;
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
    }
    let blocks = seen.len() as f64;
    Ok(counts
        .into_iter()
        .map(|count| (blocks > 0.0).then(|| count as f64 / blocks))
        .collect())
}

/// A best chain some nodes are on.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Branch {
    /// Its tip.
    pub tip: BlockHash,
    /// Its height.
    pub height: u64,
    /// The nodes on it, by index.
    pub nodes: Vec<usize>,
}

/// The best chains of the nodes that answer, the highest first.
fn branches(rows: &[NodeStatus], tips: &[Option<BlockHash>]) -> Vec<Branch> {
    let mut branches: Vec<Branch> = Vec::new();
    for (index, tip) in tips.iter().enumerate() {
        let (Some(tip), Some(height)) = (tip, rows[index].height) else {
            continue;
        };
        match branches.iter_mut().find(|branch| branch.tip == *tip) {
            Some(branch) => branch.nodes.push(index),
            None => branches.push(Branch {
                tip: *tip,
                height,
                nodes: vec![index],
            }),
        }
    }
    branches.sort_by(|a, b| b.height.cmp(&a.height).then(a.nodes.cmp(&b.nodes)));
    branches
}

/// The coins of node `index`'s wallet confirmed on its node's best chain.
fn balance(testnet: &Testnet, index: usize) -> anyhow::Result<Amount> {
    let seed = wallet_seed(&testnet.state.nodes[index].name);
    let addresses: Vec<String> = (0..WALLET_ADDRESSES)
        .map(|i| {
            Address::new(OutputKey::from_keypair(&seed.keypair(i)), &testnet.params).to_string()
        })
        .collect();
    let utxos: Vec<AddressUtxo> = testnet.call(
        index,
        "getaddressutxos",
        json!([{ "addresses": addresses }]),
    )?;
    Amount::checked_sum(utxos.iter().map(|utxo| utxo.amount))
        .ok_or_else(|| anyhow::anyhow!("the wallet's coins add up beyond the money range"))
}

fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

/// The status of every node and the branches they are on.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct TestnetStatus {
    /// One line per node.
    pub nodes: Vec<NodeStatus>,
    /// The best chains the nodes are on, the highest first: more than one while a partition
    /// (or a block still travelling) splits them.
    pub branches: Vec<Branch>,
}

/// The status of every node (a node that does not answer shows as down), the branches they
/// are on, and each miner's share of the blocks found on all of them.
pub fn collect(testnet: &Testnet) -> TestnetStatus {
    let mut tips = Vec::new();
    let mut rows: Vec<NodeStatus> = (0..testnet.state.nodes.len())
        .map(|index| {
            let name = testnet.state.nodes[index].name.clone();
            let share_asked = testnet.state.nodes[index].share;
            let query = || -> anyhow::Result<(NodeStatus, BlockHash)> {
                let chain: BlockchainInfo = testnet.call(index, "getblockchaininfo", json!([]))?;
                let mining: MiningInfo = testnet.call(index, "getmininginfo", json!([]))?;
                let chain_tips: Vec<ChainTip> = testnet.call(index, "getchaintips", json!([]))?;
                let peers: u64 = testnet.call(index, "getconnectioncount", json!([]))?;
                let metrics = ureq::get(&format!(
                    "http://{}/metrics",
                    testnet.state.nodes[index].metrics
                ))
                .call()
                .ok()
                .and_then(|mut response| response.body_mut().read_to_string().ok())
                .unwrap_or_default();
                let row = NodeStatus {
                    name: name.clone(),
                    height: Some(u64::from(chain.blocks)),
                    tip: chain.bestblockhash.to_string(),
                    peers,
                    mempool: mining.pooledtx as u64,
                    hash_rate: mining.hashespersec,
                    difficulty: chain.difficulty,
                    forks: chain_tips
                        .iter()
                        .filter(|tip| tip.status != TipStatus::Active)
                        .count() as u64,
                    reorgs: metric(&metrics, "quarry_reorgs_total").unwrap_or(0.0) as u64,
                    share_asked,
                    share_measured: None,
                    balance_sats: balance(testnet, index).ok().map(Amount::to_sat),
                };
                Ok((row, chain.bestblockhash))
            };
            match query() {
                Ok((row, tip)) => {
                    tips.push(Some(tip));
                    row
                }
                Err(_) => {
                    tips.push(None);
                    NodeStatus {
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
                        share_measured: None,
                        balance_sats: None,
                    }
                }
            }
        })
        .collect();
    let branches = branches(&rows, &tips);
    let shares = measured_shares(testnet, &branches).unwrap_or_default();
    for (row, share) in rows.iter_mut().zip(shares) {
        row.share_measured = share;
    }
    TestnetStatus {
        nodes: rows,
        branches,
    }
}

/// What the columns of [`render`] mean, in lines of at most 80 characters.
pub const LEGEND: &str = "\
tip: end of the best block's hash  pool: transactions in the mempool  hash/s:
this node's miner  diff: difficulty of the tip  forks: branch tips off its best
chain  reorg: reorganisations so far  share: hash-rate share asked / share of
the blocks found lately on every branch  coins: its wallet's confirmed coins";

/// A number in at most 6 characters: `0`, `0.123`, `2.670`, `950`, `12.5k`, `3.2M`.
fn compact(value: f64) -> String {
    match value {
        0.0 => "0".to_owned(),
        v if v < 10.0 => format!("{v:.3}"),
        v if v < 100.0 => format!("{v:.2}"),
        v if v < 1e3 => format!("{v:.0}"),
        v if v < 1e6 => format!("{:.1}k", v / 1e3),
        v if v < 1e9 => format!("{:.1}M", v / 1e6),
        v => format!("{:.1}G", v / 1e9),
    }
}

/// The last `n` characters of a hash: its start is zeros on a proof-of-work chain.
fn tail(hash: &str, n: usize) -> String {
    hash.get(hash.len().saturating_sub(n)..)
        .unwrap_or(hash)
        .to_owned()
}

/// The status table, one line per node (fitting 80 columns for names up to 8 characters),
/// then the branches the nodes are on.
pub fn render(status: &TestnetStatus) -> String {
    let rows = &status.nodes;
    let name_width = rows
        .iter()
        .map(|row| row.name.chars().count())
        .chain([4])
        .max()
        .unwrap_or(4);
    let mut table = String::new();
    let _ = writeln!(
        table,
        "{:<name_width$} {:>6} {:<8} {:>4} {:>4} {:>6} {:>6} {:>5} {:>5} {:>9} {:>9}",
        "node",
        "height",
        "tip",
        "peer",
        "pool",
        "hash/s",
        "diff",
        "forks",
        "reorg",
        "share",
        "coins"
    );
    for row in rows {
        let height = row
            .height
            .map_or_else(|| "-".into(), |height| height.to_string());
        let seen = row
            .share_measured
            .map_or_else(|| "-".into(), |share| format!("{share:.2}"));
        let share = format!("{:.2}/{seen}", row.share_asked);
        let coins = row.balance_sats.map_or_else(
            || "-".into(),
            |sats| format!("{:.2}", sats as f64 / Amount::SATS_PER_COIN as f64),
        );
        let _ = writeln!(
            table,
            "{:<name_width$} {:>6} {:<8} {:>4} {:>4} {:>6} {:>6} {:>5} {:>5} {:>9} {:>9}",
            row.name,
            height,
            tail(&row.tip, 8),
            row.peers,
            row.mempool,
            compact(row.hash_rate),
            compact(row.difficulty),
            row.forks,
            row.reorgs,
            share,
            coins
        );
    }
    let names = |branch: &Branch| {
        branch
            .nodes
            .iter()
            .map(|&index| rows[index].name.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    };
    match status.branches.as_slice() {
        [] => {}
        [one] => {
            let _ = writeln!(
                table,
                "one chain: every node that answers is at height {} (tip {})",
                one.height,
                tail(&one.tip.to_string(), 8)
            );
        }
        several => {
            let _ = writeln!(
                table,
                "{} branches (split by a partition, or a block still on its way):",
                several.len()
            );
            for branch in several {
                let _ = writeln!(
                    table,
                    "  height {} (tip {}): {}",
                    branch.height,
                    tail(&branch.tip.to_string(), 8),
                    names(branch)
                );
            }
        }
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

    fn row(name: &str, height: u64) -> NodeStatus {
        NodeStatus {
            name: name.into(),
            height: Some(height),
            tip: format!("0000{:060x}", height),
            peers: 2,
            mempool: 1,
            hash_rate: 10_000.0,
            difficulty: 1.5,
            forks: 1,
            reorgs: 0,
            share_asked: 0.5,
            share_measured: Some(0.48),
            balance_sats: Some(1_001_000_000),
        }
    }

    #[test]
    fn the_table_lines_up_and_names_the_branches() {
        let down = NodeStatus {
            height: None,
            tip: "down".into(),
            balance_sats: None,
            ..row("merchant", 0)
        };
        let rows = vec![row("n0", 42), row("n1", 40), row("n2", 42), down];
        let tips: Vec<Option<BlockHash>> = rows.iter().map(|row| row.tip.parse().ok()).collect();
        let branches = branches(&rows, &tips);
        assert_eq!(
            branches
                .iter()
                .map(|b| (b.height, b.nodes.clone()))
                .collect::<Vec<_>>(),
            [(42, vec![0, 2]), (40, vec![1])]
        );
        let status = TestnetStatus {
            nodes: rows,
            branches,
        };
        let table = render(&status);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 8, "{table}");
        assert!(
            lines[1].contains(" 42 0000002a "),
            "the hash's end: {table}"
        );
        assert!(lines[1].contains(" 10.0k "), "{table}");
        assert!(lines[1].ends_with("0.50/0.48     10.01"), "{table}");
        assert!(
            lines[4].contains("down") && lines[4].ends_with('-'),
            "{table}"
        );
        assert!(
            lines[..5]
                .iter()
                .all(|line| line.chars().count() == lines[0].chars().count()),
            "every line as wide as the header:\n{table}"
        );
        assert!(lines[0].chars().count() <= 80, "{table}");
        assert_eq!(
            lines[5],
            "2 branches (split by a partition, or a block still on its way):"
        );
        assert_eq!(lines[6], "  height 42 (tip 0000002a): n0 n2");
        assert_eq!(lines[7], "  height 40 (tip 00000028): n1");
        assert!(LEGEND.lines().all(|line| line.chars().count() <= 80));
        assert_eq!(compact(950.0), "950");
        assert_eq!(compact(3_250_000.0), "3.2M");
        assert_eq!(compact(2.6701), "2.670");
        assert_eq!(compact(0.0), "0");
    }
}
