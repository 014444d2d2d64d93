//! Agents' credentials at the node (issue 15): the root key (`cred.key` in the data dir), the
//! revocations, the credentials issued here, and the check that admits a token
//! ([`farthing_rpc::Authority`]). Budgets are counted in the channel table's ledgers, under
//! its lock, in the same synced write as the proof that spends them (see `table` and
//! `payments::outbox`); deposits reserve theirs before the transaction leaves.
//!
//! Nothing here ever logs a token: credentials are named by their chain id (`cid_…`).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, RwLock};

use farthing_credential::ledger::{DAY, Ledger, Ledgers};
use farthing_credential::{Caveat, ChainId, Credential, Kind};
use farthing_rpc::{Agent, Authority, Denied, Principal};
use farthing_store::{IssuedCredential, Store, StoreError, Write};

use crate::table::ChannelTable;

pub(crate) use farthing_rpc::SpecError;

/// The root key's file in the data dir.
pub(crate) const KEY_FILE: &str = "cred.key";

/// The credentials' ledgers as the store holds them at `now`: every total, and the
/// per-second spends of the last day.
pub(crate) fn ledgers_from_store(store: &dyn Store, now: u64) -> Result<Ledgers, StoreError> {
    let spends = store.credential_spends(now.saturating_sub(DAY))?;
    // Per ledger: its total, and its spends by second.
    type Persisted = (u128, Vec<(u64, u128)>);
    let mut rows: BTreeMap<(ChainId, Kind), Persisted> = BTreeMap::new();
    for (ledger, total) in spends.totals {
        let Some(kind) = Kind::from_tag(ledger.kind) else {
            continue;
        };
        rows.entry((ChainId(ledger.cid), kind)).or_default().0 = total;
    }
    for (ledger, second, amount) in spends.seconds {
        let Some(kind) = Kind::from_tag(ledger.kind) else {
            continue;
        };
        rows.entry((ChainId(ledger.cid), kind))
            .or_default()
            .1
            .push((second, amount));
    }
    Ok(Ledgers::restore(rows.into_iter().map(
        |(key, (total, seconds))| (key, Ledger::restore(total, seconds)),
    )))
}

/// How often revocations whose write failed are written again.
pub(crate) const RETRY_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

/// How often (in [`RETRY_EVERY`]s) the per-second spends older than a day are deleted from the
/// store: every 10 minutes.
const PRUNE_EVERY: u32 = 60;

/// The credentials' upkeep: every [`RETRY_EVERY`], write again the revocations whose write
/// failed (they are refused in memory meanwhile); every 10 minutes, delete the per-second
/// spend records older than a day (in memory, the ledgers drop theirs as time moves on).
pub(crate) async fn upkeep(credentials: Arc<Credentials>, mut shutdown: crate::tasks::Shutdown) {
    for round in 1u32.. {
        tokio::select! {
            () = tokio::time::sleep(RETRY_EVERY) => {}
            () = shutdown.wait() => return,
        }
        credentials.write_pending_revocations().await;
        if round % PRUNE_EVERY != 0 {
            continue;
        }
        let before = now_secs().saturating_sub(DAY + 60);
        if let Err(e) = credentials
            .table
            .group()
            .submit(vec![Write::PruneCredentialSeconds { before }])
            .await
        {
            tracing::warn!(error = %e, "could not prune old credential spend records; retrying later");
        }
    }
}

/// The node's clock, Unix seconds.
pub(crate) fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Why a credential could not be issued or revoked.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CredentialOpError {
    /// The parameters do not make a credential.
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// The id is not `cid_` and 32 hex digits.
    #[error("{0:?} is not a credential id: give cid_ and 32 hex digits (farthing_listCredentials)")]
    BadId(String),
    /// No credential with this id was issued here.
    #[error(
        "no credential {0} was issued by this node: show one derived offline by its token instead"
    )]
    Unknown(ChainId),
    /// The token given is not one of this node's credentials.
    #[error("the token is not a valid credential of this node: {0}")]
    Token(Denied),
    /// The store refused the write: nothing changed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Refuse to run on a store that lists credentials this node issued when `data_dir` has no
/// `cred.key` to verify them: a new key would refuse every one of them (an instance of a node
/// on a shared store without the other instances' key, or a data directory restored without
/// it). Checked before the store is taken over or anything is written.
pub fn require_key(data_dir: &Path, store: &dyn Store) -> Result<(), String> {
    let path = data_dir.join(KEY_FILE);
    if path.exists() {
        return Ok(());
    }
    let issued = store
        .issued_credentials()
        .map_err(|e| format!("cannot read credentials: {e}"))?;
    if issued.is_empty() {
        return Ok(());
    }
    Err(format!(
        "the store lists {} credentials this node issued, but {} is missing: copy cred.key \
         (mode 0600) from the instance or the backup that issued them (every instance of a node \
         shares it); if it is lost for good, write a new key into it (64 hex digits, mode 0600): \
         every credential issued before then stops working and must be issued again",
        issued.len(),
        path.display()
    ))
}

/// The credentials component.
pub(crate) struct Credentials {
    key: [u8; 32],
    revoked: RwLock<HashMap<ChainId, Revocation>>,
    issued: RwLock<BTreeMap<ChainId, IssuedCredential>>,
    table: Arc<ChannelTable>,
    /// Calls refused by a credential's limits, by credential and reason (the metrics).
    refusals: std::sync::Mutex<BTreeMap<(ChainId, String), u64>>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials").finish_non_exhaustive()
    }
}

/// A revocation: when, and whether its record is durable yet.
#[derive(Debug, Clone, Copy)]
struct Revocation {
    at: u64,
    durable: bool,
}

/// A credential the node issued, as listed.
pub(crate) struct Issued {
    /// Its record.
    pub(crate) record: IssuedCredential,
    /// When it was revoked, if it (or an ancestor issued here) was.
    pub(crate) revoked: bool,
}

impl Credentials {
    /// The component: the root key from `data_dir/cred.key` (made on first start, mode 0600),
    /// revocations and issued credentials from `store`.
    pub(crate) fn load(
        data_dir: &Path,
        store: &dyn Store,
        table: Arc<ChannelTable>,
    ) -> Result<Self, farthing_rpc::Error> {
        require_key(data_dir, store).map_err(farthing_rpc::Error::Config)?;
        let path = data_dir.join(KEY_FILE);
        let issued = store
            .issued_credentials()
            .map_err(|e| farthing_rpc::Error::Config(format!("cannot read credentials: {e}")))?;
        let hex = farthing_rpc::ensure_secret(&path)?;
        let mut key = [0u8; 32];
        alloy::hex::decode_to_slice(&hex, &mut key).map_err(|_| {
            farthing_rpc::Error::TokenMalformed {
                path: data_dir.join(KEY_FILE),
            }
        })?;
        let revoked = store
            .revoked_credentials()
            .map_err(|e| farthing_rpc::Error::Config(format!("cannot read revocations: {e}")))?;
        Ok(Self {
            key,
            revoked: RwLock::new(
                revoked
                    .into_iter()
                    .map(|(c, at)| (ChainId(c), Revocation { at, durable: true }))
                    .collect(),
            ),
            issued: RwLock::new(issued.into_iter().map(|r| (ChainId(r.id), r)).collect()),
            table,
            refusals: Default::default(),
        })
    }

    fn revoked_in(&self, chain: &[ChainId]) -> Option<ChainId> {
        let revoked = self.revoked.read().unwrap_or_else(|e| e.into_inner());
        chain.iter().find(|id| revoked.contains_key(id)).copied()
    }

    fn check(&self, agent: &Agent, now: u64) -> Result<(), Denied> {
        if let Some(expires) = agent.limits().expires
            && now >= expires
        {
            return Err(Denied::Expired { expires, now });
        }
        match self.revoked_in(agent.chain_ids()) {
            Some(revoked) => Err(Denied::Revoked { revoked }),
            None => Ok(()),
        }
    }

    /// Verify `token` (`fth1_…`): its chain under the root key, then expiry and revocation.
    pub(crate) fn verify(&self, token: &str) -> Result<Arc<Agent>, Denied> {
        let agent = self.inspect(&token.parse()?)?;
        self.check(&agent, now_secs())?;
        Ok(agent)
    }

    /// Verify `credential`'s chain only (to show it, also revoked or expired).
    pub(crate) fn inspect(&self, credential: &Credential) -> Result<Arc<Agent>, Denied> {
        let verified = credential.verify(&self.key)?;
        Ok(Arc::new(Agent::new(credential.clone(), verified)))
    }

    /// Whether chain id `id` is revoked.
    pub(crate) fn is_revoked(&self, chain: &[ChainId]) -> bool {
        self.revoked_in(chain).is_some()
    }

    /// Issue a credential with `caveats` for `caller`: minted from the root key for the admin
    /// token, derived from the caller's own credential for an agent (so it never allows more).
    /// Durable when this returns.
    pub(crate) async fn issue(
        &self,
        caller: &Principal,
        label: Option<String>,
        caveats: Vec<Caveat>,
    ) -> Result<(Credential, Issued), CredentialOpError> {
        let mut nonce = [0u8; 16];
        getrandom::fill(&mut nonce).map_err(|e| StoreError::Unavailable {
            reason: format!("no randomness: {e}"),
        })?;
        let (credential, parent) = match caller {
            Principal::Admin => (Credential::mint(&self.key, nonce, &caveats), None),
            Principal::Agent(agent) => {
                // A random nonce first: two children with the same caveats stay two.
                let tag: String = nonce[..8].iter().map(|b| format!("{b:02x}")).collect();
                let mut child = agent.credential().attenuate(&Caveat::Nonce(tag));
                for caveat in &caveats {
                    child = child.attenuate(caveat);
                }
                (child, Some(agent.id().0))
            }
        };
        let chain = credential
            .verify(&self.key)
            .map(|v| v.chain_ids().iter().map(|c| c.0).collect())
            .unwrap_or_default();
        // A credential the node could not read back, or a record the store would refuse, is
        // refused here, before anything is written.
        let text = credential.encode();
        if text.parse::<Credential>().is_err() {
            return Err(SpecError::Invalid(format!(
                "these limits make a credential over {} bytes or {} caveats: give fewer peers or origins",
                farthing_credential::wire::MAX_TOKEN,
                farthing_credential::wire::MAX_CAVEATS
            ))
            .into());
        }
        let record = IssuedCredential {
            id: credential.id().0,
            chain,
            parent,
            created: now_secs(),
            label: label.unwrap_or_default(),
            caveats: credential
                .caveats()
                .iter()
                .map(ToString::to_string)
                .collect(),
        };
        farthing_store::credentials::encode_issued_credential(&record)
            .map_err(|e| SpecError::Invalid(format!("the credential cannot be recorded: {e}")))?;
        self.table
            .group()
            .submit(vec![Write::CredentialIssued(record.clone())])
            .await?;
        self.issued
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(ChainId(record.id), record.clone());
        Ok((
            credential,
            Issued {
                record,
                revoked: false,
            },
        ))
    }

    /// Revoke chain id `id` and everything derived from it; durable when this returns. Returns
    /// when it was revoked (the first time, if it was already). Refused in memory at once; a
    /// revocation whose write failed stays refused and is written again by the next call.
    pub(crate) async fn revoke(&self, id: ChainId) -> Result<u64, CredentialOpError> {
        let at = {
            let mut revoked = self.revoked.write().unwrap_or_else(|e| e.into_inner());
            let entry = revoked.entry(id).or_insert(Revocation {
                at: now_secs(),
                durable: false,
            });
            if entry.durable {
                return Ok(entry.at);
            }
            entry.at
        };
        self.table
            .group()
            .submit(vec![Write::CredentialRevoked { cid: id.0, at }])
            .await?;
        if let Some(entry) = self
            .revoked
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .get_mut(&id)
        {
            entry.durable = true;
        }
        tracing::info!(credential = %id, "credential revoked");
        Ok(at)
    }

    /// Write again every revocation whose write failed (each is refused in memory meanwhile).
    pub(crate) async fn write_pending_revocations(&self) {
        let pending: Vec<ChainId> = self
            .revoked
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|(_, r)| !r.durable)
            .map(|(id, _)| *id)
            .collect();
        for id in pending {
            if let Err(e) = self.revoke(id).await {
                tracing::warn!(credential = %id, error = %e, "a revocation is not saved yet (the credential is refused meanwhile); retrying");
                return;
            }
        }
    }

    /// Every credential issued here, by id.
    pub(crate) fn issued(&self) -> Vec<Issued> {
        let issued = self.issued.read().unwrap_or_else(|e| e.into_inner());
        issued
            .values()
            .map(|record| Issued {
                revoked: self.lineage_revoked(&issued, record),
                record: record.clone(),
            })
            .collect()
    }

    /// One credential issued here.
    pub(crate) fn issued_one(&self, id: ChainId) -> Result<Issued, CredentialOpError> {
        let issued = self.issued.read().unwrap_or_else(|e| e.into_inner());
        let record = issued.get(&id).ok_or(CredentialOpError::Unknown(id))?;
        Ok(Issued {
            revoked: self.lineage_revoked(&issued, record),
            record: record.clone(),
        })
    }

    /// Whether `record`, or any step of the chain it was derived along, is revoked.
    fn lineage_revoked(
        &self,
        _issued: &BTreeMap<ChainId, IssuedCredential>,
        record: &IssuedCredential,
    ) -> bool {
        let chain: Vec<ChainId> = record.chain.iter().copied().map(ChainId).collect();
        self.revoked_in(&chain).is_some() || self.revoked_in(&[ChainId(record.id)]).is_some()
    }

    /// Whether chain id `id` is `agent`'s own or one issued here below it (what an agent with
    /// the admin scope may see and revoke: its own subtree, never its siblings or ancestors).
    pub(crate) fn below(&self, agent: &Agent, id: ChainId) -> bool {
        if id == agent.id() {
            return true;
        }
        let issued = self.issued.read().unwrap_or_else(|e| e.into_inner());
        issued
            .get(&id)
            .is_some_and(|r| r.chain.contains(&agent.id().0))
    }

    /// Parse `cid_…`.
    pub(crate) fn parse_id(text: &str) -> Result<ChainId, CredentialOpError> {
        let bad = || CredentialOpError::BadId(text.chars().take(40).collect());
        let hex = text.strip_prefix("cid_").ok_or_else(bad)?;
        let mut id = [0u8; 16];
        if hex.len() != 32 || hex.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(bad());
        }
        alloy::hex::decode_to_slice(hex, &mut id).map_err(|_| bad())?;
        Ok(ChainId(id))
    }
}

impl Authority for Credentials {
    fn admit(&self, token: &str) -> Result<Arc<Agent>, Denied> {
        self.verify(token).inspect_err(|denied| {
            tracing::debug!(reason = denied.reason(), "credential refused");
        })
    }

    fn recheck(&self, agent: &Agent) -> Result<(), Denied> {
        self.check(agent, now_secs())
    }

    fn refused(&self, agent: &Agent, reason: &str) {
        let mut refusals = self.refusals.lock().unwrap_or_else(|e| e.into_inner());
        // Credentials derived offline cost nothing: past the cap, refusals of credentials not
        // counted yet go under `other`, so no agent can grow this without bound.
        let mut key = (agent.id(), reason.to_owned());
        if refusals.len() >= MAX_REFUSAL_SERIES && !refusals.contains_key(&key) {
            key.0 = OTHER;
        }
        *refusals.entry(key).or_default() += 1;
    }
}

/// Most credentials a credential metric names; past it, the rest count under `other` (for
/// refusals: of credentials not counted yet, under [`OTHER`]).
const MAX_REFUSAL_SERIES: usize = 1000;

/// The id refusals past [`MAX_REFUSAL_SERIES`] are counted under (shown as `other`).
const OTHER: ChainId = ChainId([0xff; 16]);

impl Credentials {
    /// The credentials' metrics in the Prometheus text format: what each budget's ledger has
    /// spent (from the durable ledgers: exact across restarts) and the calls refused, by
    /// credential and reason.
    pub(crate) fn render_metrics(&self, out: &mut String) {
        use std::fmt::Write as _;
        let mut totals = self.table.ledger_totals();
        out.push_str("# HELP farthing_credential_spent_base_units What was spent under each budget-bearing credential step, base units (payments: kind=pay; channel deposits: kind=deposit); the largest 1000 by name, the rest summed under credential=\"other\" (a gauge: which are named changes, and a deposit that was never made is given back).\n");
        out.push_str("# TYPE farthing_credential_spent_base_units gauge\n");
        // Credentials derived offline cost nothing, and each budget of one is a ledger: name the
        // largest, sum the rest, so no agent can grow the metrics without bound.
        totals.sort_by(|a, b| b.2.cmp(&a.2).then(a.0.cmp(&b.0)));
        let kind_name = |kind: Kind| match kind {
            Kind::Pay => "pay",
            Kind::Deposit => "deposit",
        };
        let mut rest = [0u128; 2];
        for (i, (cid, kind, total)) in totals.into_iter().enumerate() {
            if i >= MAX_REFUSAL_SERIES {
                rest[usize::from(kind.tag())] = rest[usize::from(kind.tag())].saturating_add(total);
                continue;
            }
            let _ = writeln!(
                out,
                "farthing_credential_spent_base_units{{credential=\"{cid}\",kind=\"{}\"}} {total}",
                kind_name(kind)
            );
        }
        for (kind, total) in [(Kind::Pay, rest[0]), (Kind::Deposit, rest[1])] {
            if total > 0 {
                let _ = writeln!(
                    out,
                    "farthing_credential_spent_base_units{{credential=\"other\",kind=\"{}\"}} {total}",
                    kind_name(kind)
                );
            }
        }
        out.push_str("# HELP farthing_credential_refused_total Calls refused by an agent's credential, by credential and reason (scope, expired, revoked, max, peer, origin, budget.<period>, deposit.<period>).\n");
        out.push_str("# TYPE farthing_credential_refused_total counter\n");
        let refusals = self.refusals.lock().unwrap_or_else(|e| e.into_inner());
        for ((cid, reason), count) in refusals.iter() {
            let credential = if *cid == OTHER {
                "other".to_owned()
            } else {
                cid.to_string()
            };
            let _ = writeln!(
                out,
                "farthing_credential_refused_total{{credential=\"{credential}\",reason=\"{reason}\"}} {count}"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use farthing_credential::{Budget, Period};
    use farthing_store::{GroupCommit, MemStore};

    use super::*;

    #[tokio::test]
    async fn a_revocation_whose_write_failed_stays_refused_and_is_written_again() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(farthing_store::testing::FailingStore::new(
            MemStore::default(),
        ));
        let switch = store.switch();
        let group = GroupCommit::new(store.clone());
        let table = Arc::new(ChannelTable::new(Vec::new(), Vec::new(), group.clone()));
        let credentials = Credentials::load(dir.path(), &*store, table.clone()).unwrap();
        let token = Credential::mint(&credentials.key, [7; 16], &[]).encode();
        let id = credentials.verify(&token).unwrap().id();
        switch.fail();
        assert!(credentials.revoke(id).await.is_err());
        // Refused at once, though not saved yet.
        assert!(matches!(
            credentials.verify(&token),
            Err(Denied::Revoked { .. })
        ));
        switch.recover();
        group.resume();
        credentials.write_pending_revocations().await;
        assert_eq!(store.revoked_credentials().unwrap().len(), 1);
        let restarted = Credentials::load(dir.path(), &*store, table).unwrap();
        assert!(matches!(
            restarted.verify(&token),
            Err(Denied::Revoked { .. })
        ));
    }

    #[tokio::test]
    async fn a_store_with_issued_credentials_needs_the_key_that_issued_them() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(MemStore::default());
        let group = GroupCommit::new(store.clone());
        let table = Arc::new(ChannelTable::new(Vec::new(), Vec::new(), group));
        let credentials = Credentials::load(dir.path(), &*store, table.clone()).unwrap();
        credentials
            .issue(&Principal::Admin, None, Vec::new())
            .await
            .unwrap();
        // Another instance, or a restore, without cred.key: refused, saying what to copy.
        let elsewhere = tempfile::tempdir().unwrap();
        let refused = Credentials::load(elsewhere.path(), &*store, table.clone()).err();
        let text = refused.map(|e| e.to_string()).unwrap_or_default();
        assert!(
            text.contains("cred.key") && text.contains("1 credentials"),
            "{text}"
        );
        assert!(
            !elsewhere.path().join(KEY_FILE).exists(),
            "no new key was made"
        );
        // With the key, it loads.
        Credentials::load(dir.path(), &*store, table).unwrap();
    }

    #[tokio::test]
    async fn the_credential_metrics_name_at_most_a_thousand_credentials_and_sum_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(MemStore::default());
        let table = Arc::new(ChannelTable::new(
            Vec::new(),
            Vec::new(),
            GroupCommit::new(store.clone()),
        ));
        let credentials = Credentials::load(dir.path(), &*store, table.clone()).unwrap();
        // 1005 ledgers, spending 1..=1005: the five smallest go to `other`.
        for i in 1..=1005u32 {
            let mut id = [0u8; 16];
            id[..4].copy_from_slice(&i.to_be_bytes());
            let budget = Budget {
                step: 1,
                cid: ChainId(id),
                kind: Kind::Pay,
                period: Period::Total,
                limit: u128::MAX,
            };
            let writes = table
                .lock()
                .charge(&[budget], Kind::Pay, u128::from(i), 1_000, 6)
                .unwrap();
            assert_eq!(writes.len(), 1);
        }
        // 1003 credentials refused once each: three go to `other`.
        for i in 0..1003u32 {
            let mut nonce = [0u8; 16];
            nonce[..4].copy_from_slice(&i.to_be_bytes());
            let agent = credentials
                .inspect(&Credential::mint(&credentials.key, nonce, &[]))
                .unwrap();
            Authority::refused(&credentials, &agent, "scope");
        }
        let mut text = String::new();
        credentials.render_metrics(&mut text);
        let named = |metric: &str| {
            text.lines()
                .filter(|l| l.starts_with(metric) && l.contains("credential=\"cid_"))
                .count()
        };
        assert_eq!(named("farthing_credential_spent_base_units{"), 1000);
        assert!(text.contains(
            "farthing_credential_spent_base_units{credential=\"other\",kind=\"pay\"} 15\n"
        ));
        assert_eq!(named("farthing_credential_refused_total{"), 1000);
        assert!(text.contains(
            "farthing_credential_refused_total{credential=\"other\",reason=\"scope\"} 3\n"
        ));
    }
}
