//! Attack experiments in virtual time. Each node is the real consensus code — a
//! `quarry_chain::Chain` over an in-memory store: real blocks and signatures, fork choice and
//! retargeting — on a network with simulated proof of work. Miners find blocks as Poisson
//! processes at their virtual hash rates (the wait exponential with mean work / rate, drawn
//! afresh whenever the miner's tip moves: exact, as waits have no memory), blocks and
//! transactions travel links with fixed delays, and nothing waits on a wall clock. A run is
//! seeded: the same seed gives the same blocks, bit for bit.
//!
//! What the engine leaves out of a real node: the mempool's policy (a miner includes the
//! transactions it holds that its chain can take), gossip's duplicate suppression (a node
//! forwards each new block once to every other neighbour) and headers-first download (a
//! healed link hands over the blocks the other side lacks, which the chain takes as requested
//! blocks, as sync does).

pub mod double_spend;
pub mod selfish;
pub mod zero_conf;

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap};
use std::sync::Arc;

use quarry_chain::{
    Acceptance, Block, BlockHash, Chain, ChainParams, ChainReader, MemoryStore, OutputKey,
    Transaction, TxOut, Txid, Work,
};
use rand::{Rng, SeedableRng};

/// Where an attack runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum EngineKind {
    /// Real `quarryd` processes.
    Nodes,
    /// The virtual-time engine: the real consensus code, simulated network and miners.
    Sim,
}

/// A node's place in the engine.
pub type NodeId = usize;

/// The genesis time of engine networks: fixed, so that runs do not depend on the wall clock.
pub const GENESIS_TIME: u32 = 1_795_219_200;

/// Something that happened in a step, for the strategy driving the run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Happened {
    /// `node` found block `hash` (on its own tip).
    Mined { node: NodeId, hash: BlockHash },
    /// `node` received block `hash`; `tip_moved` if its best chain changed.
    Received {
        node: NodeId,
        hash: BlockHash,
        tip_moved: bool,
    },
    /// A transaction reached a node, or a stale event (a search abandoned) passed.
    Quiet,
}

#[derive(Debug)]
enum Event {
    Found {
        node: NodeId,
        generation: u64,
    },
    Block {
        to: NodeId,
        from: NodeId,
        block: Arc<Block>,
        /// Handed over by a healed link (sync) rather than gossiped.
        requested: bool,
    },
    Transaction {
        to: NodeId,
        from: NodeId,
        tx: Arc<Transaction>,
    },
}

#[derive(Debug)]
struct Scheduled {
    at: f64,
    order: u64,
    event: Event,
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Scheduled {}

impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Scheduled {
    /// Earliest first (the heap is a max-heap), ties in the order scheduled.
    fn cmp(&self, other: &Self) -> Ordering {
        other
            .at
            .total_cmp(&self.at)
            .then(other.order.cmp(&self.order))
    }
}

/// One simulated node: its chain, its miner and the transactions it would mine.
#[derive(Debug)]
pub struct Node {
    /// The real chain.
    pub chain: Chain<MemoryStore>,
    /// Virtual hashes per second.
    pub hash_rate: f64,
    /// Whether its miner runs.
    pub mining: bool,
    /// Whether it keeps the blocks it mines to itself (a strategy releases them) and forwards
    /// nobody else's.
    pub withholding: bool,
    /// Whom its coinbases pay.
    pub key: OutputKey,
    /// Transactions it would put in its next block.
    pool: Vec<Arc<Transaction>>,
    /// Bumped when the miner's search is abandoned (tip moved, mining stopped).
    generation: u64,
}

/// The engine: nodes, links and the virtual clock.
#[derive(Debug)]
pub struct Engine {
    params: ChainParams,
    /// Nodes, by [`NodeId`].
    pub nodes: Vec<Node>,
    /// One-way delay in seconds of the link from one node to another (`None`: no link).
    delays: Vec<Vec<Option<f64>>>,
    /// Nodes cut off from everyone (a partition): nothing goes in or out.
    cut: Vec<bool>,
    queue: BinaryHeap<Scheduled>,
    order: u64,
    /// Virtual Unix time, seconds.
    now: f64,
    rng: rand::rngs::StdRng,
    /// Coinbase nonces: every block differs.
    blocks_built: u64,
    /// Which blocks hold each transaction the engine mined.
    holders: HashMap<Txid, Vec<BlockHash>>,
}

impl Engine {
    /// Nodes with virtual `hash_rates` on `params` (simulated proof of work), each paying its
    /// coinbases to `keys[i]`, every pair linked with `delay` seconds, none mining yet; `base`
    /// blocks are given to every node first. The clock starts at the last base block's time.
    pub fn new(
        params: &ChainParams,
        hash_rates: &[f64],
        keys: &[OutputKey],
        delay: f64,
        base: &[Block],
        seed: u64,
    ) -> anyhow::Result<Self> {
        let count = hash_rates.len();
        let mut nodes = Vec::with_capacity(count);
        for (&hash_rate, &key) in hash_rates.iter().zip(keys) {
            let mut chain = Chain::open(params.clone(), MemoryStore::new())?;
            for block in base {
                let now = u64::from(block.header.time);
                chain.process_block(block.clone(), now)?;
            }
            nodes.push(Node {
                chain,
                hash_rate,
                mining: false,
                withholding: false,
                key,
                pool: Vec::new(),
                generation: 0,
            });
        }
        let start = base
            .last()
            .map_or(params.genesis_block().header.time, |block| {
                block.header.time
            });
        let delays = (0..count)
            .map(|from| (0..count).map(|to| (from != to).then_some(delay)).collect())
            .collect();
        Ok(Self {
            params: params.clone(),
            nodes,
            delays,
            cut: vec![false; count],
            queue: BinaryHeap::new(),
            order: 0,
            now: f64::from(start),
            rng: rand::rngs::StdRng::seed_from_u64(seed),
            blocks_built: 0,
            holders: HashMap::new(),
        })
    }

    /// The virtual Unix time, seconds.
    pub fn now(&self) -> f64 {
        self.now
    }

    /// The network's parameters.
    pub fn params(&self) -> &ChainParams {
        &self.params
    }

    /// Sets the one-way delay from `from` to `to` (`None`: no link).
    pub fn set_delay(&mut self, from: NodeId, to: NodeId, delay: Option<f64>) {
        self.delays[from][to] = delay;
    }

    /// Starts or stops `node`'s miner.
    pub fn set_mining(&mut self, node: NodeId, on: bool) {
        self.nodes[node].mining = on;
        self.restart_search(node);
    }

    /// Cuts `node` off from everyone: what it sends and what is sent to it is lost.
    pub fn cut(&mut self, node: NodeId) {
        self.cut[node] = true;
    }

    /// Reconnects `node`: each side of each of its links hands the other the blocks of its
    /// best chain the other lacks, as headers-first sync does.
    pub fn heal(&mut self, node: NodeId) {
        self.cut[node] = false;
        for other in 0..self.nodes.len() {
            if other != node {
                self.sync(node, other);
                self.sync(other, node);
            }
        }
    }

    /// Sends `to` the blocks of `from`'s best chain it does not have, oldest first.
    fn sync(&mut self, from: NodeId, to: NodeId) {
        let Some(delay) = self.link(from, to) else {
            return;
        };
        for block in self.missing_blocks(from, to) {
            self.schedule(
                delay,
                Event::Block {
                    to,
                    from,
                    block,
                    requested: true,
                },
            );
        }
    }

    /// Blocks of `from`'s best chain that `to` has not indexed, oldest first.
    fn missing_blocks(&self, from: NodeId, to: NodeId) -> Vec<Arc<Block>> {
        let source = &self.nodes[from].chain;
        let known = self.nodes[to].chain.index();
        let mut missing = Vec::new();
        for height in (1..=source.tip_height()).rev() {
            let hash = source
                .hash_at_height(height)
                .expect("heights up to the tip are on the best chain");
            if known.get(&hash).is_some() {
                break;
            }
            let block = source
                .store()
                .block(&hash)
                .ok()
                .flatten()
                .expect("the best chain's blocks are stored");
            missing.push(Arc::new(block));
        }
        missing.reverse();
        missing
    }

    /// Hands `blocks` (kept by a withholding `node`) to its neighbours as gossip.
    pub fn release(&mut self, node: NodeId, blocks: &[Arc<Block>]) {
        for block in blocks {
            self.relay(node, None, block);
        }
    }

    /// Gives `node` a transaction (from a wallet): it keeps and relays it unless it holds a
    /// conflicting one already (first seen wins, as in a mempool without replacement).
    /// Whether it took it.
    pub fn submit_transaction(&mut self, node: NodeId, tx: Transaction) -> bool {
        self.take_transaction(node, None, Arc::new(tx))
    }

    /// Whether `node` holds the transaction `txid` unconfirmed.
    pub fn holds(&self, node: NodeId, txid: &Txid) -> bool {
        self.nodes[node].pool.iter().any(|tx| tx.txid() == *txid)
    }

    fn take_transaction(
        &mut self,
        node: NodeId,
        from: Option<NodeId>,
        tx: Arc<Transaction>,
    ) -> bool {
        let spends = |held: &Transaction| {
            held.inputs
                .iter()
                .any(|input| tx.inputs.iter().any(|mine| mine.prevout == input.prevout))
        };
        let pool = &self.nodes[node].pool;
        if pool.iter().any(|held| spends(held)) {
            return false;
        }
        self.nodes[node].pool.push(tx.clone());
        for (to, delay) in self.neighbours(node, from) {
            let tx = tx.clone();
            self.schedule(delay, Event::Transaction { to, from: node, tx });
        }
        true
    }

    /// `node` mines a block on its tip now, as `generate` does, whatever its hash rate.
    pub fn generate(&mut self, node: NodeId) -> anyhow::Result<BlockHash> {
        self.mine(node)
    }

    /// Runs every event due up to `time` (virtual Unix seconds) and sets the clock there.
    pub fn advance_to(&mut self, time: f64) -> anyhow::Result<()> {
        while self.queue.peek().is_some_and(|next| next.at <= time) {
            self.step()?;
        }
        self.now = self.now.max(time);
        Ok(())
    }

    /// Whether any block or transaction is still travelling.
    pub fn in_flight(&self) -> bool {
        self.queue
            .iter()
            .any(|scheduled| !matches!(scheduled.event, Event::Found { .. }))
    }

    /// Runs the next event; `None` when nothing is left to happen (nobody mines, nothing
    /// travels).
    pub fn step(&mut self) -> anyhow::Result<Option<Happened>> {
        let Some(Scheduled { at, event, .. }) = self.queue.pop() else {
            return Ok(None);
        };
        self.now = self.now.max(at);
        let happened = match event {
            Event::Found { node, generation } => {
                if generation != self.nodes[node].generation || !self.nodes[node].mining {
                    Happened::Quiet
                } else {
                    Happened::Mined {
                        node,
                        hash: self.mine(node)?,
                    }
                }
            }
            Event::Block {
                to,
                from,
                block,
                requested,
            } => {
                if self.cut[to] || self.cut[from] {
                    Happened::Quiet
                } else {
                    self.receive(to, from, block, requested)?
                }
            }
            Event::Transaction { to, from, tx } => {
                if !self.cut[to] && !self.cut[from] && !self.holds(to, &tx.txid()) {
                    self.take_transaction(to, Some(from), tx);
                }
                Happened::Quiet
            }
        };
        Ok(Some(happened))
    }

    /// Whether `txid` is in a block of `node`'s best chain; that block if so.
    pub fn confirming_block(&self, node: NodeId, txid: &Txid) -> Option<BlockHash> {
        let chain = &self.nodes[node].chain;
        self.holders.get(txid)?.iter().copied().find(|hash| {
            chain
                .index()
                .get(hash)
                .is_some_and(|entry| chain.hash_at_height(entry.height) == Some(*hash))
        })
    }

    /// Confirmations of `txid` on `node`'s best chain (0: not in it).
    pub fn confirmations(&self, node: NodeId, txid: &Txid) -> u32 {
        let chain = &self.nodes[node].chain;
        self.confirming_block(node, txid)
            .and_then(|hash| chain.index().get(&hash))
            .map_or(0, |entry| chain.tip_height() - entry.height + 1)
    }

    /// The best chain's work at `node`.
    pub fn tip_work(&self, node: NodeId) -> Work {
        self.nodes[node].chain.tip_work()
    }

    /// The best chain's height at `node`.
    pub fn tip_height(&self, node: NodeId) -> u32 {
        self.nodes[node].chain.tip_height()
    }

    /// The best chain's tip at `node`.
    pub fn tip(&self, node: NodeId) -> BlockHash {
        self.nodes[node].chain.tip_hash()
    }

    /// `node`'s best chain from `from` to `to` height, both included.
    pub fn branch(&self, node: NodeId, from: u32, to: u32) -> Vec<BlockHash> {
        let chain = &self.nodes[node].chain;
        (from..=to.min(chain.tip_height()))
            .filter_map(|height| chain.hash_at_height(height))
            .collect()
    }

    /// Which node's key the coinbase of block `hash` (as `node` stored it) pays.
    pub fn mined_by(&self, node: NodeId, hash: &BlockHash) -> Option<NodeId> {
        let block = self.block(node, hash)?;
        let payee = block.transactions.first()?.outputs.first()?.pubkey;
        self.nodes.iter().position(|miner| miner.key == payee)
    }

    /// The block `hash` as `node` stored it.
    pub fn block(&self, node: NodeId, hash: &BlockHash) -> Option<Arc<Block>> {
        let store = self.nodes[node].chain.store();
        store.block(hash).ok().flatten().map(Arc::new)
    }

    fn link(&self, from: NodeId, to: NodeId) -> Option<f64> {
        if self.cut[from] || self.cut[to] {
            return None;
        }
        self.delays[from][to]
    }

    fn schedule(&mut self, after: f64, event: Event) {
        self.order += 1;
        self.queue.push(Scheduled {
            at: self.now + after,
            order: self.order,
            event,
        });
    }

    /// Abandons `node`'s search and, if it mines, draws the wait for a block on its tip.
    fn restart_search(&mut self, node: NodeId) {
        let state = &mut self.nodes[node];
        state.generation += 1;
        if !state.mining || state.hash_rate <= 0.0 {
            return;
        }
        let work = state
            .chain
            .next_block()
            .bits
            .to_target()
            .map_or(f64::INFINITY, |target| target.to_work().to_f64());
        // 1 - u lies in (0, 1]: its logarithm is finite.
        let u: f64 = self.rng.random();
        let wait = -(1.0 - u).ln() * work / state.hash_rate;
        let generation = state.generation;
        self.schedule(wait, Event::Found { node, generation });
    }

    /// `node` finds a block on its tip, holding the transactions its chain can take.
    fn mine(&mut self, node: NodeId) -> anyhow::Result<BlockHash> {
        let mut block = self.build_block(node, true);
        let now = self.now as u64;
        let accepted = self.nodes[node].chain.process_block(block.clone(), now);
        if accepted.is_err() {
            // A transaction its chain cannot take any more (its coin spent on this branch):
            // dropped, as a mempool would after the reorganisation.
            self.nodes[node].pool.clear();
            block = self.build_block(node, false);
            self.nodes[node].chain.process_block(block.clone(), now)?;
        }
        let hash = block.block_hash();
        for tx in &block.transactions[1..] {
            self.holders.entry(tx.txid()).or_default().push(hash);
        }
        self.restart_search(node);
        let block = Arc::new(block);
        if !self.nodes[node].withholding {
            self.relay(node, None, &block);
        }
        Ok(hash)
    }

    fn build_block(&mut self, node: NodeId, with_pool: bool) -> Block {
        self.blocks_built += 1;
        let state = &self.nodes[node];
        let next = state.chain.next_block();
        let time = (self.now as u32).max(next.min_time);
        let coinbase = Transaction::new_coinbase(
            next.height,
            self.blocks_built,
            b"quarry engine",
            vec![TxOut {
                value: self.params.block_subsidy(next.height),
                pubkey: state.key,
            }],
        );
        let mut transactions = vec![coinbase];
        if with_pool {
            transactions.extend(
                state
                    .pool
                    .iter()
                    .filter(|tx| self.confirming_block(node, &tx.txid()).is_none())
                    .map(|tx| (**tx).clone()),
            );
        }
        Block::assemble(next.prev_blockhash, time, next.bits, transactions)
    }

    fn receive(
        &mut self,
        node: NodeId,
        from: NodeId,
        block: Arc<Block>,
        requested: bool,
    ) -> anyhow::Result<Happened> {
        let hash = block.block_hash();
        let withholding = self.nodes[node].withholding;
        let chain = &mut self.nodes[node].chain;
        let tip = chain.tip_hash();
        let now = self.now as u64;
        // A withholding node watches every block, however little work it has: it needs
        // to know the public chain to time its releases.
        let acceptance = if requested || withholding {
            chain.process_block((*block).clone(), now)
        } else {
            chain.process_unrequested_block((*block).clone(), now)
        };
        let tip_moved = chain.tip_hash() != tip;
        // A withholding node (a selfish miner) does not help others' blocks along.
        if matches!(acceptance, Ok(Acceptance::Accepted)) && !withholding {
            self.relay(node, Some(from), &block);
        }
        if tip_moved {
            self.restart_search(node);
        }
        Ok(Happened::Received {
            node,
            hash,
            tip_moved,
        })
    }

    /// Gossips `block` from `node` to every neighbour but `source`.
    fn relay(&mut self, node: NodeId, source: Option<NodeId>, block: &Arc<Block>) {
        for (to, delay) in self.neighbours(node, source) {
            let block = block.clone();
            let requested = false;
            self.schedule(
                delay,
                Event::Block {
                    to,
                    from: node,
                    block,
                    requested,
                },
            );
        }
    }

    /// The nodes `node` reaches, but `except`, with each link's delay.
    fn neighbours(&self, node: NodeId, except: Option<NodeId>) -> Vec<(NodeId, f64)> {
        (0..self.nodes.len())
            .filter(|&to| Some(to) != except)
            .filter_map(|to| self.link(node, to).map(|delay| (to, delay)))
            .collect()
    }
}

/// Blocks every node starts from: one paying `key` per coin asked for, then enough for the
/// coinbases to mature, at the planned spacing from genesis.
pub fn funding_blocks(params: &ChainParams, key: OutputKey, coins: u32) -> Vec<Block> {
    let mut chain = Chain::open(params.clone(), MemoryStore::new()).expect("an empty chain opens");
    let spacing = params.target_spacing();
    let mut blocks = Vec::new();
    let genesis_time = params.genesis_block().header.time;
    for index in 0..coins + params.coinbase_maturity() {
        let next = chain.next_block();
        let coinbase = Transaction::new_coinbase(
            next.height,
            u64::from(index),
            b"quarry engine funding",
            vec![TxOut {
                value: params.block_subsidy(next.height),
                pubkey: key,
            }],
        );
        let time = genesis_time + spacing * next.height;
        let block = Block::assemble(next.prev_blockhash, time, next.bits, vec![coinbase]);
        chain
            .process_block(block.clone(), u64::from(time))
            .expect("funding blocks are valid");
        blocks.push(block);
    }
    blocks
}

/// A seed for trial `index` of a run seeded with `seed`: trials are independent of the order
/// threads take them in.
pub fn trial_seed(seed: u64, index: u64) -> u64 {
    // SplitMix64's finaliser: neighbouring indices give unrelated seeds.
    let mut z = seed ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}
