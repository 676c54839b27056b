//! Network methods: peers, added nodes, bans and the node's own addresses.

use std::time::Duration;

use quarry_chain::clock::unix_now;
use quarry_chain::Amount;
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

/// The services every Quarry node offers, as Core's bit field: the full chain (NETWORK).
const SERVICES: &str = "0000000000000001";

/// Quarry's peer-to-peer protocol version (the sync protocol's).
const PROTOCOL_VERSION: u64 = 1;

fn service_names() -> Vec<String> {
    vec!["NETWORK".to_owned()]
}

/// quarryd's version as Core writes its own: 30.0.0 is 300000.
fn version_number() -> u64 {
    let part = |text: &str| text.parse::<u64>().unwrap_or(0);
    part(env!("CARGO_PKG_VERSION_MAJOR")) * 10_000
        + part(env!("CARGO_PKG_VERSION_MINOR")) * 100
        + part(env!("CARGO_PKG_VERSION_PATCH"))
}

/// Core's network name of an address: `ipv4`, `ipv6`, or `not_publicly_routable` for others.
fn network_of(address: &Multiaddr) -> &'static str {
    use quarry_network::Protocol;
    match address.iter().next() {
        Some(Protocol::Ip4(_)) => "ipv4",
        Some(Protocol::Ip6(_)) => "ipv6",
        _ => "not_publicly_routable",
    }
}

pub(super) async fn peer_info(node: &Node) -> Result<Value, RpcError> {
    let peers = node.client().peers().await?;
    reply(
        peers
            .iter()
            .enumerate()
            .map(|(id, peer)| types::PeerInfo {
                id,
                addr: peer.address.to_string(),
                network: network_of(&peer.address).to_owned(),
                services: SERVICES.to_owned(),
                servicesnames: service_names(),
                relaytxes: true,
                lastsend: 0,
                lastrecv: 0,
                last_transaction: 0,
                last_block: 0,
                bytessent: 0,
                bytesrecv: 0,
                conntime: peer.connected_since,
                timeoffset: 0,
                version: PROTOCOL_VERSION,
                subver: peer.agent.clone().unwrap_or_default(),
                inbound: peer.inbound,
                bip152_hb_to: false,
                bip152_hb_from: false,
                permissions: Vec::new(),
                minfeefilter: 0.0,
                bytessent_per_msg: Default::default(),
                bytesrecv_per_msg: Default::default(),
                connection_type: if peer.inbound {
                    "inbound"
                } else {
                    "outbound-full-relay"
                }
                .to_owned(),
                transport_protocol_type: "libp2p".to_owned(),
                session_id: String::new(),
                peerid: peer.peer.to_string(),
                misbehavior_score: peer.score,
            })
            .collect::<Vec<_>>(),
    )
}

pub(super) async fn network_info(node: &Node) -> Result<Value, RpcError> {
    use quarry_network::Protocol;
    let peers = node.client().peers().await?;
    let inbound = peers.iter().filter(|peer| peer.inbound).count();
    let listening = node.client().listen_addresses().await?;
    let peer_id = node.client().local_peer_id();
    // A replacement pays the minimum relay fee for its own bytes on top: the increment is
    // the minimum relay fee rate.
    let relay_fee = node.with_mempool(|pool| {
        let sats_per_kvb = pool.config().min_relay_fee_rate.to_sat_per_kb();
        sats_per_kvb as f64 / Amount::SATS_PER_COIN as f64
    });
    let local_address = |address: &Multiaddr| {
        let mut ip = None;
        let mut port = None;
        for protocol in address.iter() {
            match protocol {
                Protocol::Ip4(v4) => ip = Some(v4.to_string()),
                Protocol::Ip6(v6) => ip = Some(v6.to_string()),
                Protocol::Tcp(tcp) => port = Some(tcp),
                _ => {}
            }
        }
        Some(types::LocalAddress {
            address: ip?,
            port: port?,
            score: 1,
        })
    };
    let reach = |name: &str| types::NetworkReach {
        name: name.to_owned(),
        limited: false,
        reachable: true,
        proxy: String::new(),
        proxy_randomize_credentials: false,
    };
    reply(types::NetworkInfo {
        version: version_number(),
        subversion: format!("/quarry:{}/", env!("CARGO_PKG_VERSION")),
        protocolversion: PROTOCOL_VERSION,
        localservices: SERVICES.to_owned(),
        localservicesnames: service_names(),
        localrelay: true,
        timeoffset: 0,
        networkactive: true,
        connections: peers.len(),
        connections_in: inbound,
        connections_out: peers.len() - inbound,
        networks: vec![reach("ipv4"), reach("ipv6")],
        relayfee: relay_fee,
        incrementalfee: relay_fee,
        localaddresses: listening.iter().filter_map(local_address).collect(),
        warnings: warnings(node),
        peerid: peer_id.to_string(),
        p2paddresses: listening
            .iter()
            .map(|address| {
                // Listen addresses may already end in the peer id: it is written once.
                if address
                    .iter()
                    .any(|protocol| matches!(protocol, Protocol::P2p(_)))
                {
                    address.to_string()
                } else {
                    format!("{address}/p2p/{peer_id}")
                }
            })
            .collect(),
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
            // Core lists the resolved addresses with their direction; a multiaddr needs no
            // resolving: itself, when connected.
            let addresses = if connected {
                json!([{ "address": address.to_string(), "connected": "outbound" }])
            } else {
                json!([])
            };
            json!({ "addednode": address.to_string(), "connected": connected, "addresses": addresses })
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
                "ban_created": ban.created,
                "banned_until": ban.until,
                "ban_duration": ban.until.saturating_sub(ban.created),
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

/// `getnettotals`: bytes over every connection since start (libp2p's stream counters); no
/// upload target is configurable, so the cycle fields are 0.
pub(super) fn net_totals(node: &Node) -> Value {
    let traffic = node.client().traffic();
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_millis() as u64);
    json!({
        "totalbytesrecv": traffic.received,
        "totalbytessent": traffic.sent,
        "timemillis": millis,
        "uploadtarget": {
            "timeframe": 86_400,
            "target": 0,
            "target_reached": false,
            "serve_historical_blocks": true,
            "bytes_left_in_cycle": 0,
            "time_left_in_cycle": 0,
        },
    })
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
