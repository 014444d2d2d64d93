//! `farthing node` on PostgreSQL, and with `[cluster]`: wait as a standby until this instance
//! leads the node's etcd election, take the store over with the leader's epoch (which fences
//! every older leader out of it), and only then start; step down when the leadership ends.
//!
//! The order is what makes it safe: the takeover waits for the old leader's batch in flight,
//! and the state is loaded after it, so the new leader starts from everything the old one
//! made durable — and the old one can make nothing durable (hence send nothing) any more.

use std::sync::Arc;
use std::time::Duration;

use eyre::{Result, WrapErr, eyre};
use farthing_cluster::{ElectionConfig, Leader};
use farthing_daemon::Config;
use farthing_daemon::config::cluster::StoreBackend;
use farthing_store::{PgStore, StoreError};

/// The store a node on PostgreSQL runs on, and its leadership when it has an election.
pub(crate) struct Postgres {
    pub(crate) store: Arc<PgStore>,
    pub(crate) leader: Option<Leader>,
}

/// Open the PostgreSQL store (`None` on RocksDB); with `[cluster]`, wait until this instance
/// leads (`None` if a signal came first), then take the store over.
///
/// `stop` turns `Some` once a signal came (from the run's one listener).
pub(crate) async fn take_store(
    config: &Config,
    stop: &mut tokio::sync::watch::Receiver<Option<Result<(), String>>>,
) -> Result<Option<Option<Postgres>>> {
    if config.store.backend != StoreBackend::Postgres {
        return Ok(Some(None));
    }
    let url = config
        .store
        .postgres_url()
        .ok_or_else(|| eyre!("store.backend is postgres but no connection string is set"))?;
    let schema = config.store.schema.clone();
    let store = tokio::task::spawn_blocking(move || PgStore::open(&url, &schema))
        .await?
        .wrap_err("cannot open the PostgreSQL store")?;
    let store = Arc::new(store);
    // Before campaigning: a standby that could not serve agents' credentials must say so now,
    // not when it wins (and fences out a leader that can).
    farthing_daemon::require_credential_key(&config.data_dir, &*store).map_err(|e| eyre!(e))?;
    let instance = instance_name(config);
    let leader = if config.cluster.etcd.is_empty() {
        None
    } else {
        let election = ElectionConfig {
            lease_ttl: Duration::from_secs(config.cluster.lease_ttl_secs),
            ..ElectionConfig::new(
                config.cluster.etcd.clone(),
                config.cluster.election_name(
                    config.chain.chain_id,
                    store.database(),
                    &config.store.schema,
                ),
                instance.clone(),
            )
        };
        tracing::info!(
            instance = %instance,
            election = %election.name,
            "standby: waiting to lead"
        );
        println!("farthing standby {instance} waiting to lead");
        let leader = tokio::select! {
            led = farthing_cluster::campaign(&election) => led.wrap_err("the election failed")?,
            signal = stop.wait_for(Option::is_some) => {
                if let Ok(signal) = signal
                    && let Some(Err(e)) = &*signal
                {
                    return Err(eyre!("installing signal handlers: {e}"));
                }
                return Ok(None);
            }
        };
        tracing::info!(epoch = leader.epoch(), "elected leader");
        Some(leader)
    };
    let epoch = leader.as_ref().map(Leader::epoch);
    let (taker, holder) = (store.clone(), instance.clone());
    let taken = tokio::task::spawn_blocking(move || taker.take_over(epoch, &holder)).await?;
    match taken {
        Ok(_) => {}
        Err(StoreError::Fenced { .. }) if leader.as_ref().is_some_and(|l| !l.is_leading()) => {
            return Err(eyre!(
                "this instance lost the leadership before it took the store over (another \
                 instance leads): it steps down"
            ));
        }
        Err(StoreError::Fenced {
            mine,
            found,
            holder,
        }) => {
            return Err(eyre!(
                "the store's fence holds epoch {found} (`{holder}`), newer than this election's \
                 {mine}: another leader exists, or the etcd cluster was rebuilt (its revisions \
                 start over). In the second case only, with every instance stopped, reset the \
                 fence: UPDATE {}.leader SET epoch = 0",
                config.store.schema
            ));
        }
        Err(e) => return Err(e).wrap_err("cannot take the PostgreSQL store over"),
    }
    Ok(Some(Some(Postgres { store, leader })))
}

/// This instance's name: `cluster.instance`, else the host name, the RPC address and the
/// process id (unique on one host, whatever the ports).
fn instance_name(config: &Config) -> String {
    config.cluster.instance.clone().unwrap_or_else(|| {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_owned())
            .unwrap_or_else(|_| "node".into());
        format!("{host}/{}/{}", config.rpc.listen, std::process::id())
    })
}
