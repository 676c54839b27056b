//! A funded chain and a pool over it.
#![allow(dead_code)]

use quarry_chain::testing::{pay, signed_spend, test_keypair, Harness, Spendable, MINER};
use quarry_chain::{Block, ChainEvent, ChainReader, Transaction, TxOut};
use quarry_mempool::{BlockChange, ChainUpdate, Mempool, MempoolConfig, MempoolError, TipContext};

/// A chain whose miner key holds `coins` mature coinbase outputs, and a pool.
pub struct Funded {
    pub harness: Harness,
    pub pool: Mempool,
    pub coins: Vec<Spendable>,
}

impl Funded {
    pub fn new(coins: usize, config: MempoolConfig) -> Self {
        let mut harness = Harness::new();
        let mut spendable = Vec::new();
        for _ in 0..coins {
            let block = harness.mine(Vec::new());
            spendable.push(Harness::coinbase_coin(&block));
        }
        harness.mature();
        harness.chain.take_events();
        Self {
            harness,
            pool: Mempool::new(config),
            coins: spendable,
        }
    }

    pub fn tip(&self) -> TipContext {
        TipContext {
            height: self.harness.chain.tip_height(),
            genesis: self.harness.genesis(),
            coinbase_maturity: self.harness.chain.params().coinbase_maturity(),
        }
    }

    pub fn accept(&mut self, tx: &Transaction) -> Result<quarry_mempool::Accepted, MempoolError> {
        let tip = self.tip();
        let now = self.harness.now;
        self.pool
            .accept(tx.clone(), self.harness.chain.store(), &tip, now)
    }

    /// Submits `block` and lets the pool follow whatever the chain did.
    pub fn submit_and_follow(&mut self, block: Block) -> ChainUpdate {
        let _ = self.harness.submit(block);
        self.follow()
    }

    /// Lets the pool follow the chain's pending events.
    pub fn follow(&mut self) -> ChainUpdate {
        let events = self.harness.chain.take_events();
        let store = self.harness.chain.store();
        let blocks: Vec<(bool, Block)> = events
            .iter()
            .map(|event| match event {
                ChainEvent::Connected { hash, .. } => (true, store.block(hash).unwrap().unwrap()),
                ChainEvent::Disconnected { hash, .. } => {
                    (false, store.block(hash).unwrap().unwrap())
                }
            })
            .collect();
        let changes = blocks.iter().map(|(connected, block)| {
            if *connected {
                BlockChange::Connected(block)
            } else {
                BlockChange::Disconnected(block)
            }
        });
        let tip = self.tip();
        let now = self.harness.now;
        self.pool.update(changes, store, &tip, now).unwrap()
    }

    /// Every pool entry, in arrival order, is accepted by a fresh pool against the tip.
    pub fn assert_pool_consistent(&self) {
        let tip = self.tip();
        let mut fresh = Mempool::new(self.pool.config().clone());
        for entry in self.pool.entries() {
            fresh
                .accept(
                    (*entry.tx).clone(),
                    self.harness.chain.store(),
                    &tip,
                    self.harness.now,
                )
                .unwrap_or_else(|error| panic!("pool entry {} is not valid: {error}", entry.txid));
        }
        assert_eq!(fresh.len(), self.pool.len());
        assert_eq!(fresh.bytes(), self.pool.bytes());
    }
}

/// A spend of `coin` (held by the miner key) paying `value` sats to key `to`; the rest is fee.
pub fn spend(
    genesis: quarry_chain::BlockHash,
    coin: &Spendable,
    to: u64,
    value: u64,
) -> Transaction {
    signed_spend(genesis, &[*coin], vec![pay(to, value)])
}

/// Output `vout` of `tx`, held by key `owner`.
pub fn output(tx: &Transaction, vout: u32, owner: u64) -> Spendable {
    Spendable::output_of(tx, vout, test_keypair(owner))
}

/// A spend of `coins` into `outputs`.
pub fn spend_many(
    genesis: quarry_chain::BlockHash,
    coins: &[Spendable],
    outputs: Vec<TxOut>,
) -> Transaction {
    signed_spend(genesis, coins, outputs)
}

pub const COIN: u64 = 100_000_000;
pub const MINER_KEY: u64 = MINER;
