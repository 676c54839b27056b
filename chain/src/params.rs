//! Chain parameters: the built-in networks `main`, `testnet` and `regtest`, and custom networks
//! read from a TOML file. The genesis block is derived deterministically from the parameters.

use std::path::Path;

use bech32::Hrp;
use serde::{Deserialize, Serialize};

use crate::amount::Amount;
use crate::block::{merkle_root, Block, BlockHeader};
use crate::error::ParamsError;
use crate::hash::BlockHash;
use crate::pow::{CompactTarget, PowCheck, PowMode, Target, Work};
use crate::retarget::{HeaderSummary, RetargetParams, RetargetRule};
use crate::transaction::{OutputKey, Transaction, TxOut, COINBASE_PREFIX_BYTES, MAX_WITNESS_BYTES};

/// The parameters of a network as written in a TOML file (and as the built-ins are defined).
/// Every field is required except `genesis_nonce` (searched for when absent), `genesis_bits`
/// and `minimum_chain_work`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkSpec {
    /// Network name: lowercase letters, digits and `-`.
    pub name: String,
    /// Retargeting algorithm, e.g. `{ rule = "asert", half_life = 600 }`.
    pub retarget: RetargetRule,
    /// Ideal seconds between blocks.
    pub target_spacing: u32,
    /// The easiest allowed target, in compact form (also the genesis block's bits unless
    /// `genesis_bits` says otherwise).
    pub pow_limit_bits: u32,
    /// The genesis block's target, in compact form, when it is harder than the limit: the
    /// work a block should take at the hash rate planned, leaving retargeting room to ease
    /// when the miners turn out slower. None: the limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub genesis_bits: Option<u32>,
    /// `real` (the default) or `simulated`: headers need not meet their target (custom and
    /// local networks only, for experiments: see [`PowMode::Simulated`]).
    #[serde(default, skip_serializing_if = "PowMode::is_real")]
    pub pow: PowMode,
    /// The first blocks' subsidy, in sats.
    pub initial_subsidy_sats: u64,
    /// Blocks between subsidy halvings.
    pub halving_interval: u32,
    /// Confirmations before a coinbase output may be spent.
    pub coinbase_maturity: u32,
    /// How far, in seconds, a block's time may run ahead of the local clock.
    pub max_future_block_time: u32,
    /// The genesis block's timestamp.
    pub genesis_time: u32,
    /// Free text in the genesis coinbase (at most 88 bytes).
    pub genesis_message: String,
    /// The genesis header's nonce; searched from 0 when absent.
    #[serde(default)]
    pub genesis_nonce: Option<u32>,
    /// The least chain work, in hex, a branch of headers must have before any of it is
    /// indexed (Bitcoin Core's `nMinimumChainWork`): headers of lighter branches are only held
    /// in memory, so a node that has not synced yet stores no cheap header chain. Not a
    /// consensus rule; raise it as the network's chain grows. None: no minimum.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minimum_chain_work: Option<String>,
}

impl NetworkSpec {
    /// The main network: Bitcoin's epoch retargeting every 2016 blocks of ten minutes.
    pub fn main() -> Self {
        NetworkSpec {
            name: "main".into(),
            retarget: RetargetRule::Epoch { interval: 2016 },
            target_spacing: 600,
            pow_limit_bits: 0x1e00_ffff,
            initial_subsidy_sats: 50 * Amount::SATS_PER_COIN,
            halving_interval: 210_000,
            coinbase_maturity: 100,
            max_future_block_time: 2 * 60 * 60,
            genesis_time: 1_795_219_200,
            genesis_message: "Quarry main 2026-11-21: most work wins".into(),
            genesis_nonce: Some(MAIN_GENESIS_NONCE),
            minimum_chain_work: None,
            genesis_bits: None,
            pow: PowMode::Real,
        }
    }

    /// The public test network: two-minute blocks, ASERT with a two-hour half-life.
    pub fn testnet() -> Self {
        NetworkSpec {
            name: "testnet".into(),
            retarget: RetargetRule::Asert {
                half_life: 2 * 60 * 60,
            },
            target_spacing: 120,
            pow_limit_bits: 0x1f00_ffff,
            initial_subsidy_sats: 50 * Amount::SATS_PER_COIN,
            halving_interval: 210_000,
            coinbase_maturity: 100,
            max_future_block_time: 2 * 60 * 60,
            genesis_time: 1_795_219_200,
            genesis_message: "Quarry testnet 2026-11-21".into(),
            genesis_nonce: Some(TESTNET_GENESIS_NONCE),
            minimum_chain_work: None,
            genesis_bits: None,
            pow: PowMode::Real,
        }
    }

    /// Local regression testing: a very easy pow limit and one-second spacing, so a laptop
    /// mines a block in well under a second, with ASERT (ten-minute half-life) still on.
    pub fn regtest() -> Self {
        NetworkSpec {
            name: "regtest".into(),
            retarget: RetargetRule::Asert { half_life: 600 },
            target_spacing: 1,
            pow_limit_bits: 0x207f_ffff,
            initial_subsidy_sats: 50 * Amount::SATS_PER_COIN,
            halving_interval: 150,
            coinbase_maturity: 100,
            max_future_block_time: 2 * 60 * 60,
            genesis_time: 1_795_219_200,
            genesis_message: "Quarry regtest".into(),
            genesis_nonce: Some(REGTEST_GENESIS_NONCE),
            minimum_chain_work: None,
            genesis_bits: None,
            pow: PowMode::Real,
        }
    }
}

/// The validated parameters of one network, with its genesis block.
#[derive(Clone, Debug)]
pub struct ChainParams {
    spec: NetworkSpec,
    address_prefix: Hrp,
    pow_limit: Target,
    minimum_chain_work: Work,
    genesis: Block,
    genesis_hash: BlockHash,
}

/// Work from hex, with or without `0x` (Bitcoin Core's `-minimumchainwork` format).
pub fn parse_work(hex: &str) -> Option<Work> {
    let digits = hex.strip_prefix("0x").unwrap_or(hex);
    if digits.is_empty() || digits.len() > 64 {
        return None;
    }
    ruint::aliases::U256::from_str_radix(digits, 16)
        .ok()
        .map(Work::from_u256)
}

impl ChainParams {
    /// Validates `spec` and derives its genesis block.
    pub fn new(spec: NetworkSpec) -> Result<Self, ParamsError> {
        let invalid = |field: &'static str, reason: String| ParamsError::Invalid { field, reason };
        if spec.name.is_empty()
            || !spec
                .name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(invalid(
                "name",
                format!("{:?} must be lowercase letters, digits and '-'", spec.name),
            ));
        }
        let address_prefix = match spec.name.as_str() {
            "main" => "qr",
            "testnet" => "tq",
            "regtest" => "qrt",
            name => name,
        };
        let address_prefix = Hrp::parse(address_prefix).map_err(|error| {
            invalid("name", format!("not usable as an address prefix: {error}"))
        })?;
        // Every address of the network must encode: bech32m caps an address at 90 characters.
        if crate::address::encode_key(address_prefix, &[0; 32]).is_none() {
            return Err(invalid(
                "name",
                format!(
                    "{:?} is too long for an address prefix (at most {} characters)",
                    spec.name,
                    crate::address::MAX_PREFIX_LEN
                ),
            ));
        }
        if spec.target_spacing == 0 {
            return Err(invalid(
                "target_spacing",
                "must be at least 1 second".into(),
            ));
        }
        match spec.retarget {
            RetargetRule::Epoch { interval } if interval < 2 => {
                return Err(invalid(
                    "retarget.interval",
                    format!("{interval} must be at least 2"),
                ))
            }
            // Bitcoin Core clamps the measured timespan to a quarter of the target timespan: a
            // target timespan under 4 s would clamp to zero.
            RetargetRule::Epoch { interval }
                if u64::from(interval) * u64::from(spec.target_spacing) < 4 =>
            {
                return Err(invalid(
                    "retarget.interval",
                    format!(
                        "{interval} blocks of {} s is a target timespan under 4 s, which cannot be \
                         clamped to a quarter",
                        spec.target_spacing
                    ),
                ))
            }
            RetargetRule::Asert { half_life: 0 } => {
                return Err(invalid(
                    "retarget.half_life",
                    "must be at least 1 second".into(),
                ))
            }
            _ => {}
        }
        let pow_limit = CompactTarget::from_consensus(spec.pow_limit_bits)
            .to_target()
            .ok_or_else(|| {
                invalid(
                    "pow_limit_bits",
                    format!(
                        "{:#010x} is not a valid positive target",
                        spec.pow_limit_bits
                    ),
                )
            })?;
        if pow_limit.to_compact_lossy().to_consensus() != spec.pow_limit_bits {
            return Err(invalid(
                "pow_limit_bits",
                format!(
                    "{:#010x} is not in normal form; write {}",
                    spec.pow_limit_bits,
                    pow_limit.to_compact_lossy()
                ),
            ));
        }
        let genesis_target = match spec.genesis_bits {
            None => pow_limit,
            Some(bits) => match CompactTarget::from_consensus(bits).to_target() {
                Some(target)
                    if target <= pow_limit && target.to_compact_lossy().to_consensus() == bits =>
                {
                    target
                }
                _ => {
                    return Err(invalid(
                        "genesis_bits",
                        format!("{bits:#010x} is not a normal-form target at most the limit"),
                    ))
                }
            },
        };
        if !Amount::from_sat(spec.initial_subsidy_sats).is_within_money_range() {
            return Err(invalid(
                "initial_subsidy_sats",
                "exceeds 21,000,000 coins".into(),
            ));
        }
        if spec.halving_interval == 0 {
            return Err(invalid(
                "halving_interval",
                "must be at least 1 block".into(),
            ));
        }
        let room = MAX_WITNESS_BYTES - COINBASE_PREFIX_BYTES;
        if spec.genesis_message.len() > room {
            return Err(invalid(
                "genesis_message",
                format!("longer than {room} bytes"),
            ));
        }
        if spec.pow == PowMode::Simulated && matches!(spec.name.as_str(), "main" | "testnet") {
            return Err(invalid(
                "pow",
                format!(
                    "simulated proof of work is for custom and local networks, not '{}'",
                    spec.name
                ),
            ));
        }
        let mut genesis = genesis_template(&spec);
        match spec.genesis_nonce {
            // No work to prove: the genesis block is as written.
            _ if spec.pow == PowMode::Simulated => {
                genesis.header.nonce = spec.genesis_nonce.unwrap_or(0);
            }
            Some(nonce) => {
                genesis.header.nonce = nonce;
                if !genesis_target.is_met_by(genesis.block_hash()) {
                    return Err(invalid(
                        "genesis_nonce",
                        format!(
                            "{nonce} does not give a genesis hash meeting its target; \
                             remove it to search for one"
                        ),
                    ));
                }
            }
            None => {
                // The search must end within seconds: a file asking for a harder limit names
                // its nonce (at most about 2^28 hashes are expected).
                if genesis_target.to_work()
                    > Work::from_u256(ruint::aliases::U256::from(1u64 << 28))
                {
                    return Err(invalid(
                        "genesis_nonce",
                        "this genesis target is too hard to search a nonce for at start-up; \
                         give genesis_nonce"
                            .into(),
                    ));
                }
                genesis.header.nonce = (0..=u32::MAX)
                    .find(|&nonce| {
                        genesis.header.nonce = nonce;
                        genesis_target.is_met_by(genesis.header.block_hash())
                    })
                    .ok_or_else(|| {
                        invalid(
                            "pow_limit_bits",
                            "no genesis nonce meets this limit; choose an easier one".into(),
                        )
                    })?;
            }
        }
        let genesis_hash = genesis.block_hash();
        let minimum_chain_work = match &spec.minimum_chain_work {
            None => Work::ZERO,
            Some(hex) => parse_work(hex).ok_or_else(|| {
                invalid(
                    "minimum_chain_work",
                    format!("{hex:?} is not a hexadecimal number of at most 256 bits"),
                )
            })?,
        };
        Ok(Self {
            spec,
            address_prefix,
            pow_limit,
            minimum_chain_work,
            genesis,
            genesis_hash,
        })
    }

    /// Reads custom parameters from TOML text.
    pub fn from_toml_str(text: &str) -> Result<Self, ParamsError> {
        let spec: NetworkSpec = toml::from_str(text).map_err(|source| ParamsError::Toml {
            message: source.to_string(),
        })?;
        Self::new(spec)
    }

    /// Reads custom parameters from a TOML file.
    pub fn from_toml_file(path: &Path) -> Result<Self, ParamsError> {
        let text = std::fs::read_to_string(path).map_err(|source| ParamsError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_toml_str(&text)
    }

    /// A built-in network by name, or parameters from a TOML file at `name_or_path`.
    pub fn from_name_or_file(name_or_path: &str) -> Result<Self, ParamsError> {
        match name_or_path {
            "main" => Ok(Self::main()),
            "testnet" => Ok(Self::testnet()),
            "regtest" => Ok(Self::regtest()),
            path if !Path::new(path).exists() => Err(ParamsError::UnknownNetwork {
                name: path.to_owned(),
            }),
            path => Self::from_toml_file(Path::new(path)),
        }
    }

    /// The main network: Bitcoin's epoch retargeting every 2016 blocks of ten minutes.
    pub fn main() -> Self {
        Self::builtin(NetworkSpec::main())
    }

    /// The public test network: two-minute blocks, ASERT with a two-hour half-life.
    pub fn testnet() -> Self {
        Self::builtin(NetworkSpec::testnet())
    }

    /// Local regression testing: a very easy pow limit and one-second spacing, so a laptop
    /// mines a block in well under a second, with ASERT (ten-minute half-life) still on.
    pub fn regtest() -> Self {
        Self::builtin(NetworkSpec::regtest())
    }

    fn builtin(spec: NetworkSpec) -> Self {
        Self::new(spec).expect("built-in parameters are valid (checked by tests)")
    }

    /// The least chain work a branch of headers needs to be indexed (see
    /// [`NetworkSpec::minimum_chain_work`]).
    pub fn minimum_chain_work(&self) -> Work {
        self.minimum_chain_work
    }

    /// The parameters as given.
    pub fn spec(&self) -> &NetworkSpec {
        &self.spec
    }

    /// The network's name.
    pub fn name(&self) -> &str {
        &self.spec.name
    }

    /// The prefix of this network's addresses: `qr` (main), `tq` (testnet), `qrt` (regtest),
    /// and the network's name for custom networks.
    pub fn address_prefix(&self) -> Hrp {
        self.address_prefix
    }

    /// The easiest target allowed.
    pub fn pow_limit(&self) -> Target {
        self.pow_limit
    }

    /// What headers' proof of work is checked against.
    pub fn pow_check(&self) -> PowCheck {
        PowCheck {
            limit: self.pow_limit,
            mode: self.spec.pow,
        }
    }

    /// Whether headers must meet their target, or blocks are found in simulation.
    pub fn pow_mode(&self) -> PowMode {
        self.spec.pow
    }

    /// The genesis block.
    pub fn genesis_block(&self) -> &Block {
        &self.genesis
    }

    /// The genesis block's hash, to which every signature commits.
    pub fn genesis_hash(&self) -> BlockHash {
        self.genesis_hash
    }

    /// Confirmations before a coinbase output may be spent.
    pub fn coinbase_maturity(&self) -> u32 {
        self.spec.coinbase_maturity
    }

    /// How far a block's time may run ahead of the local clock, in seconds.
    pub fn max_future_block_time(&self) -> u32 {
        self.spec.max_future_block_time
    }

    /// Ideal seconds between blocks.
    pub fn target_spacing(&self) -> u32 {
        self.spec.target_spacing
    }

    /// The subsidy of a block at `height`: halved every `halving_interval` blocks, zero after
    /// 64 halvings.
    pub fn block_subsidy(&self, height: u32) -> Amount {
        let halvings = height / self.spec.halving_interval;
        if halvings >= 64 {
            return Amount::ZERO;
        }
        Amount::from_sat(self.spec.initial_subsidy_sats >> halvings)
    }

    /// What the retarget rules need.
    pub fn retarget_params(&self) -> RetargetParams {
        RetargetParams {
            rule: self.spec.retarget,
            target_spacing: self.spec.target_spacing,
            pow_limit: self.pow_limit,
            genesis: HeaderSummary {
                height: 0,
                time: self.genesis.header.time,
                bits: self.genesis.header.bits,
            },
        }
    }
}

const MAIN_GENESIS_NONCE: u32 = 31_611_138;
const TESTNET_GENESIS_NONCE: u32 = 88_634;
const REGTEST_GENESIS_NONCE: u32 = 0;

/// The genesis block before its nonce is chosen: a coinbase carrying the message and paying
/// nothing to the all-zero key, which is not a curve point (genesis outputs are never spendable).
fn genesis_template(spec: &NetworkSpec) -> Block {
    let coinbase = Transaction::new_coinbase(
        0,
        0,
        spec.genesis_message.as_bytes(),
        vec![TxOut {
            value: Amount::ZERO,
            pubkey: OutputKey::from_byte_array([0; 32]),
        }],
    );
    let (root, _) = merkle_root(vec![coinbase.txid()]);
    Block {
        header: BlockHeader {
            version: BlockHeader::CURRENT_VERSION,
            prev_blockhash: BlockHash::ZERO,
            merkle_root: root,
            time: spec.genesis_time,
            bits: CompactTarget::from_consensus(spec.genesis_bits.unwrap_or(spec.pow_limit_bits)),
            nonce: 0,
        },
        transactions: vec![coinbase],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ruint::aliases::U256;

    const CUSTOM: &str = r#"
        name = "my-net"
        retarget = { rule = "epoch", interval = 10 }
        target_spacing = 5
        pow_limit_bits = 0x207fffff
        initial_subsidy_sats = 1000
        halving_interval = 100
        coinbase_maturity = 10
        max_future_block_time = 60
        genesis_time = 1795219200
        genesis_message = "custom"
    "#;

    #[test]
    fn an_epoch_timespan_too_short_to_clamp_is_refused() {
        let mut spec = NetworkSpec::regtest();
        spec.retarget = RetargetRule::Epoch { interval: 3 };
        let error = ChainParams::new(spec.clone()).unwrap_err();
        assert!(error.to_string().contains("under 4 s"), "{error}");
        spec.retarget = RetargetRule::Epoch { interval: 4 };
        assert!(ChainParams::new(spec).is_ok());
    }

    #[test]
    fn builtin_networks_are_valid_and_distinct() {
        let networks = [
            ChainParams::main(),
            ChainParams::testnet(),
            ChainParams::regtest(),
        ];
        for params in &networks {
            assert!(params.pow_limit().is_met_by(params.genesis_hash()));
            assert_eq!(
                ChainParams::from_name_or_file(params.name())
                    .unwrap()
                    .genesis_hash(),
                params.genesis_hash()
            );
        }
        assert_ne!(networks[0].genesis_hash(), networks[1].genesis_hash());
        assert_ne!(networks[1].genesis_hash(), networks[2].genesis_hash());
    }

    #[test]
    fn custom_parameters_load_from_toml_and_search_the_genesis_nonce() {
        let params = ChainParams::from_toml_str(CUSTOM).unwrap();
        assert_eq!(params.name(), "my-net");
        assert_eq!(params.spec().retarget, RetargetRule::Epoch { interval: 10 });
        assert!(params.pow_limit().is_met_by(params.genesis_hash()));
        assert_eq!(params.block_subsidy(100), Amount::from_sat(500));
        // The same parameters always derive the same genesis block.
        let again = ChainParams::from_toml_str(CUSTOM).unwrap();
        assert_eq!(again.genesis_hash(), params.genesis_hash());
        // The longest name still renders every address.
        let longest = CUSTOM.replace("\"my-net\"", &format!("\"{}\"", "n".repeat(30)));
        let longest = ChainParams::from_toml_str(&longest).unwrap();
        let address = crate::address::Address::new(crate::testing::test_key(1), &longest);
        assert_eq!(address.to_string().len(), 90);
        // A minimum chain work is node policy: the network, and its genesis, stay the same.
        assert_eq!(params.minimum_chain_work(), Work::ZERO);
        let demanding =
            ChainParams::from_toml_str(&format!("{CUSTOM}\nminimum_chain_work = \"0x1f00\""))
                .unwrap();
        assert_eq!(
            demanding.minimum_chain_work(),
            Work::from_u256(U256::from(0x1f00u32))
        );
        assert_eq!(demanding.genesis_hash(), params.genesis_hash());
        // A pinned nonce is checked, not trusted.
        let nonce = params.genesis_block().header.nonce;
        let pinned = format!("{CUSTOM}\ngenesis_nonce = {nonce}");
        assert_eq!(
            ChainParams::from_toml_str(&pinned).unwrap().genesis_hash(),
            params.genesis_hash()
        );
    }

    #[test]
    fn simulated_proof_of_work_skips_the_hash_check_on_local_networks_only() {
        let simulated = format!("{CUSTOM}\npow = \"simulated\"\ngenesis_bits = 0x1d00ffff");
        let params = ChainParams::from_toml_str(&simulated).unwrap();
        assert_eq!(params.pow_mode(), PowMode::Simulated);
        // A target of Bitcoin's difficulty 1: no search at start-up, nonce 0.
        assert_eq!(params.genesis_block().header.nonce, 0);
        let header = params.genesis_block().header;
        assert!(
            crate::validation::isolation::check_proof_of_work(&header, params.pow_check()).is_ok()
        );
        let real = ChainParams::from_toml_str(&simulated.replace("\"simulated\"", "\"real\""));
        assert!(
            real.is_err(),
            "a real genesis at that target needs its nonce"
        );
        for name in ["main", "testnet"] {
            let text = simulated.replace("\"my-net\"", &format!("\"{name}\""));
            let error = ChainParams::from_toml_str(&text).unwrap_err().to_string();
            assert!(
                error.contains("simulated proof of work is for custom"),
                "{error}"
            );
        }
        // Real is the default and is left out of written files (the built-ins' bytes stay).
        let written = toml::to_string(ChainParams::from_toml_str(CUSTOM).unwrap().spec()).unwrap();
        assert!(!written.contains("pow ="), "{written}");
    }

    #[test]
    fn a_harder_genesis_target_anchors_retargeting_below_the_limit() {
        let easy = ChainParams::from_toml_str(CUSTOM).unwrap();
        let harder =
            ChainParams::from_toml_str(&format!("{CUSTOM}\ngenesis_bits = 0x1f7fffff")).unwrap();
        let header = &harder.genesis_block().header;
        assert_eq!(header.bits.to_consensus(), 0x1f7f_ffff);
        assert!(header
            .bits
            .to_target()
            .unwrap()
            .is_met_by(harder.genesis_hash()));
        assert_eq!(harder.pow_limit(), easy.pow_limit(), "the limit stays");
        assert_ne!(
            harder.genesis_hash(),
            easy.genesis_hash(),
            "another network"
        );
    }

    #[test]
    fn bad_parameter_files_get_errors_naming_the_problem() {
        let cases = [
            (
                format!("{CUSTOM}\nsurprise = 1"),
                "unknown field `surprise`",
            ),
            (CUSTOM.replace("0x207fffff", "0x00800000"), "pow_limit_bits"),
            (CUSTOM.replace("0x207fffff", "0x20800000"), "pow_limit_bits"),
            (
                format!("{CUSTOM}\ngenesis_bits = 0x2100ffff"),
                "genesis_bits",
            ),
            (
                format!("{CUSTOM}\ngenesis_bits = 0x2100007f"),
                "genesis_bits",
            ),
            (
                CUSTOM.replace("target_spacing = 5", "target_spacing = 0"),
                "target_spacing",
            ),
            (
                CUSTOM.replace("interval = 10", "interval = 1"),
                "retarget.interval",
            ),
            (CUSTOM.replace("\"my-net\"", "\"My Net\""), "name"),
            (
                CUSTOM.replace("\"my-net\"", &format!("\"{}\"", "n".repeat(31))),
                "too long for an address prefix (at most 30",
            ),
            (
                CUSTOM.replace("halving_interval = 100", ""),
                "missing field `halving_interval`",
            ),
            (
                CUSTOM.replace("\"epoch\"", "\"fixed\""),
                "unknown variant `fixed`",
            ),
            (
                format!("{CUSTOM}\nminimum_chain_work = \"0xnothex\""),
                "minimum_chain_work",
            ),
            (
                CUSTOM.replace("0x207fffff", "0x1d00ffff"),
                "too hard to search a nonce",
            ),
            (
                format!("{CUSTOM}\nminimum_chain_work = \"1{}\"", "0".repeat(64)),
                "minimum_chain_work",
            ),
        ];
        for (text, expected) in cases {
            let error = ChainParams::from_toml_str(&text).unwrap_err().to_string();
            assert!(
                error.contains(expected),
                "{error:?} should mention {expected:?}"
            );
        }
        let searched = ChainParams::from_toml_str(CUSTOM).unwrap();
        let wrong_nonce = searched.genesis_block().header.nonce.wrapping_add(1);
        // With an easy limit about half of all nonces work; find one that does not.
        let failing = (wrong_nonce..).find(|nonce| {
            let mut header = searched.genesis_block().header;
            header.nonce = *nonce;
            !searched.pow_limit().is_met_by(header.block_hash())
        });
        let text = format!("{CUSTOM}\ngenesis_nonce = {}", failing.unwrap());
        let error = ChainParams::from_toml_str(&text).unwrap_err().to_string();
        assert!(error.contains("genesis_nonce"), "{error}");
        let missing = ChainParams::from_toml_file(Path::new("/nonexistent/quarry.toml"));
        assert!(missing
            .unwrap_err()
            .to_string()
            .contains("/nonexistent/quarry.toml"));
    }
}
