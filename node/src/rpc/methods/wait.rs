//! Calls that wait for the chain: `waitfornewblock` and `waitforblockheight`, answered with
//! the tip when the wait ends.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::node::Node;
use crate::rpc::error::RpcError;
use crate::rpc::params::Params;
use quarry_chain::TipInfo;

/// The longest wait: Core waits without end for a timeout of 0, which would hold a request
/// thread for as long as a client likes.
const LONGEST_WAIT: Duration = Duration::from_secs(3_600);

fn wait_limit(params: &Params, index: usize) -> Result<Duration, RpcError> {
    let millis: u64 = params.or(index, 0)?;
    Ok(match millis {
        0 => LONGEST_WAIT,
        millis => Duration::from_millis(millis).min(LONGEST_WAIT),
    })
}

fn tip_json(tip: &TipInfo) -> Value {
    json!({ "hash": tip.hash.to_string(), "height": tip.height })
}

/// How often a wait looks whether the node is shutting down.
const STOP_CHECK: Duration = Duration::from_secs(1);

/// Waits until the tip satisfies `done`, `limit` passes or the node shuts down; returns the
/// tip then.
fn wait_until(node: &Node, limit: Duration, done: impl Fn(&TipInfo) -> bool) -> Value {
    let watch = node.reader().tip_watch();
    let deadline = Instant::now() + limit;
    loop {
        let seen = watch.version();
        let tip = watch.get();
        let left = deadline.saturating_duration_since(Instant::now());
        if done(&tip) || left.is_zero() || node.is_stopping() {
            return tip_json(&tip);
        }
        watch.wait_for_change(seen, left.min(STOP_CHECK));
    }
}

pub(super) fn for_new_block(node: &Node, params: &Params) -> Result<Value, RpcError> {
    let limit = wait_limit(params, 0)?;
    let start = node.reader().tip_watch().get().hash;
    Ok(wait_until(node, limit, |tip| tip.hash != start))
}

pub(super) fn for_block_height(node: &Node, params: &Params) -> Result<Value, RpcError> {
    let height: u32 = params.required(0)?;
    let limit = wait_limit(params, 1)?;
    Ok(wait_until(node, limit, |tip| tip.height >= height))
}
