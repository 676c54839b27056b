//! Control and utility methods: help, stop, uptime, address validation.

use quarry_chain::Address;
use serde_json::{json, Value};

use crate::rpc::render;

use super::RpcContext;
use super::METHODS;
use crate::node::Node;
use crate::rpc::error::{ErrorCode, RpcError};
use crate::rpc::params::Params;

pub(super) fn stop(context: &RpcContext) -> Result<Value, RpcError> {
    context.stop.send_replace(true);
    Ok(json!("Quarry server stopping"))
}

pub(super) fn uptime(node: &Node) -> Result<Value, RpcError> {
    Ok(json!(node.started().elapsed().as_secs()))
}

pub(super) fn validate_address(node: &Node, params: &Params) -> Result<Value, RpcError> {
    let text: String = params.required(0)?;
    Ok(match Address::parse(&text, node.params()) {
        Ok(address) => json!({
            "isvalid": true,
            "address": address.to_string(),
            "scriptPubKey": render::script_pubkey(address.key(), node.params()).hex,
            "isscript": false,
            "iswitness": true,
            "witness_version": 1,
            "witness_program": address.key().to_string(),
            "pubkey": address.key().to_string(),
        }),
        Err(error) => json!({ "isvalid": false, "error": error.to_string() }),
    })
}

pub(super) fn help(command: Option<String>) -> Result<Value, RpcError> {
    if let Some(name) = command {
        let method = METHODS
            .iter()
            .find(|method| method.name == name)
            .ok_or_else(|| {
                RpcError::new(
                    ErrorCode::MiscError,
                    format!("help: unknown command: {name}"),
                )
            })?;
        return Ok(json!(method.describe()));
    }
    let mut text = String::new();
    let mut category = "";
    for method in METHODS {
        if method.category != category {
            category = method.category;
            if !text.is_empty() {
                text.push('\n');
            }
            text.push_str(&format!("== {category} ==\n"));
        }
        text.push_str(&format!("{:<60} {}\n", method.usage(), method.summary));
    }
    Ok(json!(text.trim_end()))
}

pub(super) fn rpc_info(context: &RpcContext) -> Value {
    let active: Vec<Value> = context
        .active
        .snapshot()
        .into_iter()
        .map(|(method, micros)| json!({ "method": method, "duration": micros }))
        .collect();
    // quarryd logs to standard error: there is no log file to name.
    json!({ "active_commands": active, "logpath": "" })
}

pub(super) fn memory_info(params: &Params) -> Result<Value, RpcError> {
    let mode: String = params.or(0, "stats".to_owned())?;
    if mode != "stats" {
        return Err(RpcError::new(
            ErrorCode::InvalidParameter,
            format!("unknown mode {mode}: only stats is available"),
        ));
    }
    // Keys and secrets live in the wallet, not the node: nothing is locked in memory.
    Ok(json!({ "locked": {
        "used": 0, "free": 0, "total": 0, "locked": 0, "chunks_used": 0, "chunks_free": 0,
    } }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rpc::methods::METHODS;

    #[test]
    fn every_method_has_a_summary_and_help_lists_them_all() {
        let Value::String(text) = help(None).unwrap() else {
            panic!("help is text")
        };
        for method in METHODS {
            assert!(!method.summary.is_empty(), "{}", method.name);
            assert!(text.contains(&method.usage()), "{}", method.name);
        }
        for required in [
            "getblockchaininfo",
            "getblockcount",
            "getbestblockhash",
            "getblockhash",
            "getblock",
            "getblockheader",
            "getchaintips",
            "getdifficulty",
            "getmininginfo",
            "getnetworkhashps",
            "invalidateblock",
            "reconsiderblock",
            "getrawmempool",
            "getmempoolinfo",
            "getmempoolentry",
            "testmempoolaccept",
            "sendrawtransaction",
            "getrawtransaction",
            "gettxout",
            "getpeerinfo",
            "getconnectioncount",
            "addnode",
            "disconnectnode",
            "setban",
            "listbanned",
            "generatetoaddress",
            "getblocktemplate",
            "submitblock",
            "setgenerate",
            "stop",
        ] {
            assert!(
                METHODS.iter().any(|method| method.name == required),
                "{required}"
            );
        }
        let Value::String(getblock) = help(Some("getblock".into())).unwrap() else {
            panic!("help is text")
        };
        assert!(getblock.starts_with(
            "getblock blockhash ( verbosity )\n\nA block: hex (verbosity 0), with txids (1, default) or with decoded transactions (2).\n\nArguments:\n1. blockhash  (required) string: the block's hash\n2. verbosity  (optional) number, default 1:"
        ), "{getblock}");
        assert!(getblock.contains("\nResult:\nverbosity 0:"), "{getblock}");
        for method in METHODS {
            assert!(
                !method.describe().ends_with("Result:\n"),
                "{} has no result",
                method.name
            );
            assert!(
                method.params.iter().all(|p| !p.doc.is_empty()),
                "{}",
                method.name
            );
        }
    }
}
