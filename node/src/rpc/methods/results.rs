//! What each method answers, in the layout of Bitcoin Core's help: field, type, meaning.
//! `help METHOD` prints it; a test checks that every field a method answers is described.

/// The fields `getblockheader` and `getblock` share.
const HEADER_FIELDS: &str = r#"  "hash": "hex"                 (string) the block's hash
  "confirmations": n            (number) blocks on top of it in the best chain, -1 when off it
  "height": n                   (number) its height
  "version": n                  (number) header version
  "versionHex": "hex"           (string) the same, hex
  "merkleroot": "hex"           (string) merkle root of its transactions
  "time": n                     (number) its timestamp, Unix seconds
  "mediantime": n               (number) median time of it and the 10 blocks before
  "nonce": n                    (number) header nonce
  "bits": "hex"                 (string) compact target
  "difficulty": n               (number) difficulty (1 at the network's easiest target)
  "chainwork": "hex"            (string) total work of the chain up to it, 64 hex digits
  "nTx": n                      (number) transactions in the block
  "previousblockhash": "hex"    (string) the parent, absent for genesis
  "nextblockhash": "hex"        (string) the child on the best chain, when there is one"#;

/// The fields of a decoded transaction.
const TRANSACTION_FIELDS: &str = r#"  "txid": "hex"                 (string) the transaction's id
  "hash": "hex"                 (string) the same (no segregated witness)
  "version": n                  (number) version
  "size": n                     (number) encoded bytes
  "vsize": n                    (number) virtual size (the size)
  "weight": n                   (number) four times the size
  "locktime": 0                 (number) always 0
  "vin": [ { "coinbase": "hex" } or { "txid": "hex", "vout": n, "signature": "hex" } ]
                                (array) inputs: a coinbase's data, or the output spent
  "vout": [ { "value": x, "n": n, "scriptPubKey": { "address", "hex", "type" } } ]
                                (array) outputs: coins, index, the key paid"#;

/// The fields of a mempool entry.
const MEMPOOL_ENTRY_FIELDS: &str = r#"  "vsize": n                    (number) virtual size
  "weight": n                   (number) weight
  "time": n                     (number) when it entered the mempool, Unix seconds
  "fee": x                      (number) fee, coins
  "fees": { "base": x, "modified": x }  (object) fee and fee with prioritisation, coins
  "ancestorcount": n            (number) it and its unconfirmed ancestors
  "descendantcount": n          (number) it and its unconfirmed descendants
  "depends": [ "hex" ]          (array) txids of its unconfirmed parents
  "spentby": [ "hex" ]          (array) txids of its unconfirmed children
  "bip125-replaceable": true     (boolean) whether a higher fee may replace it"#;

/// The `Result:` section of `help METHOD` for `name`, in pieces to be joined; empty for a
/// method not listed.
pub(super) fn result_of(name: &str) -> &'static [&'static str] {
    match name {
        "getbestblockhash" => &[r#""hex"    (string) the tip's hash"#],
        "getblock" => &[
            r#"verbosity 0: "hex" (string) the block
verbosity 1: {
"#,
            HEADER_FIELDS,
            r#"
  "size": n                     (number) encoded bytes
  "strippedsize": n             (number) the same (no witness data)
  "weight": n                   (number) four times the size
  "tx": [ "hex" ]               (array) txids, the coinbase first
}
verbosity 2: the same with "tx": [ {decoded transaction, as decoderawtransaction} ]"#,
        ],
        "getblockchaininfo" => &[r#"{
  "chain": "str"                (string) the network's name
  "blocks": n                   (number) height of the best chain
  "headers": n                  (number) height of the best known header
  "bestblockhash": "hex"        (string) the best chain's tip
  "difficulty": n               (number) difficulty of the tip
  "time": n                     (number) the tip's timestamp
  "mediantime": n               (number) median time of the last 11 blocks
  "verificationprogress": n     (number) blocks over headers, 1 when synced
  "initialblockdownload": true  (boolean) whether the node is still catching up
  "chainwork": "hex"            (string) total work of the best chain
  "size_on_disk": n             (number) bytes of the chain store
  "pruned": false               (boolean) always false: every block is kept
  "warnings": "str"             (string) what the node warns about, empty when all is well
}"#],
        "getblockcount" => &[r#"n    (number) height of the best chain"#],
        "getblockhash" => &[r#""hex"    (string) the block's hash"#],
        "getblockheader" => &[
            r#"verbose false: "hex" (string) the header
verbose true: {
"#,
            HEADER_FIELDS,
            r#"
}"#,
        ],
        "getchaintips" => &[r#"[ {
  "height": n                   (number) height of the tip
  "hash": "hex"                 (string) the tip
  "branchlen": n                (number) blocks from the fork point with the best chain
  "status": "str"               (string) active, valid-fork, valid-headers, headers-only or invalid
} ]"#],
        "getdifficulty" => &[r#"n    (number) difficulty of the tip"#],
        "getmempoolentry" => &[
            r#"{
"#,
            MEMPOOL_ENTRY_FIELDS,
            r#"
}"#,
        ],
        "getmempoolinfo" => &[r#"{
  "loaded": true                (boolean) always true
  "size": n                     (number) transactions
  "bytes": n                    (number) their virtual size
  "usage": n                    (number) memory they take, bytes
  "total_fee": x                (number) their fees, coins
  "maxmempool": n               (number) the size limit, bytes
  "mempoolminfee": x            (number) the lowest fee rate taken now, coins per kvB
  "minrelaytxfee": x            (number) the policy's minimum fee rate, coins per kvB
  "orphans": n                  (number) transactions waiting for their parents
}"#],
        "getrawmempool" => &[r#"verbose false: [ "hex" ] (array) txids
verbose true: { "txid": { entry as getmempoolentry }, ... }"#],
        "gettxout" => &[r#"null when spent or unknown, else {
  "bestblock": "hex"            (string) the tip
  "confirmations": n            (number) confirmations (0 in the mempool)
  "value": x                    (number) coins
  "scriptPubKey": { "address": "str", "hex": "hex", "type": "str" }  (object) the key paid
  "coinbase": true              (boolean) whether a coinbase created it
}"#],
        "getindexinfo" => &[r#"{
  "addressindex": { "synced": true, "best_block_height": n }  (object) the address index
  "txindex": { "synced": true, "best_block_height": n }       (object) the transaction index
}"#],
        "invalidateblock" => &[r#"null"#],
        "reconsiderblock" => &[r#"null"#],
        "getaddressutxos" => &[r#"[ {
  "address": "str"              (string) the address paid
  "txid": "hex"                 (string) the output's transaction
  "vout": n                     (number) the output's index
  "outputIndex": n              (number) the same, as insight-style clients name it
  "amount": x                   (number) coins
  "satoshis": n                 (number) the same in satoshis
  "height": n                   (number) height of the block that created it
  "confirmations": n            (number) confirmations of that block
  "coinbase": true              (boolean) whether a coinbase created it
  "mature": true                (boolean) whether it may be spent yet
} ]"#],
        "getaddresshistory" => &[r#"[ {
  "address": "str"              (string) the address
  "txid": "hex"                 (string) the transaction
  "height": n                   (number) height of its block
  "blockhash": "hex"            (string) its block
  "time": n                     (number) that block's timestamp
  "confirmations": n            (number) confirmations
  "received": x                 (number) coins it paid the address
  "sent": x                     (number) coins of the address it spent
} ]"#],
        "getaddressmempool" => &[r#"[ {
  "address": "str"              (string) the address
  "txid": "hex"                 (string) the mempool transaction
  "index": n                    (number) the output's index, for a payment
  "amount": x                   (number) change to the balance, coins (negative for a spend)
  "timestamp": n                (number) when it entered the mempool
  "prevtxid": "hex"             (string) the spent output's transaction, for a spend
  "prevout": n                  (number) the spent output's index, for a spend
} ]"#],
        "getblocktemplate" => &[r#"{
  "version": n                  (number) header version
  "rules": [ ]                  (array) always empty
  "previousblockhash": "hex"    (string) the tip to build on
  "transactions": [ { "data": "hex", "txid": "hex", "hash": "hex", "fee": n, "depends": [ ] } ]
                                (array) mempool transactions by ancestor fee rate (fee in sats)
  "coinbasevalue": n            (number) subsidy plus fees, sats
  "target": "hex"               (string) the target
  "mintime": n                  (number) the earliest timestamp allowed
  "mutable": [ "str" ]          (array) what the miner may change
  "noncerange": "hex"           (string) the nonce range
  "sizelimit": n                (number) the block size limit, bytes
  "curtime": n                  (number) the node's time
  "bits": "hex"                 (string) compact target
  "height": n                   (number) the new block's height
}"#],
        "getmininginfo" => &[r#"{
  "blocks": n                   (number) height of the best chain
  "difficulty": n               (number) difficulty of the tip
  "networkhashps": n            (number) network hashes per second over the last 120 blocks
  "pooledtx": n                 (number) transactions in the mempool
  "chain": "str"                (string) the network's name
  "generate": true              (boolean) whether the background miner runs
  "genproclimit": n             (number) mining threads
  "hashespersec": n             (number) this node's hashes per second now
  "warnings": "str"             (string) what the node warns about
}"#],
        "getnetworkhashps" => &[r#"n    (number) hashes per second"#],
        "submitblock" => &[
            r#"null when accepted, else "str" (string) why not: duplicate, inconclusive, or the rule broken"#,
        ],
        "generatetoaddress" => &[r#"[ "hex" ]    (array) the new blocks' hashes"#],
        "setgenerate" => &[r#"null"#],
        "getgenerate" => &[r#"true|false    (boolean) whether the background miner runs"#],
        "addnode" => &[r#"null"#],
        "disconnectnode" => &[r#"null"#],
        "getaddednodeinfo" => &[r#"[ {
  "addednode": "str"            (string) the address given to addnode
  "connected": true             (boolean) whether it is connected
} ]"#],
        "getconnectioncount" => &[r#"n    (number) connected peers"#],
        "getnetworkinfo" => &[r#"{
  "version": "str"              (string) quarryd's version
  "subversion": "str"           (string) /quarry:VERSION/
  "peerid": "str"               (string) this node's libp2p peer id
  "networkactive": true         (boolean) always true
  "connections": n              (number) connected peers
  "connections_in": n           (number) of which inbound
  "connections_out": n          (number) of which outbound
  "localaddresses": [ "str" ]   (array) listen addresses as dialable multiaddrs
  "warnings": "str"             (string) what the node warns about
}"#],
        "getpeerinfo" => &[r#"[ {
  "id": n                       (number) position in this list
  "peerid": "str"               (string) the peer's libp2p id
  "addr": "str"                 (string) its address
  "inbound": true               (boolean) whether it connected to us
  "connection_type": "str"      (string) inbound or outbound-full-relay
  "subver": "str"               (string) its user agent
  "misbehavior_score": n        (number) its misbehaviour score (100 bans)
} ]"#],
        "listbanned" => &[r#"[ {
  "address": "str"              (string) the banned peer id
  "banned_until": n             (number) when the ban ends, Unix seconds
  "time_remaining": n           (number) seconds left
  "reason": "str"               (string) why (misbehaviour, or set by setban)
} ]"#],
        "setban" => &[r#"null"#],
        "clearbanned" => &[r#"null"#],
        "decoderawtransaction" => &[
            r#"{
"#,
            TRANSACTION_FIELDS,
            r#"
}"#,
        ],
        "getrawtransaction" => &[
            r#"verbose false: "hex" (string) the transaction
verbose true: {
"#,
            TRANSACTION_FIELDS,
            r#"
  "hex": "hex"                  (string) the transaction
  "blockhash": "hex"            (string) its block, when confirmed
  "confirmations": n            (number) confirmations of that block
  "time": n                     (number) that block's timestamp
  "blocktime": n                (number) the same
}"#,
        ],
        "sendrawtransaction" => &[r#""hex"    (string) the transaction's id"#],
        "testmempoolaccept" => &[r#"[ {
  "txid": "hex"                 (string) the transaction's id
  "allowed": true               (boolean) whether the mempool would take it
  "vsize": n                    (number) its virtual size, when allowed
  "fees": { "base": x }         (object) its fee in coins, when allowed
  "reject-reason": "str"        (string) why not, when refused
  "reject-details": "str"       (string) the same in words
} ]"#],
        "validateaddress" => &[r#"{
  "isvalid": true               (boolean) whether it is an address of this network
  "address": "str"              (string) the address, when valid
  "pubkey": "hex"               (string) the output key it pays, when valid
  "iswitness": true             (boolean) always true when valid (shown as taproot)
  "witness_version": 1          (number) 1 when valid
  "error": "str"                (string) what is wrong, when invalid
}"#],
        "help" => &[r#""str"    (string) the list of methods, or one method's description"#],
        "stop" => &[r#""str"    (string) that the node is stopping"#],
        "uptime" => &[r#"n    (number) seconds since the node started"#],
        _ => &[],
    }
}
