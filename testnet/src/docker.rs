//! The Docker engine: each node of a testnet in its own container of the image `quarry-testnet
//! image` builds, on a user-defined network of the testnet's own where it has its own address
//! and its name; the node's folder is its data directory (so the cookie, the log and the
//! wallet are where the processes engine has them) and its RPC and metrics are published on
//! loopback, so every command that talks to nodes works unchanged. Partitions add blackhole
//! routes inside the containers (a real cut: nothing crosses), delays run in relay containers
//! sharing the dialler's network namespace. Only the testnet's own containers and network are
//! touched: they carry its label and its name prefix.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::export::{ports, PARAMS_PATH};

/// The label every container and the network of a testnet carry: its project name.
const LABEL: &str = "quarry.testnet";

/// A testnet's place in Docker.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Docker {
    /// The image the nodes run.
    pub image: String,
    /// The network's name, the containers' name prefix and the label's value.
    pub project: String,
}

/// Runs `docker ARGS`; its standard output, or an error with what Docker said.
fn docker(args: &[&str]) -> Result<String> {
    let output = Command::new("docker")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .context(
            "cannot run docker: install Docker (Debian: docker.io) or use --engine processes",
        )?;
    if !output.status.success() {
        bail!(
            "docker {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

/// Whether a Docker daemon answers here.
pub fn available() -> bool {
    docker(&["info", "--format", "{{.ServerVersion}}"]).is_ok()
}

impl Docker {
    /// The testnet in `dir` on `image`: its project name comes from the folder, so two
    /// testnets never share containers.
    pub fn new(image: &str, dir: &Path) -> Self {
        let path = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
        let digest = Sha256::digest(path.to_string_lossy().as_bytes());
        Self {
            image: image.to_owned(),
            project: format!("quarry-{}", hex::encode(&digest[..4])),
        }
    }

    /// Checks that the daemon answers and has the image.
    pub fn check(&self) -> Result<()> {
        docker(&["info", "--format", "{{.ServerVersion}}"])
            .context("no Docker daemon answers: start it (sudo systemctl start docker), or use --engine processes")?;
        if docker(&["image", "inspect", "--format", "{{.Id}}", &self.image]).is_err() {
            bail!(
                "Docker has no image {}: build and load it with `quarry-testnet image --tag {} --load`",
                self.image,
                self.image
            );
        }
        Ok(())
    }

    /// The container of node `name`.
    pub fn container(&self, name: &str) -> String {
        format!("{}-{name}", self.project)
    }

    /// Removes what an earlier run of this testnet left (its containers, its network), then
    /// creates the network.
    pub fn create_network(&self) -> Result<()> {
        self.remove()?;
        docker(&[
            "network",
            "create",
            "--label",
            &format!("{LABEL}={}", self.project),
            &self.project,
        ])?;
        Ok(())
    }

    /// Removes node `name`'s container, if there is one.
    pub fn discard(&self, name: &str) {
        let _ = docker(&["rm", "--force", &self.container(name)]);
    }

    /// Removes the testnet's containers and network, if any.
    pub fn remove(&self) -> Result<()> {
        let containers = docker(&[
            "ps",
            "--all",
            "--quiet",
            "--filter",
            &format!("label={LABEL}={}", self.project),
        ])?;
        let containers: Vec<&str> = containers.lines().collect();
        if !containers.is_empty() {
            let mut args = vec!["rm", "--force"];
            args.extend(containers);
            docker(&args)?;
        }
        if docker(&["network", "inspect", &self.project]).is_ok() {
            docker(&["network", "rm", &self.project])?;
        }
        Ok(())
    }

    /// `docker run` of node `name` (attached: the command runs as long as the node, and a
    /// signal to it reaches the node), its folder `dir` as data directory, the network
    /// parameters `params`, RPC and metrics published on loopback at `rpc` and `metrics`,
    /// quarryd's own arguments `extra` after the ones every node takes.
    pub fn node_command(
        &self,
        name: &str,
        dir: &Path,
        params: &Path,
        rpc: SocketAddr,
        metrics: SocketAddr,
        extra: &[String],
    ) -> Result<Command> {
        use std::os::unix::fs::MetadataExt;
        let owner =
            std::fs::metadata(dir).with_context(|| format!("cannot read {}", dir.display()))?;
        let ports = ports();
        let mut command = Command::new("docker");
        command
            .args(["run", "--rm", "--name", &self.container(name)])
            .args(["--label", &format!("{LABEL}={}", self.project)])
            .args([
                "--network",
                &self.project,
                "--network-alias",
                name,
                "--hostname",
                name,
            ])
            // Files in the node's folder stay the user's, as with processes.
            .args(["--user", &format!("{}:{}", owner.uid(), owner.gid())])
            // Partitions add routes in the node's network namespace.
            .args(["--cap-add", "NET_ADMIN"])
            // `status` is the testnet's health view; the image's check, an exec every 10 s
            // per container, took both cores of this machine at 200 nodes.
            .arg("--no-healthcheck")
            .arg("--volume")
            .arg(format!("{}:/data", absolute(dir)?))
            .arg("--volume")
            .arg(format!("{}:{PARAMS_PATH}:ro", absolute(params)?))
            .args(["--env", &format!("QUARRY_NETWORK={PARAMS_PATH}")])
            .args(["--env", "QUARRY_DATADIR=/data"])
            .arg("--publish")
            .arg(format!("{rpc}:{}", ports.rpc))
            .arg("--publish")
            .arg(format!("{metrics}:{}", ports.metrics))
            .arg(&self.image)
            .args([
                "quarryd",
                "--listen",
                &format!("/ip4/0.0.0.0/tcp/{}", ports.p2p),
                "--rpc-bind",
                &format!("0.0.0.0:{}", ports.rpc),
                "--metrics-bind",
                &format!("0.0.0.0:{}", ports.metrics),
                "--log-level",
                "info",
            ])
            .args(extra);
        Ok(command)
    }

    /// The node's peer-to-peer address on the testnet's network, by name.
    pub fn p2p_address(name: &str, peer_id: &str) -> String {
        format!("/dns4/{name}/tcp/{}/p2p/{peer_id}", ports().p2p)
    }

    /// `docker run` of a relay in `dialler`'s network namespace: `127.0.0.1:port` there
    /// reaches `listener`, `delay_ms` later each way.
    pub fn relay_command(
        &self,
        dialler: &str,
        port: u16,
        listener: &str,
        delay_ms: u64,
    ) -> Command {
        let mut command = Command::new("docker");
        command
            .args([
                "run",
                "--rm",
                "--name",
                &format!("{}-relay-{dialler}-{listener}", self.project),
            ])
            .args(["--label", &format!("{LABEL}={}", self.project)])
            .args([
                "--network",
                &format!("container:{}", self.container(dialler)),
            ])
            .arg(&self.image)
            .args([
                "quarry-testnet",
                "relay",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--to",
                &format!("{listener}:{}", ports().p2p),
                "--delay-ms",
                &delay_ms.to_string(),
            ]);
        command
    }

    /// Node `name`'s address on the testnet's network.
    pub fn address(&self, name: &str) -> Result<Ipv4Addr> {
        let format = format!(
            "{{{{(index .NetworkSettings.Networks \"{}\").IPAddress}}}}",
            self.project
        );
        let text = docker(&["inspect", "--format", &format, &self.container(name)])?;
        text.parse()
            .with_context(|| format!("Docker gave '{text}' as the address of {name}"))
    }

    /// Node `name` drops everything it would send to `addresses` (blackhole routes; as root
    /// in the container, which has NET_ADMIN).
    pub fn cut(&self, name: &str, addresses: &[Ipv4Addr]) -> Result<()> {
        let container = self.container(name);
        for address in addresses {
            docker(&[
                "exec",
                "--user",
                "0",
                &container,
                "ip",
                "route",
                "replace",
                "blackhole",
                &format!("{address}/32"),
            ])?;
        }
        Ok(())
    }

    /// Removes node `name`'s blackhole routes.
    pub fn mend(&self, name: &str) -> Result<()> {
        docker(&[
            "exec",
            "--user",
            "0",
            &self.container(name),
            "ip",
            "route",
            "flush",
            "type",
            "blackhole",
        ])?;
        Ok(())
    }
}

fn absolute(path: &Path) -> Result<String> {
    Ok(std::path::absolute(path)
        .with_context(|| format!("cannot resolve {}", path.display()))?
        .display()
        .to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_folder_has_its_own_project_and_a_folder_always_the_same() {
        let a = Docker::new("quarry:1", Path::new("/tmp/one"));
        let b = Docker::new("quarry:1", Path::new("/tmp/two"));
        assert_ne!(a.project, b.project);
        assert_eq!(a, Docker::new("quarry:1", Path::new("/tmp/one")));
        assert!(a.project.starts_with("quarry-") && a.project.len() == 15);
        assert_eq!(a.container("n0"), format!("{}-n0", a.project));
    }
}
