//! A scenario as Kubernetes manifests: a StatefulSet per node (one replica, its chain on a
//! persistent volume), a headless Service that gives every node's pod a DNS name
//! (`NODE-0.quarry`), the network parameters and node configurations in a ConfigMap, the RPC
//! password in a Secret, Prometheus scrape annotations, delaying relays as sidecars, each
//! partition as NetworkPolicies to apply and delete, and a Job running an attack experiment.

use std::path::Path;

use anyhow::Result;
use serde_json::{json, Value};

use super::{
    ports, prometheus_scrape, write_file, yaml, Export, CONFIG_PATH, DASHBOARD, DATA_DIR,
    PARAMS_PATH,
};

/// The headless Service, and the domain the pods' names are under.
pub const SERVICE: &str = "quarry";
/// The label naming a pod's node.
pub const NODE_LABEL: &str = "quarry.dev/node";
use crate::image::USER_ID;

/// The DNS name of node `index`'s pod.
pub fn host(export: &Export, index: usize) -> String {
    format!("{}-0.{SERVICE}", export.scenario.node[index].name)
}

fn labels(extra: Value) -> Value {
    let mut labels = json!({
        "app.kubernetes.io/name": "quarry",
        "app.kubernetes.io/part-of": "quarry-testnet",
    });
    if let (Some(labels), Some(extra)) = (labels.as_object_mut(), extra.as_object()) {
        labels.extend(extra.clone());
    }
    labels
}

fn security_context() -> Value {
    json!({
        "runAsNonRoot": true,
        "runAsUser": USER_ID,
        "runAsGroup": USER_ID,
        "fsGroup": USER_ID,
    })
}

/// The network parameters and every node's configuration file.
fn config_map(export: &Export) -> Value {
    let mut data = serde_json::Map::new();
    data.insert("params.toml".into(), json!(export.params_toml));
    for node in &export.scenario.node {
        if let Some(config) = &node.config {
            data.insert(format!("{}.toml", node.name), json!(config));
        }
    }
    json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "quarry-network", "labels": labels(json!({}))},
        "data": data,
    })
}

fn secret(export: &Export) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "quarry-rpc", "labels": labels(json!({}))},
        "type": "Opaque",
        "stringData": {"password": export.rpc_password},
    })
}

/// Headless: no virtual IP, one DNS record per pod, published before the pod is ready (a
/// node waits for its peers, and its peers for it).
fn service() -> Value {
    let ports = ports();
    json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": SERVICE, "labels": labels(json!({}))},
        "spec": {
            "clusterIP": "None",
            "publishNotReadyAddresses": true,
            "selector": {"app.kubernetes.io/name": "quarry", "app.kubernetes.io/component": "node"},
            "ports": [
                {"name": "p2p", "port": ports.p2p},
                {"name": "rpc", "port": ports.rpc},
                {"name": "metrics", "port": ports.metrics},
            ],
        },
    })
}

fn image(export: &Export) -> String {
    export.scenario.image.to_string()
}

fn rpc_password_variable() -> Value {
    json!({"name": "QUARRY_RPC_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "quarry-rpc", "key": "password"}}})
}

/// One node: its quarryd container and a relay sidecar per delayed link it dials.
fn stateful_set(export: &Export, index: usize) -> Value {
    let node = &export.scenario.node[index];
    let ports = ports();
    let mut environment: Vec<Value> = export
        .node_environment(index)
        .into_iter()
        .map(|(name, value)| json!({"name": name, "value": value}))
        .collect();
    environment.push(rpc_password_variable());
    let mut mounts = vec![
        json!({"name": "data", "mountPath": DATA_DIR}),
        json!({"name": "network", "mountPath": PARAMS_PATH, "subPath": "params.toml", "readOnly": true}),
    ];
    if node.config.is_some() {
        mounts.push(json!({"name": "network", "mountPath": CONFIG_PATH, "subPath": format!("{}.toml", node.name), "readOnly": true}));
    }
    let mut quarryd = json!({
        "name": "quarryd",
        "image": image(export),
        "imagePullPolicy": "IfNotPresent",
        "command": export.node_command(index, |peer| host(export, peer)),
        "env": environment,
        "ports": [
            {"name": "p2p", "containerPort": ports.p2p},
            {"name": "rpc", "containerPort": ports.rpc},
            {"name": "metrics", "containerPort": ports.metrics},
        ],
        // Ready once RPC listens (a socket check costs the kubelet nothing); alive while RPC
        // answers (an exec a minute: hundreds of pods exec'ing every few seconds load a host).
        "readinessProbe": {"tcpSocket": {"port": "rpc"}, "periodSeconds": 10},
        "livenessProbe": {
            "exec": {"command": ["quarry-cli", "uptime"]},
            "initialDelaySeconds": 30,
            "periodSeconds": 60,
            "timeoutSeconds": 10,
        },
        "volumeMounts": mounts,
    });
    if let Some(resources) = &node.resources {
        quarryd["resources"] = resources.clone();
    }
    let mut containers = vec![quarryd];
    for relay in export.relays(index) {
        containers.push(json!({
            "name": format!("relay-to-{}", export.scenario.node[relay.listener].name),
            "image": image(export),
            "imagePullPolicy": "IfNotPresent",
            "command": Export::relay_command(&relay, &host(export, relay.listener)),
            "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}},
        }));
    }
    let role = if export.node_hash_rate(index) > 0 {
        "miner"
    } else {
        "node"
    };
    let pod_labels = labels(json!({
        "app.kubernetes.io/component": "node",
        NODE_LABEL: node.name,
        "quarry.dev/role": role,
    }));
    let annotations = prometheus_scrape(node.metrics_export);
    json!({
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": node.name, "labels": pod_labels},
        "spec": {
            "serviceName": SERVICE,
            "replicas": 1,
            "selector": {"matchLabels": {NODE_LABEL: node.name}},
            "template": {
                "metadata": {"labels": pod_labels, "annotations": annotations},
                "spec": {
                    "securityContext": security_context(),
                    "containers": containers,
                    "volumes": [{"name": "network", "configMap": {"name": "quarry-network"}}],
                },
            },
            "volumeClaimTemplates": [{
                "metadata": {"name": "data"},
                "spec": {
                    "accessModes": ["ReadWriteOnce"],
                    "resources": {"requests": {"storage": "1Gi"}},
                },
            }],
        },
    })
}

/// The partition called `name`: each side's pods take connections only from their own side
/// (and RPC and metrics from anywhere, for the tools and Prometheus).
fn partition_policies(export: &Export, name: &str, sides: [&[usize]; 2]) -> Vec<Value> {
    let ports = ports();
    let names = |side: &[usize]| -> Vec<String> {
        side.iter()
            .map(|&index| export.scenario.node[index].name.clone())
            .collect()
    };
    let selector = |side: &[usize]| json!({"matchExpressions": [{"key": NODE_LABEL, "operator": "In", "values": names(side)}]});
    ["a", "b"]
        .iter()
        .zip(sides)
        .map(|(letter, side)| {
            json!({
                "apiVersion": "networking.k8s.io/v1",
                "kind": "NetworkPolicy",
                "metadata": {
                    "name": format!("partition-{name}-{letter}"),
                    "labels": labels(json!({"quarry.dev/partition": name})),
                },
                "spec": {
                    "podSelector": selector(side),
                    "policyTypes": ["Ingress"],
                    "ingress": [
                        {"from": [{"podSelector": selector(side)}]},
                        {"ports": [{"port": ports.rpc}, {"port": ports.metrics}]},
                    ],
                },
            })
        })
        .collect()
}

/// The attack experiment as a Job, its report kept on a volume of its own.
fn attack_job(export: &Export) -> Vec<Value> {
    let claim = json!({
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": "quarry-reports", "labels": labels(json!({}))},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
    });
    let job = json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "quarry-attack-double-spend", "labels": labels(json!({"quarry.dev/role": "attack"}))},
        "spec": {
            "backoffLimit": 0,
            "template": {
                "metadata": {"labels": labels(json!({"quarry.dev/role": "attack"}))},
                "spec": {
                    "restartPolicy": "Never",
                    "securityContext": security_context(),
                    "containers": [{
                        "name": "attack",
                        "image": image(export),
                        "imagePullPolicy": "IfNotPresent",
                        "command": Export::attack_command("/reports/double-spend"),
                        "volumeMounts": [{"name": "reports", "mountPath": "/reports"}],
                    }],
                    "volumes": [{"name": "reports", "persistentVolumeClaim": {"claimName": "quarry-reports"}}],
                },
            },
        },
    });
    vec![claim, job]
}

fn documents(values: &[Value]) -> String {
    let mut text = String::new();
    for value in values {
        text.push_str("---\n");
        text.push_str(&yaml::to_string(value));
    }
    text
}

/// Writes the manifests to `dir`: `quarry.yaml` (the nodes), `partitions/NAME.yaml`,
/// `attack-job.yaml` and `grafana/quarry-nodes.json`. Returns the files written.
pub fn write(export: &Export, dir: &Path) -> Result<Vec<String>> {
    let mut nodes = vec![config_map(export), secret(export), service()];
    nodes.extend((0..export.scenario.node.len()).map(|index| stateful_set(export, index)));
    let mut files = vec![("quarry.yaml".to_owned(), documents(&nodes))];
    for partition in &export.scenario.partition {
        let (a, b) = export.scenario.partition_sides(&partition.name)?;
        files.push((
            format!("partitions/{}.yaml", partition.name),
            documents(&partition_policies(export, &partition.name, [&a, &b])),
        ));
    }
    files.push(("attack-job.yaml".into(), documents(&attack_job(export))));
    files.push(("grafana/quarry-nodes.json".into(), DASHBOARD.to_owned()));
    for (name, text) in &files {
        write_file(dir, name, text, false)?;
    }
    Ok(files.into_iter().map(|(name, _)| name).collect())
}
