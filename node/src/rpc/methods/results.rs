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
  "target": "hex"               (string) the target, 64 hex digits
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
  "vin": [ { "coinbase": "hex", "sequence": n } or
           { "txid": "hex", "vout": n, "scriptSig": { "asm": "", "hex": "" },
             "txinwitness": [ "hex" ], "sequence": n } ]
                                (array) inputs: a coinbase's data, or the output spent and
                                its signature; sequence always 4294967295 (no relative locks)
  "vout": [ { "value": x, "n": n, "scriptPubKey": { "asm", "desc", "hex", "address", "type" } } ]
                                (array) outputs: coins, index, the key paid as Core's
                                equivalent script (witness v1: "5120" and the key)"#;

/// The fields of a mempool entry.
const MEMPOOL_ENTRY_FIELDS: &str = r#"  "vsize": n                    (number) virtual size
  "weight": n                   (number) weight
  "time": n                     (number) when it entered the mempool, Unix seconds
  "fee": x                      (number) fee, coins
  "height": n                   (number) the chain's height when it entered
  "fees": { "base": x, "modified": x, "ancestor": x, "descendant": x }
                                (object) its fee, with prioritisation, and with its
                                unconfirmed ancestors or descendants, coins
  "ancestorcount": n            (number) it and its unconfirmed ancestors
  "ancestorsize": n             (number) their virtual size
  "descendantcount": n          (number) it and its unconfirmed descendants
  "descendantsize": n           (number) their virtual size
  "wtxid": "hex"                (string) the txid (no segregated witness)
  "unbroadcast": false          (boolean) always false: relayed on arrival
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
  "bits": "hex"                 (string) the tip's compact target
  "target": "hex"               (string) the tip's target, 64 hex digits
  "pruned": false               (boolean) always false: every block is kept
  "warnings": [ "str" ]         (array) what the node warns about, empty when all is well
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
  "incrementalrelayfee": x      (number) what a replacement pays on top, coins per kvB
  "unbroadcastcount": 0         (number) always 0: transactions are relayed on arrival
  "fullrbf": true               (boolean) always true: any higher-paying spend replaces
  "permitbaremultisig": false   (boolean) no multisig outputs exist
  "maxdatacarriersize": 0       (number) no data-carrier outputs exist
  "orphans": n                  (number) transactions waiting for their parents
}"#],
        "getrawmempool" => &[r#"verbose false: [ "hex" ] (array) txids
verbose true: { "txid": { entry as getmempoolentry }, ... }"#],
        "gettxout" => &[r#"null when spent or unknown, else {
  "bestblock": "hex"            (string) the tip
  "confirmations": n            (number) confirmations (0 in the mempool)
  "value": x                    (number) coins
  "scriptPubKey": { "asm", "desc", "hex", "address", "type" }  (object) the key paid
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
  "capabilities": [ "proposal" ] (array) what the template supports
  "vbavailable": { }            (object) soft-fork deployments: none
  "vbrequired": 0               (number) none required
  "coinbaseaux": { }            (object) coinbase flags: none
  "previousblockhash": "hex"    (string) the tip to build on
  "transactions": [ { "data": "hex", "txid": "hex", "hash": "hex", "fee": n, "sigops": n,
                      "weight": n, "depends": [ n ] } ]
                                (array) mempool transactions by ancestor fee rate (fee in
                                sats; depends: 1-based positions of the ones it spends)
  "coinbasevalue": n            (number) subsidy plus fees, sats
  "target": "hex"               (string) the target
  "mintime": n                  (number) the earliest timestamp allowed
  "mutable": [ "str" ]          (array) what the miner may change
  "noncerange": "hex"           (string) the nonce range
  "sizelimit": n                (number) the block size limit, bytes
  "weightlimit": n              (number) four times the size limit
  "sigoplimit": n               (number) no separate limit: the size limit
  "curtime": n                  (number) the node's time
  "bits": "hex"                 (string) compact target
  "height": n                   (number) the new block's height
}"#],
        "getmininginfo" => &[r#"{
  "blocks": n                   (number) height of the best chain
  "bits": "hex"                 (string) the tip's compact target
  "difficulty": n               (number) difficulty of the tip
  "target": "hex"               (string) the tip's target, 64 hex digits
  "blockmintxfee": x            (number) the lowest fee rate mined here, coins per kvB
  "next": { "height": n, "bits": "hex", "difficulty": n, "target": "hex" }
                                (object) what the next block must meet
  "networkhashps": n            (number) network hashes per second over the last 120 blocks
  "pooledtx": n                 (number) transactions in the mempool
  "chain": "str"                (string) the network's name
  "generate": true              (boolean) whether the background miner runs
  "genproclimit": n             (number) mining threads
  "hashespersec": n             (number) this node's hashes per second now
  "warnings": [ "str" ]         (array) what the node warns about
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
  "addresses": [ {              (array) the address and its direction, when connected
    "address": "str"            (string) the multiaddr
    "connected": "str"          (string) outbound
  } ]
} ]"#],
        "getconnectioncount" => &[r#"n    (number) connected peers"#],
        "getnetworkinfo" => &[r#"{
  "version": n                  (number) quarryd's version, major*10000 + minor*100 + patch
  "subversion": "str"           (string) /quarry:VERSION/
  "protocolversion": n          (number) the peer-to-peer protocol version
  "localservices": "hex"        (string) services offered, Core's bit field (NETWORK)
  "localservicesnames": [ "str" ] (array) their names
  "localrelay": true            (boolean) transactions are relayed
  "timeoffset": n               (number) clock offset to peers: not measured, 0
  "networkactive": true         (boolean) always true
  "connections": n              (number) connected peers
  "connections_in": n           (number) of which inbound
  "connections_out": n          (number) of which outbound
  "networks": [ {               (array) ipv4 and ipv6 (no onion, i2p or cjdns)
    "name": "str"               (string) the network
    "limited": true             (boolean) whether only it is used
    "reachable": true           (boolean) whether it is reachable
    "proxy": "str"              (string) the proxy: none
    "proxy_randomize_credentials": true (boolean) false
  } ]
  "relayfee": n                 (numeric) minimum relay fee rate, coins/kvB
  "incrementalfee": n           (numeric) what a replacement pays on top, coins/kvB
  "localaddresses": [ {         (array) the listen addresses
    "address": "str"            (string) IP address
    "port": n                   (number) TCP port
    "score": n                  (number) 1
  } ]
  "warnings": [ "str" ]         (array) what the node warns about
  "peerid": "str"               (string) Quarry: this node's libp2p peer id
  "p2paddresses": [ "str" ]     (array) Quarry: listen addresses as dialable multiaddrs
}"#],
        "getpeerinfo" => &[r#"[ {
  "id": n                       (number) position in this list
  "addr": "str"                 (string) its address (a multiaddr)
  "network": "str"              (string) ipv4, ipv6 or not_publicly_routable
  "services": "hex"             (string) its services (NETWORK)
  "servicesnames": [ "str" ]    (array) their names
  "relaytxes": true             (boolean) always true
  "lastsend": n                 (number) not tracked per peer: 0
  "lastrecv": n                 (number) not tracked per peer: 0
  "last_transaction": n         (number) not tracked per peer: 0
  "last_block": n               (number) not tracked per peer: 0
  "bytessent": n                (number) not counted per peer: 0
  "bytesrecv": n                (number) not counted per peer: 0
  "conntime": n                 (number) when it connected, Unix seconds
  "timeoffset": n               (number) not measured: 0
  "version": n                  (number) the peer-to-peer protocol version
  "subver": "str"               (string) its user agent
  "inbound": true               (boolean) whether it connected to us
  "bip152_hb_to": true          (boolean) compact blocks are not used: false
  "bip152_hb_from": true        (boolean) false
  "permissions": [ "str" ]      (array) none
  "minfeefilter": n             (numeric) none: 0
  "bytessent_per_msg": {}       (object) not counted: empty
  "bytesrecv_per_msg": {}       (object) not counted: empty
  "connection_type": "str"      (string) inbound or outbound-full-relay
  "transport_protocol_type": "str" (string) libp2p
  "session_id": "str"           (string) not exposed: empty
  "peerid": "str"               (string) Quarry: the peer's libp2p id
  "misbehavior_score": n        (number) Quarry: its misbehaviour score (100 bans)
} ]"#],
        "listbanned" => &[r#"[ {
  "address": "str"              (string) the banned peer id
  "ban_created": n              (number) when the ban began, Unix seconds
  "banned_until": n             (number) when the ban ends, Unix seconds
  "ban_duration": n             (number) its length, seconds
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
  "wtxid": "hex"                (string) the same (no segregated witness)
  "allowed": true               (boolean) whether the mempool would take it
  "vsize": n                    (number) its virtual size, when allowed
  "fees": { "base": x }         (object) its fee in coins, when allowed
  "reject-reason": "str"        (string) why not, when refused
  "reject-details": "str"       (string) the same in words
} ]"#],
        "validateaddress" => &[r#"{
  "isvalid": true               (boolean) whether it is an address of this network
  "address": "str"              (string) the address, when valid
  "scriptPubKey": "hex"         (string) Core's equivalent script: "5120" and the key
  "isscript": false             (boolean) always false
  "iswitness": true             (boolean) always true when valid (shown as taproot)
  "witness_version": 1          (number) 1 when valid
  "witness_program": "hex"      (string) the output key it pays
  "pubkey": "hex"               (string) the same
  "error": "str"                (string) what is wrong, when invalid
}"#],
        "help" => &[r#""str"    (string) the list of methods, or one method's description"#],
        "stop" => &[r#""str"    (string) that the node is stopping"#],
        "uptime" => &[r#"n    (number) seconds since the node started"#],
        "ping" => &[r#"null"#],
        "getnettotals" => &[r#"{
  "totalbytesrecv": n           (number) bytes received since start
  "totalbytessent": n           (number) bytes sent since start
  "timemillis": n               (number) the node's clock, Unix milliseconds
  "uploadtarget": { "timeframe": n, "target": 0, "target_reached": false,
                    "serve_historical_blocks": true, "bytes_left_in_cycle": 0,
                    "time_left_in_cycle": 0 }  (object) no upload target is set
}"#],
        "getchaintxstats" => &[r#"{
  "time": n                     (number) the window's last block's timestamp
  "txcount": n                  (number) transactions in the chain up to it
  "window_final_block_hash": "hex" (string) that block
  "window_final_block_height": n (number) its height
  "window_block_count": n       (number) blocks in the window
  "window_tx_count": n          (number) transactions in the window, when it is not empty
  "window_interval": n          (number) seconds it spans, when it is not empty
  "txrate": x                   (number) transactions per second, when it spans time
}"#],
        "getrpcinfo" => &[r#"{
  "active_commands": [ {        (array) the calls being answered, this one included
    "method": "str"             (string) the method
    "duration": n               (number) microseconds it has run
  } ]
  "logpath": "str"              (string) empty: quarryd logs to standard error
}"#],
        "getmemoryinfo" => &[r#"{
  "locked": { "used": 0, "free": 0, "total": 0, "locked": 0, "chunks_used": 0, "chunks_free": 0 }
                                (object) locked-memory pool: Quarry locks no memory
}"#],
        "getblockstats" => &[
            r#"{   (sats and sats per virtual byte; only the stats asked for, when given)
  "avgfee": n, "avgfeerate": n, "avgtxsize": n, "blockhash": "hex",
  "feerate_percentiles": [ n, n, n, n, n ]  (array) 10th, 25th, 50th, 75th, 90th, by size
  "height": n, "ins": n, "maxfee": n, "maxfeerate": n, "maxtxsize": n, "medianfee": n,
  "mediantime": n, "mediantxsize": n, "minfee": n, "minfeerate": n, "mintxsize": n,
  "outs": n, "subsidy": n, "swtotal_size": 0, "swtotal_weight": 0, "swtxs": 0, "time": n,
  "total_out": n, "total_size": n, "total_weight": n, "totalfee": n, "txs": n,
  "utxo_increase": n, "utxo_increase_actual": n
}"#,
        ],
        "estimatesmartfee" => &[r#"{
  "feerate": x                  (number) coins per kvB, at least the minimum relay fee rate
  "errors": [ "str" ]           (array) when no recent block had a fee-paying transaction
  "blocks": n                   (number) the target it is for (0 with errors)
}"#],
        "gettxoutsetinfo" => &[r#"{
  "height": n                   (number) the tip's height
  "bestblock": "hex"            (string) the tip
  "txouts": n                   (number) unspent outputs
  "bogosize": n                 (number) Core's size estimate: 84 bytes an output
  "hash_serialized_3": "hex"    (string) SHA-256d of every outpoint and coin, in order, Quarry's encoding
  "total_amount": x             (number) coins in the set
  "transactions": n             (number) transactions with unspent outputs
  "disk_size": n                (number) bytes of the chain store
}"#],
        "getmempoolancestors" | "getmempooldescendants" => {
            &[r#"verbose false: [ "hex" ] (array) txids
verbose true: { "txid": { entry as getmempoolentry }, ... }"#]
        }
        "getdeploymentinfo" => &[r#"{
  "hash": "hex"                 (string) the block reported at
  "height": n                   (number) its height
  "deployments": { }            (object) soft-fork deployments: none
}"#],
        "waitfornewblock" | "waitforblockheight" => &[r#"{
  "hash": "hex"                 (string) the tip when the wait ended
  "height": n                   (number) its height
}"#],
        _ => &[],
    }
}
