//! The shapes of quarryd's replies, field by field: the server serialises these types and the
//! clients read them back, so a renamed or retyped field breaks the build rather than a user.
//! Field names and order follow Bitcoin Core's; amounts travel as coins (JSON numbers), hashes
//! and keys as hex strings.

use quarry_chain::{Amount, BlockHash, TipStatus, Txid};
use serde::{Deserialize, Serialize};

/// Serde for an [`Amount`] written as a JSON number of coins, as Bitcoin Core writes amounts.
pub mod coins {
    use quarry_chain::Amount;
    use serde::{de::Error, Deserialize, Deserializer, Serializer};

    /// Writes `amount` in coins.
    pub fn serialize<S: Serializer>(amount: &Amount, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_f64(amount.to_sat() as f64 / Amount::SATS_PER_COIN as f64)
    }

    /// Reads coins back to the nearest satoshi; negative or out-of-range amounts are errors.
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Amount, D::Error> {
        let coins = f64::deserialize(deserializer)?;
        let sats = (coins * Amount::SATS_PER_COIN as f64).round();
        if !(0.0..=Amount::MAX_MONEY.to_sat() as f64).contains(&sats) {
            return Err(D::Error::custom(format!(
                "{coins} is not an amount of coins"
            )));
        }
        Ok(Amount::from_sat(sats as u64))
    }
}

/// Serde for a signed number of satoshis written as coins (a mempool delta: negative spends).
pub mod signed_coins {
    use quarry_chain::Amount;
    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes `sats` in coins.
    pub fn serialize<S: Serializer>(sats: &i64, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_f64(*sats as f64 / Amount::SATS_PER_COIN as f64)
    }

    /// Reads coins back to the nearest satoshi.
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<i64, D::Error> {
        let coins = f64::deserialize(deserializer)?;
        Ok((coins * Amount::SATS_PER_COIN as f64).round() as i64)
    }
}

/// `getblockchaininfo`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BlockchainInfo {
    /// The network's name.
    pub chain: String,
    /// Height of the best chain.
    pub blocks: u32,
    /// Height of the best known header.
    pub headers: u32,
    /// The best chain's tip.
    pub bestblockhash: BlockHash,
    /// Difficulty of the tip (1 at the network's easiest target).
    pub difficulty: f64,
    /// The tip's timestamp.
    pub time: u32,
    /// Median time of the last 11 blocks.
    pub mediantime: u32,
    /// Blocks over headers, 1 when synced.
    pub verificationprogress: f64,
    /// Whether the node is still catching up with its peers.
    pub initialblockdownload: bool,
    /// Total work of the best chain, 64 hex digits.
    pub chainwork: String,
    /// Bytes of the chain store.
    pub size_on_disk: u64,
    /// The tip's compact target.
    pub bits: String,
    /// The tip's target, 64 hex digits.
    pub target: String,
    /// Always false: Quarry keeps every block.
    pub pruned: bool,
    /// What the node warns about (a failed chain store), empty when all is well.
    pub warnings: Vec<String>,
}

/// One entry of `getchaintips`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainTip {
    /// Height of the tip.
    pub height: u32,
    /// The tip.
    pub hash: BlockHash,
    /// Blocks from the fork point with the best chain (0 for the best chain's tip).
    pub branchlen: u32,
    /// How far the branch is validated.
    pub status: TipStatus,
}

/// `getmininginfo`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MiningInfo {
    /// Height of the best chain.
    pub blocks: u32,
    /// The tip's compact target.
    pub bits: String,
    /// Difficulty of the tip.
    pub difficulty: f64,
    /// The tip's target, 64 hex digits.
    pub target: String,
    /// The lowest fee rate a transaction needs to be mined here, coins per kvB.
    pub blockmintxfee: f64,
    /// What the next block must meet.
    pub next: NextBlockInfo,
    /// Network hashes per second over the last 120 blocks.
    pub networkhashps: f64,
    /// Transactions in the mempool.
    pub pooledtx: usize,
    /// The network's name.
    pub chain: String,
    /// Whether the background miner runs.
    pub generate: bool,
    /// Mining threads.
    pub genproclimit: usize,
    /// This node's hashes per second now.
    pub hashespersec: f64,
    /// What the node warns about.
    pub warnings: Vec<String>,
}

/// The next block's requirements, in `getmininginfo`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NextBlockInfo {
    /// Its height.
    pub height: u32,
    /// Its compact target.
    pub bits: String,
    /// Its difficulty.
    pub difficulty: f64,
    /// Its target, 64 hex digits.
    pub target: String,
}

/// `getnetworkinfo`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NetworkInfo {
    /// quarryd's version as Core writes its own: major × 10000 + minor × 100 + patch.
    pub version: u64,
    /// `/quarry:VERSION/`.
    pub subversion: String,
    /// The version of Quarry's peer-to-peer protocol.
    pub protocolversion: u64,
    /// The services this node offers, as Core's 16-digit hex bit field.
    pub localservices: String,
    /// Their names.
    pub localservicesnames: Vec<String>,
    /// Whether transactions are relayed: always.
    pub localrelay: bool,
    /// Clock offset to the peers, seconds: not measured (0).
    pub timeoffset: i64,
    /// Always true: the network cannot be switched off.
    pub networkactive: bool,
    /// Connected peers.
    pub connections: usize,
    /// Of which inbound.
    pub connections_in: usize,
    /// Of which outbound.
    pub connections_out: usize,
    /// The networks the node reaches.
    pub networks: Vec<NetworkReach>,
    /// Minimum relay fee rate, coins per kvB.
    pub relayfee: f64,
    /// Fee rate increment a replacement must pay, coins per kvB.
    pub incrementalfee: f64,
    /// The addresses the node listens on.
    pub localaddresses: Vec<LocalAddress>,
    /// What the node warns about.
    pub warnings: Vec<String>,
    /// Quarry: this node's libp2p peer id.
    pub peerid: String,
    /// Quarry: the listen addresses as dialable multiaddrs (ending in `/p2p/PEERID`).
    pub p2paddresses: Vec<String>,
}

/// One network in `getnetworkinfo`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkReach {
    /// `ipv4` or `ipv6` (Quarry has no onion, i2p or cjdns transport).
    pub name: String,
    /// Whether only this network is used.
    pub limited: bool,
    /// Whether it is reachable.
    pub reachable: bool,
    /// The proxy used for it: none.
    pub proxy: String,
    /// Whether proxy credentials are randomised.
    pub proxy_randomize_credentials: bool,
}

/// One listen address in `getnetworkinfo`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalAddress {
    /// The IP address.
    pub address: String,
    /// The TCP port.
    pub port: u16,
    /// Core's relative score of the address: 1 for every listen address.
    pub score: u32,
}

/// One entry of `getpeerinfo`, in Core's shape with Quarry's peer id and score beside.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PeerInfo {
    /// Position in this list.
    pub id: usize,
    /// Its address.
    pub addr: String,
    /// `ipv4`, `ipv6` or `not_publicly_routable`.
    pub network: String,
    /// Its services, as Core's hex bit field.
    pub services: String,
    /// Their names.
    pub servicesnames: Vec<String>,
    /// Whether it relays transactions: always.
    pub relaytxes: bool,
    /// Last send and receive, Unix seconds: not tracked (0).
    pub lastsend: u64,
    /// See `lastsend`.
    pub lastrecv: u64,
    /// Last transaction and block from it: not tracked (0).
    pub last_transaction: u64,
    /// See `last_transaction`.
    pub last_block: u64,
    /// Bytes sent and received: not counted per peer (0).
    pub bytessent: u64,
    /// See `bytessent`.
    pub bytesrecv: u64,
    /// When it connected, Unix seconds.
    pub conntime: u64,
    /// Its clock offset: not measured (0).
    pub timeoffset: i64,
    /// The peer-to-peer protocol version.
    pub version: u64,
    /// Its user agent.
    pub subver: String,
    /// Whether it connected to us.
    pub inbound: bool,
    /// Compact-block relay: not used (false).
    pub bip152_hb_to: bool,
    /// See `bip152_hb_to`.
    pub bip152_hb_from: bool,
    /// Its permissions: none.
    pub permissions: Vec<String>,
    /// Its fee filter, coins per kvB: none (0).
    pub minfeefilter: f64,
    /// Bytes sent per message type: not counted (empty).
    pub bytessent_per_msg: std::collections::BTreeMap<String, u64>,
    /// Bytes received per message type: not counted (empty).
    pub bytesrecv_per_msg: std::collections::BTreeMap<String, u64>,
    /// `inbound` or `outbound-full-relay`.
    pub connection_type: String,
    /// The transport: libp2p (noise over TCP, yamux).
    pub transport_protocol_type: String,
    /// The encrypted session's id: not exposed (empty).
    pub session_id: String,
    /// Quarry: the peer's libp2p id.
    pub peerid: String,
    /// Quarry: its misbehaviour score (100 bans).
    pub misbehavior_score: u32,
}

/// How far one index has come, in `getindexinfo`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexState {
    /// Whether it has reached the best chain's tip.
    pub synced: bool,
    /// The height it has reached.
    pub best_block_height: u32,
}

/// `getindexinfo`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexInfo {
    /// The address index.
    pub addressindex: IndexState,
    /// The transaction index.
    pub txindex: IndexState,
}

/// One entry of `getaddressutxos`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AddressUtxo {
    /// The address paid.
    pub address: String,
    /// The output's transaction.
    pub txid: Txid,
    /// The output's index.
    pub vout: u32,
    /// The same index, under the name insight-style clients use.
    pub output_index: u32,
    /// Its value.
    #[serde(with = "coins")]
    pub amount: Amount,
    /// Its value in satoshis.
    pub satoshis: u64,
    /// Height of the block that created it.
    pub height: u32,
    /// Confirmations of that block.
    pub confirmations: u32,
    /// Whether a coinbase created it.
    pub coinbase: bool,
    /// Whether it may be spent (coinbase outputs wait for maturity).
    pub mature: bool,
}

/// One entry of `getaddresshistory`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddressHistoryEntry {
    /// The address.
    pub address: String,
    /// The transaction.
    pub txid: Txid,
    /// Height of its block.
    pub height: u32,
    /// Its block, on the best chain.
    pub blockhash: Option<BlockHash>,
    /// That block's timestamp (Unix seconds).
    pub time: u32,
    /// Confirmations of that block.
    pub confirmations: u32,
    /// What the transaction paid the address.
    #[serde(with = "coins")]
    pub received: Amount,
    /// What it spent of the address's coins.
    #[serde(with = "coins")]
    pub sent: Amount,
}

/// One entry of `getaddressmempool`: an output paying a watched address, or an input spending
/// one (with `prevtxid` and `prevout`, and a negative amount).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddressMempoolDelta {
    /// The address.
    pub address: String,
    /// The mempool transaction.
    pub txid: Txid,
    /// The output's index, for a payment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<u32>,
    /// The change to the address's balance, in satoshis (negative for a spend).
    #[serde(with = "signed_coins")]
    pub amount: i64,
    /// When the transaction entered the mempool (Unix seconds).
    pub timestamp: u64,
    /// The spent output's transaction, for a spend.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prevtxid: Option<Txid>,
    /// The spent output's index, for a spend.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prevout: Option<u32>,
}

/// An output's script as Core shows it; Quarry's outputs pay a key, shown as taproot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScriptPubKey {
    /// Core's assembly of the equivalent script: `1 KEY`.
    pub asm: String,
    /// Its output descriptor: `rawtr(KEY)#CHECKSUM`.
    pub desc: String,
    /// The equivalent script, hex: `5120` and the 32-byte output key.
    pub hex: String,
    /// The address paid.
    pub address: String,
    /// `witness_v1_taproot`.
    #[serde(rename = "type")]
    pub kind: String,
}

/// An input's script: Quarry signs in the witness, so always empty.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScriptSig {
    /// Empty.
    pub asm: String,
    /// Empty.
    pub hex: String,
}

/// An input of a decoded transaction: a coinbase's data, or the output it spends.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum DecodedInput {
    /// The coinbase input.
    Coinbase {
        /// Its data, hex.
        coinbase: String,
        /// Always final (`0xffffffff`): Quarry has no relative locks.
        sequence: u32,
    },
    /// A spend.
    Spend {
        /// The spent output's transaction.
        txid: Txid,
        /// The spent output's index.
        vout: u32,
        /// Empty: the signature is in the witness.
        #[serde(rename = "scriptSig")]
        script_sig: ScriptSig,
        /// The signature, hex.
        txinwitness: Vec<String>,
        /// Always final (`0xffffffff`).
        sequence: u32,
    },
}

/// An output of a decoded transaction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecodedOutput {
    /// Its value.
    #[serde(with = "coins")]
    pub value: Amount,
    /// Its index.
    pub n: u32,
    /// Whom it pays.
    #[serde(rename = "scriptPubKey")]
    pub script_pubkey: ScriptPubKey,
}

/// A transaction as `decoderawtransaction` shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecodedTransaction {
    /// Its id.
    pub txid: Txid,
    /// Its hash (the txid: Quarry has no segregated witness).
    pub hash: Txid,
    /// Its version.
    pub version: u32,
    /// Encoded bytes.
    pub size: usize,
    /// Virtual size (the size).
    pub vsize: usize,
    /// Weight (four times the size).
    pub weight: usize,
    /// Always 0.
    pub locktime: u32,
    /// Inputs.
    pub vin: Vec<DecodedInput>,
    /// Outputs.
    pub vout: Vec<DecodedOutput>,
}

/// `getrawtransaction TXID true`: the decoded transaction, its hex and, when confirmed, its
/// block.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerboseTransaction {
    /// The transaction.
    #[serde(flatten)]
    pub decoded: DecodedTransaction,
    /// Its bytes, hex.
    pub hex: String,
    /// Its block, when confirmed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blockhash: Option<BlockHash>,
    /// Confirmations of that block (0 when it left the best chain).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirmations: Option<u32>,
    /// That block's timestamp.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<u32>,
    /// The same, under Core's other name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocktime: Option<u32>,
}

/// The part of `getblock HASH 2` a client reads: the block's identity and its decoded
/// transactions (the header fields are those of `getblockheader`).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct BlockWithTransactions {
    /// The block.
    pub hash: BlockHash,
    /// Its height.
    pub height: u32,
    /// Its transactions, the coinbase first.
    pub tx: Vec<DecodedTransaction>,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn tip_statuses_are_written_with_core_names() {
        for status in [
            TipStatus::Active,
            TipStatus::ValidFork,
            TipStatus::ValidHeaders,
            TipStatus::HeadersOnly,
            TipStatus::Invalid,
        ] {
            assert_eq!(serde_json::to_value(status).unwrap(), json!(status.name()));
            let back: TipStatus = serde_json::from_value(json!(status.name())).unwrap();
            assert_eq!(back, status);
        }
    }

    #[test]
    fn amounts_travel_as_coins_and_come_back_to_the_satoshi() {
        let delta = AddressMempoolDelta {
            address: "qrt1p".into(),
            txid: Txid::from_byte_array([7; 32]),
            index: None,
            amount: -123_456_789,
            timestamp: 1,
            prevtxid: Some(Txid::from_byte_array([8; 32])),
            prevout: Some(2),
        };
        let value = serde_json::to_value(&delta).unwrap();
        assert_eq!(value["amount"], json!(-1.23456789));
        assert!(value.get("index").is_none());
        let back: AddressMempoolDelta = serde_json::from_value(value).unwrap();
        assert_eq!(back, delta);
        for sats in [0, 1, 416, 2_100_000_000_000_000, 99_999_999] {
            let amount = Amount::from_sat(sats);
            let value = coins::serialize(&amount, serde_json::value::Serializer).unwrap();
            assert_eq!(coins::deserialize(value).unwrap(), amount, "{sats}");
        }
        assert!(coins::deserialize(json!(-0.1)).is_err());
        assert!(coins::deserialize(json!(21_000_001.0)).is_err());
    }
}
