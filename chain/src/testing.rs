//! Helpers for tests and benchmarks of this crate and the crates built on it: deterministic
//! keys, signed spends, and block assembly with real (easy) proof of work.

mod harness;
mod replay;
mod workload;

pub use harness::{unit_params, Harness, MINER};
pub use replay::{assert_utxo_set_matches_replay, replayed_utxo_set};
pub use workload::{workload, WorkloadBuilder};

use secp256k1::Keypair;

use crate::amount::Amount;
use crate::block::{Block, BlockHeader};
use crate::hash::{sha256d, BlockHash};
use crate::pow::CompactTarget;
use crate::sighash::sign_transaction;
use crate::transaction::{OutPoint, OutputKey, Transaction, TxIn, TxOut};

/// A deterministic key pair for test number `n`.
pub fn test_keypair(n: u64) -> Keypair {
    let mut secret = sha256d(&n.to_le_bytes());
    loop {
        if let Ok(keypair) = Keypair::from_secret_bytes(secret) {
            return keypair;
        }
        secret = sha256d(&secret);
    }
}

/// The output key of [`test_keypair`]`(n)`.
pub fn test_key(n: u64) -> OutputKey {
    OutputKey::from_keypair(&test_keypair(n))
}

/// A coin to spend: where it is, what it holds, and who can sign for it.
#[derive(Clone, Copy, Debug)]
pub struct Spendable {
    /// The outpoint.
    pub outpoint: OutPoint,
    /// The output.
    pub output: TxOut,
    /// The signer.
    pub keypair: Keypair,
}

impl Spendable {
    /// Output `vout` of `tx`, to be signed for by `keypair`. Panics if `tx` has no such output.
    pub fn output_of(tx: &Transaction, vout: u32, keypair: Keypair) -> Self {
        Self {
            outpoint: OutPoint {
                txid: tx.txid(),
                vout,
            },
            output: tx.outputs[vout as usize],
            keypair,
        }
    }
}

/// A transaction spending `inputs` into `outputs`, every input signed for the network whose
/// genesis is `genesis` (deterministically: zero auxiliary randomness).
pub fn signed_spend(genesis: BlockHash, inputs: &[Spendable], outputs: Vec<TxOut>) -> Transaction {
    let mut tx = Transaction {
        version: Transaction::CURRENT_VERSION,
        inputs: inputs
            .iter()
            .map(|spendable| TxIn {
                prevout: spendable.outpoint,
                witness: Vec::new(),
            })
            .collect(),
        outputs,
    };
    let spent: Vec<TxOut> = inputs.iter().map(|spendable| spendable.output).collect();
    let keypairs: Vec<&Keypair> = inputs.iter().map(|spendable| &spendable.keypair).collect();
    sign_transaction(&mut tx, &spent, &keypairs, genesis, &[0; 32])
        .expect("one spent output and key per input");
    tx
}

/// An output of `sats` to test key `n`.
pub fn pay(n: u64, sats: u64) -> TxOut {
    TxOut {
        value: Amount::from_sat(sats),
        pubkey: test_key(n),
    }
}

/// What to put in a block besides its transactions.
#[derive(Clone, Debug)]
pub struct BlockTemplate {
    /// Parent.
    pub prev_blockhash: BlockHash,
    /// Height (committed in the coinbase).
    pub height: u32,
    /// Timestamp.
    pub time: u32,
    /// Target.
    pub bits: CompactTarget,
    /// Coinbase outputs.
    pub coinbase_outputs: Vec<TxOut>,
    /// Coinbase extra nonce, to make otherwise identical blocks differ.
    pub extra_nonce: u64,
}

/// Assembles a block with a coinbase and `transactions`, and searches nonces until its hash
/// meets its target. Meant for easy targets; returns `None` if no nonce fits.
pub fn assemble_block(template: &BlockTemplate, transactions: Vec<Transaction>) -> Option<Block> {
    let coinbase = Transaction::new_coinbase(
        template.height,
        template.extra_nonce,
        b"quarry test",
        template.coinbase_outputs.clone(),
    );
    let mut all = Vec::with_capacity(transactions.len() + 1);
    all.push(coinbase);
    all.extend(transactions);
    let mut block = Block::assemble(template.prev_blockhash, template.time, template.bits, all);
    mine(&mut block.header).then_some(block)
}

/// Searches nonces from the current one until the header meets its own target.
pub fn mine(header: &mut BlockHeader) -> bool {
    let Some(target) = header.bits.to_target() else {
        return false;
    };
    loop {
        if target.is_met_by(header.block_hash()) {
            return true;
        }
        if header.nonce == u32::MAX {
            return false;
        }
        header.nonce += 1;
    }
}
