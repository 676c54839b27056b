//! Network methods: peers, added nodes, bans and the node's own addresses.

use std::time::Duration;

use quarry_chain::clock::unix_now;
use quarry_network::{Multiaddr, PeerId};
use quarry_rpc::types;
use serde_json::{json, Value};

use super::{invalid_parameter, node_error, reply, warnings};
use crate::node::Node;
use crate::rpc::error::{ErrorCode, RpcError};
use crate::rpc::params::Params;

pub(super) async fn connection_count(node: &Node) -> Result<Value, RpcError> {
    Ok(json!(node.client().peers().await?.len()))
}

pub(super) async fn peer_info(node: &Node) -> Result<Value, RpcError> {
    let peers = node.client().peers().await?;
    reply(
        peers
            .iter()
            .enumerate()
            .map(|(id, peer)| types::PeerInfo {
                id,
                peerid: peer.peer.to_string(),
                addr: peer.address.to_string(),
                inbound: peer.inbound,
                connection_type: if peer.inbound {
                    "inbound"
                } else {
                    "outbound-full-relay"
                }
                .to_owned(),
                subver: peer.agent.clone().unwrap_or_default(),
                misbehavior_score: peer.score,
            })
            .collect::<Vec<_>>(),
    )
}

pub(super) async fn network_info(node: &Node) -> Result<Value, RpcError> {
    let peers = node.client().peers().await?;
    let inbound = peers.iter().filter(|peer| peer.inbound).count();
    let listening = node.client().listen_addresses().await?;
    let peer_id = node.client().local_peer_id();
    reply(types::NetworkInfo {
        version: env!("CARGO_PKG_VERSION").to_owned(),
        subversion: format!("/quarry:{}/", env!("CARGO_PKG_VERSION")),
        peerid: peer_id.to_string(),
        networkactive: true,
        connections: peers.len(),
        connections_in: inbound,
        connections_out: peers.len() - inbound,
        localaddresses: listening
            .iter()
            .map(|address| format!("{address}/p2p/{peer_id}"))
            .collect(),
        warnings: warnings(node),
    })
}

/// The longest peer id or address accepted: longer than any real one, short enough that
/// parsing (base58 decoding is quadratic) costs nothing.
const MAX_PEER_TEXT: usize = 256;

/// Refuses text too long to be a peer id or address, before anything parses it.
pub(super) fn check_peer_text(text: &str) -> Result<(), RpcError> {
    if text.len() > MAX_PEER_TEXT {
        return Err(invalid_parameter(format!(
            "a peer id or address of {} characters; real ones have at most {MAX_PEER_TEXT}",
            text.len()
        )));
    }
    Ok(())
}

/// A peer address: a multiaddr, or `host:port` (IPv4, `[IPv6]` or a DNS name).
pub(super) fn parse_peer_address(text: &str) -> Result<Multiaddr, RpcError> {
    check_peer_text(text)?;
    let invalid = |why: &str| {
        RpcError::new(
            ErrorCode::InvalidIpOrSubnet,
            format!("'{text}' is not a peer address ({why}); use a multiaddr such as /ip4/127.0.0.1/tcp/9333 or host:port"),
        )
    };
    if text.starts_with('/') {
        return text.parse().map_err(|_| invalid("bad multiaddr"));
    }
    let (host, port) = text.rsplit_once(':').ok_or_else(|| invalid("no port"))?;
    let port: u16 = port.parse().map_err(|_| invalid("bad port"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let address = match host.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(ip)) => format!("/ip4/{ip}/tcp/{port}"),
        Ok(std::net::IpAddr::V6(ip)) => format!("/ip6/{ip}/tcp/{port}"),
        Err(_) if !host.is_empty() => format!("/dns/{host}/tcp/{port}"),
        Err(_) => return Err(invalid("no host")),
    };
    address.parse().map_err(|_| invalid("bad host"))
}

pub(super) async fn add_node(node: &Node, params: &Params) -> Result<Value, RpcError> {
    let text: String = params.required(0)?;
    let command: String = params.required(1)?;
    let address = parse_peer_address(&text)?;
    match command.as_str() {
        "add" => {
            if !node.add_node(address) {
                return Err(RpcError::new(
                    ErrorCode::NodeAlreadyAdded,
                    "Error: Node already added",
                ));
            }
        }
        "remove" => {
            if !node.remove_added_node(&address) {
                return Err(RpcError::new(
                    ErrorCode::NodeNotAdded,
                    "Error: Node could not be removed. It has not been added previously.",
                ));
            }
        }
        "onetry" => {
            node.client().dial(address).await.map_err(|error| {
                RpcError::new(
                    ErrorCode::ClientNotConnected,
                    format!("Error: cannot connect: {error}"),
                )
            })?;
        }
        other => {
            return Err(invalid_parameter(format!(
                "command must be add, remove or onetry, not '{other}'"
            )))
        }
    }
    Ok(Value::Null)
}

/// The connected peer named by `text`: its peer id, or the address it is connected on.
pub(super) async fn find_peer(node: &Node, text: &str) -> Result<Option<PeerId>, RpcError> {
    check_peer_text(text)?;
    if let Ok(peer) = text.parse::<PeerId>() {
        return Ok(Some(peer));
    }
    let address = parse_peer_address(text)?;
    let peers = node.client().peers().await?;
    Ok(peers
        .iter()
        .find(|peer| {
            peer.address == address || peer.address.to_string().starts_with(&address.to_string())
        })
        .map(|peer| peer.peer))
}

pub(super) async fn disconnect_node(node: &Node, params: &Params) -> Result<Value, RpcError> {
    if params.raw(1).is_some() {
        return Err(invalid_parameter(
            "nodeid is not supported: pass the peer's address or peer id (getpeerinfo shows both)",
        ));
    }
    let text: String = params
        .optional(0)?
        .ok_or_else(|| invalid_parameter("Need an address or a peer id"))?;
    let peer = find_peer(node, &text).await?;
    let disconnected = match peer {
        Some(peer) => node.client().disconnect(peer).await?,
        None => false,
    };
    if !disconnected {
        return Err(RpcError::new(
            ErrorCode::NodeNotConnected,
            "Node not found in connected nodes",
        ));
    }
    Ok(Value::Null)
}

pub(super) async fn added_node_info(node: &Node, params: &Params) -> Result<Value, RpcError> {
    let only: Option<String> = params.optional(0)?;
    let only = only.map(|text| parse_peer_address(&text)).transpose()?;
    let peers = node.client().peers().await?;
    let added = node.added_nodes();
    if let Some(only) = &only {
        if !added.contains(only) {
            return Err(RpcError::new(
                ErrorCode::NodeNotAdded,
                "Error: Node has not been added.",
            ));
        }
    }
    Ok(added
        .iter()
        .filter(|address| only.as_ref().is_none_or(|only| only == *address))
        .map(|address| {
            let connected = peers
                .iter()
                .any(|peer| peer.address.to_string().starts_with(&address.to_string()));
            json!({ "addednode": address.to_string(), "connected": connected })
        })
        .collect())
}

pub(super) async fn set_ban(node: &Node, params: &Params) -> Result<Value, RpcError> {
    let text: String = params.required(0)?;
    let command: String = params.required(1)?;
    let peer = find_peer(node, &text).await?.ok_or_else(|| {
        RpcError::new(
            ErrorCode::InvalidIpOrSubnet,
            format!("Error: '{text}' is neither a peer id nor the address of a connected peer"),
        )
    })?;
    match command.as_str() {
        "add" => {
            let seconds: i64 = params.or(2, 0)?;
            let absolute: bool = params.or(3, false)?;
            let seconds = match (seconds, absolute) {
                (seconds, _) if seconds < 0 => {
                    return Err(invalid_parameter("bantime must not be negative"))
                }
                (0, _) => 24 * 60 * 60,
                (until, true) => u64::try_from(until).unwrap_or(0).saturating_sub(unix_now()),
                (seconds, false) => u64::try_from(seconds).unwrap_or(0),
            };
            if seconds == 0 {
                return Err(invalid_parameter(
                    "Error: Absolute timestamp is in the past",
                ));
            }
            node.client().ban(peer, Duration::from_secs(seconds))?;
        }
        "remove" => {
            if !node.client().unban(peer).await? {
                return Err(RpcError::new(
                    ErrorCode::InvalidIpOrSubnet,
                    "Error: Unban failed. Requested address/subnet was not previously manually banned.",
                ));
            }
        }
        other => {
            return Err(invalid_parameter(format!(
                "command must be add or remove, not '{other}'"
            )))
        }
    }
    node.save_bans().await.map_err(node_error)?;
    Ok(Value::Null)
}

pub(super) async fn list_banned(node: &Node) -> Result<Value, RpcError> {
    let bans = node.client().bans().await?;
    let now = unix_now();
    Ok(bans
        .iter()
        .map(|ban| {
            json!({
                "address": ban.peer.to_string(),
                "banned_until": ban.until,
                "time_remaining": ban.until.saturating_sub(now),
                "reason": ban.reason.to_string(),
            })
        })
        .collect())
}

pub(super) async fn clear_banned(node: &Node) -> Result<Value, RpcError> {
    for ban in node.client().bans().await? {
        node.client().unban(ban.peer).await?;
    }
    node.save_bans().await.map_err(node_error)?;
    Ok(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_addresses_are_multiaddrs_or_host_and_port() {
        let parse = |text| parse_peer_address(text).map(|address| address.to_string());
        assert_eq!(parse("127.0.0.1:9333").unwrap(), "/ip4/127.0.0.1/tcp/9333");
        assert_eq!(parse("[::1]:9333").unwrap(), "/ip6/::1/tcp/9333");
        assert_eq!(
            parse("seed.example:9333").unwrap(),
            "/dns/seed.example/tcp/9333"
        );
        assert_eq!(parse("/ip4/10.0.0.1/tcp/1").unwrap(), "/ip4/10.0.0.1/tcp/1");
        for bad in ["127.0.0.1", "host:port", ":9333", "/nonsense"] {
            assert_eq!(
                parse(bad).unwrap_err().code,
                ErrorCode::InvalidIpOrSubnet,
                "{bad}"
            );
        }
    }
}
