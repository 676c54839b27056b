//! Starting `quarryd` processes on loopback: where the binary is, a free port, the arguments
//! every local node runs with, waiting until it answers and until it exits. The testnet tool
//! and the end-to-end tests start their nodes through here.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// Where `name` (a binary of this workspace) is: `explicit`, else beside the running
/// executable, else one folder up (tests run from `target/<profile>/deps`), else on `PATH`.
pub fn binary_path(name: &str, explicit: Option<&Path>) -> PathBuf {
    if let Some(path) = explicit {
        return path.to_path_buf();
    }
    let exe = std::env::current_exe().ok();
    let beside = exe.as_deref().and_then(Path::parent);
    let above = beside.and_then(Path::parent);
    let found = [beside, above]
        .into_iter()
        .flatten()
        .map(|dir| dir.join(name))
        .find(|path| path.exists());
    found.unwrap_or_else(|| PathBuf::from(name))
}

/// A free loopback port (bound and released: another process could take it, rarely).
pub fn free_port() -> std::io::Result<u16> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
}

/// A local node to start: its network, base directory, RPC and metrics addresses; peers
/// listen on a loopback port the system picks.
#[derive(Clone, Debug)]
pub struct Launch {
    /// The `quarryd` binary.
    pub quarryd: PathBuf,
    /// `--network`: a built-in name or a parameters file.
    pub network: String,
    /// `--datadir`.
    pub base_dir: PathBuf,
    /// `--rpc-bind`.
    pub rpc: SocketAddr,
    /// `--metrics-bind`.
    pub metrics: SocketAddr,
}

impl Launch {
    /// A node of `network` in `base_dir` on two free loopback ports.
    pub fn on_free_ports(
        quarryd: PathBuf,
        network: String,
        base_dir: PathBuf,
    ) -> std::io::Result<Self> {
        let localhost = |port| SocketAddr::from(([127, 0, 0, 1], port));
        Ok(Self {
            quarryd,
            network,
            base_dir,
            rpc: localhost(free_port()?),
            metrics: localhost(free_port()?),
        })
    }

    /// The arguments every local node runs with.
    pub fn args(&self) -> Vec<String> {
        vec![
            "--network".into(),
            self.network.clone(),
            "--datadir".into(),
            self.base_dir.display().to_string(),
            "--listen".into(),
            "/ip4/127.0.0.1/tcp/0".into(),
            "--rpc-bind".into(),
            self.rpc.to_string(),
            "--metrics-bind".into(),
            self.metrics.to_string(),
            "--log-level".into(),
            "info".into(),
        ]
    }

    /// The file the node's log goes to: `quarryd.log` in its base directory.
    pub fn log_path(&self) -> PathBuf {
        self.base_dir.join("quarryd.log")
    }

    /// Starts `program` (the node, or a wrapper that ends by running it) with the node's
    /// arguments and `extra`, its log in [`Launch::log_path`]. With
    /// [`Lifetime::WithThisProcess`] the node is asked to stop (SIGTERM, on Linux) when the
    /// thread that started it ends, however it ends (even by SIGKILL of this process), so no
    /// node outlives the tool or test that started it; a [`Lifetime::Detached`] node runs in
    /// its own process group until stopped over RPC.
    pub fn spawn_with(
        &self,
        program: Command,
        extra: &[String],
        lifetime: Lifetime,
    ) -> std::io::Result<Child> {
        let mut command = program;
        command.args(self.args()).args(extra);
        spawn_logged(command, &self.log_path(), lifetime)
    }

    /// Starts the node with `extra` arguments.
    pub fn spawn(&self, extra: &[String], lifetime: Lifetime) -> std::io::Result<Child> {
        self.spawn_with(Command::new(&self.quarryd), extra, lifetime)
    }
}

/// Starts `command` with its standard error in the file `log`, for `lifetime` (a node, or a
/// program standing for one, such as `docker run` of its container).
pub fn spawn_logged(
    mut command: Command,
    log: &Path,
    lifetime: Lifetime,
) -> std::io::Result<Child> {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log)?);
    match lifetime {
        Lifetime::WithThisProcess => stop_with_parent(&mut command),
        Lifetime::Detached => {
            use std::os::unix::process::CommandExt;
            // Out of the terminal's process group: a Ctrl-C meant for the shell's next
            // command does not reach it.
            command.process_group(0);
        }
    }
    command.spawn()
}

/// How long a started node runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lifetime {
    /// Until the process that started it ends (or it is stopped).
    WithThisProcess,
    /// Until it is stopped over RPC (`quarry-testnet up --detach`).
    Detached,
}

#[cfg(target_os = "linux")]
fn stop_with_parent(command: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: runs in the child between fork and exec, where only async-signal-safe calls are
    // allowed; prctl and getppid are system calls that allocate nothing.
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The parent may have died before prctl took effect: then stop now.
            if libc::getppid() == 1 {
                return Err(std::io::Error::other("the starting process is gone"));
            }
            Ok(())
        });
    }
}

#[cfg(not(target_os = "linux"))]
fn stop_with_parent(_command: &mut Command) {}

/// Why a started node never answered.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// It exited first.
    #[error("it exited with {0} at start")]
    Exited(ExitStatus),
    /// It was still silent at the deadline (it has been killed).
    #[error("it did not answer within {0:?}")]
    Silent(Duration),
    /// Its state could not be read.
    #[error("cannot watch it: {0}")]
    Io(#[from] std::io::Error),
}

/// Polls `answers` until it says yes, while `child` runs; a node silent after `timeout` is
/// killed.
pub fn wait_until_answers(
    child: &mut Child,
    timeout: Duration,
    mut answers: impl FnMut() -> bool,
) -> Result<(), StartError> {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait()? {
            return Err(StartError::Exited(status));
        }
        if answers() {
            return Ok(());
        }
        if started.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            return Err(StartError::Silent(timeout));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits up to `timeout` for `child` to exit; kills it and answers `None` past that.
pub fn wait_exit(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let started = Instant::now();
    while started.elapsed() < timeout {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_explicit_binary_wins_and_an_unknown_one_is_looked_up_on_the_path() {
        assert_eq!(
            binary_path("quarryd", Some(Path::new("/opt/quarryd"))),
            PathBuf::from("/opt/quarryd")
        );
        assert_eq!(
            binary_path("no-such-binary-here", None),
            PathBuf::from("no-such-binary-here")
        );
    }

    #[test]
    fn a_process_that_exits_at_start_is_reported_and_a_silent_one_killed() {
        let mut exits = Command::new("false").spawn().unwrap();
        let error = wait_until_answers(&mut exits, Duration::from_secs(5), || false).unwrap_err();
        assert!(matches!(error, StartError::Exited(status) if !status.success()));
        let mut silent = Command::new("sleep").arg("30").spawn().unwrap();
        let error =
            wait_until_answers(&mut silent, Duration::from_millis(200), || false).unwrap_err();
        assert!(matches!(error, StartError::Silent(_)));
        assert!(
            silent.try_wait().unwrap().is_some(),
            "the silent process was killed"
        );
        let mut answering = Command::new("sleep").arg("30").spawn().unwrap();
        wait_until_answers(&mut answering, Duration::from_secs(5), || true).unwrap();
        answering.kill().unwrap();
        assert!(wait_exit(&mut answering, Duration::from_secs(5)).is_some());
    }
}
