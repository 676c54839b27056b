//! A scenario as a Compose project: a service per node on one network with fixed addresses
//! (so routes can name peers), the RPC password in `.env`, delaying relays sharing the
//! dialler's network namespace, each partition as a script that adds blackhole routes to the
//! other side in the nodes' containers (`ip`, with the NET_ADMIN capability the services are
//! granted; routes need no kernel module, unlike tc's filters) and `heal.sh` that removes
//! them, and an attack service behind the `attack` profile.

use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::path::Path;

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use super::{
    ports, prometheus_scrape, write_file, yaml, Export, CONFIG_PATH, DASHBOARD, PARAMS_PATH,
};

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
    let mut labels = prometheus_scrape(node.metrics_export);
    labels.insert("quarry.dev/node".into(), json!(node.name));
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
            "interval": "30s",
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
        if let Some(cpu) = limits.get("cpu") {
            limit.insert("cpus".into(), json!(compose_cpus(&quantity(cpu))?));
        }
        if let Some(memory) = limits.get("memory") {
            limit.insert("memory".into(), json!(compose_memory(&quantity(memory))?));
        }
        service["deploy"] = json!({"resources": {"limits": limit}});
    }
    Ok(service)
}

/// A quantity of a scenario's `resources`, a string or a number.
fn quantity(value: &Value) -> String {
    value
        .as_str()
        .map_or_else(|| value.to_string(), str::to_owned)
}

/// A Kubernetes memory quantity (`512Mi`, `1G`, `1048576`) in Compose's units (`512m`, or
/// bytes `1000000000b`).
fn compose_memory(quantity: &str) -> Result<String> {
    let split = quantity
        .find(|c: char| c.is_ascii_alphabetic())
        .unwrap_or(quantity.len());
    let (number, unit) = quantity.split_at(split);
    let binary = match unit {
        "Ki" => Some("k"),
        "Mi" => Some("m"),
        "Gi" => Some("g"),
        "Ti" => Some("t"),
        _ => None,
    };
    if let (Some(unit), Ok(number)) = (binary, number.parse::<u64>()) {
        return Ok(format!("{number}{unit}"));
    }
    let scale: f64 = match unit {
        "" => 1.0,
        "k" | "K" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        _ => bail!(
            "memory '{quantity}': give Kubernetes units (Ki, Mi, Gi, Ti, k, M, G, T, or bytes)"
        ),
    };
    let number: f64 = number
        .parse()
        .ok()
        .filter(|number: &f64| *number > 0.0)
        .with_context(|| format!("memory '{quantity}' is not a positive quantity"))?;
    Ok(format!("{}b", (number * scale).round() as u64))
}

/// A Kubernetes CPU quantity (`500m`, `2`, `0.5`) as Compose's `cpus` (`0.5`, `2`).
fn compose_cpus(quantity: &str) -> Result<String> {
    let cores = match quantity.strip_suffix('m') {
        Some(millicores) => millicores.parse::<f64>().map(|m| m / 1000.0),
        None => quantity.parse::<f64>(),
    };
    match cores {
        Ok(cores) if cores > 0.0 => Ok(format!("{cores}")),
        _ => bail!("cpu '{quantity}': give cores (2, 0.5) or millicores (500m)"),
    }
}

/// The project: nodes, relays, the attack service, the network and the volumes.
fn project(export: &Export) -> Result<Value> {
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
                    // The image's check asks a node; a relay is none.
                    "healthcheck": {"disable": true},
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
            "healthcheck": {"disable": true},
            "command": Export::attack_command("/reports/double-spend"),
            "volumes": ["./reports:/reports"],
        }),
    );
    Ok(json!({
        "services": services,
        "networks": {"quarry": {"ipam": {"config": [{"subnet": format!("{}/{}", SUBNET.0, SUBNET.1)}]}}},
        "volumes": volumes,
    }))
}

/// The command that runs `ip` in node `name`'s network namespace: `docker compose exec` (or
/// Compose v1's `docker-compose exec`) as root, who holds the capability in the container;
/// `QUARRY_EXEC` replaces it (`ip netns exec` for nodes in network namespaces).
const EXEC: &str = r#"if [ -z "${QUARRY_EXEC:-}" ]; then
  if docker compose version >/dev/null 2>&1; then
    QUARRY_EXEC="docker compose exec -T --user 0"
  else
    QUARRY_EXEC="docker-compose exec -T --user 0"
  fi
fi
exec_in() { node="$1"; shift; $QUARRY_EXEC "$node" "$@"; }"#;

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
        "#!/bin/sh\n# Removes the blackhole routes of every partition.\nset -eu\ncd \"$(dirname \"$0\")\"\n{EXEC}\n"
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
            yaml::to_string(&project(export)?),
            false,
        ),
        (
            ".env".into(),
            // The project's name here rather than as `name:` in the file, which Compose v1
            // (still Debian 12's docker-compose) refuses.
            format!(
                "COMPOSE_PROJECT_NAME={name}\nQUARRY_RPC_PASSWORD={}\n",
                export.rpc_password
            ),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubernetes_quantities_become_compose_limits() {
        assert_eq!(compose_memory("512Mi").unwrap(), "512m");
        assert_eq!(compose_memory("2Gi").unwrap(), "2g");
        assert_eq!(compose_memory("1G").unwrap(), "1000000000b");
        assert_eq!(compose_memory("1.5M").unwrap(), "1500000b");
        assert_eq!(compose_memory("1048576").unwrap(), "1048576b");
        assert!(compose_memory("lots").is_err());
        assert!(compose_memory("12Zi").is_err());
        assert_eq!(compose_cpus("500m").unwrap(), "0.5");
        assert_eq!(compose_cpus("2").unwrap(), "2");
        assert_eq!(compose_cpus("0.25").unwrap(), "0.25");
        assert!(compose_cpus("-1").is_err());
        assert!(compose_cpus("fast").is_err());
    }
}
