//! Throwaway PostgreSQL clusters for tests: a primary, optionally with a synchronous standby,
//! started from Debian's binaries (`/usr/lib/postgresql/<version>/bin`, package `postgresql`,
//! which `scripts/setup.sh` installs) on free loopback ports, in a directory of their own —
//! never the system's service, never port 5432.
//!
//! PostgreSQL refuses to run as root: when the tests run as root, every server command runs
//! as the user `postgres` (through `runuser`) in a directory that user owns. Everything is
//! stopped (`pg_ctl -m immediate`) and deleted when the [`PgCluster`] is dropped, also when
//! the test panics. The servers are this process's children, in its process group (not
//! daemonised by `pg_ctl start`): a Ctrl-C of a test or `farthing bench` stops them too.

use std::io;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How a server is stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// Like a crash or a power cut: no checkpoint, no goodbye to clients.
    Immediate,
    /// Clients are disconnected, a checkpoint is written.
    Fast,
}

/// One server of a [`PgCluster`].
#[derive(Debug)]
struct Server {
    data: PathBuf,
    port: u16,
    /// The server process (`runuser` in front of it when we are root), while it runs.
    process: Option<Child>,
}

/// A PostgreSQL primary on a free loopback port and, if asked, a synchronous standby.
#[derive(Debug)]
pub struct PgCluster {
    root: PathBuf,
    bin: PathBuf,
    as_postgres: bool,
    primary: Server,
    standby: Option<Server>,
}

/// Whether the PostgreSQL server binaries are installed (the tests fail, saying what to
/// install, when they are not).
pub fn postgres_bin() -> io::Result<PathBuf> {
    if let Some(dir) = std::env::var_os("FARTHING_PG_BIN") {
        return Ok(PathBuf::from(dir));
    }
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, bin)| bin).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::NotFound,
            "PostgreSQL's server binaries are not installed (no /usr/lib/postgresql/*/bin/initdb): \
             run scripts/setup.sh, or apt-get install postgresql, or set FARTHING_PG_BIN",
        )
    })
}

impl PgCluster {
    /// A primary alone (fsync and synchronous commit on, like production).
    pub fn start() -> io::Result<Self> {
        let bin = postgres_bin()?;
        let as_postgres = is_root()?;
        let root = fresh_dir(as_postgres)?;
        let mut cluster = Self {
            primary: Server {
                data: root.join("primary"),
                port: 0,
                process: None,
            },
            root,
            bin,
            as_postgres,
            standby: None,
        };
        cluster.pg(
            "initdb",
            &[
                "-D",
                path(&cluster.primary.data),
                "-U",
                "postgres",
                "-A",
                "trust",
                "--no-instructions",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
            ],
        )?;
        let conf = format!(
            "listen_addresses = '127.0.0.1'\nunix_socket_directories = '{}'\nfsync = on\n\
             synchronous_commit = on\nwal_level = replica\nmax_wal_senders = 4\n\
             max_connections = 200\nshared_buffers = 64MB\n",
            cluster.root.display()
        );
        append(&cluster.primary.data.join("postgresql.conf"), &conf)?;
        append(
            &cluster.primary.data.join("pg_hba.conf"),
            "host replication postgres 127.0.0.1/32 trust\n",
        )?;
        cluster.start_server(false)?;
        Ok(cluster)
    }

    /// A primary with a synchronous standby (`synchronous_standby_names = 'FIRST 1 (s1)'`,
    /// `synchronous_commit = on`): a commit returns once the standby has flushed it too.
    pub fn with_sync_standby() -> io::Result<Self> {
        let mut cluster = Self::start()?;
        let standby = cluster.root.join("standby");
        let port = cluster.primary.port.to_string();
        cluster.pg(
            "pg_basebackup",
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "-U",
                "postgres",
                "-D",
                path(&standby),
                "-R",
                "-X",
                "stream",
                "-c",
                "fast",
            ],
        )?;
        append(
            &standby.join("postgresql.auto.conf"),
            &format!(
                "primary_conninfo = 'host=127.0.0.1 port={port} user=postgres application_name=s1'\n"
            ),
        )?;
        cluster.standby = Some(Server {
            data: standby,
            port: 0,
            process: None,
        });
        cluster.start_server(true)?;
        cluster.sql(
            false,
            "ALTER SYSTEM SET synchronous_standby_names = 'FIRST 1 (s1)'",
        )?;
        cluster.sql(false, "SELECT pg_reload_conf()")?;
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let state = cluster.sql(
                false,
                "SELECT sync_state FROM pg_stat_replication WHERE application_name = 's1'",
            )?;
            if state.trim() == "sync" {
                return Ok(cluster);
            }
            if Instant::now() > deadline {
                return Err(io::Error::other(format!(
                    "the standby did not become synchronous in 20 s (sync_state {state:?})"
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// A libpq connection string to the primary (and the standby, when there is one, so that a
    /// client finds the writable one after a promotion: `target_session_attrs=read-write`).
    pub fn url(&self) -> String {
        let mut ports = vec![self.primary.port.to_string()];
        ports.extend(self.standby.iter().map(|s| s.port.to_string()));
        let hosts = vec!["127.0.0.1"; ports.len()].join(",");
        format!(
            "host={hosts} port={} user=postgres dbname=postgres target_session_attrs=read-write",
            ports.join(",")
        )
    }

    /// The primary's port.
    pub fn primary_port(&self) -> u16 {
        self.primary.port
    }

    /// Stop the primary.
    pub fn stop_primary(&mut self, how: Stop) -> io::Result<()> {
        self.stop_server(false, how)
    }

    /// Start the primary again (after [`stop_primary`](Self::stop_primary); never after a
    /// promotion: two primaries would be a split brain outside any fence).
    pub fn start_primary(&mut self) -> io::Result<()> {
        self.start_server(false)
    }

    /// Stop the standby: with it down, commits on the primary wait (synchronous replication).
    pub fn stop_standby(&mut self, how: Stop) -> io::Result<()> {
        self.stop_server(true, how)
    }

    /// Start the standby again.
    pub fn start_standby(&mut self) -> io::Result<()> {
        self.start_server(true)
    }

    /// Promote the standby to primary (after the primary was stopped): it takes writes. It has
    /// no standby of its own, so its commits are synchronous on its disk alone.
    pub fn promote_standby(&mut self) -> io::Result<()> {
        let data = self.server(true)?.data.clone();
        self.pg("pg_ctl", &["-D", path(&data), "-w", "promote"])?;
        Ok(())
    }

    /// Run `sql` with psql on the primary (`false`) or the standby (`true`); the unaligned,
    /// tuples-only output.
    pub fn sql(&self, standby: bool, sql: &str) -> io::Result<String> {
        let port = self.server(standby)?.port.to_string();
        let out = self.pg(
            "psql",
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "-U",
                "postgres",
                "-qAt",
                "-v",
                "ON_ERROR_STOP=1",
                "-c",
                sql,
            ],
        )?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    fn server(&self, standby: bool) -> io::Result<&Server> {
        if standby {
            self.standby
                .as_ref()
                .ok_or_else(|| io::Error::other("this cluster has no standby"))
        } else {
            Ok(&self.primary)
        }
    }

    fn server_mut(&mut self, standby: bool) -> &mut Server {
        match standby {
            true => self.standby.as_mut().expect("this cluster has a standby"),
            false => &mut self.primary,
        }
    }

    fn start_server(&mut self, standby: bool) -> io::Result<()> {
        let data = self.server(standby)?.data.clone();
        let log = data.with_extension("log");
        let mut last = None;
        // A free port can be taken between the probe and the server's bind: try again.
        for _ in 0..5 {
            let port = match self.server(standby)?.port {
                0 => free_port()?,
                kept => kept,
            };
            let output = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log)?;
            let mut child = self
                .command("postgres")
                .args(["-D", path(&data), "-p", &port.to_string()])
                .stdin(Stdio::null())
                .stdout(output.try_clone()?)
                .stderr(output)
                .spawn()?;
            match self.wait_ready(&mut child, port) {
                Ok(()) => {
                    let server = self.server_mut(standby);
                    server.port = port;
                    server.process = Some(child);
                    return Ok(());
                }
                Err(e) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    last = Some(e);
                }
            }
        }
        let tail = std::fs::read_to_string(&log).unwrap_or_default();
        Err(io::Error::other(format!(
            "{}; server log:\n{tail}",
            last.map(|e| e.to_string()).unwrap_or_default()
        )))
    }

    /// Wait until the server on `port` accepts connections (30 s at most); an error if it
    /// exits first (its port was taken meanwhile: the caller tries another).
    fn wait_ready(&self, child: &mut Child, port: u16) -> io::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(30);
        let port = port.to_string();
        loop {
            if let Some(status) = child.try_wait()? {
                return Err(io::Error::other(format!("postgres exited: {status}")));
            }
            if self
                .pg("pg_isready", &["-q", "-h", "127.0.0.1", "-p", &port])
                .is_ok()
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(io::Error::other(
                    "postgres did not accept connections in 30 s",
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn stop_server(&mut self, standby: bool, how: Stop) -> io::Result<()> {
        let data = self.server(standby)?.data.clone();
        let mode = match how {
            Stop::Immediate => "immediate",
            Stop::Fast => "fast",
        };
        self.pg("pg_ctl", &["-D", path(&data), "-m", mode, "-w", "stop"])?;
        if let Some(mut process) = self.server_mut(standby).process.take() {
            process.wait()?;
        }
        Ok(())
    }

    /// One of the server's programs, as the user `postgres` when we are root.
    fn command(&self, program: &str) -> Command {
        let exe = self.bin.join(program);
        let mut command = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&exe);
            c
        } else {
            Command::new(&exe)
        };
        command.current_dir(&self.root);
        command
    }

    /// Run one of the server's programs to its end; an error unless it succeeded.
    fn pg(&self, program: &str, args: &[&str]) -> io::Result<Output> {
        let out = self.command(program).args(args).output()?;
        if !out.status.success() {
            return Err(io::Error::other(format!(
                "{program} {} failed ({}): {}{}",
                args.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )));
        }
        Ok(out)
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        for standby in [true, false] {
            if self.server(standby).is_ok_and(|s| s.process.is_some()) {
                let _ = self.stop_server(standby, Stop::Immediate);
            }
        }
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

fn path(p: &Path) -> &str {
    p.to_str().expect("test paths are UTF-8")
}

fn append(file: &Path, text: &str) -> io::Result<()> {
    use std::io::Write as _;
    std::fs::OpenOptions::new()
        .append(true)
        .open(file)?
        .write_all(text.as_bytes())
}

/// Below the ephemeral range: a server restarted on its port (after `stop_primary`) must not
/// find it taken by a client's outgoing connection meanwhile.
fn free_port() -> io::Result<u16> {
    Ok(super::fixed_port())
}

fn is_root() -> io::Result<bool> {
    let out = Command::new("id").arg("-u").output()?;
    Ok(String::from_utf8_lossy(&out.stdout).trim() == "0")
}

/// A new directory under the system's temp dir, owned by `postgres` when the servers run as
/// that user (a 0700 root-owned temp dir would shut them out).
fn fresh_dir(as_postgres: bool) -> io::Result<PathBuf> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!(
        "farthing-pg-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    if as_postgres {
        let out = Command::new("chown")
            .args(["postgres:postgres", path(&dir)])
            .output()?;
        if !out.status.success() {
            return Err(io::Error::other(format!(
                "chown postgres {}: {}",
                dir.display(),
                String::from_utf8_lossy(&out.stderr)
            )));
        }
    }
    Ok(dir)
}
