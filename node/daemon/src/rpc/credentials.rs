//! The credential methods (issue 15) and the caller's credential as the other methods see it.

use std::sync::Arc;

use farthing_core::format_amount;
use farthing_credential::{Caveat, ChainId, Effective, Kind};
use farthing_rpc::{
    Agent, ApiError, BudgetView, CreatedCredential, CredentialSpec, CredentialView, Denied,
    Principal, Revoked,
};
use jsonrpsee::Extensions;

use super::RpcHandler;
use crate::credentials::{CredentialOpError, Credentials, Issued, SpecError, now_secs};

/// The caller, as the auth layer put it in the call's extensions. A call without one never
/// passes the scope check; should one get here, it is treated as the most limited caller
/// there is: an agent with no scope.
pub(super) fn principal(ext: &Extensions) -> Principal {
    ext.get::<Principal>().cloned().unwrap_or_else(|| {
        let nothing =
            farthing_credential::Credential::mint(&[0; 32], [0; 16], &[Caveat::Scope(vec![])]);
        let verified = nothing
            .verify(&[0; 32])
            .unwrap_or_else(|_| unreachable!("a credential verifies under its own key"));
        Principal::Agent(Arc::new(Agent::new(nothing, verified)))
    })
}

impl From<CredentialOpError> for ApiError {
    fn from(e: CredentialOpError) -> Self {
        match e {
            CredentialOpError::Spec(SpecError::Amount { .. }) => {
                ApiError::InvalidParams(e.to_string())
            }
            CredentialOpError::Store(s) => ApiError::Degraded {
                reasons: vec![format!("store: {s}")],
            },
            other => ApiError::InvalidParams(other.to_string()),
        }
    }
}

fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Pay => "pay",
        Kind::Deposit => "deposit",
    }
}

impl RpcHandler {
    fn credentials(&self) -> &Credentials {
        self.node.credentials()
    }

    /// The view of a credential with `caveats` (verified, so they parse), its chain ids known
    /// (`chain`, for the budgets' ledgers) or not.
    fn view_of(
        &self,
        id: Option<String>,
        limits: &Effective,
        caveats: &[Caveat],
    ) -> CredentialView {
        let decimals = self.decimals();
        let amount = |v: u128| format_amount(v, decimals);
        let now = now_secs();
        let budgets = self
            .node
            .budgets_left(&limits.budgets, now)
            .into_iter()
            .map(|(budget, spent, remaining)| BudgetView {
                kind: kind_name(budget.kind).into(),
                period: budget.period.as_str().into(),
                limit: amount(budget.limit),
                spent: amount(spent),
                remaining: amount(remaining),
                counted_under: budget.cid.to_string(),
            })
            .collect();
        CredentialView {
            id,
            admin: false,
            label: None,
            parent: None,
            created: None,
            caveats: caveats.iter().map(ToString::to_string).collect(),
            scopes: limits
                .scopes
                .as_ref()
                .map(|s| s.iter().map(|s| s.as_str().to_owned()).collect()),
            expires: limits.expires,
            max_payment: limits.max.map(amount),
            peers: limits.peers.as_ref().map(|p| {
                p.iter()
                    .map(|a| alloy::primitives::Address::from(*a))
                    .collect()
            }),
            origins: limits
                .origins
                .as_ref()
                .map(|o| o.iter().map(ToString::to_string).collect()),
            budgets,
            revoked: false,
        }
    }

    fn agent_view(&self, agent: &Agent) -> CredentialView {
        let mut view = self.view_of(
            Some(agent.id().to_string()),
            agent.limits(),
            agent.caveats(),
        );
        view.revoked = self.credentials().is_revoked(agent.chain_ids());
        if let Ok(issued) = self.credentials().issued_one(agent.id()) {
            view.label = Some(issued.record.label).filter(|l| !l.is_empty());
            view.parent = issued.record.parent.map(|p| ChainId(p).to_string());
            view.created = Some(issued.record.created);
        }
        view
    }

    fn issued_view(&self, issued: Issued) -> CredentialView {
        let caveats: Vec<Caveat> = issued
            .record
            .caveats
            .iter()
            .filter_map(|c| Caveat::parse(c).ok())
            .collect();
        // The record keeps the chain ids of its steps (hashes, safe to store): the budgets'
        // ledgers are found by them.
        let chain: Vec<ChainId> = issued.record.chain.iter().copied().map(ChainId).collect();
        let limits = Effective::from_chain(&caveats, &chain);
        let mut view = self.view_of(
            Some(ChainId(issued.record.id).to_string()),
            &limits,
            &caveats,
        );
        view.label = Some(issued.record.label.clone()).filter(|l| !l.is_empty());
        view.parent = issued.record.parent.map(|p| ChainId(p).to_string());
        view.created = Some(issued.record.created);
        view.revoked = issued.revoked;
        view
    }

    /// `farthing_whoami`.
    pub(super) fn principal_view(&self, principal: &Principal) -> CredentialView {
        match principal {
            Principal::Admin => CredentialView {
                id: None,
                admin: true,
                label: None,
                parent: None,
                created: None,
                caveats: Vec::new(),
                scopes: None,
                expires: None,
                max_payment: None,
                peers: None,
                origins: None,
                budgets: Vec::new(),
                revoked: false,
            },
            Principal::Agent(agent) => self.agent_view(agent),
        }
    }

    /// `farthing_createCredential`.
    pub(super) async fn create_credential_uncounted(
        &self,
        caller: Principal,
        spec: CredentialSpec,
    ) -> Result<CreatedCredential, ApiError> {
        let caveats = spec
            .caveats(self.decimals(), now_secs())
            .map_err(CredentialOpError::from)?;
        let (credential, issued) = self
            .credentials()
            .issue(&caller, spec.label.clone(), caveats)
            .await?;
        let agent = self.credentials().inspect(&credential).map_err(|e| {
            ApiError::Internal(format!("a credential just made does not verify: {e}"))
        })?;
        let mut view = self.agent_view(&agent);
        view.created = Some(issued.record.created);
        tracing::info!(credential = %agent.id(), parent = ?issued.record.parent.map(ChainId), "credential issued");
        Ok(CreatedCredential {
            token: credential.encode(),
            credential: view,
        })
    }

    /// `farthing_listCredentials`.
    pub(super) async fn list_credentials_uncounted(
        &self,
        caller: Principal,
    ) -> Result<Vec<CredentialView>, ApiError> {
        Ok(self
            .credentials()
            .issued()
            .into_iter()
            .filter(|issued| self.sees(&caller, ChainId(issued.record.id)))
            .map(|issued| self.issued_view(issued))
            .collect())
    }

    /// Whether `caller` may see or revoke chain id `id`: the admin token any; an agent's
    /// admin-scoped credential only itself and what was issued below it.
    fn sees(&self, caller: &Principal, id: ChainId) -> bool {
        match caller {
            Principal::Admin => true,
            Principal::Agent(agent) => self.credentials().below(agent, id),
        }
    }

    fn not_yours(id: ChainId) -> ApiError {
        ApiError::InvalidParams(format!(
            "{id} is not this credential nor one issued below it: an agent's credential sees and revokes only its own subtree"
        ))
    }

    /// `farthing_showCredential`.
    pub(super) async fn show_credential_uncounted(
        &self,
        caller: Principal,
        id: Option<String>,
        token: Option<String>,
    ) -> Result<CredentialView, ApiError> {
        match (id, token) {
            (Some(id), None) => {
                let id = Credentials::parse_id(&id)?;
                if !self.sees(&caller, id) {
                    return Err(Self::not_yours(id));
                }
                Ok(self.issued_view(self.credentials().issued_one(id)?))
            }
            (None, Some(token)) => {
                let agent = token
                    .parse()
                    .map_err(|e: farthing_credential::CredentialError| Denied::from(e))
                    .and_then(|credential| self.credentials().inspect(&credential))
                    .map_err(CredentialOpError::Token)?;
                // An agent may look at a credential derived from its own (it holds the token).
                if let Principal::Agent(me) = &caller
                    && !agent.chain_ids().contains(&me.id())
                {
                    return Err(Self::not_yours(agent.id()));
                }
                Ok(self.agent_view(&agent))
            }
            _ => Err(ApiError::InvalidParams(
                "give id (cid_…) or token (fth1_…), one of them".into(),
            )),
        }
    }

    /// `farthing_revokeCredential`.
    pub(super) async fn revoke_credential_uncounted(
        &self,
        caller: Principal,
        id: String,
    ) -> Result<Revoked, ApiError> {
        let cid = Credentials::parse_id(&id)?;
        if !self.sees(&caller, cid) {
            return Err(Self::not_yours(cid));
        }
        let revoked_at = self.credentials().revoke(cid).await?;
        Ok(Revoked {
            id: cid.to_string(),
            revoked_at,
        })
    }
}
