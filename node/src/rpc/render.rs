//! Blocks, headers and transactions as JSON, with Bitcoin Core's field names: hashes in
//! reversed hex, amounts in coins, `scriptPubKey.address` for outputs.

use quarry_chain::{
    Address, Amount, Block, BlockHash, ChainParams, ChainReader, IndexEntry, StoreError,
    Transaction,
};
use quarry_rpc::types::{DecodedInput, DecodedOutput, DecodedTransaction, ScriptPubKey, ScriptSig};
use serde_json::{json, Map, Value};

/// An amount in coins, as a JSON number.
pub fn coins(amount: Amount) -> Value {
    json!(amount.to_sat() as f64 / Amount::SATS_PER_COIN as f64)
}

/// `bits` as Core prints it: 8 hex digits.
pub fn bits_hex(bits: quarry_chain::CompactTarget) -> String {
    format!("{:08x}", bits.to_consensus())
}

/// The target `bits` stands for, as Core prints it: 64 hex digits, big-endian.
pub fn target_hex(bits: quarry_chain::CompactTarget) -> String {
    bits.to_target().map_or_else(
        || "0".repeat(64),
        |target| hex::encode(target.to_u256().to_be_bytes::<32>()),
    )
}

/// The output script Quarry's pay-to-key output stands for in Core's terms: a witness v1
/// program of the 32-byte key (`OP_1 PUSH32 key`), with its address and descriptor.
pub fn script_pubkey(key: quarry_chain::OutputKey, params: &ChainParams) -> ScriptPubKey {
    let key_hex = key.to_string();
    let raw = format!("rawtr({key_hex})");
    ScriptPubKey {
        asm: format!("1 {key_hex}"),
        desc: format!("{raw}#{}", descriptor_checksum(&raw)),
        hex: format!("5120{key_hex}"),
        address: Address::new(key, params).to_string(),
        kind: "witness_v1_taproot".into(),
    }
}

/// The checksum of an output descriptor (BIP 380): eight characters of a BCH code over the
/// descriptor's characters.
fn descriptor_checksum(descriptor: &str) -> String {
    const INPUT: &str = "0123456789()[],'/*abcdefgh@:$%{}IJKLMNOPQRSTUVWXYZ&+-.;<=>?!^_|~ijklmnopqrstuvwxyzABCDEFGH`#\"\\ ";
    const CHARSET: &[u8] = b"qpzry9x8gf2tvdw0s3jn54khce6mua7l";
    fn polymod(c: u64, value: u64) -> u64 {
        let top = c >> 35;
        let mut c = ((c & 0x7_ffff_ffff) << 5) ^ value;
        for (bit, generator) in [
            0xf5_dee5_1989,
            0xa9_fdca_3312,
            0x1b_ab10_e32d,
            0x37_06b1_677a,
            0x64_4d62_6ffd,
        ]
        .into_iter()
        .enumerate()
        {
            if top >> bit & 1 == 1 {
                c ^= generator;
            }
        }
        c
    }
    let (mut c, mut class, mut count) = (1u64, 0u64, 0);
    for character in descriptor.chars() {
        let Some(position) = INPUT.find(character) else {
            return String::new();
        };
        let position = position as u64;
        c = polymod(c, position & 31);
        class = class * 3 + (position >> 5);
        count += 1;
        if count == 3 {
            c = polymod(c, class);
            (class, count) = (0, 0);
        }
    }
    if count > 0 {
        c = polymod(c, class);
    }
    for _ in 0..8 {
        c = polymod(c, 0);
    }
    c ^= 1;
    (0..8)
        .map(|j| CHARSET[((c >> (5 * (7 - j))) & 31) as usize] as char)
        .collect()
}

/// The difficulty of `bits` relative to the network's easiest target.
pub fn difficulty(params: &ChainParams, bits: quarry_chain::CompactTarget) -> f64 {
    bits.to_target()
        .map_or(0.0, |target| target.difficulty(params.pow_limit()))
}

/// Core's sequence of an input that opts out of every relative lock: Quarry has none.
const FINAL_SEQUENCE: u32 = u32::MAX;

/// A transaction as `decoderawtransaction` shows it.
pub fn transaction(tx: &Transaction, params: &ChainParams) -> DecodedTransaction {
    let txid = tx.txid();
    let size = tx.encoded_size();
    let vin = tx
        .inputs
        .iter()
        .map(|input| {
            if tx.is_coinbase() {
                DecodedInput::Coinbase {
                    coinbase: hex::encode(&input.witness),
                    sequence: FINAL_SEQUENCE,
                }
            } else {
                DecodedInput::Spend {
                    txid: input.prevout.txid,
                    vout: input.prevout.vout,
                    script_sig: ScriptSig::default(),
                    txinwitness: vec![hex::encode(&input.witness)],
                    sequence: FINAL_SEQUENCE,
                }
            }
        })
        .collect();
    let vout = (0..)
        .zip(&tx.outputs)
        .map(|(n, output)| DecodedOutput {
            value: output.value,
            n,
            script_pubkey: script_pubkey(output.pubkey, params),
        })
        .collect();
    DecodedTransaction {
        txid,
        hash: txid,
        version: tx.version,
        size,
        vsize: size,
        weight: size * 4,
        locktime: 0,
        vin,
        vout,
    }
}

/// Where a block stands relative to the best chain.
#[derive(Clone, Copy, Debug)]
pub struct BestChain {
    /// Height of the best tip.
    pub tip_height: u32,
}

impl BestChain {
    /// Confirmations of the block `hash` at `height`: -1 if it is not on the best chain.
    pub fn confirmations<R: ChainReader + ?Sized>(
        self,
        store: &R,
        hash: &BlockHash,
        height: u32,
    ) -> Result<i64, StoreError> {
        Ok(if store.hash_at_height(height)? == Some(*hash) {
            i64::from(self.tip_height) - i64::from(height) + 1
        } else {
            -1
        })
    }
}

/// The median time of the 11 blocks ending at `entry`.
pub fn median_time<R: ChainReader + ?Sized>(
    store: &R,
    entry: &IndexEntry,
) -> Result<u32, StoreError> {
    let mut times = vec![entry.header.time];
    let mut current = *entry;
    while times.len() < 11 && current.height > 0 {
        match store.index_entry(&current.header.prev_blockhash)? {
            Some(parent) => {
                times.push(parent.header.time);
                current = parent;
            }
            None => break,
        }
    }
    times.sort_unstable();
    Ok(times[times.len() / 2])
}

/// A block header as `getblockheader` shows it; `tx_count` when the body is known.
pub fn header<R: ChainReader + ?Sized>(
    store: &R,
    params: &ChainParams,
    best: BestChain,
    hash: &BlockHash,
    entry: &IndexEntry,
    tx_count: Option<usize>,
) -> Result<Map<String, Value>, StoreError> {
    let confirmations = best.confirmations(store, hash, entry.height)?;
    let mut object = Map::new();
    let mut put = |key: &str, value: Value| {
        object.insert(key.to_owned(), value);
    };
    let header = &entry.header;
    put("hash", json!(hash.to_string()));
    put("confirmations", json!(confirmations));
    put("height", json!(entry.height));
    put("version", json!(header.version));
    put("versionHex", json!(format!("{:08x}", header.version)));
    put("merkleroot", json!(header.merkle_root.to_string()));
    put("time", json!(header.time));
    put("mediantime", json!(median_time(store, entry)?));
    put("nonce", json!(header.nonce));
    put("bits", json!(bits_hex(header.bits)));
    put("target", json!(target_hex(header.bits)));
    put("difficulty", json!(difficulty(params, header.bits)));
    put(
        "chainwork",
        json!(hex::encode(entry.chain_work.to_be_bytes())),
    );
    if let Some(count) = tx_count {
        put("nTx", json!(count));
    }
    if entry.height > 0 {
        put(
            "previousblockhash",
            json!(header.prev_blockhash.to_string()),
        );
    }
    if confirmations > 0 {
        if let Some(next) = store.hash_at_height(entry.height + 1)? {
            put("nextblockhash", json!(next.to_string()));
        }
    }
    Ok(object)
}

/// A block as `getblock` shows it at verbosity 1 (txids) or 2 (decoded transactions).
pub fn block<R: ChainReader + ?Sized>(
    store: &R,
    params: &ChainParams,
    best: BestChain,
    entry: &IndexEntry,
    block: &Block,
    verbosity: u8,
) -> Result<Map<String, Value>, StoreError> {
    let hash = block.block_hash();
    let mut object = header(
        store,
        params,
        best,
        &hash,
        entry,
        Some(block.transactions.len()),
    )?;
    let size = block.encoded_size();
    object.insert("size".into(), json!(size));
    object.insert("strippedsize".into(), json!(size));
    object.insert("weight".into(), json!(size * 4));
    let transactions: Vec<Value> = block
        .transactions
        .iter()
        .map(|tx| {
            if verbosity >= 2 {
                serde_json::to_value(transaction(tx, params))
                    .expect("a decoded transaction serialises")
            } else {
                json!(tx.txid().to_string())
            }
        })
        .collect();
    object.insert("tx".into(), Value::Array(transactions));
    Ok(object)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptor_checksums_match_bip_380() {
        // BIP 380's examples.
        assert_eq!(descriptor_checksum("raw(deadbeef)"), "89f8spxm");
        assert_eq!(
            descriptor_checksum("addr(mkmZxiEcEd8ZqjQWVZuC6so5dFMKEFpN2j)"),
            "02wpgw69"
        );
    }

    #[test]
    fn a_pay_to_key_output_is_shown_as_its_witness_v1_script() {
        let params = quarry_chain::testing::unit_params();
        let key = quarry_chain::testing::test_key(1);
        let script = script_pubkey(key, &params);
        assert_eq!(script.hex, format!("5120{key}"));
        assert_eq!(script.asm, format!("1 {key}"));
        assert!(script.desc.starts_with(&format!("rawtr({key})#")));
        assert_eq!(script.desc.len(), "rawtr()#".len() + 64 + 8);
    }
}
