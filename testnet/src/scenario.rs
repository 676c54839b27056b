//! Scenario files: the nodes of a testnet, their hash-rate shares, how they are linked (with
//! per-link delays), named partitions, and the values the container exports use (named as
//! Warnet names them, so its users recognise them). Every engine reads the same file.

use std::path::Path;

use anyhow::{bail, Context, Result};
use serde::Deserialize;

use crate::cluster::{links, Link, Topology};

/// A scenario file: the nodes, their hash-rate shares and the topology.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// How the nodes are connected (default mesh).
    #[serde(default)]
    pub topology: Option<Topology>,
    /// Seed of the random topology.
    #[serde(default)]
    pub seed: Option<u64>,
    /// Delay added to every link each way, in milliseconds.
    #[serde(default)]
    pub delay_ms: Option<u64>,
    /// Explicit links (replacing the topology), each with its own delay.
    #[serde(default)]
    pub link: Vec<ScenarioLink>,
    /// Total hash rate of the miners, hashes per second.
    #[serde(default)]
    pub hash_rate: Option<u64>,
    /// Target seconds between blocks.
    #[serde(default)]
    pub spacing: Option<u32>,
    /// The nodes.
    pub node: Vec<ScenarioNode>,
    /// Named partitions: `partition NAME` cuts the links between their two sides; the
    /// Kubernetes export writes each as NetworkPolicies, the Compose export as blackhole routes.
    #[serde(default)]
    pub partition: Vec<ScenarioPartition>,
    /// The container image the exports run (Warnet's `image.repository` and `image.tag`).
    #[serde(default)]
    pub image: Image,
}

/// A container image: repository and tag.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct Image {
    /// Its repository (what `quarry-testnet image` names it).
    pub repository: String,
    /// Its tag.
    pub tag: String,
}

impl Default for Image {
    fn default() -> Self {
        Self {
            repository: "quarry".into(),
            tag: env!("CARGO_PKG_VERSION").into(),
        }
    }
}

impl std::fmt::Display for Image {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.repository, self.tag)
    }
}

/// A named partition of a scenario.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioPartition {
    /// Its name: letters, digits, `-` and `_`.
    pub name: String,
    /// The nodes on one side.
    pub a: Vec<String>,
    /// The nodes on the other side.
    pub b: Vec<String>,
}

/// One node of a scenario.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioNode {
    /// Its name: letters, digits, `-` and `_`.
    pub name: String,
    /// Its share of the hash rate (0 or absent: not a miner).
    #[serde(default)]
    pub share: f64,
    /// Lines of its `quarryd.toml` (Warnet's `config`), e.g. `[mempool]\nmax_size_mb = 50`.
    #[serde(default)]
    pub config: Option<String>,
    /// Kubernetes resource requests and limits of its container (Warnet's `resources`), e.g.
    /// `resources = { requests = { cpu = "100m", memory = "128Mi" } }`; the exports only.
    #[serde(default)]
    pub resources: Option<serde_json::Value>,
    /// Whether Prometheus scrapes its metrics (Warnet's `metricsExport`; default yes).
    #[serde(default = "yes", rename = "metricsExport")]
    pub metrics_export: bool,
}

fn yes() -> bool {
    true
}

/// One link of a scenario.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioLink {
    /// The node that dials.
    pub from: String,
    /// The node dialled.
    pub to: String,
    /// Delay added each way, in milliseconds (default: the scenario's `delay_ms`).
    #[serde(default)]
    pub delay_ms: Option<u64>,
}

impl Scenario {
    /// The scenario's links: its `[[link]]` tables, or `topology` over its nodes, each with its
    /// delay.
    pub fn links(&self, default_topology: Topology, default_seed: u64) -> Result<Vec<Link>> {
        let delay = self.delay_ms.unwrap_or(0);
        if self.link.is_empty() {
            let pairs = links(
                self.topology.unwrap_or(default_topology),
                self.node.len(),
                self.seed.unwrap_or(default_seed),
            );
            return Ok(Link::delayed(pairs, delay));
        }
        let index = |name: &str| {
            self.node
                .iter()
                .position(|node| node.name == name)
                .with_context(|| format!("a [[link]] names '{name}', which is not a [[node]]"))
        };
        let links: Vec<Link> = self
            .link
            .iter()
            .map(|link| {
                Ok(Link {
                    dialler: index(&link.from)?,
                    listener: index(&link.to)?,
                    delay_ms: link.delay_ms.unwrap_or(delay),
                    via: None,
                })
            })
            .collect::<Result<_>>()?;
        if let Some(cut_off) = unreachable_from_first(self.node.len(), &links) {
            bail!(
                "the [[link]] tables leave '{}' cut off from '{}': every node must be reachable",
                self.node[cut_off].name,
                self.node[0].name
            );
        }
        Ok(links)
    }

    /// The node indices of the two sides of the partition called `name`.
    pub fn partition_sides(&self, name: &str) -> Result<(Vec<usize>, Vec<usize>)> {
        let partition = self
            .partition
            .iter()
            .find(|partition| partition.name == name)
            .with_context(|| {
                let names: Vec<&str> = self.partition.iter().map(|p| p.name.as_str()).collect();
                format!(
                    "the scenario has no partition '{name}' (it has: {})",
                    if names.is_empty() {
                        "none".to_owned()
                    } else {
                        names.join(", ")
                    }
                )
            })?;
        let side = |names: &[String]| -> Result<Vec<usize>> {
            names
                .iter()
                .map(|name| {
                    self.node
                        .iter()
                        .position(|node| &node.name == name)
                        .with_context(|| {
                            format!(
                                "partition '{}' names '{name}', which is not a [[node]]",
                                partition.name
                            )
                        })
                })
                .collect()
        };
        let (a, b) = (side(&partition.a)?, side(&partition.b)?);
        if a.is_empty() || b.is_empty() {
            bail!(
                "partition '{}': each side needs at least one node",
                partition.name
            );
        }
        if let Some(both) = a.iter().find(|node| b.contains(node)) {
            bail!(
                "partition '{}': '{}' is on both sides",
                partition.name,
                self.node[*both].name
            );
        }
        Ok((a, b))
    }

    /// Every named partition, its sides by node index.
    pub fn named_partitions(&self) -> Result<Vec<crate::cluster::NamedPartition>> {
        self.partition
            .iter()
            .map(|partition| {
                let (a, b) = self.partition_sides(&partition.name)?;
                Ok(crate::cluster::NamedPartition {
                    name: partition.name.clone(),
                    a,
                    b,
                })
            })
            .collect()
    }

    /// Reads and checks a scenario file.
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the scenario {}", path.display()))?;
        let scenario: Self = toml::from_str(&text)
            .with_context(|| format!("invalid scenario {}", path.display()))?;
        if scenario.node.is_empty() {
            bail!("the scenario {} has no [[node]]", path.display());
        }
        let total: f64 = scenario.node.iter().map(|node| node.share).sum();
        if scenario
            .node
            .iter()
            .any(|node| !(0.0..=1.0).contains(&node.share))
            || total > 1.0 + 1e-9
        {
            bail!("hash shares must be between 0 and 1 and add up to at most 1 (they add up to {total})");
        }
        if scenario.topology.is_some() && !scenario.link.is_empty() {
            bail!("give either `topology` or [[link]] tables, not both");
        }
        if scenario.hash_rate == Some(0) && total > 0.0 {
            bail!("hash_rate must be positive when nodes have shares (it caps the miners)");
        }
        let mut names = std::collections::HashSet::new();
        if let Some(twice) = scenario.node.iter().find(|node| !names.insert(&node.name)) {
            bail!("two [[node]] tables are named '{}'", twice.name);
        }
        for node in &scenario.node {
            check_name("node", &node.name)?;
        }
        for partition in &scenario.partition {
            check_name("partition", &partition.name)?;
            scenario.partition_sides(&partition.name)?;
        }
        Ok(scenario)
    }
}

/// Refuses a name that would not do as a host name or a file name.
fn check_name(what: &str, name: &str) -> Result<()> {
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        bail!("{what} name '{name}' must be letters, digits, '-' or '_'");
    }
    Ok(())
}

/// A node the first cannot reach along `links` (either way), if any.
fn unreachable_from_first(nodes: usize, links: &[Link]) -> Option<usize> {
    let mut reached = vec![false; nodes];
    let mut next = vec![0];
    while let Some(node) = next.pop() {
        if std::mem::replace(&mut reached[node], true) {
            continue;
        }
        for link in links {
            if link.dialler == node {
                next.push(link.listener);
            } else if link.listener == node {
                next.push(link.dialler);
            }
        }
    }
    reached.iter().position(|reached| !reached)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scenario(text: &str) -> Result<Scenario> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("scenario.toml");
        std::fs::write(&path, text)?;
        Scenario::read(&path)
    }

    #[test]
    fn scenarios_give_shares_links_and_delays() {
        let parsed = scenario(
            "delay_ms = 20\n[[node]]\nname = \"a\"\nshare = 0.7\n[[node]]\nname = \"b\"\nshare = 0.3\n\
             [[node]]\nname = \"m\"\n[[link]]\nfrom = \"b\"\nto = \"a\"\n[[link]]\nfrom = \"m\"\nto = \"a\"\ndelay_ms = 150\n",
        )
        .unwrap();
        assert_eq!(parsed.node.len(), 3);
        assert_eq!(parsed.node[2].share, 0.0);
        let links = parsed.links(Topology::Mesh, 0).unwrap();
        assert_eq!(
            links
                .iter()
                .map(|l| (l.dialler, l.listener, l.delay_ms))
                .collect::<Vec<_>>(),
            vec![(1, 0, 20), (2, 0, 150)]
        );
        let ring = scenario("topology = \"ring\"\ndelay_ms = 5\n[[node]]\nname = \"a\"\n[[node]]\nname = \"b\"\n[[node]]\nname = \"c\"\n").unwrap();
        let links = ring.links(Topology::Mesh, 0).unwrap();
        assert_eq!(links.len(), 3);
        assert!(links.iter().all(|link| link.delay_ms == 5));
    }

    #[test]
    fn named_partitions_give_their_sides_and_bad_ones_are_refused() {
        let nodes = "[[node]]\nname = \"a\"\n[[node]]\nname = \"b\"\n[[node]]\nname = \"c\"\n";
        let parsed = scenario(&format!(
            "{nodes}[[partition]]\nname = \"lone\"\na = [\"c\"]\nb = [\"a\", \"b\"]\n"
        ))
        .unwrap();
        let partitions = parsed.named_partitions().unwrap();
        assert_eq!(partitions.len(), 1);
        assert_eq!(
            (partitions[0].a.clone(), partitions[0].b.clone()),
            (vec![2], vec![0, 1])
        );
        let error = |partition: &str| {
            format!(
                "{:#}",
                scenario(&format!("{nodes}[[partition]]\n{partition}")).unwrap_err()
            )
        };
        assert!(error("name = \"x\"\na = [\"a\"]\nb = [\"zz\"]\n").contains("'zz', which is not"));
        assert!(error("name = \"x\"\na = [\"a\"]\nb = [\"a\", \"b\"]\n").contains("both sides"));
        assert!(error("name = \"x\"\na = []\nb = [\"b\"]\n").contains("at least one node"));
        assert!(error("name = \"x y\"\na = [\"a\"]\nb = [\"b\"]\n").contains("letters, digits"));
    }

    #[test]
    fn bad_scenarios_are_refused_with_the_reason() {
        let error = |text: &str| format!("{:#}", scenario(text).unwrap_err());
        assert!(error(
            "[[node]]\nname = \"a\"\nshare = 0.8\n[[node]]\nname = \"b\"\nshare = 0.8\n"
        )
        .contains("add up"));
        assert!(error("[[node]]\nname = \"a b\"\n").contains("letters, digits"));
        assert!(error("colour = \"red\"\n[[node]]\nname = \"a\"\n").contains("unknown field"));
        assert!(error("topology = \"mesh\"\n").contains("node"));
        assert!(error("[[node]]\nname = \"a\"\n[[node]]\nname = \"a\"\n").contains("named 'a'"));
        assert!(error(
            "topology = \"ring\"\n[[node]]\nname = \"a\"\n[[node]]\nname = \"b\"\n[[link]]\nfrom = \"a\"\nto = \"b\"\n"
        )
        .contains("not both"));
        assert!(error("hash_rate = 0\n[[node]]\nname = \"a\"\nshare = 1.0\n").contains("positive"));
        assert!(error("[[node]]\nname = \"a\"\nshare = -0.5\n").contains("between 0 and 1"));
        let split = scenario(
            "[[node]]\nname = \"a\"\n[[node]]\nname = \"b\"\n[[node]]\nname = \"c\"\n[[link]]\nfrom = \"a\"\nto = \"b\"\n",
        )
        .unwrap();
        let message = format!("{:#}", split.links(Topology::Mesh, 0).unwrap_err());
        assert!(message.contains("'c' cut off"), "{message}");
        let unknown =
            scenario("[[node]]\nname = \"a\"\n[[link]]\nfrom = \"a\"\nto = \"zz\"\n").unwrap();
        let message = format!("{:#}", unknown.links(Topology::Mesh, 0).unwrap_err());
        assert!(message.contains("'zz'"), "{message}");
    }
}
