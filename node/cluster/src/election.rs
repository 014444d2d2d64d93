//! Leadership of one node's instances: campaign, hold, notice the loss, resign.
//!
//! Every instance of a node (same key) calls [`campaign`] with the same election `name` and
//! its own `instance` value; the call returns on one of them at a time, as a [`Leader`] whose
//! [`Leader::epoch`] is the create revision of its election key — strictly greater than every
//! earlier leader's on the same etcd cluster. That epoch is what the store's fence compares.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use etcd_client::{
    Client, ConnectOptions, GetOptions, LeaderKey, ResignOptions, SortOrder, SortTarget,
};
use tokio::sync::oneshot;
use tokio::task::{AbortHandle, JoinHandle};
use tokio::time::{Instant, sleep, timeout};

use crate::ClusterError;
use crate::keepalive::{self, Lease, MARGIN, Shared};

/// The lease TTL when none is configured: longer than an etcd member failover (1.2 s
/// measured with a 500 ms election timeout), which must not cost a node failover.
pub const DEFAULT_LEASE_TTL: Duration = Duration::from_secs(3);

/// Bound on one unary etcd call (lease grant, range, resign, revoke).
const CALL_TIMEOUT: Duration = Duration::from_secs(3);
/// Bound on opening a TCP connection to one etcd member.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Bound on one try of a unary call: a try routed to a dead member's connection hangs until
/// the pings notice; the next try usually goes to another member.
const TRY_TIMEOUT: Duration = Duration::from_secs(1);
/// Wait between two tries of one unary call.
const CALL_RETRY: Duration = Duration::from_millis(100);
/// Wait between two campaign attempts when etcd does not answer.
const RETRY: Duration = Duration::from_millis(500);

/// One instance's place in its node's election.
///
/// | field | meaning | default |
/// |---|---|---|
/// | `endpoints` | etcd client URLs, `http://host:port` | — |
/// | `name` | election name, e.g. `farthing/<chain-id>/<node-address>/leader` | — |
/// | `instance` | this instance's value: its id and service address | — |
/// | `lease_ttl` | lease TTL `T`, whole seconds, at least 2 s | 3 s |
///
/// A failed leader's standby takes over about `T` after the failure; the leader itself stops
/// believing it leads `T − 1 s` after the last keep-alive etcd answered. Keep-alives go out
/// three times per `T − 1 s`, so an etcd member failover must be over within about
/// `(T − 1 s) · 2/3` (1.3 s at `T` = 3 s) or it costs the leadership: with etcd's
/// `--election-timeout 500` writes resumed 0.5–1.3 s after the raft leader member was killed
/// here; raise `T` for a longer election timeout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElectionConfig {
    /// etcd client URLs (`http://…`; this build has no TLS).
    pub endpoints: Vec<String>,
    /// The election's name: the same on every instance of one node, different per node.
    pub name: String,
    /// This instance's value in the election (instance id and service address), shown by
    /// [`current_leader`].
    pub instance: String,
    /// The lease TTL `T`.
    pub lease_ttl: Duration,
}

impl ElectionConfig {
    /// A configuration with the default lease TTL.
    pub fn new(
        endpoints: Vec<String>,
        name: impl Into<String>,
        instance: impl Into<String>,
    ) -> Self {
        Self {
            endpoints,
            name: name.into(),
            instance: instance.into(),
            lease_ttl: DEFAULT_LEASE_TTL,
        }
    }

    fn validate(&self) -> Result<i64, ClusterError> {
        check_endpoints(&self.endpoints)?;
        check_name(&self.name)?;
        if self.instance.is_empty() {
            return Err(ClusterError::Config(
                "the instance value is empty: give this instance an id and its service address"
                    .into(),
            ));
        }
        let ttl = self.lease_ttl;
        if ttl.subsec_nanos() != 0 || ttl < MARGIN * 2 {
            return Err(ClusterError::Config(format!(
                "lease_ttl {ttl:?} is not usable: etcd leases have whole seconds, and the TTL \
                 must be at least 2 s (the leader steps down 1 s before etcd could expire it); \
                 use 3 s unless you measured otherwise"
            )));
        }
        i64::try_from(ttl.as_secs())
            .map_err(|_| ClusterError::Config(format!("lease_ttl {ttl:?} is too long")))
    }
}

fn check_endpoints(endpoints: &[String]) -> Result<(), ClusterError> {
    if endpoints.is_empty() {
        return Err(ClusterError::Config(
            "no etcd endpoints: give at least one, e.g. http://127.0.0.1:2379".into(),
        ));
    }
    for endpoint in endpoints {
        let rest = endpoint.strip_prefix("http://").ok_or_else(|| {
            ClusterError::Config(format!(
                "etcd endpoint {endpoint:?} is not an http:// URL (this build has no TLS; \
                 write http://host:port)"
            ))
        })?;
        if rest.is_empty() || rest.contains(char::is_whitespace) {
            return Err(ClusterError::Config(format!(
                "etcd endpoint {endpoint:?} has no host: write http://host:port"
            )));
        }
    }
    Ok(())
}

fn check_name(name: &str) -> Result<(), ClusterError> {
    if name.is_empty() || name.ends_with('/') {
        return Err(ClusterError::Config(format!(
            "election name {name:?} must be non-empty and not end with '/', e.g. \
             farthing/<chain-id>/<node-address>/leader"
        )));
    }
    Ok(())
}

/// Runs a unary call until it answers, retrying errors that another member may not give (a
/// dead member's refused connection, a member without a raft leader) for [`CALL_TIMEOUT`] in
/// all. A fresh client's first request can land on a dead member: one try is not enough.
async fn retrying<T, F, Fut>(client: &Client, mut call: F) -> Result<T, String>
where
    F: FnMut(Client) -> Fut,
    Fut: Future<Output = Result<T, etcd_client::Error>>,
{
    let deadline = Instant::now() + CALL_TIMEOUT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let last = match timeout(left.min(TRY_TIMEOUT), call(client.clone())).await {
            Ok(Ok(answer)) => return Ok(answer),
            Ok(Err(e)) if !transient(&e) => return Err(e.to_string()),
            Ok(Err(e)) => e.to_string(),
            Err(_) => format!("no answer within {CALL_TIMEOUT:?}"),
        };
        if Instant::now() + CALL_RETRY >= deadline {
            return Err(last);
        }
        sleep(CALL_RETRY).await;
    }
}

/// Errors another member (or the same one a moment later) may not give.
fn transient(e: &etcd_client::Error) -> bool {
    match e {
        etcd_client::Error::TransportError(_) | etcd_client::Error::IoError(_) => true,
        // gRPC's DEADLINE_EXCEEDED and UNAVAILABLE (etcd's "no leader", "leader changed",
        // "request timed out", a refused connection).
        etcd_client::Error::GRpcStatus(status) => matches!(i32::from(status.code()), 4 | 14),
        _ => false,
    }
}

/// The endpoints whose member answers a status request within a second, in the given order.
async fn live_members(endpoints: &[String]) -> Vec<String> {
    let probes = endpoints.iter().map(|endpoint| async move {
        let options = ConnectOptions::new().with_connect_timeout(TRY_TIMEOUT);
        let answered = timeout(TRY_TIMEOUT, async {
            let mut client = Client::connect([endpoint], Some(options)).await.ok()?;
            client.status().await.ok()
        })
        .await;
        matches!(answered, Ok(Some(_))).then(|| endpoint.clone())
    });
    futures::future::join_all(probes)
        .await
        .into_iter()
        .flatten()
        .collect()
}

async fn connect(endpoints: &[String]) -> Result<Client, ClusterError> {
    check_endpoints(endpoints)?;
    let options = ConnectOptions::new()
        .with_connect_timeout(CONNECT_TIMEOUT)
        // HTTP/2 pings notice a member that stopped answering (a dead process's connection is
        // closed at once). Not more often than etcd allows by default
        // (`--grpc-keepalive-min-time` 5 s): more frequent pings get the connection closed
        // ("too many pings"), which broke pending campaigns.
        .with_keep_alive(Duration::from_secs(6), Duration::from_secs(3))
        .with_keep_alive_while_idle(true)
        // A member cut off from its quorum refuses instead of answering from stale state.
        .with_require_leader(true);
    // The connection is lazy: errors here are malformed endpoints.
    Client::connect(endpoints, Some(options))
        .await
        .map_err(|e| ClusterError::Config(format!("etcd endpoints {endpoints:?}: {e}")))
}

/// Why a [`Leader`] no longer leads. Once reported, it never changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LostReason {
    /// No keep-alive was answered for `T − 1 s`: etcd may have expired the lease (a paused
    /// process, a network cut, etcd without quorum).
    DeadlinePassed,
    /// etcd answered that the lease is gone (TTL ≤ 0, "lease not found").
    LeaseExpired,
    /// The election's leader is another key, created at `epoch`.
    Superseded {
        /// The new leader's epoch.
        epoch: u64,
    },
    /// [`Leader::resign`] was called.
    Resigned,
    /// The [`Leader`] was dropped without resigning: keep-alives stopped, and etcd expires the
    /// lease within `T`.
    Dropped,
}

impl fmt::Display for LostReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::DeadlinePassed => f.write_str("no keep-alive answered before the local deadline"),
            Self::LeaseExpired => f.write_str("etcd says the lease is gone"),
            Self::Superseded { epoch } => write!(f, "another instance leads with epoch {epoch}"),
            Self::Resigned => f.write_str("resigned"),
            Self::Dropped => f.write_str("the leadership was dropped without resigning"),
        }
    }
}

/// A cheap, cloneable view of one leadership for tasks that must stop when it ends.
#[derive(Debug, Clone)]
pub struct LeaderWatch {
    shared: Arc<Shared>,
    epoch: u64,
}

impl LeaderWatch {
    /// The leadership's epoch (see [`Leader::epoch`]).
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Local and cheap: false once the loss was seen or the local deadline passed.
    pub fn is_leading(&self) -> bool {
        self.shared.is_leading()
    }

    /// Resolves once the leadership is (or may be) lost. Cancel-safe; any number of tasks may
    /// wait at once. Loss is permanent.
    pub async fn lost(&self) -> LostReason {
        self.shared.lost().await
    }
}

/// This instance leads its node until [`Leader::lost`] resolves.
///
/// Dropping it stops the keep-alives (the standby takes over within `T`); [`Leader::resign`]
/// hands over at once. A lost `Leader` never leads again: campaign anew.
pub struct Leader {
    watch: LeaderWatch,
    cluster_id: u64,
    client: Client,
    key: LeaderKey,
    lease: i64,
    stop: Option<oneshot::Sender<()>>,
    keeper: Option<JoinHandle<()>>,
    observer: AbortHandle,
}

impl fmt::Debug for Leader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Leader")
            .field("epoch", &self.watch.epoch)
            .field("cluster_id", &self.cluster_id)
            .field("lease", &self.lease)
            .field("lost", &self.watch.shared.reason())
            .finish_non_exhaustive()
    }
}

impl Leader {
    /// The create revision of this leader's election key: strictly greater than every earlier
    /// leader's on this etcd cluster. The store's fence compares it.
    pub fn epoch(&self) -> u64 {
        self.watch.epoch
    }

    /// The etcd cluster's id: a rebuilt etcd cluster restarts revisions at 1, so an epoch is
    /// only comparable with epochs of the same cluster id.
    pub fn cluster_id(&self) -> u64 {
        self.cluster_id
    }

    /// Resolves once the leadership is (or may be) lost. Cancel-safe; see [`LeaderWatch::lost`].
    pub async fn lost(&self) -> LostReason {
        self.watch.lost().await
    }

    /// Local and cheap: false once the loss was seen or the local deadline passed.
    pub fn is_leading(&self) -> bool {
        self.watch.is_leading()
    }

    /// A handle for other tasks.
    pub fn watch(&self) -> LeaderWatch {
        self.watch.clone()
    }

    /// Clean shutdown: marks the leadership lost ([`LostReason::Resigned`]) first, then deletes
    /// the election key and revokes the lease so a standby leads at once. etcd errors are
    /// logged, not returned: the lease then expires within `T`.
    pub async fn resign(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(keeper) = self.keeper.take() {
            let _ = timeout(CALL_TIMEOUT, keeper).await;
        }
        self.observer.abort();
        let key = self.key.clone();
        let resigned = retrying(&self.client, |mut c| {
            let resign = ResignOptions::new().with_leader(key.clone());
            async move { c.resign(Some(resign)).await }
        })
        .await;
        if let Err(e) = resigned {
            tracing::warn!(
                "resign: etcd did not delete the election key ({e}); revoking the lease"
            );
        }
        revoke(&self.client, self.lease).await;
    }
}

impl Drop for Leader {
    fn drop(&mut self) {
        // Dropping `stop` tells the keeper to stop (Dropped); the observer would stop on the
        // loss anyway.
        self.observer.abort();
    }
}

async fn revoke(client: &Client, lease: i64) {
    if let Err(e) = retrying(client, |mut c| async move { c.lease_revoke(lease).await }).await {
        tracing::warn!(
            lease,
            "revoke failed ({e}); etcd expires the lease within its TTL"
        );
    }
}

/// Waits (as a standby) until this instance leads the election, then returns its leadership.
///
/// If etcd is unreachable it retries every 2 s, logging each failure; it returns an error only
/// for a configuration that cannot work. Cancel it (drop the future) to stop waiting; a lease
/// already granted then expires within `T`.
pub async fn campaign(config: &ElectionConfig) -> Result<Leader, ClusterError> {
    let ttl = config.validate()?;
    check_endpoints(&config.endpoints)?;
    tracing::info!(name = %config.name, instance = %config.instance, "standby: campaigning");
    loop {
        // Each attempt on a client of the members that answer now: the client's balancer
        // keeps routing calls to a dead member, and a campaign is one long call.
        let live = live_members(&config.endpoints).await;
        let attempt = async {
            if live.is_empty() {
                return Err("no etcd member answers a status request".to_owned());
            }
            let client = connect(&live).await.map_err(|e| e.to_string())?;
            attempt(client, config, ttl).await
        };
        match attempt.await {
            Ok(leader) => {
                tracing::info!(
                    name = %config.name, epoch = leader.epoch(), cluster_id = leader.cluster_id(),
                    "leading"
                );
                return Ok(leader);
            }
            Err(why) => {
                tracing::warn!(
                    name = %config.name, endpoints = %config.endpoints.join(","),
                    "standby, not leading: {why}; campaigning again in {RETRY:?} \
                     (if this repeats, check that etcd runs and is reachable)"
                );
                sleep(RETRY).await;
            }
        }
    }
}

/// One campaign with a fresh lease; `Err` says why it must be retried.
async fn attempt(client: Client, config: &ElectionConfig, ttl: i64) -> Result<Leader, String> {
    let granted_at = Instant::now();
    let lease = retrying(
        &client,
        |mut c| async move { c.lease_grant(ttl, None).await },
    )
    .await
    .map_err(|e| format!("no lease from etcd ({e})"))?
    .id();
    let shared = Shared::new(granted_at + config.lease_ttl - MARGIN);
    let (stop, stopped) = oneshot::channel();
    let lease_spec = Lease {
        id: lease,
        ttl: config.lease_ttl,
    };
    let keeper = tokio::spawn(keepalive::keep(
        client.clone(),
        lease_spec,
        shared.clone(),
        stopped,
    ));
    // From here, dropping `stop` ends the keeper; the lease is revoked on every error path.
    let won = {
        let mut campaigner = client.clone();
        tokio::select! {
            won = campaigner.campaign(config.name.clone(), config.instance.clone(), lease) => won,
            reason = shared.lost() => {
                drop(stop);
                revoke(&client, lease).await;
                return Err(format!("lost the lease while waiting ({reason})"));
            }
        }
    };
    let checked = match won {
        Ok(mut won) => {
            let cluster_id = won.header().map_or(0, |h| h.cluster_id());
            match won.take_leader() {
                Some(key) => confirm(&client, &config.name, &key)
                    .await
                    .map(|()| (key, cluster_id)),
                None => Err("etcd answered the campaign without a leader key".to_string()),
            }
        }
        Err(e) => Err(format!("the campaign failed ({e})")),
    };
    let checked = match checked {
        Ok(won) if shared.is_leading() => Ok(won),
        Ok(_) => Err("the lease lapsed as the campaign returned".to_string()),
        Err(why) => Err(why),
    };
    let (key, cluster_id) = match checked {
        Ok(won) => won,
        Err(why) => {
            drop(stop);
            revoke(&client, lease).await;
            return Err(why);
        }
    };
    let epoch = u64::try_from(key.rev()).map_err(|_| format!("negative revision {}", key.rev()))?;
    let observer = tokio::spawn(keepalive::observe(
        client.clone(),
        config.name.clone(),
        epoch,
        shared.clone(),
    ));
    shared.set_leading();
    Ok(Leader {
        watch: LeaderWatch { shared, epoch },
        cluster_id,
        client,
        key,
        lease,
        stop: Some(stop),
        keeper: Some(keeper),
        observer: observer.abort_handle(),
    })
}

/// Confirms that `key` is the election's first key: a campaign can return after its lease
/// expired, so the result is checked, not trusted.
async fn confirm(client: &Client, name: &str, key: &LeaderKey) -> Result<(), String> {
    match first_key(client, name).await {
        Ok(Some((_, rev))) if i64::try_from(rev).ok() == Some(key.rev()) => Ok(()),
        Ok(Some((_, rev))) => Err(format!(
            "the campaign returned, but the leader is epoch {rev}"
        )),
        Ok(None) => Err("the campaign returned, but the election has no leader".to_string()),
        Err(e) => Err(format!("could not confirm the campaign ({e})")),
    }
}

/// The election's leader: the key under `name/` with the lowest create revision.
async fn first_key(client: &Client, name: &str) -> Result<Option<(String, u64)>, String> {
    let options = GetOptions::new()
        .with_prefix()
        .with_sort(SortTarget::Create, SortOrder::Ascend)
        .with_limit(1);
    let prefix = format!("{name}/");
    let reply = retrying(client, |mut c| {
        let (prefix, options) = (prefix.clone(), options.clone());
        async move { c.get(prefix, Some(options)).await }
    })
    .await?;
    Ok(reply.kvs().first().map(|kv| {
        let value = String::from_utf8_lossy(kv.value()).into_owned();
        (value, u64::try_from(kv.create_revision()).unwrap_or(0))
    }))
}

/// The election's current leader as `(value, epoch)`, or `None`. Never blocks on an election
/// without a leader (one range read, bounded by a timeout) — for status output and tests.
pub async fn current_leader(
    endpoints: &[String],
    name: &str,
) -> Result<Option<(String, u64)>, ClusterError> {
    check_name(name)?;
    let client = connect(endpoints).await?;
    first_key(&client, name)
        .await
        .map_err(|detail| ClusterError::Unavailable {
            endpoints: endpoints.join(","),
            detail,
        })
}
