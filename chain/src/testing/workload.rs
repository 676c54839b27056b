//! Seeded workloads of valid blocks with transactions and reorganisations, for tests and
//! benchmarks of the chain and the crates built on it.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use secp256k1::Keypair;

use crate::testing::{pay, signed_spend, test_key, test_keypair, Harness, Spendable};
use crate::{
    Block, BlockHash, Chain, ChainReader, ChainWriter, Coin, OutputKey, Transaction, TxOut,
};

/// Keys the workload pays to; the first is the miner's.
const WORKLOAD_KEYS: u64 = 4;

/// The coins the workload's keys hold on the builder's best chain.
#[derive(Debug)]
struct WorkloadWallet {
    keys: Vec<(OutputKey, Keypair)>,
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

    fn keypair_of(&self, output: &TxOut) -> Option<Keypair> {
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

    /// Signed spends of up to `wanted` coins confirmed at or below `max_height` and mature at
    /// `next_height`, each split in two outputs to a random workload key; the spent coins are
    /// forgotten.
    fn spend(
        &mut self,
        rng: &mut StdRng,
        genesis: BlockHash,
        (max_height, next_height): (u32, u32),
        maturity: u32,
        wanted: usize,
    ) -> Vec<Transaction> {
        let mut spends = Vec::new();
        let mut index = 0;
        while spends.len() < wanted && index < self.coins.len() {
            let (spendable, coin) = self.coins[index];
            let mature = !coin.is_coinbase || coin.height + maturity <= next_height;
            if !mature || coin.height > max_height || coin.output.value.to_sat() <= 10_000 {
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

/// Builds valid blocks with transactions from a seeded generator, over an in-memory chain.
#[derive(Debug)]
pub struct WorkloadBuilder {
    /// The chain the blocks are built on.
    pub harness: Harness,
    wallet: WorkloadWallet,
    rng: StdRng,
}

impl WorkloadBuilder {
    /// A builder on a fresh chain of [`crate::testing::unit_params`], seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Self {
            harness: Harness::new(),
            wallet: WorkloadWallet::new(),
            rng: StdRng::seed_from_u64(seed),
        }
    }

    fn spends(&mut self, max_height: u32, next_height: u32, max_spends: usize) -> Vec<Transaction> {
        let wanted = self.rng.random_range(0..=max_spends);
        let genesis = self.harness.genesis();
        let maturity = self.harness.chain.params().coinbase_maturity();
        self.wallet.spend(
            &mut self.rng,
            genesis,
            (max_height, next_height),
            maturity,
            wanted,
        )
    }

    /// A block on the tip spending up to `max_spends` coins, connected to the builder's chain.
    pub fn extend(&mut self, max_spends: usize) -> Block {
        let height = self.harness.chain.tip_height() + 1;
        let spends = self.spends(height - 1, height, max_spends);
        let block = self.harness.mine(spends);
        self.wallet.receive(&block, height);
        block
    }

    /// `depth + 1` blocks branching off `depth` blocks below the tip, each spending up to
    /// `max_spends` coins confirmed before the branch point; the last one overtakes the tip.
    pub fn overtake(&mut self, depth: u32, max_spends: usize) -> Vec<Block> {
        let fork_height = self.harness.chain.tip_height() - depth;
        let mut parent = self.harness.chain.hash_at_height(fork_height).unwrap();
        let mut blocks = Vec::new();
        for height in fork_height + 1..=fork_height + depth + 1 {
            let spends = self.spends(fork_height, height, max_spends);
            let block = self.harness.block_on(parent, spends);
            parent = block.block_hash();
            self.harness
                .submit(block.clone())
                .expect("valid fork block");
            blocks.push(block);
        }
        assert_eq!(
            self.harness.chain.tip_hash(),
            parent,
            "the branch overtook the tip"
        );
        self.wallet.reload(&self.harness.chain);
        blocks
    }
}

/// `count` valid blocks in the order a node would receive them, from a seeded generator:
/// mostly blocks on the tip spending up to `max_spends` mature coins each, and, if
/// `reorgs`, now and then a competing branch from up to four blocks back that overtakes the
/// tip (a reorganisation).
pub fn workload(count: usize, max_spends: usize, reorgs: bool, seed: u64) -> Vec<Block> {
    let mut builder = WorkloadBuilder::new(seed);
    let mut blocks = Vec::with_capacity(count);
    while blocks.len() < count {
        if reorgs && builder.harness.chain.tip_height() > 8 && builder.rng.random_bool(0.08) {
            let depth = builder.rng.random_range(1..=4);
            blocks.extend(builder.overtake(depth, max_spends));
        } else {
            blocks.push(builder.extend(max_spends));
        }
    }
    blocks.truncate(count);
    blocks
}
