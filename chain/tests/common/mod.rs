//! A chain over an in-memory store with helpers to build valid blocks on any known block.
#![allow(dead_code)]

use std::collections::BTreeMap;

use quarry_chain::testing::{
    assemble_block, pay, signed_spend, test_key, test_keypair, BlockTemplate, Spendable,
};
use quarry_chain::{
    Acceptance, Block, BlockHash, Chain, ChainError, ChainParams, ChainReader, ChainWriter, Coin,
    MemoryStore, NetworkSpec, OutPoint, RetargetRule, Transaction, TxOut,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

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
    })
    .unwrap()
}

/// The key that test coinbases pay to.
pub const MINER: u64 = 0;

pub struct Harness {
    pub chain: Chain<MemoryStore>,
    pub now: u64,
    extra_nonce: u64,
}

impl Harness {
    pub fn new() -> Self {
        Self::with_params(unit_params())
    }

    pub fn with_params(params: ChainParams) -> Self {
        let now = u64::from(params.genesis_block().header.time) + 1_000_000;
        Self {
            chain: Chain::open(params, MemoryStore::new()).unwrap(),
            now,
            extra_nonce: 0,
        }
    }

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
                pubkey: quarry_chain::testing::test_key(MINER),
            }],
            extra_nonce: self.extra_nonce,
        }
    }

    pub fn block_on(&mut self, parent: BlockHash, txs: Vec<Transaction>) -> Block {
        let template = self.template_on(parent);
        assemble_block(&template, txs).unwrap()
    }

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
        quarry_chain::testing::signed_spend(self.genesis(), &[*coin], vec![pay(to, value)])
    }
}

/// The UTXO set obtained by connecting the best chain's blocks, as stored, in order, to a
/// fresh in-memory chain; checks the replay reaches the same tip.
pub fn replayed_utxo_set<S: ChainReader + ChainWriter>(
    chain: &Chain<S>,
) -> BTreeMap<OutPoint, Coin> {
    let mut replay = Chain::open(chain.params().clone(), MemoryStore::new()).unwrap();
    for height in 1..=chain.tip_height() {
        let hash = chain.store().hash_at_height(height).unwrap().unwrap();
        assert_eq!(chain.hash_at_height(height), Some(hash));
        let block = chain.store().block(&hash).unwrap().unwrap();
        assert_eq!(
            replay.process_block(block, u64::MAX / 2).unwrap(),
            Acceptance::Accepted
        );
    }
    assert_eq!(replay.tip_hash(), chain.tip_hash());
    replay.store().utxo_set().unwrap()
}

/// The chain's UTXO set equals the replay of its best chain from genesis.
pub fn assert_utxo_set_matches_replay<S: ChainReader + ChainWriter>(chain: &Chain<S>) {
    assert_eq!(chain.store().utxo_set().unwrap(), replayed_utxo_set(chain));
}

/// Keys the workload pays to; the first is the miner's.
const WORKLOAD_KEYS: u64 = 4;

/// The coins the workload's keys hold on the builder's best chain.
struct WorkloadWallet {
    keys: Vec<(quarry_chain::OutputKey, secp256k1::Keypair)>,
    coins: Vec<(Spendable, Coin)>,
}

impl WorkloadWallet {
    fn new() -> Self {
        Self {
            keys: (0..WORKLOAD_KEYS)
                .map(|n| (test_key(n), test_keypair(n)))
                .collect(),
            coins: Vec::new(),
        }
    }

    fn keypair_of(&self, output: &TxOut) -> Option<secp256k1::Keypair> {
        self.keys
            .iter()
            .find(|(key, _)| *key == output.pubkey)
            .map(|(_, keypair)| *keypair)
    }

    /// Reads the coins back from the chain (after a reorganisation).
    fn reload<S: ChainReader + ChainWriter>(&mut self, chain: &Chain<S>) {
        let utxos = chain.store().utxo_set().unwrap();
        self.coins = utxos
            .into_iter()
            .filter_map(|(outpoint, coin)| {
                let keypair = self.keypair_of(&coin.output)?;
                Some((
                    Spendable {
                        outpoint,
                        output: coin.output,
                        keypair,
                    },
                    coin,
                ))
            })
            .collect();
    }

    /// Records the outputs `block` (connected at `height`) pays to the workload's keys.
    fn receive(&mut self, block: &Block, height: u32) {
        for (index, tx) in block.transactions.iter().enumerate() {
            for vout in 0..tx.outputs.len() as u32 {
                if let Some(keypair) = self.keypair_of(&tx.outputs[vout as usize]) {
                    let coin = Coin {
                        output: tx.outputs[vout as usize],
                        height,
                        is_coinbase: index == 0,
                    };
                    self.coins
                        .push((Spendable::output_of(tx, vout, keypair), coin));
                }
            }
        }
    }

    /// Signed spends of up to `wanted` coins mature at `next_height`, each split in two
    /// outputs to a random workload key; the spent coins are forgotten.
    fn spend(
        &mut self,
        rng: &mut StdRng,
        genesis: BlockHash,
        next_height: u32,
        maturity: u32,
        wanted: usize,
    ) -> Vec<Transaction> {
        let mut spends = Vec::new();
        let mut index = 0;
        while spends.len() < wanted && index < self.coins.len() {
            let (spendable, coin) = self.coins[index];
            let mature = !coin.is_coinbase || coin.height + maturity <= next_height;
            if !mature || coin.output.value.to_sat() <= 10_000 {
                index += 1;
                continue;
            }
            self.coins.swap_remove(index);
            let half = (coin.output.value.to_sat() - 1_000) / 2;
            let to = rng.random_range(0..WORKLOAD_KEYS);
            spends.push(signed_spend(
                genesis,
                &[spendable],
                vec![pay(to, half), pay(to, half)],
            ));
        }
        spends
    }
}

/// `count` valid blocks in the order a node would receive them, from a seeded generator:
/// mostly blocks on the tip spending up to `max_spends` mature coins each, and, if
/// `reorgs`, now and then a competing branch from up to four blocks back that overtakes the
/// tip (a reorganisation).
pub fn workload(count: usize, max_spends: usize, reorgs: bool, seed: u64) -> Vec<Block> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut builder = Harness::new();
    let mut wallet = WorkloadWallet::new();
    let genesis = builder.genesis();
    let maturity = builder.chain.params().coinbase_maturity();
    let mut blocks = Vec::with_capacity(count);
    while blocks.len() < count {
        let tip_height = builder.chain.tip_height();
        if reorgs && tip_height > 8 && rng.random_bool(0.08) {
            let depth = rng.random_range(1..=4);
            let mut parent = builder.chain.hash_at_height(tip_height - depth).unwrap();
            for _ in 0..=depth {
                let block = builder.block_on(parent, Vec::new());
                parent = block.block_hash();
                builder.submit(block.clone()).expect("valid fork block");
                blocks.push(block);
            }
            assert_eq!(
                builder.chain.tip_hash(),
                parent,
                "the fork overtook the tip"
            );
            wallet.reload(&builder.chain);
        } else {
            let wanted = rng.random_range(0..=max_spends);
            let spends = wallet.spend(&mut rng, genesis, tip_height + 1, maturity, wanted);
            let block = builder.mine(spends);
            wallet.receive(&block, tip_height + 1);
            blocks.push(block);
        }
    }
    blocks.truncate(count);
    blocks
}
