//! The election against real etcd: each test starts its own cluster (etcd must be installed;
//! the tests fail, never skip, without it) and uses its own election name.
//!
//! Timings are printed (`--nocapture` shows them); time bounds in assertions are generous
//! failure bounds, never the proof that something happened.

mod election;
mod failover;
mod holder;

use std::time::Duration;

use etcd_client::{Client, GetOptions};
use farthing_cluster::ElectionConfig;
use farthing_cluster::testing::EtcdCluster;
use tokio::time::{Instant, sleep};

/// Starts an etcd cluster or fails the test with the harness's reason (e.g. how to install
/// etcd). Logs go to stdout when `FARTHING_TEST_LOG` is set (e.g. `farthing_cluster=info`).
async fn etcd(members: usize) -> EtcdCluster {
    let filter = tracing_subscriber::EnvFilter::from_env("FARTHING_TEST_LOG");
    let _ = tracing_subscriber::fmt().with_env_filter(filter).try_init();
    match EtcdCluster::start(members).await {
        Ok(cluster) => cluster,
        Err(e) => panic!("{e}"),
    }
}

fn config(cluster: &EtcdCluster, name: &str, instance: &str, ttl_secs: u64) -> ElectionConfig {
    let mut config = ElectionConfig::new(cluster.endpoints(), name, instance);
    config.lease_ttl = Duration::from_secs(ttl_secs);
    config
}

/// Waits until the election has `n` candidates' keys: a campaign that is blocked has
/// registered, so the test's next step races nothing.
async fn wait_for_candidates(endpoints: &[String], name: &str, n: usize) {
    let mut client = Client::connect(endpoints, None)
        .await
        .expect("connect to etcd");
    let bound = Instant::now() + Duration::from_secs(10);
    loop {
        let options = GetOptions::new().with_prefix().with_count_only();
        if let Ok(reply) = client.get(format!("{name}/"), Some(options)).await
            && usize::try_from(reply.count()).unwrap_or(0) >= n
        {
            return;
        }
        assert!(
            Instant::now() < bound,
            "{name}: fewer than {n} candidates after 10 s"
        );
        sleep(Duration::from_millis(20)).await;
    }
}
