//! TLS in front of a devnet: a CA made by the test (the `openssl` CLI), a server certificate
//! it signs, and `stunnel4` (Debian's; scripts/setup.sh installs it) terminating TLS on a free
//! port and passing the plain bytes on to anvil — what an operator's own chain node behind a
//! TLS proxy looks like. Everything lives in a temporary directory; stunnel is killed when its
//! [`TlsFront`] is dropped.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A certificate authority made for one test: `ca.pem` (give it as `chain.ca_file`) and its
/// key, in their own directory.
pub struct TestCa {
    dir: tempfile::TempDir,
    /// The CA's certificate (PEM).
    pub cert: PathBuf,
    key: PathBuf,
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("the openssl CLI (Debian's openssl package; scripts/setup.sh installs it)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl TestCa {
    /// A new CA (P-256, valid two days) named `name`.
    pub fn new(name: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        openssl(
            dir.path(),
            &[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-days",
                "2",
                "-subj",
                &format!("/CN={name}"),
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            ],
        );
        Self {
            cert: dir.path().join("ca.pem"),
            key: dir.path().join("ca.key"),
            dir,
        }
    }

    /// A server certificate signed by this CA for `names` (`DNS:localhost,IP:127.0.0.1`, a
    /// subjectAltName list): (certificate, key) files named after `stem`.
    pub fn issue(&self, stem: &str, names: &str) -> (PathBuf, PathBuf) {
        let dir = self.dir.path();
        let (key, csr, cert, ext) = (
            format!("{stem}.key"),
            format!("{stem}.csr"),
            format!("{stem}.pem"),
            format!("{stem}.ext"),
        );
        std::fs::write(
            dir.join(&ext),
            format!(
                "subjectAltName={names}\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n"
            ),
        )
        .unwrap();
        openssl(
            dir,
            &[
                "req",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-keyout",
                &key,
                "-out",
                &csr,
                "-subj",
                &format!("/CN={stem}"),
            ],
        );
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                &self.cert.display().to_string(),
                "-CAkey",
                &self.key.display().to_string(),
                "-CAcreateserial",
                "-out",
                &cert,
                "-days",
                "2",
                "-extfile",
                &ext,
            ],
        );
        (dir.join(cert), dir.join(key))
    }
}

/// stunnel terminating TLS on `127.0.0.1:port` for a plain TCP server; killed when dropped.
pub struct TlsFront {
    child: Child,
    _dir: tempfile::TempDir,
    /// The port TLS is served on.
    pub port: u16,
}

impl TlsFront {
    /// TLS with `cert`/`key` on a free port, passing the bytes on to `upstream`; returns once
    /// stunnel accepts connections.
    pub fn start(upstream: SocketAddr, cert: &Path, key: &Path) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        Self::start_on(port, upstream, cert, key)
    }

    /// [`TlsFront::start`] on `port` (from [`crate::fixed_port`] for a front that must come back
    /// on the same port).
    pub fn start_on(port: u16, upstream: SocketAddr, cert: &Path, key: &Path) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("stunnel.conf");
        std::fs::write(
            &config,
            format!(
                "foreground = yes\npid =\n[rpc]\naccept = 127.0.0.1:{port}\nconnect = {upstream}\ncert = {}\nkey = {}\n",
                cert.display(),
                key.display()
            ),
        )
        .unwrap();
        let log = dir.path().join("stunnel.log");
        let mut child = Command::new("stunnel4")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(std::fs::File::create(&log).unwrap()))
            .spawn()
            .expect("stunnel4 (Debian's stunnel4 package; scripts/setup.sh installs it)");
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "stunnel4 exited ({status}): {}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "stunnel4 does not listen on {port}: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Self {
            child,
            _dir: dir,
            port,
        }
    }
}

impl Drop for TlsFront {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `host:port` of an `http://host:port` URL (anvil's).
pub fn socket_of(url: &str) -> SocketAddr {
    url.trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .unwrap()
}
