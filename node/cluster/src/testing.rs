//! Real etcd clusters for tests: N members as child processes on free loopback ports.
//!
//! Compiled always (no test-only dependencies) so other crates' tests can start etcd too.
//! Needs `etcd` on `PATH` (Debian: `etcd-server`; `scripts/setup.sh` installs it). Tests must
//! not skip when it is missing: [`EtcdCluster::start`] fails with [`HarnessError::NotInstalled`],
//! whose message says what to install. etcd runs fine as root.
//!
//! Flags as measured in `node/CLUSTER-PLAN.md` part B: heartbeat 50 ms, election timeout
//! 500 ms, zap logger at warn level (each member's log is `<dir>/m<i>.log`).

use std::fs::{self, File};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use etcd_client::{Client, ConnectOptions, StatusResponse};
use tokio::time::{Instant, sleep, timeout};

/// The etcd binary the harness runs.
const ETCD: &str = "etcd";
/// How long a cluster may take to answer healthy on every member (3.4 s measured for three).
const HEALTHY_BUDGET: Duration = Duration::from_secs(20);
/// Attempts when a member loses its port to another process between probe and bind.
const PORT_ATTEMPTS: usize = 3;

/// What the harness could not do.
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    /// No `etcd` binary on `PATH`.
    #[error(
        "etcd is not installed (no `etcd` on PATH): install etcd-server and etcd-client \
         (scripts/setup.sh does: apt-get install -y etcd-server etcd-client)"
    )]
    NotInstalled,
    /// A file or process operation failed.
    #[error("test etcd: {0}")]
    Io(String),
    /// The members did not all answer healthy in time, or one exited.
    #[error("test etcd cluster not healthy: {0}")]
    NotHealthy(String),
    /// No member with that index (or it was killed).
    #[error("test etcd: no running member {0}")]
    NoSuchMember(usize),
}

/// True when an `etcd` binary runs. Tests call [`EtcdCluster::start`], which fails with the
/// install hint; this is for callers that want to say more.
pub fn etcd_available() -> bool {
    Command::new(ETCD)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// Sends `signal` (a name such as `STOP`, `CONT`, `KILL`) to process `pid` with `kill(1)`
/// (this workspace forbids `unsafe`, so no `libc::kill`).
pub fn signal(pid: u32, signal: &str) -> Result<(), HarnessError> {
    let status = Command::new("kill")
        .args(["-s", signal, &pid.to_string()])
        .status()
        .map_err(|e| HarnessError::Io(format!("kill -s {signal} {pid}: {e}")))?;
    if status.success() {
        Ok(())
    } else {
        Err(HarnessError::Io(format!(
            "kill -s {signal} {pid}: {status}"
        )))
    }
}

struct Member {
    client_url: String,
    log: PathBuf,
    child: Option<Child>,
}

/// A running etcd cluster; every member is killed (SIGKILL, then reaped) and its data removed
/// on drop, also when a test panics.
pub struct EtcdCluster {
    dir: PathBuf,
    members: Vec<Member>,
}

impl std::fmt::Debug for EtcdCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdCluster")
            .field("endpoints", &self.endpoints())
            .finish()
    }
}

impl EtcdCluster {
    /// Starts `members` members and waits until each answers healthy with a raft leader.
    pub async fn start(members: usize) -> Result<Self, HarnessError> {
        if !etcd_available() {
            return Err(HarnessError::NotInstalled);
        }
        if members == 0 {
            return Err(HarnessError::Io(
                "a cluster needs at least one member".into(),
            ));
        }
        let deadline = Instant::now() + HEALTHY_BUDGET;
        let mut clash = String::new();
        for _ in 0..PORT_ATTEMPTS {
            let mut cluster = Self::spawn(members)?;
            match cluster.wait_healthy(deadline).await {
                Ok(()) => return Ok(cluster),
                // Dropping `cluster` kills the members that did start.
                Err(Wait::PortClash(detail)) => clash = detail,
                Err(Wait::Failed(e)) => return Err(e),
            }
        }
        Err(HarnessError::NotHealthy(format!(
            "ports kept clashing: {clash}"
        )))
    }

    fn spawn(members: usize) -> Result<Self, HarnessError> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let io = |what: &str, e: std::io::Error| HarnessError::Io(format!("{what}: {e}"));
        let dir = std::env::temp_dir().join(format!(
            "farthing-etcd-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).map_err(|e| io("create the data directory", e))?;
        // Bind every port at once (so they differ), then release them for etcd: racy with
        // other processes, hence the retry on "address already in use".
        let listeners = (0..2 * members)
            .map(|_| TcpListener::bind("127.0.0.1:0"))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| io("bind a free port", e))?;
        let ports = listeners
            .iter()
            .map(|l| l.local_addr().map(|a| a.port()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| io("read a port", e))?;
        drop(listeners);
        let peer = |i: usize| format!("http://127.0.0.1:{}", ports[2 * i]);
        let initial = (0..members)
            .map(|i| format!("m{i}={}", peer(i)))
            .collect::<Vec<_>>()
            .join(",");
        let token = dir
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        let mut cluster = Self {
            dir: dir.clone(),
            members: Vec::new(),
        };
        for i in 0..members {
            let client_url = format!("http://127.0.0.1:{}", ports[2 * i + 1]);
            let log = dir.join(format!("m{i}.log"));
            let out = File::create(&log).map_err(|e| io("create a log file", e))?;
            let err = out.try_clone().map_err(|e| io("open a log file", e))?;
            let child = Command::new(ETCD)
                .args(["--name", &format!("m{i}")])
                .args(["--data-dir", &dir.join(format!("m{i}")).to_string_lossy()])
                .args([
                    "--listen-peer-urls",
                    &peer(i),
                    "--initial-advertise-peer-urls",
                    &peer(i),
                ])
                .args([
                    "--listen-client-urls",
                    &client_url,
                    "--advertise-client-urls",
                    &client_url,
                ])
                .args([
                    "--initial-cluster",
                    &initial,
                    "--initial-cluster-state",
                    "new",
                ])
                .args(["--initial-cluster-token", &token])
                .args(["--heartbeat-interval", "50", "--election-timeout", "500"])
                .args(["--logger", "zap", "--log-level", "warn"])
                .stdin(Stdio::null())
                .stdout(out)
                .stderr(err)
                .spawn()
                .map_err(|e| io("start etcd", e))?;
            cluster.members.push(Member {
                client_url,
                log,
                child: Some(child),
            });
        }
        Ok(cluster)
    }

    async fn wait_healthy(&mut self, deadline: Instant) -> Result<(), Wait> {
        loop {
            for (i, member) in self.members.iter_mut().enumerate() {
                let exited = member
                    .child
                    .as_mut()
                    .and_then(|c| c.try_wait().ok().flatten());
                if let Some(status) = exited {
                    let log = fs::read_to_string(&member.log).unwrap_or_default();
                    let tail: String = log.lines().rev().take(5).collect::<Vec<_>>().join(" | ");
                    let detail = format!("member {i} exited ({status}): {tail}");
                    return Err(if log.contains("address already in use") {
                        Wait::PortClash(detail)
                    } else {
                        Wait::Failed(HarnessError::NotHealthy(detail))
                    });
                }
            }
            let mut healthy = 0;
            for member in &self.members {
                if status(&member.client_url)
                    .await
                    .is_some_and(|s| s.leader() != 0)
                {
                    healthy += 1;
                }
            }
            if healthy == self.members.len() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(Wait::Failed(HarnessError::NotHealthy(format!(
                    "{healthy} of {} members healthy after {HEALTHY_BUDGET:?}; logs in {}",
                    self.members.len(),
                    self.dir.display()
                ))));
            }
            sleep(Duration::from_millis(100)).await;
        }
    }

    /// Every member's client URL, killed members included (as an operator's config lists them).
    pub fn endpoints(&self) -> Vec<String> {
        self.members.iter().map(|m| m.client_url.clone()).collect()
    }

    /// The index of the member that is raft leader now, waiting up to 10 s for one.
    pub async fn raft_leader_member(&self) -> Result<usize, HarnessError> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            for (i, member) in self.members.iter().enumerate() {
                if member.child.is_none() {
                    continue;
                }
                if let Some(s) = status(&member.client_url).await
                    && s.header().is_some_and(|h| h.member_id() == s.leader())
                {
                    return Ok(i);
                }
            }
            if Instant::now() >= deadline {
                return Err(HarnessError::NotHealthy(
                    "no member reports itself raft leader".into(),
                ));
            }
            sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGKILLs member `i` and reaps it.
    pub fn kill_member(&mut self, i: usize) -> Result<(), HarnessError> {
        let mut child = self
            .member_child(i)?
            .take()
            .ok_or(HarnessError::NoSuchMember(i))?;
        child
            .kill()
            .map_err(|e| HarnessError::Io(format!("kill member {i}: {e}")))?;
        child
            .wait()
            .map_err(|e| HarnessError::Io(format!("reap member {i}: {e}")))?;
        Ok(())
    }

    /// SIGSTOPs member `i` (it keeps its sockets but answers nothing).
    pub fn stop_member(&mut self, i: usize) -> Result<(), HarnessError> {
        let pid = self.member_pid(i)?;
        signal(pid, "STOP")
    }

    /// SIGCONTs member `i` after [`EtcdCluster::stop_member`].
    pub fn continue_member(&mut self, i: usize) -> Result<(), HarnessError> {
        let pid = self.member_pid(i)?;
        signal(pid, "CONT")
    }

    fn member_child(&mut self, i: usize) -> Result<&mut Option<Child>, HarnessError> {
        self.members
            .get_mut(i)
            .map(|m| &mut m.child)
            .ok_or(HarnessError::NoSuchMember(i))
    }

    fn member_pid(&mut self, i: usize) -> Result<u32, HarnessError> {
        self.member_child(i)?
            .as_ref()
            .map(Child::id)
            .ok_or(HarnessError::NoSuchMember(i))
    }
}

impl Drop for EtcdCluster {
    fn drop(&mut self) {
        for member in &mut self.members {
            if let Some(mut child) = member.child.take() {
                // A lone member without quorum ignores SIGTERM for seconds: SIGKILL.
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

enum Wait {
    PortClash(String),
    Failed(HarnessError),
}

/// One member's status, or `None` if it does not answer within a second.
async fn status(url: &str) -> Option<StatusResponse> {
    let options = ConnectOptions::new()
        .with_connect_timeout(Duration::from_millis(500))
        .with_timeout(Duration::from_secs(1));
    let mut client = Client::connect([url], Some(options)).await.ok()?;
    timeout(Duration::from_secs(1), client.status())
        .await
        .ok()?
        .ok()
}
