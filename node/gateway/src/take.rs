//! Taking a payment for one request, by scheme: `farthing` (the channel payment that paid for
//! the challenge is redeemed at the seller's node, once), x402 `exact` and MPP `charge` (the
//! EIP-3009 authorization is collected on-chain by the seller's node). Each checks that the
//! challenge is one this gateway issued for this route and price and has not expired; the
//! money is durable at the seller (redeemed, or mined) before this answers.

use std::collections::HashMap;
use std::str::FromStr;

use alloy_primitives::{Address, B256, Bytes};
use farthing_http402::mpp::{self, AuthorizationPayload, Credential};
use farthing_http402::x402::{self, ExactPayload, FarthingPayload, PaymentPayload, digits};
use farthing_http402::{ChallengeError, FARTHING_SCHEME, network};
use farthing_rpc::{ClientError, FarthingApiClient, TransferAuthorization, code};

use crate::Inner;
use crate::offer::{EVM_CHARGE, EXACT, Priced};

/// A payment taken.
#[derive(Debug, Clone)]
pub(crate) enum Taken {
    /// Redeemed at the seller's node.
    Channel {
        challenge: String,
        redeemed: farthing_rpc::Redeemed,
    },
    /// Collected on-chain.
    Collected {
        challenge: String,
        collected: farthing_rpc::Collected,
        amount: u128,
        mpp: bool,
    },
}

/// Why no payment was taken (nothing moved).
#[derive(Debug, Clone)]
pub(crate) enum Refusal {
    /// The header is not what its standard says (400).
    Malformed(String),
    /// The payment is not acceptable (402 with fresh challenges): an x402 error reason and
    /// what was wrong.
    Unpaid(String, String),
    /// The seller's node could not be asked (503); whether anything moved is unknown only for
    /// a collection cut mid-call.
    Node(String),
}

fn unpaid(reason: &str, message: impl Into<String>) -> Refusal {
    Refusal::Unpaid(reason.into(), message.into())
}

fn challenge_refusal(e: ChallengeError) -> Refusal {
    match e {
        ChallengeError::Expired(_) => unpaid("challenge_expired", e.to_string()),
        ChallengeError::Malformed | ChallengeError::Forged => {
            unpaid("invalid_challenge", e.to_string())
        }
    }
}

fn node_refusal(e: ClientError) -> Refusal {
    if let ClientError::Call(err) = &e
        && err.code() == code::PAYMENT_REJECTED
    {
        let reason = err
            .data()
            .and_then(|d| serde_json::from_str::<serde_json::Value>(d.get()).ok())
            .and_then(|d| d["reason"].as_str().map(str::to_owned))
            .unwrap_or_else(|| "invalid_payload".into());
        return Refusal::Unpaid(reason, err.message().to_owned());
    }
    if let ClientError::Call(err) = &e {
        return unpaid("unexpected_settle_error", err.message().to_owned());
    }
    Refusal::Node(e.to_string())
}

impl Inner {
    /// Take an x402 `PAYMENT-SIGNATURE` (decoded).
    pub(crate) async fn take_x402(
        &self,
        priced: &Priced<'_>,
        payload: PaymentPayload,
        now: u64,
    ) -> Result<Taken, Refusal> {
        if payload.x402_version != x402::VERSION {
            return Err(unpaid(
                "invalid_x402_version",
                format!("x402Version {} is not 2", payload.x402_version),
            ));
        }
        let accepted = &payload.accepted;
        if accepted.network != network(self.node.chain_id) {
            return Err(unpaid(
                "invalid_network",
                format!(
                    "network {:?} is not {}",
                    accepted.network,
                    network(self.node.chain_id)
                ),
            ));
        }
        if Address::from_str(&accepted.asset).ok() != Some(self.node.token)
            || Address::from_str(&accepted.pay_to).ok() != Some(self.node.address)
        {
            return Err(unpaid(
                "invalid_payment_requirements",
                "the payment is for another asset or another payee than this gateway's",
            ));
        }
        let amount = accepted.amount().ok_or_else(|| {
            unpaid(
                "invalid_payment_requirements",
                "accepted.amount is not base units",
            )
        })?;
        let challenge = accepted
            .extra_str("challenge")
            .ok_or_else(|| unpaid("invalid_challenge", "accepted.extra.challenge is missing"))?
            .to_owned();
        let scheme = accepted.scheme.as_str();
        if scheme != FARTHING_SCHEME && scheme != EXACT {
            return Err(unpaid(
                "unsupported_scheme",
                format!("scheme {scheme:?}: this gateway takes farthing and exact"),
            ));
        }
        // A `farthing` challenge past its expiry is still honoured if its payment reached the
        // node in time (the node knows when it arrived); others are refused.
        let paid_by = match self
            .key
            .verify(&challenge, &priced.bound(scheme, amount), now)
        {
            Ok(_) => None,
            Err(ChallengeError::Expired(expires)) if scheme == FARTHING_SCHEME => Some(expires),
            Err(e) => return Err(challenge_refusal(e)),
        };
        if scheme == FARTHING_SCHEME {
            let paid: FarthingPayload = serde_json::from_value(payload.payload)
                .map_err(|e| Refusal::Malformed(format!("farthing payload: {e}")))?;
            if paid.challenge != challenge {
                return Err(unpaid(
                    "invalid_payload",
                    "the payload pays another challenge than the one accepted",
                ));
            }
            let price = farthing_core::format_amount(amount, self.node.decimals);
            let redeemed = self
                .node_client()
                .await
                .map_err(node_refusal)?
                .redeem(challenge.clone(), price, paid_by)
                .await
                .map_err(|e| match (node_refusal(e), paid_by) {
                    // Expired and never paid (or paid too late): say it expired.
                    (Refusal::Unpaid(reason, m), Some(expires))
                        if reason == "unpaid" || reason == "late" =>
                    {
                        unpaid(
                            "challenge_expired",
                            format!("{} ({m})", ChallengeError::Expired(expires)),
                        )
                    }
                    (refusal, _) => refusal,
                })?;
            return Ok(Taken::Channel {
                challenge,
                redeemed,
            });
        }
        let exact: ExactPayload = serde_json::from_value(payload.payload)
            .map_err(|e| Refusal::Malformed(format!("exact payload: {e}")))?;
        let a = &exact.authorization;
        let auth = authorization(
            (&a.from, &a.to, &a.value),
            (&a.valid_after, &a.valid_before),
            &a.nonce,
            &exact.signature,
        )?;
        self.collect(challenge, auth, amount, false).await
    }

    /// Take an MPP `Authorization: Payment` credential (EVM `charge`).
    pub(crate) async fn take_mpp(
        &self,
        priced: &Priced<'_>,
        credential: Credential,
        now: u64,
    ) -> Result<Taken, Refusal> {
        let echoed = &credential.challenge;
        if echoed.method != "evm" || echoed.intent != "charge" {
            return Err(unpaid(
                "unsupported_scheme",
                format!(
                    "method {:?} intent {:?}: this gateway takes evm charge over MPP",
                    echoed.method, echoed.intent
                ),
            ));
        }
        if echoed.realm != self.realm {
            return Err(unpaid(
                "invalid_challenge",
                "the challenge is for another realm",
            ));
        }
        let request = echoed
            .request_json()
            .ok_or_else(|| Refusal::Malformed("the challenge's request is unreadable".into()))?;
        let amount = request["amount"]
            .as_str()
            .and_then(digits)
            .ok_or_else(|| unpaid("invalid_payment_requirements", "request.amount"))?;
        let same = |field: &str, ours: Address| {
            request[field]
                .as_str()
                .and_then(|a| Address::from_str(a).ok())
                == Some(ours)
        };
        if !same("currency", self.node.token)
            || !same("recipient", self.node.address)
            || request["methodDetails"]["chainId"].as_u64() != Some(self.node.chain_id)
        {
            return Err(unpaid(
                "invalid_payment_requirements",
                "the challenge's request is for another token, payee or chain",
            ));
        }
        self.key
            .verify(&echoed.id, &priced.bound(EVM_CHARGE, amount), now)
            .map_err(challenge_refusal)?;
        let p: AuthorizationPayload = serde_json::from_value(credential.payload.clone())
            .map_err(|e| Refusal::Malformed(format!("charge payload: {e}")))?;
        if p.kind != "authorization" {
            return Err(unpaid(
                "invalid_payload",
                format!("payload type {:?}", p.kind),
            ));
        }
        let auth = authorization(
            (&p.from, &p.to, &p.value),
            (&p.valid_after, &p.valid_before),
            &p.nonce,
            &p.signature,
        )?;
        if auth.nonce != mpp::challenge_hash(&echoed.id, &echoed.realm) {
            return Err(unpaid(
                "invalid_payload",
                "the authorization's nonce is not keccak256(challenge id ‖ realm): it was made for another challenge",
            ));
        }
        self.collect(echoed.id.clone(), auth, amount, true).await
    }

    /// Collect an authorization for `challenge` (each challenge serves one request).
    async fn collect(
        &self,
        challenge: String,
        auth: TransferAuthorization,
        amount: u128,
        mpp: bool,
    ) -> Result<Taken, Refusal> {
        if auth.to != self.node.address {
            return Err(unpaid(
                "invalid_exact_evm_payload_recipient_mismatch",
                format!(
                    "the authorization pays {}, not {}",
                    auth.to, self.node.address
                ),
            ));
        }
        if digits(&auth.value) != Some(amount) {
            return Err(unpaid(
                "invalid_exact_evm_payload_authorization_value_mismatch",
                format!(
                    "the authorization moves {} base units, the price is {amount}",
                    auth.value
                ),
            ));
        }
        if !self.spend_challenge(&challenge) {
            return Err(unpaid(
                "challenge_used",
                "this challenge already paid for a request: ask for a fresh one",
            ));
        }
        let client = match self.node_client().await {
            Ok(client) => client,
            Err(e) => {
                self.unspend_challenge(&challenge);
                return Err(node_refusal(e));
            }
        };
        match client.collect_authorization(auth).await {
            Ok(collected) => Ok(Taken::Collected {
                challenge,
                collected,
                amount,
                mpp,
            }),
            Err(e) => {
                let refusal = node_refusal(e);
                // Nothing moved (refused before any transaction): the challenge may serve again.
                if matches!(refusal, Refusal::Unpaid(..)) {
                    self.unspend_challenge(&challenge);
                }
                Err(refusal)
            }
        }
    }
}

/// A `TransferAuthorization` from the strings both standards carry.
fn authorization(
    (from, to, value): (&str, &str, &str),
    (after, before): (&str, &str),
    nonce: &str,
    signature: &str,
) -> Result<TransferAuthorization, Refusal> {
    let bad = |what: &str| Refusal::Malformed(format!("authorization.{what} is malformed"));
    let seconds = |text: &str, what: &str| -> Result<u64, Refusal> {
        digits(text)
            .and_then(|v| u64::try_from(v).ok())
            .ok_or_else(|| bad(what))
    };
    Ok(TransferAuthorization {
        from: Address::from_str(from).map_err(|_| bad("from"))?,
        to: Address::from_str(to).map_err(|_| bad("to"))?,
        value: digits(value).ok_or_else(|| bad("value"))?.to_string(),
        valid_after: seconds(after, "validAfter")?,
        valid_before: seconds(before, "validBefore")?,
        nonce: B256::from_str(nonce).map_err(|_| bad("nonce"))?,
        signature: Bytes::from_str(signature)
            .ok()
            .filter(|s| s.len() == 65)
            .ok_or_else(|| bad("signature"))?,
    })
}

/// Challenges spent by collections, until they expire (a challenge id carries its expiry;
/// past it the id is refused anyway).
#[derive(Default)]
pub(crate) struct Spent(HashMap<String, ()>);

impl Spent {
    pub(crate) fn insert(&mut self, challenge: &str) -> bool {
        if self.0.len() > 1_000_000 {
            self.0.clear();
        }
        self.0.insert(challenge.to_owned(), ()).is_none()
    }

    pub(crate) fn remove(&mut self, challenge: &str) {
        self.0.remove(challenge);
    }
}
