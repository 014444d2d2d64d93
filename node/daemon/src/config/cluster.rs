//! `[store]` and `[cluster]`: where the node keeps its state, and how instances of one node
//! take over from each other.
//!
//! | key | default | meaning |
//! |---|---|---|
//! | `store.backend` | `rocksdb` | `rocksdb` (in the data directory: one machine, nothing to run) or `postgres` |
//! | `store.postgres` | none | the PostgreSQL connection string (libpq `key=value` or a `postgres://` URL; several hosts with `target_session_attrs=read-write` find the primary after a failover). A password is better given in `FARTHING_POSTGRES`, which overrides this |
//! | `store.schema` | `farthing` | the PostgreSQL schema the node's tables live in (one per node: two nodes may share a database) |
//! | `cluster.etcd` | `[]` | etcd endpoints (`http://host:port`); set: instances of this node elect a leader, the others wait as standbys (needs `store.backend = "postgres"`) |
//! | `cluster.lease_ttl_secs` | `3` | the leader's etcd lease: a leader that stops answering is replaced after about this long |
//! | `cluster.instance` | host name and RPC address | this instance's name in the election and in the store's fence row |
//! | `cluster.election` | `farthing/<chain.chain_id>/<database>/<store.schema>` | the etcd election's name (instances of one node share it; set it when nodes that share an etcd could share the default) |

use serde::{Deserialize, Serialize};

/// Where the node keeps its state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreBackend {
    /// RocksDB in the data directory.
    #[default]
    Rocksdb,
    /// PostgreSQL (`store.postgres`), shared by the node's instances.
    Postgres,
}

/// `[store]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// Which backend.
    pub backend: StoreBackend,
    /// The PostgreSQL connection string (`FARTHING_POSTGRES` overrides it).
    pub postgres: Option<String>,
    /// The PostgreSQL schema of this node's tables.
    pub schema: String,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            backend: StoreBackend::Rocksdb,
            postgres: None,
            schema: "farthing".into(),
        }
    }
}

/// `[cluster]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterConfig {
    /// etcd endpoints; empty: no election (one instance).
    pub etcd: Vec<String>,
    /// The leader's lease, in seconds.
    pub lease_ttl_secs: u64,
    /// This instance's name.
    pub instance: Option<String>,
    /// The election's name.
    pub election: Option<String>,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        Self {
            etcd: Vec::new(),
            lease_ttl_secs: 3,
            instance: None,
            election: None,
        }
    }
}

impl StoreConfig {
    /// The connection string: `FARTHING_POSTGRES`, else `store.postgres`.
    pub fn postgres_url(&self) -> Option<String> {
        std::env::var("FARTHING_POSTGRES")
            .ok()
            .filter(|v| !v.is_empty())
            .or_else(|| self.postgres.clone())
    }

    pub(super) fn validate(&self, cluster: &ClusterConfig) -> Result<(), String> {
        match self.backend {
            StoreBackend::Postgres if self.postgres_url().is_none() => {
                return Err(
                    "store.backend is postgres but no connection string is set: give \
                     --postgres 'host=… user=… dbname=…' (or store.postgres, or \
                     FARTHING_POSTGRES)"
                        .into(),
                );
            }
            StoreBackend::Rocksdb if !cluster.etcd.is_empty() => {
                return Err(
                    "cluster.etcd is set but the store is RocksDB on this machine: \
                     instances that take over from each other need a shared store, \
                     --store postgres"
                        .into(),
                );
            }
            _ => {}
        }
        if cluster.lease_ttl_secs < 2 {
            return Err(format!(
                "cluster.lease_ttl_secs is {}: at least 2 (an etcd member failover takes about \
                 a second and must not cost a leader)",
                cluster.lease_ttl_secs
            ));
        }
        Ok(())
    }
}

impl ClusterConfig {
    /// The election's name for a store in `schema` of `database`, on chain `chain_id`.
    pub fn election_name(&self, chain_id: u64, database: &str, schema: &str) -> String {
        self.election
            .clone()
            .unwrap_or_else(|| format!("farthing/{chain_id}/{database}/{schema}"))
    }
}
