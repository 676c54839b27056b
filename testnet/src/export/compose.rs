//! A scenario as a Compose project: a service per node on one network with fixed addresses
//! (so routes can name peers), the RPC password in `.env`, delaying relays sharing the
//! dialler's network namespace, each partition as a script that adds blackhole routes to the
//! other side in the nodes' containers (`ip`, with the NET_ADMIN capability the services are
//! granted; routes need no kernel module, unlike tc's filters) and `heal.sh` that removes
//! them, and an attack service behind the `attack` profile.

use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::path::Path;

use anyhow::{bail, Result};
use serde_json::{json, Value};

use super::{ports, write_file, yaml, Export, CONFIG_PATH, DASHBOARD, PARAMS_PATH};

/// The project network's subnet: nodes take its addresses from .10 on.
pub const SUBNET: (Ipv4Addr, u8) = (Ipv4Addr::new(10, 213, 0, 0), 24);
/// The first node's address's last byte.
const FIRST_HOST: usize = 10;

/// Node `index`'s address on the project network.
pub fn address(index: usize) -> Result<Ipv4Addr> {
    let last = FIRST_HOST + index;
    if last > 254 {
        bail!(
            "a Compose export holds at most {} nodes (one /24 network)",
            255 - FIRST_HOST
        );
    }
    let [a, b, c, _] = SUBNET.0.octets();
    Ok(Ipv4Addr::new(a, b, c, last as u8))
}

fn node_service(export: &Export, index: usize) -> Result<Value> {
    let node = &export.scenario.node[index];
    let ports = ports();
    let mut environment: serde_json::Map<String, Value> = export
        .node_environment(index)
        .into_iter()
        .map(|(name, value)| (name.to_owned(), json!(value)))
        .collect();
    environment.insert(
        "QUARRY_RPC_PASSWORD".into(),
        json!("${QUARRY_RPC_PASSWORD:?set it in .env}"),
    );
    let mut volumes = vec![
        json!(format!("{}-data:/data", node.name)),
        json!(format!("./params.toml:{PARAMS_PATH}:ro")),
    ];
    if node.config.is_some() {
        volumes.push(json!(format!(
            "./configs/{}.toml:{CONFIG_PATH}:ro",
            node.name
        )));
    }
    let mut labels = serde_json::Map::new();
    labels.insert("quarry.dev/node".into(), json!(node.name));
    if node.metrics_export {
        labels.insert("prometheus.io/scrape".into(), json!("true"));
        labels.insert(
            "prometheus.io/port".into(),
            json!(ports.metrics.to_string()),
        );
        labels.insert("prometheus.io/path".into(), json!("/metrics"));
    }
    let mut service = json!({
        "image": export.scenario.image.to_string(),
        "hostname": node.name,
        "command": export.node_command(index, |peer| export.scenario.node[peer].name.clone()),
        "environment": environment,
        "volumes": volumes,
        "cap_add": ["NET_ADMIN"],
        "networks": {"quarry": {"ipv4_address": address(index)?.to_string()}},
        "ports": [format!("127.0.0.1::{}", ports.rpc), format!("127.0.0.1::{}", ports.metrics)],
        "labels": labels,
        "healthcheck": {
            "test": ["CMD", "quarry-cli", "getblockcount"],
            "interval": "10s",
            "timeout": "5s",
            "start_period": "5s",
        },
        "restart": "unless-stopped",
    });
    if let Some(limits) = node
        .resources
        .as_ref()
        .and_then(|resources| resources.get("limits"))
    {
        let mut limit = serde_json::Map::new();
        if let Some(cpu) = limits.get("cpus").or_else(|| limits.get("cpu")) {
            limit.insert("cpus".into(), cpu.clone());
        }
        if let Some(memory) = limits.get("memory") {
            limit.insert("memory".into(), memory.clone());
        }
        service["deploy"] = json!({"resources": {"limits": limit}});
    }
    Ok(service)
}

/// The project: nodes, relays, the attack service, the network and the volumes.
fn project(export: &Export, name: &str) -> Result<Value> {
    let mut services = serde_json::Map::new();
    let mut volumes = serde_json::Map::new();
    for (index, node) in export.scenario.node.iter().enumerate() {
        services.insert(node.name.clone(), node_service(export, index)?);
        volumes.insert(format!("{}-data", node.name), json!({}));
        for relay in export.relays(index) {
            let listener = &export.scenario.node[relay.listener].name;
            services.insert(
                format!("relay-{}-{listener}", node.name),
                json!({
                    "image": export.scenario.image.to_string(),
                    "command": Export::relay_command(&relay, listener),
                    "network_mode": format!("service:{}", node.name),
                    "depends_on": [node.name],
                    "restart": "unless-stopped",
                }),
            );
        }
    }
    services.insert(
        "attack".into(),
        json!({
            "image": export.scenario.image.to_string(),
            "profiles": ["attack"],
            "command": Export::attack_command("/reports/double-spend"),
            "volumes": ["./reports:/reports"],
        }),
    );
    Ok(json!({
        "name": name,
        "services": services,
        "networks": {"quarry": {"ipam": {"config": [{"subnet": format!("{}/{}", SUBNET.0, SUBNET.1)}]}}},
        "volumes": volumes,
    }))
}

/// The command that runs `ip` in node `name`'s network namespace: `docker compose exec` by
/// default; `QUARRY_EXEC` replaces it (`ip netns exec` for nodes in network namespaces).
const EXEC: &str =
    r#"exec_in() { node="$1"; shift; ${QUARRY_EXEC:-docker compose exec -T} "$node" "$@"; }"#;

/// The script that cuts the partition: on every node of each side, a blackhole route to each
/// address of the other side (nothing it sends there leaves, so no connection survives).
fn partition_script(export: &Export, name: &str, a: &[usize], b: &[usize]) -> Result<String> {
    let mut script = format!(
        "#!/bin/sh\n# Partition '{name}': drops every packet between its two sides, in the nodes' own\n\
         # network namespaces (blackhole routes, NET_ADMIN). Undo with ./heal.sh. Run from anywhere.\n\
         set -eu\ncd \"$(dirname \"$0\")/..\"\n{EXEC}\n\
         # cut NODE ADDRESS...: NODE drops what it sends to each ADDRESS.\n\
         cut() {{\n  node=\"$1\"; shift\n  for address in \"$@\"; do\n    \
         exec_in \"$node\" ip route replace blackhole \"$address/32\"\n  done\n}}\n"
    );
    for (from, to) in [(a, b), (b, a)] {
        for &x in from {
            let addresses = to
                .iter()
                .map(|&y| address(y).map(|address| address.to_string()))
                .collect::<Result<Vec<_>>>()?;
            writeln!(
                script,
                "cut {} {}",
                export.scenario.node[x].name,
                addresses.join(" ")
            )?;
        }
    }
    writeln!(script, "echo \"partition '{name}' is in place\"")?;
    Ok(script)
}

/// The script that removes every partition's routes (and nothing else: no other route of a
/// node's is a blackhole).
fn heal_script(export: &Export) -> String {
    let mut script = format!(
        "#!/bin/sh\n# Removes the blackhole routes of every partition.\nset -u\ncd \"$(dirname \"$0\")\"\n{EXEC}\n"
    );
    for name in export.names() {
        let _ = writeln!(script, "exec_in {name} ip route flush type blackhole");
    }
    script.push_str("echo healed\n");
    script
}

/// Writes the project to `dir` as project `name`: `compose.yaml`, `.env`, `params.toml`,
/// `configs/`, `partitions/NAME.sh`, `heal.sh` and `grafana/quarry-nodes.json`. Returns the
/// files written.
pub fn write(export: &Export, dir: &Path, name: &str) -> Result<Vec<String>> {
    let mut files = vec![
        (
            "compose.yaml".to_owned(),
            yaml::to_string(&project(export, name)?),
            false,
        ),
        (
            ".env".into(),
            format!("QUARRY_RPC_PASSWORD={}\n", export.rpc_password),
            false,
        ),
        ("params.toml".into(), export.params_toml.clone(), false),
        ("heal.sh".into(), heal_script(export), true),
        (
            "grafana/quarry-nodes.json".into(),
            DASHBOARD.to_owned(),
            false,
        ),
    ];
    for node in &export.scenario.node {
        if let Some(config) = &node.config {
            files.push((format!("configs/{}.toml", node.name), config.clone(), false));
        }
    }
    for partition in &export.scenario.partition {
        let (a, b) = export.scenario.partition_sides(&partition.name)?;
        files.push((
            format!("partitions/{}.sh", partition.name),
            partition_script(export, &partition.name, &a, &b)?,
            true,
        ));
    }
    for (file, text, executable) in &files {
        write_file(dir, file, text, *executable)?;
    }
    Ok(files.into_iter().map(|(file, _, _)| file).collect())
}
