//! `farthing_pay`, and the credential checks of the calls that name a partner.

use alloy::primitives::Address;
use farthing_core::{ChainState, format_amount};
use farthing_credential::{Request, Scope, check};
use farthing_rpc::{ApiError, PayParams, PayResult, Principal, parse_amount_param};
use farthing_store::records::MAX_PAYMENT_KEY_LEN;

use super::RpcHandler;
use super::errors::credential_refusal;
use crate::credentials::now_secs;

impl RpcHandler {
    /// Whether the caller's credential allows `method` (needing `scope`) with `partner`: its
    /// scopes, expiry and partners (the admin token allows everything).
    pub(super) fn allowed(
        &self,
        caller: &Principal,
        method: &str,
        scope: Scope,
        partner: Option<Address>,
    ) -> Result<(), ApiError> {
        let Some(agent) = caller.agent() else {
            return Ok(());
        };
        // A credential that names partners allows nothing whose partner this node cannot tell.
        if agent.limits().peers.is_some() && partner.is_none() {
            return Err(credential_refusal(
                method,
                &farthing_credential::Refusal::Peer,
            ));
        }
        check(
            agent.limits(),
            &Request {
                scope,
                amount: None,
                peer: partner.map(|p| p.0.0),
                origin: None,
                now: now_secs(),
                decimals: self.decimals(),
            },
        )
        .map_err(|refusal| credential_refusal(method, &refusal))
    }

    /// `farthing_pay`.
    pub(super) async fn pay_counted(
        &self,
        caller: Principal,
        params: PayParams,
    ) -> Result<PayResult, ApiError> {
        // An agent's keys are its own: the same key from another credential (or the operator)
        // is another payment, and learns nothing of this one.
        let key = match (&params.idempotency_key, caller.agent()) {
            (Some(key), Some(agent)) => {
                let prefix = format!("{}/", agent.id());
                let most = MAX_PAYMENT_KEY_LEN - prefix.len();
                if key.is_empty() || key.len() > most {
                    return Err(ApiError::InvalidParams(format!(
                        "idempotency_key must be 1 to {most} bytes under a credential"
                    )));
                }
                Some(prefix + key)
            }
            (key, _) => key.clone(),
        };
        // A repeat of a key already used signs nothing: it learns the earlier payment's
        // outcome even while the node takes no new risk.
        let repeat = match &key {
            Some(key) => self.node.payment_key_used(key).await,
            None => false,
        };
        if !repeat {
            self.require_healthy()?;
        }
        let amount = parse_amount_param(&params.amount, self.decimals(), u128::MAX)?;
        if params.memo.as_ref().is_some_and(|m| m.len() > 256) {
            return Err(ApiError::InvalidParams(
                "memo is longer than 256 bytes".into(),
            ));
        }
        let id = match (params.channel_id, params.partner) {
            (Some(id), Some(partner)) => match self.node.partner_of(id) {
                Some(shared) if shared != partner => {
                    return Err(ApiError::InvalidParams(format!(
                        "channel {id} is shared with {shared}, not with {partner}: give the channel id or the partner alone, or both matching"
                    )));
                }
                _ => id,
            },
            (Some(id), None) => id,
            (None, Some(partner)) => self
                .node
                .channel_records()
                .into_iter()
                .find(|c| c.partner == partner && c.on_chain.state == ChainState::Open)
                .map(|c| c.id)
                .ok_or_else(|| {
                    ApiError::InvalidParams(format!("no open channel with {partner}"))
                })?,
            (None, None) => {
                return Err(ApiError::InvalidParams("give channel_id or partner".into()));
            }
        };
        if let Some(key) = &key
            && (key.is_empty() || key.len() > MAX_PAYMENT_KEY_LEN)
        {
            return Err(ApiError::InvalidParams(format!(
                "idempotency_key must be 1 to {MAX_PAYMENT_KEY_LEN} bytes"
            )));
        }
        if let Some(agent) = caller.agent() {
            let partner = self.node.partner_of(id);
            if agent.limits().peers.is_some() && partner.is_none() {
                return Err(credential_refusal(
                    "farthing_pay",
                    &farthing_credential::Refusal::Peer,
                ));
            }
            check(
                agent.limits(),
                &Request {
                    scope: Scope::Pay,
                    amount: Some(amount),
                    peer: partner.map(|p| p.0.0),
                    origin: None,
                    now: now_secs(),
                    decimals: self.decimals(),
                },
            )
            .map_err(|refusal| credential_refusal("farthing_pay", &refusal))?;
        }
        let memo = params.memo.unwrap_or_default();
        let paid = self
            .node
            .pay_as(
                caller.agent().cloned(),
                id,
                amount,
                memo.as_bytes(),
                key.as_deref(),
            )
            .await
            .map_err(|e| self.map_pay(id, e))?;
        let channel = self.node.channel(id).map_err(|e| self.map_op("pay", e))?;
        Ok(PayResult {
            channel_id: paid.channel,
            nonce: paid.nonce,
            amount: format_amount(paid.amount, self.decimals()),
            balance_ours: format_amount(channel.our_balance(), self.decimals()),
            balance_partner: format_amount(channel.partner_balance(), self.decimals()),
            repeated: paid.repeated,
        })
    }
}
