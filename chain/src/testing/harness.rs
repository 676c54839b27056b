//! A chain over an in-memory store on an easy test network, with helpers to build valid
//! blocks on any known block. Panics on misuse: it is for tests and benchmarks.

use crate::pow::PowMode;
use crate::testing::{assemble_block, pay, signed_spend, test_keypair, BlockTemplate, Spendable};
use crate::{
    Acceptance, Block, BlockHash, Chain, ChainError, ChainParams, MemoryStore, NetworkSpec,
    OutPoint, RetargetRule, Transaction, TxOut,
};

/// Test network: easy limit, 10-second spacing, ASERT, coinbase maturity 3, halving every 20.
pub fn unit_params() -> ChainParams {
    ChainParams::new(NetworkSpec {
        name: "unit".into(),
        retarget: RetargetRule::Asert { half_life: 3600 },
        target_spacing: 10,
        pow_limit_bits: 0x207f_ffff,
        initial_subsidy_sats: 50 * 100_000_000,
        halving_interval: 20,
        coinbase_maturity: 3,
        max_future_block_time: 7200,
        genesis_time: 1_795_219_200,
        genesis_message: "unit tests".into(),
        genesis_nonce: None,
        minimum_chain_work: None,
        genesis_bits: None,
        pow: PowMode::Real,
    })
    .unwrap()
}

/// The key that test coinbases pay to.
pub const MINER: u64 = 0;

/// A chain over an in-memory store and a clock, with block-building helpers.
#[derive(Debug)]
pub struct Harness {
    /// The chain.
    pub chain: Chain<MemoryStore>,
    /// The clock blocks are checked against: far enough past genesis for any test chain.
    pub now: u64,
    extra_nonce: u64,
}

impl Default for Harness {
    fn default() -> Self {
        Self::with_params(unit_params())
    }
}

impl Harness {
    /// A harness on the [`unit_params`] network.
    pub fn new() -> Self {
        Self::default()
    }

    /// A harness on the network of `params`.
    pub fn with_params(params: ChainParams) -> Self {
        let now = u64::from(params.genesis_block().header.time) + 1_000_000;
        Self {
            chain: Chain::open(params, MemoryStore::new()).unwrap(),
            now,
            extra_nonce: 0,
        }
    }

    /// The genesis block's hash.
    pub fn genesis(&self) -> BlockHash {
        self.chain.params().genesis_hash()
    }

    /// A valid template on `parent`: required bits, ideal spacing, coinbase paying the subsidy.
    pub fn template_on(&mut self, parent: BlockHash) -> BlockTemplate {
        let entry = *self.chain.index().get(&parent).expect("parent indexed");
        let params = self.chain.params();
        let height = entry.height + 1;
        self.extra_nonce += 1;
        BlockTemplate {
            prev_blockhash: parent,
            height,
            time: entry.header.time + params.target_spacing(),
            bits: self
                .chain
                .index()
                .next_work_required(params, &parent)
                .unwrap(),
            coinbase_outputs: vec![TxOut {
                value: params.block_subsidy(height),
                pubkey: crate::testing::test_key(MINER),
            }],
            extra_nonce: self.extra_nonce,
        }
    }

    /// A valid block on `parent` holding `txs`, not submitted.
    pub fn block_on(&mut self, parent: BlockHash, txs: Vec<Transaction>) -> Block {
        let template = self.template_on(parent);
        assemble_block(&template, txs).unwrap()
    }

    /// Submits `block` to the chain at the harness's clock.
    pub fn submit(&mut self, block: Block) -> Result<Acceptance, ChainError> {
        self.chain.process_block(block, self.now)
    }

    /// Builds a block on the tip, submits it, and returns it.
    pub fn mine(&mut self, txs: Vec<Transaction>) -> Block {
        let block = self.block_on(self.chain.tip_hash(), txs);
        self.submit(block.clone()).expect("valid block accepted");
        block
    }

    /// Mines `n` empty blocks on the tip and returns them.
    pub fn mine_empty(&mut self, n: usize) -> Vec<Block> {
        (0..n).map(|_| self.mine(Vec::new())).collect()
    }

    /// The coinbase output of `block`, spendable by the miner key.
    pub fn coinbase_coin(block: &Block) -> Spendable {
        Spendable {
            outpoint: OutPoint {
                txid: block.transactions[0].txid(),
                vout: 0,
            },
            output: block.transactions[0].outputs[0],
            keypair: test_keypair(MINER),
        }
    }

    /// Mines until the coinbase of `block` is mature for the next block.
    pub fn mature(&mut self) {
        let maturity = self.chain.params().coinbase_maturity() as usize;
        self.mine_empty(maturity);
    }

    /// A signed spend of `coin` paying `value` sats to key `to` (the rest is fee).
    pub fn spend(&self, coin: &Spendable, to: u64, value: u64) -> Transaction {
        signed_spend(self.genesis(), &[*coin], vec![pay(to, value)])
    }
}
