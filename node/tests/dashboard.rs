//! The Grafana dashboard shipped in `deploy/grafana/` queries only metrics a node exports: a
//! renamed metric would leave a panel empty without anyone noticing.

use std::collections::BTreeSet;

use quarry_rpc::testing::Daemon;
use serde_json::Value;

/// The `quarry_*` metric names in a PromQL expression, without a histogram's or counter's
/// sample suffixes.
fn metric_names(expression: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = expression;
    while let Some(start) = rest.find("quarry_") {
        let tail = &rest[start..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        names.push(tail[..end].to_owned());
        rest = &tail[end..];
    }
    names
}

#[test]
fn every_dashboard_query_names_a_metric_the_node_exports() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../deploy/grafana/quarry-nodes.json"
    );
    let dashboard: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let panels = dashboard["panels"].as_array().unwrap();
    let queried: BTreeSet<String> = panels
        .iter()
        .flat_map(|panel| panel["targets"].as_array().unwrap().iter())
        .flat_map(|target| metric_names(target["expr"].as_str().unwrap()))
        .collect();
    assert!(queried.len() >= 15, "{queried:?}");
    let node = Daemon::start("node", &[]);
    let exported = node.metrics_text();
    let missing: Vec<&String> = queried
        .iter()
        .filter(|name| !exported.lines().any(|line| line.starts_with(name.as_str())))
        .collect();
    assert!(
        missing.is_empty(),
        "the dashboard queries metrics the node does not export: {missing:?}"
    );
    // Every panel says what it shows.
    for panel in panels {
        assert!(
            !panel["description"].as_str().unwrap_or("").is_empty(),
            "{panel}"
        );
    }
}
