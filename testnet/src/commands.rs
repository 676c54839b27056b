//! The commands that start a local testnet and act on a running one.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use quarry_chain::{Address, Amount, BlockHash, ChainParams, FeeRate, PowMode};
use quarry_rpc::types::IndexInfo;
use serde_json::json;

use crate::cluster::{self, wallet_seed, Link, NodeSpec, Testnet};
use crate::params::{genesis_time_for, LocalNetwork, LOCAL_MATURITY};
use crate::status;
use quarry_rpc::launch::Lifetime;

/// How to start a testnet.
#[derive(Clone, Debug)]
pub struct UpOptions {
    /// Where its files go.
    pub dir: PathBuf,
    /// The nodes.
    pub nodes: Vec<NodeSpec>,
    /// How they are connected.
    pub links: Vec<Link>,
    /// Total hash rate of the miners.
    pub hash_rate: u64,
    /// Target seconds between blocks.
    pub spacing: u32,
    /// Where the nodes run: processes of a quarryd, or Docker containers.
    pub engine: cluster::NodeEngine,
    /// The scenario's named partitions.
    pub partitions: Vec<cluster::NamedPartition>,
    /// Continue the testnet already in `dir` (its network, chains and wallets) instead of
    /// replacing it with a fresh one.
    pub resume: bool,
    /// Leave the nodes running when this process ends (`down` stops them).
    pub detach: bool,
    /// Real hashing, or simulated proof of work (hash rates are virtual, no CPU is spent).
    pub pow: PowMode,
}

impl UpOptions {
    /// `nodes` nodes of which the first `miners` share the hash rate equally.
    pub fn equal_miners(nodes: usize, miners: usize) -> Vec<NodeSpec> {
        (0..nodes)
            .map(|index| NodeSpec {
                name: format!("n{index}"),
                share: if index < miners {
                    1.0 / miners as f64
                } else {
                    0.0
                },
                config: None,
            })
            .collect()
    }
}

/// Starts the nodes, connects them, funds every wallet from the first node's coinbases, and
/// starts the miners. Returns the running testnet.
pub fn up(options: &UpOptions) -> Result<Testnet> {
    forget_stopped_testnet(&options.dir)?;
    let params = if options.resume {
        let file = options.dir.join(cluster::PARAMS_FILE);
        if !file.exists() {
            bail!(
                "--resume: there is no earlier testnet in {} (start one without --resume)",
                options.dir.display()
            );
        }
        println!("resuming the testnet in {}", options.dir.display());
        ChainParams::from_toml_file(&file)?
    } else {
        remove_previous_testnet(&options.dir)?;
        {
            // fund_wallets mines the coinbases to mature and one block of payments at once.
            let funding = LOCAL_MATURITY as usize + options.nodes.len() + 1;
            let genesis_time = genesis_time_for(funding, options.spacing);
            LocalNetwork {
                pow: options.pow,
                ..LocalNetwork::new(options.hash_rate, options.spacing)
            }
            .params(genesis_time)?
        }
    };
    println!(
        "starting {} nodes with {} links in {}",
        options.nodes.len(),
        options.links.len(),
        options.dir.display()
    );
    let mut testnet = Testnet::start(
        &options.dir,
        &params,
        &options.nodes,
        options.hash_rate,
        options.links.clone(),
        &options.engine,
        if options.detach {
            Lifetime::Detached
        } else {
            Lifetime::WithThisProcess
        },
    )?;
    if !options.resume {
        fund_wallets(&testnet)?;
    }
    // Shares are measured on the blocks the miners find from here on.
    let height: u64 = testnet.call(0, "getblockcount", json!([]))?;
    testnet.state.mined_from = height + 1;
    testnet.state.partitions = options.partitions.clone();
    testnet.save()?;
    for (index, node) in testnet.state.nodes.iter().enumerate() {
        if node.hash_rate > 0 {
            testnet.run(index, "setgenerate", json!([true, 1]))?;
        }
    }
    Ok(testnet)
}

/// Refuses to start over a testnet whose nodes still answer; forgets (with a note) the state
/// file of one that ended without `down`, whose nodes are all gone.
fn forget_stopped_testnet(dir: &Path) -> Result<()> {
    if !dir.join(cluster::STATE_FILE).exists() {
        return Ok(());
    }
    let running: Vec<String> = match Testnet::load(dir) {
        Ok(testnet) => (0..testnet.state.nodes.len())
            .filter(|index| testnet.run(*index, "uptime", json!([])).is_ok())
            .map(|index| testnet.state.nodes[index].name.clone())
            .collect(),
        Err(_) => Vec::new(),
    };
    if !running.is_empty() {
        bail!(
            "a testnet is already running in {} ({} answer): stop it with `quarry-testnet down --dir {}`",
            dir.display(),
            running.join(", "),
            dir.display()
        );
    }
    println!(
        "note: the testnet recorded in {} ended without `down` and none of its nodes runs; starting anew",
        dir.join(cluster::STATE_FILE).display()
    );
    std::fs::remove_file(dir.join(cluster::STATE_FILE))?;
    Ok(())
}

/// Removes the nodes (folders with a node log and a wallet) and the parameters of an earlier
/// testnet in `dir`, saying so: a new testnet has a new genesis block, which an old node's
/// chain store would refuse.
fn remove_previous_testnet(dir: &Path) -> Result<()> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    let mut removed = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        if path.join("quarryd.log").is_file() && path.join("wallet.json").is_file() {
            std::fs::remove_dir_all(&path)
                .with_context(|| format!("cannot remove the old node {}", path.display()))?;
            removed.push(entry.file_name().to_string_lossy().into_owned());
        }
    }
    let params = dir.join(cluster::PARAMS_FILE);
    if params.exists() {
        std::fs::remove_file(&params)?;
    }
    if !removed.is_empty() {
        removed.sort();
        println!(
            "replacing the earlier testnet in {} (its nodes {} are removed; --resume continues it instead)",
            dir.display(),
            removed.join(", ")
        );
    }
    Ok(())
}

/// What `up` pays every wallet but the first: 10 coins to send and 0.01 for the fees of
/// sending them.
pub const FUNDING: Amount =
    Amount::from_sat(10 * Amount::SATS_PER_COIN + Amount::SATS_PER_COIN / 100);

/// Mines the first node's coinbases until mature and pays [`FUNDING`] to every other wallet.
fn fund_wallets(testnet: &Testnet) -> Result<()> {
    let count = testnet.state.nodes.len();
    let first = &testnet.state.nodes[0];
    let blocks = testnet.params.coinbase_maturity() as usize + count;
    testnet.generate(0, blocks, &first.address(&testnet.params).to_string())?;
    wait_for_sync(testnet, Duration::from_secs(120))?;
    for index in 1..count {
        send(testnet, 0, index, FUNDING)?;
    }
    if count > 1 {
        testnet.generate(0, 1, &first.address(&testnet.params).to_string())?;
        wait_for_sync(testnet, Duration::from_secs(120))?;
    }
    Ok(())
}

/// Waits until every node has the same tip.
pub fn wait_for_sync(testnet: &Testnet, timeout: Duration) -> Result<()> {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let tips: Vec<String> = (0..testnet.state.nodes.len())
            .map(|index| {
                testnet
                    .call::<BlockHash>(index, "getbestblockhash", json!([]))
                    .map(|tip| tip.to_string())
            })
            .collect::<Result<_>>()?;
        let indexed = (0..testnet.state.nodes.len()).all(|index| {
            testnet
                .call::<IndexInfo>(index, "getindexinfo", json!([]))
                .is_ok_and(|info| info.addressindex.synced)
        });
        if indexed && tips.windows(2).all(|pair| pair[0] == pair[1]) {
            return Ok(());
        }
        if std::time::Instant::now() > deadline {
            bail!("the nodes did not agree on a tip within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// What a partition into `a` and `b` means for mining: each side's share of the hash rate
/// (a fork grows only where both sides mine), and the nodes left in neither group, which still
/// link the sides.
pub fn partition_note(testnet: &Testnet, a: &[usize], b: &[usize]) -> String {
    let nodes = &testnet.state.nodes;
    let share = |side: &[usize]| side.iter().map(|&index| nodes[index].share).sum::<f64>();
    let (share_a, share_b) = (share(a), share(b));
    let mut note = format!("hash-rate shares: {share_a:.2} / {share_b:.2}");
    if share_a == 0.0 && share_b == 0.0 {
        note.push_str(" (no side mines in the background: `mine` makes the blocks)");
    } else if share_a == 0.0 || share_b == 0.0 {
        note.push_str(" (only one side mines: no fork will grow)");
    }
    let bridges: Vec<&str> = (0..nodes.len())
        .filter(|index| !a.contains(index) && !b.contains(index))
        .map(|index| nodes[index].name.as_str())
        .collect();
    if !bridges.is_empty() {
        note.push_str(&format!(
            "\nnote: {} in neither group still connect both sides; list every node to split the network",
            bridges.join(", ")
        ));
    }
    note
}

/// Pays `amount` from node `from`'s wallet to node `to`'s first address; returns the txid.
pub fn send(testnet: &Testnet, from: usize, to: usize, amount: Amount) -> Result<String> {
    let sender = &testnet.state.nodes[from];
    let recipient: Address = testnet.state.nodes[to].address(&testnet.params);
    let mut wallet = sender.open_wallet(testnet)?;
    let payment = wallet.plan_payment(&recipient, amount, FeeRate::from_sat_per_kb(2_000))?;
    let txid = wallet.send(&payment, &wallet_seed(&sender.name))?;
    Ok(txid.to_string())
}

/// Shows the status table every second until Ctrl-C, then stops the testnet.
pub fn watch_until_interrupted(testnet: Testnet) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let interactive = std::io::stdout().is_terminal();
    let testnet = runtime.block_on(async move {
        use tokio::signal::unix::{signal, SignalKind};
        // Installed once for the whole run: a signal arriving while the status is being
        // collected waits in its stream instead of being lost.
        let mut interrupt = signal(SignalKind::interrupt())?;
        let mut terminate = signal(SignalKind::terminate())?;
        let mut ticks = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                _ = interrupt.recv() => break Ok::<_, anyhow::Error>(testnet),
                _ = terminate.recv() => break Ok(testnet),
                _ = ticks.tick() => {
                    let snapshot = tokio::task::block_in_place(|| status::collect(&testnet));
                    if interactive {
                        print!("\x1b[2J\x1b[H");
                    }
                    println!("{}\n{}\n", status::render(&snapshot), status::LEGEND);
                    println!(
                        "Ctrl-C stops every node. From another terminal: {} status|partition|heal|mine|send --dir {}",
                        this_command(),
                        testnet.dir.display()
                    );
                }
            }
        }
    })?;
    println!("\nstopping…");
    testnet.shutdown()
}

/// How to run this program again from another terminal: `quarry-testnet` when that name on
/// `PATH` is this program, else its full path (as when it runs through `scripts/run.sh`).
pub fn this_command() -> String {
    let Ok(exe) = std::env::current_exe() else {
        return "quarry-testnet".into();
    };
    let on_path = std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path).any(|dir| {
            dir.join("quarry-testnet")
                .canonicalize()
                .is_ok_and(|found| exe.canonicalize().is_ok_and(|exe| exe == found))
        })
    });
    if on_path {
        "quarry-testnet".into()
    } else {
        exe.display().to_string()
    }
}

/// Draws a progress bar with `caption` on standard error: redrawn in place on a terminal;
/// elsewhere one line per step, or only the last when `every_step` is false.
pub fn progress_bar(done: usize, total: usize, caption: &str, every_step: bool) {
    let width = 30;
    let filled = width * done.min(total) / total.max(1);
    let bar = format!(
        "[{}{}] {caption}",
        "#".repeat(filled),
        ".".repeat(width - filled)
    );
    if std::io::stderr().is_terminal() {
        eprint!("\r{bar}");
        if done == total {
            eprintln!();
        }
    } else if every_step || done == total {
        eprintln!("{bar}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_footer_names_a_command_that_runs_this_program() {
        let command = this_command();
        let exe = std::env::current_exe().unwrap();
        // The test binary is not on PATH as quarry-testnet: its full path is given.
        assert_eq!(command, exe.display().to_string());
        assert!(std::path::Path::new(&command).exists());
    }
}
