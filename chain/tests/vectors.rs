//! Golden vectors: they pin the canonical bytes and hashes so no refactor or library upgrade
//! can silently change a txid, a block hash or a signature hash.

use quarry_chain::block::merkle_root;
use quarry_chain::encode::{decode, encode};
use quarry_chain::sighash::SighashCache;
use quarry_chain::testing::{
    assemble_block, pay, signed_spend, test_keypair, BlockTemplate, Spendable,
};
use quarry_chain::{
    Amount, Block, BlockHash, BlockHeader, ChainParams, DecodeError, OutPoint, Transaction, TxOut,
    Txid,
};

fn hex_of<T: bincode::Encode>(value: &T) -> String {
    hex::encode(encode(value))
}

/// Bitcoin's genesis header: the header layout and hash are Bitcoin's, byte for byte.
#[test]
fn bitcoin_genesis_header_decodes_and_hashes_as_bitcoin() {
    let bytes = hex::decode(
        "0100000000000000000000000000000000000000000000000000000000000000000000003ba3edfd7a7b12b27ac72c3e67768f617fc81bc3888a51323a9fb8aa4b1e5e4a29ab5f49ffff001d1dac2b7c",
    )
    .unwrap();
    let header: BlockHeader = decode(&bytes).unwrap();
    assert_eq!(header.time, 1_231_006_505);
    assert_eq!(header.bits.to_consensus(), 0x1d00_ffff);
    assert_eq!(header.nonce, 2_083_236_893);
    assert_eq!(
        header.merkle_root.to_string(),
        "4a5e1e4baab89f3a32518a88c31bc87f618f76673e2cc77ab2127b7afdeda33b"
    );
    assert_eq!(
        header.block_hash().to_string(),
        "000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f"
    );
    assert_eq!(encode(&header), bytes);
    assert!(header
        .bits
        .to_target()
        .unwrap()
        .is_met_by(header.block_hash()));
}

/// Bitcoin block 100,000: four txids and the merkle root in its header.
#[test]
fn merkle_root_matches_bitcoin_block_100000() {
    let txids = [
        "8c14f0db3df150123e6f3dbbf30f8b955a8249b62ac1d1ff16284aefa3d06d87",
        "fff2525b8931402dd09222c50775608f75787bd2b87e56995a7bdd30f79702c4",
        "6359f0868171b1d194cbee1af2f16ea598ae8fad666d9b012c8ed2b79a236ec4",
        "e9a66845e05d5abc0ad04ec80f774a7e585c6e8db975962d069a522137b80c1d",
    ]
    .map(|txid| txid.parse::<Txid>().unwrap());
    let (root, mutated) = merkle_root(txids.to_vec());
    assert!(!mutated);
    assert_eq!(
        root.to_string(),
        "f3e94742aca4b5ef85488dc37c06c3282295ffec960994b2c0d5ac2a25a95766"
    );
    // Duplicating the last transaction gives the same root, flagged as mutated.
    let mut odd = txids[..3].to_vec();
    let (odd_root, odd_mutated) = merkle_root(odd.clone());
    odd.push(txids[2]);
    assert_eq!(merkle_root(odd), (odd_root, true));
    assert!(!odd_mutated);
}

#[test]
fn genesis_blocks_are_pinned() {
    let regtest = ChainParams::regtest();
    assert_eq!(hex_of(regtest.genesis_block()), REGTEST_GENESIS_HEX);
    assert_eq!(regtest.genesis_hash().to_string(), REGTEST_GENESIS_HASH);
    assert_eq!(
        ChainParams::main().genesis_hash().to_string(),
        MAIN_GENESIS_HASH
    );
    assert_eq!(
        ChainParams::testnet().genesis_hash().to_string(),
        TESTNET_GENESIS_HASH
    );
    for params in [ChainParams::main(), ChainParams::testnet(), regtest] {
        let genesis = params.genesis_block();
        assert!(params.pow_limit().is_met_by(genesis.block_hash()));
        assert_eq!(decode::<Block>(&encode(genesis)).unwrap(), *genesis);
    }
}

/// A transaction spending 50 coins from test key 1 to keys 2 and 3, signed deterministically.
fn signed_transaction() -> (Transaction, TxOut) {
    let spent = pay(1, 50 * 100_000_000);
    let coin = Spendable {
        outpoint: OutPoint {
            txid: Txid::from_byte_array([0x11; 32]),
            vout: 1,
        },
        output: spent,
        keypair: test_keypair(1),
    };
    let tx = signed_spend(
        ChainParams::regtest().genesis_hash(),
        &[coin],
        vec![pay(2, 30 * 100_000_000), pay(3, 19 * 100_000_000)],
    );
    (tx, spent)
}

#[test]
fn signed_transaction_bytes_txid_and_sighash_are_pinned() {
    let (tx, spent) = signed_transaction();
    let sighash = SighashCache::new(&tx, &[spent])
        .unwrap()
        .sighash(ChainParams::regtest().genesis_hash(), 0);
    assert_eq!(hex::encode(sighash.0), SIGNED_TX_SIGHASH);
    assert_eq!(hex_of(&tx), SIGNED_TX_HEX);
    assert_eq!(tx.txid().to_string(), SIGNED_TX_TXID);
    assert_eq!(
        decode::<Transaction>(&hex::decode(SIGNED_TX_HEX).unwrap()).unwrap(),
        tx
    );
}

#[test]
fn multi_transaction_block_bytes_and_hash_are_pinned() {
    let params = ChainParams::regtest();
    let (tx, _) = signed_transaction();
    let second = signed_spend(
        params.genesis_hash(),
        &[Spendable::output_of(&tx, 0, test_keypair(2))],
        vec![pay(4, 29 * 100_000_000)],
    );
    let template = BlockTemplate {
        prev_blockhash: params.genesis_hash(),
        height: 1,
        time: params.genesis_block().header.time + 1,
        bits: params.genesis_block().header.bits,
        coinbase_outputs: vec![TxOut {
            value: Amount::from_sat(50 * 100_000_000),
            pubkey: quarry_chain::testing::test_key(0),
        }],
        extra_nonce: 0,
    };
    let block = assemble_block(&template, vec![tx, second]).unwrap();
    assert_eq!(block.header.merkle_root.to_string(), BLOCK_MERKLE_ROOT);
    assert_eq!(block.block_hash().to_string(), BLOCK_HASH);
    assert_eq!(hex_of(&block), BLOCK_HEX);
    assert_eq!(
        decode::<Block>(&hex::decode(BLOCK_HEX).unwrap()).unwrap(),
        block
    );
}

#[test]
fn non_canonical_or_hostile_bytes_are_refused() {
    let bytes = hex::decode(SIGNED_TX_HEX).unwrap();
    assert!(matches!(
        decode::<Transaction>(&bytes[..bytes.len() - 1]),
        Err(DecodeError::Malformed { .. })
    ));
    let mut trailing = bytes.clone();
    trailing.push(0);
    assert_eq!(
        decode::<Transaction>(&trailing),
        Err(DecodeError::TrailingBytes {
            type_name: std::any::type_name::<Transaction>(),
            extra: 1
        })
    );
    // A length prefix claiming 2^64-1 inputs must fail without trying to allocate them.
    let mut hostile = 1u32.to_le_bytes().to_vec();
    hostile.extend_from_slice(&u64::MAX.to_le_bytes());
    assert!(decode::<Transaction>(&hostile).is_err());
    // An 81-byte "header" is not a header.
    assert!(decode::<BlockHeader>(&[0; 81]).is_err());
    assert_eq!(
        "00".repeat(32).parse::<BlockHash>().unwrap(),
        BlockHash::ZERO
    );
}

const REGTEST_GENESIS_HEX: &str = "010000000000000000000000000000000000000000000000000000000000000000000000bbf0f5e298f23957e71862c103937a74befdd286aa1c32bac873721bf30cef8800df006bffff7f200000000001000000000000000100000001000000000000000000000000000000000000000000000000000000000000000000000000000000ffffffff1a000000000000000000000000000000000000005175617272792072656774657374010000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000";
const REGTEST_GENESIS_HASH: &str =
    "1b0cec35330daffd825d926911356b63f82b17e8ab723b7524bd542cbf8d5122";
const MAIN_GENESIS_HASH: &str = "0000006948246d5afad51403c500bd1004793477c6ad497ad029842c5a250ee2";
const TESTNET_GENESIS_HASH: &str =
    "00006df98a5bb1f0a45a14d5c1eab50a8aad33443b640357dad279fa46855107";
const SIGNED_TX_SIGHASH: &str = "8b2ba1c54cb00c5285024c1807f531b400e6b276fa9ebc06f341b90b4a4ffdd3";
const SIGNED_TX_HEX: &str = "0100000001000000000000001111111111111111111111111111111111111111111111111111111111111111010000004000000000000000ba39ab1610a7c089a7c95d17bc070a78c7abd72c112b31d499a797ed496e6a031429de9679c20a00eea253adb859fcab166d11af1e4a9c0fe227fa5e6de8037f0200000000000000005ed0b200000000a358289177abd43d9724c407c98c67bef361b1ee6a79fe60d7dcd0343b3855cb00b33f71000000009caa94cb8022c87f76a02fd3f5ed1d9cf0b09010c8be1e1510ee21513f16f2d1";
const SIGNED_TX_TXID: &str = "35e570109a043f9bf045b144c250c9fe11993eb1f39656849b30955d76ceebd2";
const BLOCK_MERKLE_ROOT: &str = "efbea2424ad8799fcf12bb5d93921d83c751eac54e1b3995065feb88cd7e30c7";
const BLOCK_HASH: &str = "59cef3c2c096f1660a12076b4727ab349461359670b4170238da766884bd96cf";
const BLOCK_HEX: &str = "0100000022518dbf2c54bd24753b72abe8172bf8636b351169925d82fdaf0d3335ec0c1bc7307ecd88eb5f0695391b4ec5ea51c7831d92935dbb12cf9f79d84a42a2beef01df006bffff7f200000000003000000000000000100000001000000000000000000000000000000000000000000000000000000000000000000000000000000ffffffff17000000000000000100000000000000000000007175617272792074657374010000000000000000f2052a01000000a19619d300a6cbaa800ef903edf0e0f279c0506d8dbdc656ea86998ea22aa0aa0100000001000000000000001111111111111111111111111111111111111111111111111111111111111111010000004000000000000000ba39ab1610a7c089a7c95d17bc070a78c7abd72c112b31d499a797ed496e6a031429de9679c20a00eea253adb859fcab166d11af1e4a9c0fe227fa5e6de8037f0200000000000000005ed0b200000000a358289177abd43d9724c407c98c67bef361b1ee6a79fe60d7dcd0343b3855cb00b33f71000000009caa94cb8022c87f76a02fd3f5ed1d9cf0b09010c8be1e1510ee21513f16f2d1010000000100000000000000d2ebce765d95309b845696f3b13e9911fec950c244b145f09b3f049a1070e5350000000040000000000000009de490b35bcd1ecb26330b37c882c0d6d87f4282f4708a116c2a80722cc608208848013982371d4b746653dc9deaf3469106f3fe839e71e72c1f303450d57ce90100000000000000007ddaac00000000f88b7a3b5d9efbd006fa836e1530aa6c33a0fb644a8f84df771bbba96b9bc9de";
