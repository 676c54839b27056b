//! Selfish mining on real nodes: the attacker's quarryd mines alone, linked to nobody; a
//! controller is its network. It hands the attacker's node every honest block it sees (the
//! attacker listens to everyone) and releases the attacker's blocks by Eyal and Sirer's rule
//! ([`reaction`]) with `submitblock`: at once to the "near" honest nodes, two link delays later
//! to the others. Honest nodes are meshed through links delayed `delay_ms`, so a near node
//! hears the attacker's block in a race before the honest one: γ follows the near nodes' share
//! of honest power, and is measured from which block each race's honest winner mined on.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use quarry_rpc::launch::Lifetime;
use serde_json::{json, Value};

use crate::attack::set_mining;
use crate::cluster::{Link, NodeSpec, Testnet};
use crate::engine::selfish::{
    network, reaction, summarize, MainChain, Reaction, SelfishResult, SelfishSettings, Tally,
};
use crate::params::genesis_time_for;

/// The attacker's node.
const ATTACKER: usize = 0;
/// How often the controller looks at the nodes.
const POLL: Duration = Duration::from_millis(10);
/// How long the honest nodes may take to agree once mining stops.
const SETTLE: Duration = Duration::from_secs(60);
/// How long honest nodes may disagree once everything is delivered before they mine on.
const TIE_WAIT: Duration = Duration::from_secs(2);
/// Most blocks walked back from a tip to the blocks already seen.
const MAX_WALK: usize = 10_000;

/// A selfish-mining run on real nodes.
#[derive(Clone, Debug)]
pub struct NodesRun {
    /// The attack.
    pub settings: SelfishSettings,
    /// Honest nodes, sharing `1 - α` equally.
    pub honest_nodes: usize,
    /// One-way delay of the links between honest nodes, milliseconds.
    pub delay_ms: u64,
    /// Total virtual hash rate of the miners.
    pub hash_rate: u64,
    /// Where the nodes run.
    pub dir: PathBuf,
    /// Where the nodes run: processes of a quarryd, or Docker containers.
    pub nodes: crate::cluster::NodeEngine,
}

/// A block the controller has seen.
struct Seen {
    height: u64,
    parent: String,
}

/// The controller's view and the attacker's state.
struct Controller<'a> {
    testnet: &'a Testnet,
    near: Vec<usize>,
    far: Vec<usize>,
    delay: Duration,
    seen: HashMap<String, Seen>,
    attacker_blocks: HashSet<String>,
    unpublished: Vec<String>,
    public_height: u64,
    race: Option<(String, String)>,
    /// Released blocks still to reach the far nodes: when, and the block's hex.
    to_far: Vec<(Instant, String)>,
    tally: Tally,
}

impl Controller<'_> {
    fn tip(&self, node: usize) -> Result<String> {
        self.testnet.call(node, "getbestblockhash", json!([]))
    }

    fn height(&self, node: usize) -> Result<u64> {
        self.testnet.call(node, "getblockcount", json!([]))
    }

    /// Blocks from `node`'s tip down to the first one seen, oldest first, now seen too.
    fn new_blocks(&mut self, node: usize) -> Result<Vec<String>> {
        let tip = self.tip(node)?;
        self.new_blocks_below(node, tip)
    }

    /// Blocks from `hash` down to the first one seen, on `node`, oldest first, now seen too.
    fn new_blocks_below(&mut self, node: usize, mut hash: String) -> Result<Vec<String>> {
        let mut fresh = Vec::new();
        while !self.seen.contains_key(&hash) {
            if fresh.len() == MAX_WALK {
                bail!("more than {MAX_WALK} unseen blocks on {}", self.name(node));
            }
            let header: Value = self.testnet.call(node, "getblockheader", json!([hash]))?;
            let parent = header["previousblockhash"]
                .as_str()
                .context("a block above genesis names its parent")?
                .to_owned();
            let height = header["height"].as_u64().context("a header has a height")?;
            fresh.push((
                hash.clone(),
                Seen {
                    height,
                    parent: parent.clone(),
                },
            ));
            hash = parent;
        }
        fresh.reverse();
        let hashes = fresh.iter().map(|(hash, _)| hash.clone()).collect();
        self.seen.extend(fresh);
        Ok(hashes)
    }

    fn name(&self, node: usize) -> &str {
        &self.testnet.state.nodes[node].name
    }

    fn block_hex(&self, node: usize, hash: &str) -> Result<String> {
        self.testnet.call(node, "getblock", json!([hash, 0]))
    }

    fn submit(&self, node: usize, hex: &str) -> Result<()> {
        // "duplicate" and "inconclusive" answers are fine: the node has it, or keeps it.
        self.testnet
            .call::<Value>(node, "submitblock", json!([hex]))?;
        Ok(())
    }

    /// Publishes the attacker's `blocks`: near nodes now, far nodes two link delays later.
    fn release(&mut self, blocks: &[String]) -> Result<()> {
        for hash in blocks {
            let hex = self.block_hex(ATTACKER, hash)?;
            for &node in &self.near {
                self.submit(node, &hex)?;
            }
            self.to_far.push((Instant::now() + 2 * self.delay, hex));
        }
        Ok(())
    }

    fn deliver_to_far(&mut self) -> Result<()> {
        let now = Instant::now();
        let (due, later): (Vec<_>, Vec<_>) = self.to_far.drain(..).partition(|(at, _)| *at <= now);
        self.to_far = later;
        for (_, hex) in due {
            for &node in &self.far {
                self.submit(node, &hex)?;
            }
        }
        Ok(())
    }

    /// The attacker's node found blocks: keep them, or win the race it is in.
    fn attacker_mined(&mut self) -> Result<()> {
        let fresh = self.new_blocks(ATTACKER)?;
        if fresh.is_empty() {
            return Ok(());
        }
        self.tally.mined_by_attacker += fresh.len() as u64;
        self.attacker_blocks.extend(fresh.iter().cloned());
        self.unpublished.extend(fresh);
        if self.race.take().is_some() {
            let blocks = std::mem::take(&mut self.unpublished);
            self.release(&blocks)?;
            self.public_height = self.height(ATTACKER)?;
        }
        Ok(())
    }

    /// An honest node's chain grew: count its blocks and races; while the attack runs, tell
    /// the attacker's node and react.
    fn honest_grew(&mut self, node: usize, attacking: bool) -> Result<()> {
        for hash in self.new_blocks(node)? {
            self.tally.mined_by_honest += 1;
            let Seen { height, parent } = &self.seen[&hash];
            let (height, parent) = (*height, parent.clone());
            if let Some((attacker_block, honest_block)) = &self.race {
                if parent == *attacker_block || parent == *honest_block {
                    self.tally.decided_by_honest += 1;
                    self.tally.on_attacker += u64::from(parent == *attacker_block);
                }
            }
            if attacking {
                let hex = self.block_hex(node, &hash)?;
                self.submit(ATTACKER, &hex)?;
                self.react(&hash, height)?;
            }
        }
        Ok(())
    }

    fn react(&mut self, hash: &str, height: u64) -> Result<()> {
        let tip = self.tip(ATTACKER)?;
        if height <= self.public_height {
            if tip == hash {
                self.unpublished.clear();
                self.race = None;
            }
            return Ok(());
        }
        self.public_height = height;
        self.race = None;
        let lead = self.height(ATTACKER)?.saturating_sub(height);
        let on_own_branch = self.attacker_blocks.contains(&tip);
        match reaction(on_own_branch, lead as u32) {
            Reaction::Adopt => self.unpublished.clear(),
            Reaction::Race => {
                let blocks = std::mem::take(&mut self.unpublished);
                if let Some(last) = blocks.last() {
                    self.race = Some((last.clone(), hash.to_owned()));
                }
                self.release(&blocks)?;
            }
            Reaction::Override => {
                let blocks = std::mem::take(&mut self.unpublished);
                self.release(&blocks)?;
                self.public_height = self.height(ATTACKER)?;
            }
            Reaction::Match => {
                let keep_from = self
                    .unpublished
                    .iter()
                    .position(|block| self.seen[block].height > height)
                    .unwrap_or(self.unpublished.len());
                let released: Vec<String> = self.unpublished.drain(..keep_from).collect();
                self.release(&released)?;
            }
        }
        Ok(())
    }
}

/// Runs selfish mining on a fresh testnet of real nodes in `run.dir`.
pub fn run(run: &NodesRun) -> Result<SelfishResult> {
    let settings = run.settings;
    let params = network(
        settings.spacing,
        settings.retarget,
        run.hash_rate,
        genesis_time_for(0, settings.spacing),
    )?;
    let honest = run.honest_nodes.max(1);
    let mut specs = vec![NodeSpec {
        name: "attacker".into(),
        share: settings.alpha,
        config: None,
    }];
    specs.extend((0..honest).map(|index| NodeSpec {
        name: format!("honest-{index}"),
        share: (1.0 - settings.alpha) / honest as f64,
        config: None,
    }));
    let pairs: Vec<(usize, usize)> = (1..=honest)
        .flat_map(|a| (a + 1..=honest).map(move |b| (a, b)))
        .collect();
    if run.dir.exists() {
        std::fs::remove_dir_all(&run.dir)
            .with_context(|| format!("cannot clear {}", run.dir.display()))?;
    }
    let testnet = Testnet::start(
        &run.dir,
        &params,
        &specs,
        run.hash_rate,
        Link::delayed(pairs, run.delay_ms),
        &run.nodes,
        Lifetime::WithThisProcess,
    )?;
    let outcome = race_on(&testnet, run, honest);
    let stopped = testnet.shutdown();
    let result = outcome?;
    stopped?;
    Ok(result)
}

fn race_on(testnet: &Testnet, run: &NodesRun, honest: usize) -> Result<SelfishResult> {
    let settings = run.settings;
    let near_nodes = (settings.gamma * honest as f64).round() as usize;
    let genesis = testnet.call::<String>(1, "getbestblockhash", json!([]))?;
    let start_time = f64::from(testnet.params.genesis_block().header.time);
    let mut controller = Controller {
        testnet,
        near: (1..=near_nodes).collect(),
        far: (near_nodes + 1..=honest).collect(),
        delay: Duration::from_millis(run.delay_ms),
        seen: HashMap::from([(
            genesis,
            Seen {
                height: 0,
                parent: String::new(),
            },
        )]),
        attacker_blocks: HashSet::new(),
        unpublished: Vec::new(),
        public_height: 0,
        race: None,
        to_far: Vec::new(),
        tally: Tally::default(),
    };
    let started = Instant::now();
    for node in 0..=honest {
        set_mining(testnet, node, true)?;
    }
    let mut shown = 0;
    while controller.height(1)? < u64::from(settings.blocks) {
        controller.attacker_mined()?;
        for node in 1..=honest {
            controller.honest_grew(node, true)?;
        }
        controller.deliver_to_far()?;
        let height = controller.height(1)?;
        if height != shown {
            shown = height;
            let caption = format!(
                "{height}/{} main-chain blocks, {:.0} s",
                settings.blocks,
                started.elapsed().as_secs_f64()
            );
            crate::commands::progress_bar(
                height as usize,
                settings.blocks as usize,
                &caption,
                false,
            );
        }
        std::thread::sleep(POLL);
    }
    for node in 0..=honest {
        set_mining(testnet, node, false)?;
    }
    // Blocks in flight land and the far nodes get what is due; honest nodes left on the two
    // sides of a tie mine on until a block decides it, as they would on a live network.
    let deadline = Instant::now() + SETTLE;
    let mut tied_since: Option<Instant> = None;
    loop {
        controller.deliver_to_far()?;
        for node in 1..=honest {
            controller.honest_grew(node, false)?;
        }
        let tips: Vec<String> = (1..=honest)
            .map(|node| controller.tip(node))
            .collect::<Result<_>>()?;
        let agree = tips.windows(2).all(|pair| pair[0] == pair[1]);
        if controller.to_far.is_empty() && agree {
            break;
        }
        if controller.to_far.is_empty() && tied_since.is_none() {
            tied_since = Some(Instant::now());
        }
        if tied_since.is_some_and(|since| since.elapsed() > TIE_WAIT) {
            for node in 1..=honest {
                set_mining(testnet, node, true)?;
            }
            tied_since = None;
        }
        if Instant::now() > deadline {
            bail!("the honest nodes did not agree on a tip within {SETTLE:?} after the attack");
        }
        std::thread::sleep(POLL);
    }
    for node in 1..=honest {
        set_mining(testnet, node, false)?;
    }
    // Honest blocks orphaned between two looks were never a tip when the controller looked:
    // the branch tips the honest nodes know bring them in.
    for node in 1..=honest {
        let tips: Vec<Value> = testnet.call(node, "getchaintips", json!([]))?;
        for tip in tips {
            let stored = matches!(tip["status"].as_str(), Some("active" | "valid-fork"));
            if let (true, Some(hash)) = (stored, tip["hash"].as_str()) {
                let orphaned = controller.new_blocks_below(node, hash.to_owned())?;
                controller.tally.mined_by_honest += orphaned.len() as u64;
            }
        }
    }
    let tip_height = controller.height(1)?;
    let mut chain = MainChain {
        start: start_time,
        ..MainChain::default()
    };
    for height in 1..=tip_height {
        let hash: String = testnet.call(1, "getblockhash", json!([height]))?;
        let header: Value = testnet.call(1, "getblockheader", json!([hash]))?;
        chain
            .by_attacker
            .push(controller.attacker_blocks.contains(&hash));
        chain
            .times
            .push(header["time"].as_f64().context("a header has a time")?);
    }
    Ok(summarize(
        settings,
        (honest, near_nodes),
        &controller.tally,
        &chain,
        started.elapsed().as_secs_f64(),
    ))
}
