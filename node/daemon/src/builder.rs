//! [`Builder`]: from a [`Config`] to a running [`Node`]. It loads the key, opens the store,
//! checks the chain against the deployment file (a wrong or unreachable chain stops the start
//! with one line), sends again the transactions a previous run journaled, and wires the
//! components — each gets only the handles it needs — then starts their tasks.
//!
//! ```text
//!  Node (façade) ── RpcHandler
//!   ├─ Peering (net/)       ─┬─> Payments (payments/) ─┬─> ChannelTable ─> GroupCommit ─> Store
//!   ├─ Operations (ops.rs)  ─┼─> Cosign (cosign/)     ─┤   Links (link/), Signer, StoreHealth
//!   ├─ Watchtower           ─┘                         └─> Watcher ─> Chain (chain/)
//!   └─ StoreGuard
//! ```

use std::sync::Arc;

use farthing_chain::{ChainClient, Deployment, DeploymentError, NodeKey, redact_url};
use farthing_store::{GroupCommit, PgStore, RocksStore, Store, StoreError};

use crate::chain::Chain;
use crate::chain::journal::{StoreJournal, sent_tx};
use crate::chain::watcher::{Watcher, WatcherConfig};
use crate::config::Config;
use crate::config::cluster::StoreBackend;
use crate::cosign::Cosign;
use crate::health::{StoreHealth, Watched};
use crate::keys::{DEVNET_CHAIN_IDS, KeyError, is_devnet_key, load_key};
use crate::link::Links;
use crate::link::kept::now_ms;
use crate::net::Peering;
use crate::node::{Components, Node};
use crate::observe::{History, Metrics};
use crate::ops::Operations;
use crate::payments::Payments;
use crate::payments::idempotency::Keys;
use crate::payments::sales::Sales;
use crate::signer::Signer;
use crate::storeguard::StoreGuard;
use crate::table::ChannelTable;
use crate::tasks::{OnFailure, Tasks};
use crate::watchtower::Watchtower;

/// Why the node cannot start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The credentials' root key (`cred.key`) or records cannot be read.
    #[error("credentials: {0}")]
    Credentials(farthing_rpc::Error),
    /// The buyer's settings are not usable.
    #[error("config [buyer]: {0}")]
    Buyer(String),
    /// The key could not be loaded.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The store could not be opened.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The deployment file or the chain behind the RPC URL is not usable.
    #[error(transparent)]
    Chain(#[from] DeploymentError),
    /// The chain id in the config and the deployment file disagree.
    #[error("config says chain {config}, the deployment file says {deployment}: fix one of them")]
    ChainIdMismatch {
        /// `chain.chain_id`.
        config: u64,
        /// The deployment file's.
        deployment: u64,
    },
    /// The deployment file's token is not the one the config pins.
    #[error(
        "config says chain.token {config}, the deployment file {path} says {deployment}: use a deployment made for that token (scripts/deploy.sh --token {config})"
    )]
    TokenMismatch {
        /// `chain.token`.
        config: alloy::primitives::Address,
        /// The deployment file's.
        deployment: alloy::primitives::Address,
        /// The deployment file.
        path: std::path::PathBuf,
    },
    /// No key is configured.
    #[error(
        "no key configured: start with --key-file PATH (0600 raw key), --keystore PATH, or --dev N on a local devnet (or set [key] in the config file)"
    )]
    NoKey,
    /// A public devnet key on a chain that is not a local devnet.
    #[error(
        "the key {address} is a public devnet account (anyone holds it) and chain {chain_id} is not a local devnet: use your own key (--key-file or --keystore)"
    )]
    DevnetKey {
        /// The key's address.
        address: alloy::primitives::Address,
        /// The configured chain.
        chain_id: u64,
    },
    /// The data directory belongs to another key.
    #[error(
        "the data directory {data_dir} belongs to {owner}, not to this node's key {key}: start with its own key, or use another --data-dir for this one"
    )]
    NotOwner {
        /// The data directory.
        data_dir: std::path::PathBuf,
        /// Whose it is.
        owner: alloy::primitives::Address,
        /// The key given.
        key: alloy::primitives::Address,
    },
    /// The RPC URL does not parse.
    #[error("chain.rpc_url {0:?} is not a URL")]
    RpcUrl(String),
    /// No client to the chain's RPC could be built (a CA file that cannot be used).
    #[error(transparent)]
    RpcClient(#[from] farthing_chain::rpc::RpcError),
    /// The chain's RPC did not answer, or its TLS was refused (one line, the URL redacted).
    #[error("{0}")]
    Rpc(String),
    /// The RPC serves another chain than the configured one.
    #[error(
        "the chain RPC {url} serves chain {rpc}, but the node is configured for chain {config}: fix chain.rpc_url (--rpc-url) or chain.chain_id (--chain-id)"
    )]
    RpcChainId {
        /// The RPC URL without its secrets.
        url: String,
        /// The chain id the RPC reports.
        rpc: u64,
        /// `chain.chain_id`.
        config: u64,
    },
    /// The data directory cannot be created.
    #[error("cannot create data directory {path}: {source}")]
    DataDir {
        /// The directory.
        path: std::path::PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

impl Node {
    /// A builder for a node configured by `config`.
    pub fn builder(config: Config) -> Builder {
        Builder::new(config)
    }

    /// Start a node on the RocksDB in its data directory.
    pub async fn start(config: Config) -> Result<Self, StartError> {
        Builder::new(config).start().await
    }

    /// Start a node on `store` (tests wrap the store to make it fail or stall).
    pub async fn start_with_store(
        config: Config,
        store: Arc<dyn Store>,
    ) -> Result<Self, StartError> {
        Builder::new(config).store(store).start().await
    }
}

/// Builds a [`Node`] from its configuration.
pub struct Builder {
    config: Config,
    store: Option<Arc<dyn Store>>,
}

impl Builder {
    /// A node configured by `config`.
    pub fn new(config: Config) -> Self {
        Self {
            config,
            store: None,
        }
    }

    /// Run on `store` instead of the RocksDB in the data directory (tests wrap a store to
    /// make it fail or stall).
    pub fn store(mut self, store: Arc<dyn Store>) -> Self {
        self.store = Some(store);
        self
    }

    /// Start the node: key, store, chain check, components, background tasks.
    pub async fn start(self) -> Result<Node, StartError> {
        let Self { config, store } = self;
        std::fs::create_dir_all(&config.data_dir).map_err(|source| StartError::DataDir {
            path: config.data_dir.clone(),
            source,
        })?;
        let store: Arc<dyn Store> = match (store, config.store.backend) {
            (Some(store), _) => store,
            (None, StoreBackend::Rocksdb) => {
                Arc::new(RocksStore::open(config.data_dir.join("db"))?)
            }
            // One instance, no election: it takes the store over with the next epoch, which
            // fences out any earlier process still running on it.
            (None, StoreBackend::Postgres) => {
                let url = config.store.postgres_url().unwrap_or_default();
                let store = PgStore::open(&url, &config.store.schema)?;
                require_key(&config.data_dir, &store)?;
                store.take_over(None, &format!("{}", config.rpc.listen))?;
                Arc::new(store)
            }
        };
        // Before anything is written (the owner record, rebroadcasts).
        require_key(&config.data_dir, &*store)?;
        let key = Arc::new(NodeKey::new(load_key(
            config.key.as_ref().ok_or(StartError::NoKey)?,
        )?));
        let deployment = Deployment::load(&config.chain.deployment)?;
        if deployment.chain_id != config.chain.chain_id {
            return Err(StartError::ChainIdMismatch {
                config: config.chain.chain_id,
                deployment: deployment.chain_id,
            });
        }
        if let Some(token) = config.chain.token
            && token != deployment.token
        {
            return Err(StartError::TokenMismatch {
                config: token,
                deployment: deployment.token,
                path: config.chain.deployment.clone(),
            });
        }
        let chain_id = config.chain.chain_id;
        if !DEVNET_CHAIN_IDS.contains(&chain_id) && is_devnet_key(key.address()) {
            return Err(StartError::DevnetKey {
                address: key.address(),
                chain_id,
            });
        }
        claim_store(&*store, key.address(), &config.data_dir)?;
        let rpc_url = config.chain.rpc_url.as_str();
        if rpc_url
            .parse::<alloy::transports::http::reqwest::Url>()
            .is_err()
        {
            return Err(StartError::RpcUrl(rpc_url.to_owned()));
        }
        if let Some(warning) = farthing_chain::rpc::cleartext_warning(rpc_url) {
            tracing::warn!("{warning}");
        }
        let options = config.chain.rpc_options();
        let reader = farthing_chain::rpc::connect_any(rpc_url, &options).await?;
        // Asked first, on its own: a refused certificate or a dead RPC is then said in one
        // line, with the URL's secrets left out and what to do.
        let rpc_chain = farthing_chain::rpc::chain_id(&reader, rpc_url)
            .await
            .map_err(StartError::Rpc)?;
        if rpc_chain != chain_id {
            return Err(StartError::RpcChainId {
                url: redact_url(rpc_url),
                rpc: rpc_chain,
                config: chain_id,
            });
        }
        let check = deployment.check(&reader).await.map_err(|e| match e {
            // The transport's words quote the URL, secrets and all.
            DeploymentError::Unreachable(reason) => {
                DeploymentError::Unreachable(reason.replace(rpc_url, &redact_url(rpc_url)))
            }
            other => other,
        })?;

        let store_health = Arc::new(StoreHealth::default());
        let store: Arc<dyn Store> = Arc::new(Watched {
            inner: store,
            health: store_health.clone(),
        });
        let client = Arc::new(
            ChainClient::new(
                reader.clone(),
                rpc_url,
                key.clone(),
                deployment.chain_id,
                deployment.channel_manager,
                config.chain.confirmations,
            )
            .with_max_fee_per_gas(config.chain.max_fee_per_gas_gwei.map(|cap| cap.wei))
            .with_journal(Arc::new(StoreJournal(store.clone()))),
        );
        let tasks = Tasks::default();
        resend_journaled(&store, &client, &tasks).await?;
        tracing::info!(
            address = %key.address(),
            chain = check.chain_id,
            block = check.block_number,
            channel_manager = %deployment.channel_manager,
            "node started"
        );

        // The payment log's numbering goes on from its newest entry; the committer publishes
        // each durable batch of entries to the history's live stream.
        let history = Arc::new(History::new(store.clone()));
        let group = GroupCommit::with_log(
            store.clone(),
            Some(store.last_payment_seq()?),
            history.publisher(),
        );
        let table = Arc::new(ChannelTable::with_ledgers(
            store.channels()?,
            // Channels whose cooperative close this node signed (or asked for) stay frozen.
            store.closing_channels()?,
            // What agents' credentials spent, as durable as the proofs that spent it.
            crate::credentials::ledgers_from_store(&*store, crate::credentials::now_secs())?,
            group.clone(),
        ));
        let credentials = Arc::new(
            crate::credentials::Credentials::load(&config.data_dir, &*store, table.clone())
                .map_err(StartError::Credentials)?,
        );
        let domain = farthing_chain::messages::channel_domain(
            deployment.chain_id,
            deployment.channel_manager,
        );
        let signer = Arc::new(Signer::new(key.clone(), domain));
        let chain_id = deployment.chain_id;
        let chain = Arc::new(Chain {
            reader,
            client,
            token_symbol: check.token_symbol.clone(),
            us: key.address(),
            rpc_url: (
                config.chain.rpc_url.clone(),
                redact_url(&config.chain.rpc_url),
            ),
            deployment,
        });
        let poll = std::time::Duration::from_millis(config.chain.poll_interval_ms);
        let watcher = Arc::new(Watcher::new(
            chain.clone(),
            table.clone(),
            store.clone(),
            WatcherConfig {
                confirmations: config.chain.confirmations,
                poll,
                max_lag: config.watchtower.max_lag_blocks,
            },
        ));
        let (links, metrics) = (Arc::new(Links::default()), Arc::new(Metrics::default()));
        let payments = Arc::new(Payments {
            table: table.clone(),
            signer: signer.clone(),
            links: links.clone(),
            store_health: store_health.clone(),
            store: store.clone(),
            metrics: metrics.clone(),
            tasks: tasks.clone(),
            deliveries: Default::default(),
            outboxes: Default::default(),
            keys: Keys::new(store.clone()),
            sales: Arc::new(Sales::new(store.clone(), table.clone())),
            decimals: chain.deployment.token_decimals,
        });
        let refiled = payments.sales.reload(now_ms())?;
        if refiled > 0 {
            tracing::info!(refiled, "unredeemed sales refiled from the payment log");
        }
        let cosign = Arc::new(Cosign {
            table: table.clone(),
            signer: signer.clone(),
            links: links.clone(),
            payments: payments.clone(),
            watcher: watcher.clone(),
            chain: chain.clone(),
            tasks: tasks.clone(),
            refusals: Default::default(),
        });
        let peering = Arc::new(Peering {
            links: links.clone(),
            kept: Arc::default(),
            payments: payments.clone(),
            cosign: cosign.clone(),
            table: table.clone(),
            signer: signer.clone(),
            watcher: watcher.clone(),
            store_health: store_health.clone(),
            tasks: tasks.clone(),
            chain_id,
            decimals: chain.deployment.token_decimals,
            admission: Default::default(),
            strangers: Arc::new(crate::net::strangers::Strangers::new(
                config.peer.max_strangers,
                std::time::Duration::from_secs(config.peer.stranger_timeout_secs),
            )),
        });
        let operations = Arc::new(Operations {
            chain: chain.clone(),
            watcher: watcher.clone(),
            table: table.clone(),
            cosign: cosign.clone(),
            default_challenge_period: config.channels.default_challenge_period,
        });
        let watchtower = Arc::new(Watchtower::new(
            table.clone(),
            chain.clone(),
            watcher.clone(),
            tasks.clone(),
            &config.watchtower,
            poll,
        ));
        let guard = StoreGuard {
            health: store_health.clone(),
            store: store.clone(),
            table: table.clone(),
            links: links.clone(),
            payments: payments.clone(),
            watcher: watcher.clone(),
        };

        // Without the watcher or the watchtower the node cannot guard its channels: degraded
        // (no new risk, and it says why). Without the store guard a failed store never
        // recovers and the node would sit refusing everything: it stops, so that a supervisor
        // restarts it on a store that works.
        tasks.spawn_critical(
            "chain watcher",
            OnFailure::Degrade,
            watcher.clone().run(tasks.shutdown_signal()),
        );
        tasks.spawn_critical(
            "watchtower",
            OnFailure::Degrade,
            watchtower.clone().run(tasks.shutdown_signal()),
        );
        tasks.spawn(
            "channel announcer",
            peering.clone().announce_openings(tasks.shutdown_signal()),
        );
        tasks.spawn_critical(
            "store guard",
            OnFailure::Stop,
            guard.run(tasks.shutdown_signal()),
        );
        // Retention only: payments are logged whether it runs or not.
        tasks.spawn_critical(
            "payment log retention",
            OnFailure::Warn,
            history.clone().retain(
                config.history.keep_payments,
                crate::observe::history::PRUNE_EVERY,
                group,
                tasks.shutdown_signal(),
            ),
        );
        tasks.spawn_critical(
            "credential upkeep",
            OnFailure::Warn,
            crate::credentials::upkeep(credentials.clone(), tasks.shutdown_signal()),
        );
        let buyer = crate::commerce::Buyer::new(config.buyer.clone()).map_err(StartError::Buyer)?;
        Ok(Node::new(Components {
            config,
            store,
            store_health,
            table,
            signer,
            chain,
            watcher,
            links,
            payments,
            cosign,
            peering,
            operations,
            watchtower,
            history,
            metrics,
            tasks,
            collector: Default::default(),
            buyer,
            credentials,
        }))
    }
}

/// Transactions sent before a crash or a stop whose receipt the node never saw: send them
/// again (a no-op when they are already mined) before the node serves anything, so no new
/// transaction takes their nonces; only the receipt waits run in the background.
async fn resend_journaled(
    store: &Arc<dyn Store>,
    client: &Arc<ChainClient>,
    tasks: &Tasks,
) -> Result<(), StartError> {
    let unfinished = store.pending_txs()?;
    if !unfinished.is_empty() {
        tracing::info!(
            count = unfinished.len(),
            "sending again the transactions sent before the restart"
        );
    }
    for pending in unfinished {
        let tx = sent_tx(&pending);
        match client.resend(&tx).await {
            Ok(true) => {
                let client = client.clone();
                tasks.spawn("journaled transaction", async move {
                    match client.finish(&tx).await {
                        Ok(outcome) => {
                            tracing::info!(tx = %outcome.tx_hash, what = tx.what, "transaction mined");
                        }
                        Err(e) => tracing::warn!(tx = %tx.tx_hash, "{e}"),
                    }
                });
            }
            Ok(false) => {
                tracing::info!(tx = %tx.tx_hash, what = tx.what, "journaled transaction already settled");
            }
            Err(e) => {
                tracing::warn!(tx = %tx.tx_hash, "{e}; it stays journaled for the next start");
            }
        }
    }
    Ok(())
}

/// The store belongs to the key that created it: another key would act on channels it does
/// not own. A store from before owners were recorded belongs to the key its channels name as
/// theirs (`us`); only a store without channels is claimed by whatever key starts on it.
fn claim_store(
    store: &dyn Store,
    key: alloy::primitives::Address,
    data_dir: &std::path::Path,
) -> Result<(), StartError> {
    let owner = match store.owner()? {
        Some(owner) => owner,
        None => match store
            .channels()?
            .into_iter()
            .map(|c| c.us)
            .find(|us| *us != key)
        {
            Some(theirs) => theirs,
            None => {
                store.commit(&[farthing_store::Write::Owner(key)])?;
                return Ok(());
            }
        },
    };
    if owner == key {
        Ok(())
    } else {
        Err(StartError::NotOwner {
            data_dir: data_dir.to_owned(),
            owner,
            key,
        })
    }
}

/// [`crate::credentials::require_key`] as a start error.
fn require_key(data_dir: &std::path::Path, store: &dyn Store) -> Result<(), StartError> {
    crate::credentials::require_key(data_dir, store)
        .map_err(|e| StartError::Credentials(farthing_rpc::Error::Config(e)))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use farthing_store::testing::sample_channel;
    use farthing_store::{MemStore, Store, Write};

    use super::*;

    #[test]
    fn a_store_belongs_to_its_first_key_or_to_the_key_its_channels_name() {
        let dir = Path::new("/data");
        let channel = sample_channel(3);
        let (alice, mallory) = (channel.us, alloy::primitives::Address::repeat_byte(0xee));

        // A store from before owners were recorded, holding alice's channel: mallory's key is
        // refused (naming alice), alice's claims it.
        let old = MemStore::default();
        old.commit(&[Write::Channel(channel)]).expect("write");
        let refused = claim_store(&old, mallory, dir).expect_err("not mallory's");
        assert!(
            matches!(refused, StartError::NotOwner { owner, key, .. } if owner == alice && key == mallory),
            "{refused}"
        );
        assert_eq!(old.owner().expect("read"), None, "nothing claimed");
        claim_store(&old, alice, dir).expect("alice's");
        assert_eq!(old.owner().expect("read"), Some(alice));
        assert!(claim_store(&old, mallory, dir).is_err());

        // An empty store is claimed by the first key.
        let new = MemStore::default();
        claim_store(&new, mallory, dir).expect("claimed");
        assert_eq!(new.owner().expect("read"), Some(mallory));
        assert!(claim_store(&new, alice, dir).is_err());
    }
}
