//! A leader in another process, so a test can SIGKILL or SIGSTOP it: the test binary re-runs
//! itself with only `holder::holder_child` selected and the `FARTHING_HOLDER_*` variables set.
//! The child prints `HOLDER LEADING <epoch>` once it leads and `HOLDER LOST <epoch> <reason>`
//! once it notices the loss.

use std::process::Stdio;
use std::time::Duration;

use farthing_cluster::{ElectionConfig, campaign};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;
use tokio::time::timeout;

const ENDPOINTS: &str = "FARTHING_HOLDER_ENDPOINTS";
const NAME: &str = "FARTHING_HOLDER_NAME";
const TTL: &str = "FARTHING_HOLDER_TTL";

/// The child's body; a no-op in a normal test run.
#[test]
fn holder_child() {
    let (Ok(endpoints), Ok(name), Ok(ttl)) = (
        std::env::var(ENDPOINTS),
        std::env::var(NAME),
        std::env::var(TTL),
    ) else {
        return;
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let mut config = ElectionConfig::new(
            endpoints.split(',').map(String::from).collect(),
            name,
            format!("holder pid {}", std::process::id()),
        );
        config.lease_ttl = Duration::from_secs(ttl.parse().expect("ttl"));
        let leader = campaign(&config).await.expect("campaign");
        println!("HOLDER LEADING {}", leader.epoch());
        let reason = leader.lost().await;
        println!("HOLDER LOST {} {reason:?}", leader.epoch());
    });
}

/// The parent's handle on a holder child; the child is killed when this is dropped.
pub(crate) struct Holder {
    child: Child,
    lines: mpsc::UnboundedReceiver<String>,
}

impl Holder {
    pub(crate) fn spawn(endpoints: &[String], name: &str, ttl_secs: u64) -> Self {
        let exe = std::env::current_exe().expect("the test binary's path");
        let mut child = Command::new(exe)
            .args([
                "holder::holder_child",
                "--exact",
                "--nocapture",
                "--test-threads",
                "1",
            ])
            .env(ENDPOINTS, endpoints.join(","))
            .env(NAME, name)
            .env(TTL, ttl_secs.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start the holder child");
        let stdout = child.stdout.take().expect("the child's stdout");
        let (tx, lines) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut reader = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                // libtest may have printed `test holder::holder_child ... ` on the same line.
                if let Some(at) = line.find("HOLDER ") {
                    let _ = tx.send(line[at + "HOLDER ".len()..].to_string());
                }
            }
        });
        Self { child, lines }
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id().expect("the holder child runs")
    }

    /// The next line the child printed, which must start with `word`; its last field parsed
    /// as the epoch for `LEADING`.
    pub(crate) async fn expect(&mut self, word: &str, within: Duration) -> String {
        match timeout(within, self.lines.recv()).await {
            Ok(Some(line)) if line.starts_with(word) => line,
            Ok(Some(line)) => panic!("holder printed {line:?}, expected {word}"),
            Ok(None) => panic!("holder exited before printing {word}"),
            Err(_) => panic!("holder printed no {word} within {within:?}"),
        }
    }

    pub(crate) async fn leading(&mut self) -> u64 {
        let line = self.expect("LEADING", Duration::from_secs(15)).await;
        line.split(' ')
            .nth(1)
            .and_then(|e| e.parse().ok())
            .expect("an epoch after LEADING")
    }

    /// SIGKILL, then reap.
    pub(crate) async fn kill(&mut self) {
        self.child.kill().await.expect("kill the holder child");
    }
}
