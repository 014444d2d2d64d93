//! The 402 methods: `farthing_redeem` and `farthing_collectAuthorization` (the seller's
//! gateway), `farthing_refundCollection`, and `farthing_fetch` (the buyer).

use std::collections::BTreeMap;

use alloy::primitives::B256;
use farthing_core::format_amount;
use farthing_rpc::{
    ApiError, Collected, FetchPaid, FetchResult, Redeemed, TransferAuthorization,
    parse_amount_param,
};

use super::RpcHandler;
use super::errors::credential_refusal;
use crate::commerce::buy::{FetchError, FetchRequest};
use crate::commerce::collect::{Authorization, CollectError};
use crate::payments::sales::RedeemError;
use farthing_rpc::Principal;

fn rejected(reason: &str, message: String) -> ApiError {
    ApiError::PaymentRejected {
        reason: reason.into(),
        message,
    }
}

impl RpcHandler {
    pub(super) async fn redeem_uncounted(
        &self,
        challenge: String,
        price: String,
        paid_by: Option<u64>,
    ) -> Result<Redeemed, ApiError> {
        let decimals = self.decimals();
        let price = parse_amount_param(&price, decimals, u128::MAX)?;
        if challenge.is_empty() || challenge.len() > farthing_store::records::MAX_PAYMENT_KEY_LEN {
            return Err(ApiError::InvalidParams(
                "challenge must be 1 to 128 bytes".into(),
            ));
        }
        let (sale, payer) =
            self.node
                .redeem(&challenge, price, paid_by)
                .await
                .map_err(|e| match e {
                    RedeemError::Unpaid(_) => rejected("unpaid", e.to_string()),
                    RedeemError::Redeemed(_) => rejected("redeemed", e.to_string()),
                    RedeemError::Busy(_) => rejected("busy", e.to_string()),
                    RedeemError::Late { .. } => rejected("late", e.to_string()),
                    RedeemError::Short { paid, price, .. } => rejected(
                        "short",
                        format!(
                            "the payment for challenge {challenge} is {}, below the price {}",
                            format_amount(paid, decimals),
                            format_amount(price, decimals)
                        ),
                    ),
                    RedeemError::Store(reason) => ApiError::Degraded {
                        reasons: vec![format!("store: {reason}")],
                    },
                })?;
        let received = self
            .node
            .channel_record(sale.channel)
            .map_or(0, |c| c.received());
        Ok(Redeemed {
            channel_id: sale.channel,
            nonce: sale.nonce,
            amount: format_amount(sale.amount, decimals),
            payer,
            received_total: format_amount(received, decimals),
        })
    }

    pub(super) async fn collect_uncounted(
        &self,
        auth: TransferAuthorization,
    ) -> Result<Collected, ApiError> {
        self.require_healthy()?;
        let value = farthing_http402::x402::digits(&auth.value).ok_or_else(|| {
            ApiError::InvalidParams(format!(
                "authorization.value {:?} is not a whole number of base units",
                auth.value
            ))
        })?;
        let authorization = Authorization {
            from: auth.from,
            to: auth.to,
            value,
            valid_after: auth.valid_after,
            valid_before: auth.valid_before,
            nonce: auth.nonce,
            signature: auth.signature.to_vec(),
        };
        let done = self
            .node
            .collect_authorization(authorization)
            .await
            .map_err(|e| self.map_collect("collectAuthorization", e))?;
        Ok(Collected {
            tx_hash: done.tx_hash,
            payer: auth.from,
            amount: format_amount(value, self.decimals()),
        })
    }

    pub(super) async fn refund_uncounted(&self, tx_hash: B256) -> Result<Collected, ApiError> {
        self.require_healthy()?;
        let (done, payer, amount) = self
            .node
            .refund_collection(tx_hash)
            .await
            .map_err(|e| self.map_collect("refundCollection", e))?;
        Ok(Collected {
            tx_hash: done.tx_hash,
            payer,
            amount: format_amount(amount, self.decimals()),
        })
    }

    fn map_collect(&self, call: &'static str, e: CollectError) -> ApiError {
        match e {
            CollectError::Rejected { reason, message } => rejected(reason, message),
            CollectError::Chain(e) => self.map_op(call, crate::ops::OpError::Chain(e)),
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) async fn fetch_uncounted(
        &self,
        caller: Principal,
        url: String,
        max_price: String,
        method: Option<String>,
        headers: Option<BTreeMap<String, String>>,
        body: Option<String>,
        deposit: Option<String>,
    ) -> Result<FetchResult, ApiError> {
        let decimals = self.decimals();
        let mut max_price = farthing_core::parse_amount(&max_price, decimals, u128::MAX)?;
        // An offer over the credential's per-payment max is left unpaid, like one over
        // max_price (the 402 comes back with the reason).
        if let Some(max) = caller.agent().and_then(|a| a.limits().max) {
            max_price = max_price.min(max);
        }
        let request = FetchRequest {
            url,
            method: method.unwrap_or_else(|| "GET".into()),
            headers: headers.unwrap_or_default(),
            body,
            max_price,
            deposit: deposit
                .map(|d| parse_amount_param(&d, decimals, farthing_core::MAX_DEPOSIT))
                .transpose()?,
            spender: caller.agent().cloned(),
        };
        let fetched = self.node.fetch(request).await.map_err(|e| match e {
            FetchError::Request(m) => ApiError::InvalidParams(m),
            e @ FetchError::Unreachable { .. } => ApiError::InvalidParams(e.to_string()),
            FetchError::Pay(e) => self.map_pay(0, e),
            FetchError::Open(e) => self.map_op("fetch", e),
            FetchError::NotReady(id, missing) => self.not_ready(id, missing),
            FetchError::Credential(refusal) => credential_refusal("farthing_fetch", &refusal),
        })?;
        Ok(FetchResult {
            status: fetched.status,
            headers: fetched.headers,
            body: fetched.body,
            paid: fetched.paid.map(|p| FetchPaid {
                scheme: farthing_http402::FARTHING_SCHEME.into(),
                amount: format_amount(p.amount, decimals),
                pay_to: p.pay_to,
                channel_id: p.channel,
                nonce: p.nonce,
                challenge: p.challenge,
                opened: p.opened,
            }),
            unpaid_reason: fetched.unpaid_reason,
        })
    }
}
