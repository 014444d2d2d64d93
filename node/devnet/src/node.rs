//! The real `farthing node` as a child process: started on free ports with a devnet key, its
//! addresses read from its first line, stopped with SIGTERM or killed.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};

use crate::{Error, Result};

/// How to start one `farthing node`.
#[derive(Debug, Clone)]
pub struct NodeCommand {
    /// The `farthing` binary.
    pub binary: PathBuf,
    /// The devnet account whose key the node holds (`--dev N`).
    pub account: u32,
    /// Its data directory (the node creates it).
    pub data_dir: PathBuf,
    /// The chain's RPC URL.
    pub rpc_url: String,
    /// The deployment file.
    pub deployment: PathBuf,
    /// More flags (`--connect`, `--workers`, ...). `--peer-listen 127.0.0.1:0` is added unless
    /// they hold a `--peer-listen`; the RPC always listens on a free port.
    pub extra: Vec<String>,
    /// Where the node's log (its stderr) goes: this file, or this process's stderr if none.
    pub log: Option<PathBuf>,
}

impl NodeCommand {
    /// Devnet account `account`'s node from `binary`, no extra flags, logging to our stderr.
    pub fn new(
        binary: &Path,
        account: u32,
        data_dir: &Path,
        rpc_url: &str,
        deployment: &Path,
    ) -> Self {
        Self {
            binary: binary.to_owned(),
            account,
            data_dir: data_dir.to_owned(),
            rpc_url: rpc_url.to_owned(),
            deployment: deployment.to_owned(),
            extra: Vec::new(),
            log: None,
        }
    }

    /// Add these flags.
    pub fn args<S: AsRef<str>>(mut self, extra: &[S]) -> Self {
        self.extra
            .extend(extra.iter().map(|s| s.as_ref().to_owned()));
        self
    }

    /// Write the node's log to `path` instead of this process's stderr.
    pub fn log_to(mut self, path: &Path) -> Self {
        self.log = Some(path.to_owned());
        self
    }

    /// Start the node; returns once it printed the addresses it listens on.
    pub fn start(&self) -> Result<NodeProcess> {
        NodeProcess::start(self)
    }
}

/// A running `farthing node`, killed when dropped.
#[derive(Debug)]
pub struct NodeProcess {
    child: Child,
    /// Its RPC, `http://HOST:PORT` (HTTP and WebSocket on one port).
    pub url: String,
    /// Where it listens for partner nodes, `HOST:PORT`.
    pub peers: String,
    /// Its data directory.
    pub data_dir: PathBuf,
}

impl NodeProcess {
    /// Start the node `command` describes; returns once it printed the addresses it listens on.
    pub fn start(command: &NodeCommand) -> Result<Self> {
        let account = command.account.to_string();
        let process = |what: &str| {
            let what = what.to_owned();
            move |source| Error::Process { what, source }
        };
        let stderr = match &command.log {
            Some(path) => Stdio::from(
                std::fs::File::create(path)
                    .map_err(process(&format!("creating {}", path.display())))?,
            ),
            None => Stdio::inherit(),
        };
        let mut cmd = Command::new(&command.binary);
        cmd.arg("--data-dir")
            .arg(&command.data_dir)
            .args(["node", "--dev", &account, "--rpc-url", &command.rpc_url])
            .args(["--rpc-listen", "127.0.0.1:0"])
            .arg("--deployment")
            .arg(&command.deployment)
            .args(&command.extra);
        if !command.extra.iter().any(|a| a == "--peer-listen") {
            cmd.args(["--peer-listen", "127.0.0.1:0"]);
        }
        if !command.extra.iter().any(|a| a == "--log-level") {
            cmd.args(["--log-level", "warn"]);
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .map_err(process(&format!(
                "starting {} node",
                command.binary.display()
            )))?;
        // "farthing node 0x.. peers on HOST:PORT listening on HOST:PORT"
        // A standby says so first ("farthing standby NAME waiting to lead") and prints the
        // line above once it leads.
        let mut line = String::new();
        if let Some(stdout) = child.stdout.take() {
            let mut stdout = BufReader::new(stdout);
            while {
                line.clear();
                stdout.read_line(&mut line).is_ok_and(|n| n > 0)
                    && line.starts_with("farthing standby ")
            } {}
        }
        let words: Vec<&str> = line.split_whitespace().collect();
        if words.len() != 9 || words[6] != "listening" {
            let _ = child.kill();
            let _ = child.wait();
            return Err(Error::NodeDidNotStart {
                account: command.account,
                line,
                log: match &command.log {
                    Some(path) => format!("see {}", path.display()),
                    None => "see its log above".into(),
                },
            });
        }
        Ok(Self {
            url: format!("http://{}", words[8]),
            peers: words[5].to_owned(),
            data_dir: command.data_dir.clone(),
            child,
        })
    }

    /// Its RPC as a WebSocket URL, `ws://HOST:PORT`.
    pub fn ws_url(&self) -> String {
        self.url.replacen("http://", "ws://", 1)
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL: the process dies at once, mid-write or not.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Wait until the process exits by itself; its exit status.
    pub fn wait(mut self) -> Result<ExitStatus> {
        let pid = self.child.id();
        self.child.wait().map_err(|source| Error::Process {
            what: format!("waiting for node process {pid}"),
            source,
        })
    }

    /// SIGTERM and wait: a clean shutdown; its exit status.
    pub fn stop(mut self) -> Result<ExitStatus> {
        let pid = self.child.id().to_string();
        let waited = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .and_then(|_| self.child.wait());
        waited.map_err(|source| Error::Process {
            what: format!("stopping node process {pid}"),
            source,
        })
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Kills (SIGKILL) every process whose command line holds `pattern` (e.g. a data directory's
/// path) when dropped: a node still starting — a standby waiting to lead — is no
/// [`NodeProcess`] yet, and must not outlive a failed test or run.
#[derive(Debug)]
pub struct KillAll(pub String);

impl Drop for KillAll {
    fn drop(&mut self) {
        let _ = Command::new("pkill").args(["-9", "-f", &self.0]).status();
    }
}
