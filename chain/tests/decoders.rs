//! Every decoder a peer, a file or a user can reach, fed arbitrary and mutated bytes: none
//! panics, and whatever one accepts re-encodes to exactly the bytes it came from (one encoding
//! per value, so a hash never depends on who encoded it).

use proptest::prelude::*;
use quarry_chain::encode::{decode, encode};
use quarry_chain::testing::{test_key, WorkloadBuilder};
use quarry_chain::{Address, Block, BlockHeader, ChainParams, Transaction};

/// Valid encodings to mutate: blocks with transactions, one of them alone, a header.
fn seeds() -> Vec<Vec<u8>> {
    let mut builder = WorkloadBuilder::new(3);
    let mut seeds = Vec::new();
    for _ in 0..6 {
        let block = builder.extend(3);
        seeds.push(encode(&block.header));
        if let Some(tx) = block.transactions.last() {
            seeds.push(encode(tx));
        }
        seeds.push(encode(&block));
    }
    seeds
}

/// `bytes` with `edits` applied: (position, new byte) pairs, then cut to `keep` of its length.
fn mutate(mut bytes: Vec<u8>, edits: &[(usize, u8)], keep: f64) -> Vec<u8> {
    for (position, byte) in edits {
        if !bytes.is_empty() {
            let at = position % bytes.len();
            bytes[at] = *byte;
        }
    }
    let kept = ((bytes.len() as f64) * keep).ceil() as usize;
    bytes.truncate(kept.max(1));
    bytes
}

/// Decoding `bytes` as `T` does not panic, and an accepted value re-encodes to `bytes`.
fn round_trips_if_accepted<T: bincode::Decode<()> + bincode::Encode>(bytes: &[u8]) {
    if let Ok(value) = decode::<T>(bytes) {
        assert_eq!(encode(&value), bytes, "a second encoding of one value");
    }
}

fn all_decoders(bytes: &[u8]) {
    round_trips_if_accepted::<Block>(bytes);
    round_trips_if_accepted::<Transaction>(bytes);
    round_trips_if_accepted::<BlockHeader>(bytes);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic_a_decoder(bytes in prop::collection::vec(any::<u8>(), 0..4_096)) {
        all_decoders(&bytes);
    }

    #[test]
    fn mutated_valid_encodings_never_panic_a_decoder(
        seed in 0usize..18,
        edits in prop::collection::vec((any::<usize>(), any::<u8>()), 0..8),
        keep in 0.0f64..=1.0,
    ) {
        let seeds = seeds();
        let bytes = mutate(seeds[seed % seeds.len()].clone(), &edits, keep);
        all_decoders(&bytes);
    }

    #[test]
    fn arbitrary_text_never_panics_the_address_parser(text in "\\PC{0,120}") {
        let params = ChainParams::regtest();
        if let Ok(address) = Address::parse(&text, &params) {
            prop_assert_eq!(address.to_string(), text.to_lowercase());
        }
    }

    #[test]
    fn mutated_addresses_are_refused_or_round_trip(position in 0usize..64, to in "[0-9a-z]") {
        let params = ChainParams::regtest();
        let mut text: Vec<char> = Address::new(test_key(1), &params).to_string().chars().collect();
        let at = position % text.len();
        text[at] = to.chars().next().unwrap();
        let text: String = text.into_iter().collect();
        if let Ok(address) = Address::parse(&text, &params) {
            prop_assert_eq!(address.to_string(), text);
        }
    }

    #[test]
    fn arbitrary_text_never_panics_the_network_file_parser(text in "\\PC{0,400}") {
        let _ = ChainParams::from_toml_str(&text);
    }

    #[test]
    fn edited_network_files_load_or_say_why(
        line in 0usize..12,
        value in prop_oneof![Just("0".to_owned()), Just("-1".to_owned()), Just("\"x\"".to_owned()),
            Just("4294967296".to_owned()), Just("{}".to_owned()), Just("1e400".to_owned())],
    ) {
        // Regtest's parameters with the genesis nonce pinned, so no edit starts a search.
        let text = toml::to_string(ChainParams::regtest().spec()).unwrap();
        let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
        let at = line % lines.len();
        if let Some((key, _)) = lines[at].split_once(" = ") {
            if key != "genesis_nonce" {
                lines[at] = format!("{key} = {value}");
            }
        }
        let _ = ChainParams::from_toml_str(&lines.join("\n"));
    }
}
