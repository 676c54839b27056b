#![no_main]
//! A gossip message: the first byte picks the topic (blocks or transactions), the rest is the
//! payload, refused over the topic's size and otherwise decoded as the node does.

use libfuzzer_sys::fuzz_target;
use quarry_chain::encode::decode;
use quarry_chain::{Block, Transaction};
use quarry_network::protocol::TopicKind;

fuzz_target!(|data: &[u8]| {
    let Some((topic, payload)) = data.split_first() else {
        return;
    };
    let kind = if topic % 2 == 0 {
        TopicKind::Blocks
    } else {
        TopicKind::Transactions
    };
    if payload.len() > kind.max_payload() {
        return;
    }
    match kind {
        TopicKind::Blocks => {
            let _ = decode::<Block>(payload).map(|block| block.block_hash());
        }
        TopicKind::Transactions => {
            let _ = decode::<Transaction>(payload).map(|tx| tx.txid());
        }
    }
});
