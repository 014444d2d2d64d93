//! The types of the methods that sell and buy over HTTP 402: a gateway in front of a seller's
//! API redeems challenges (`farthing_redeem`) and collects EIP-3009 authorizations
//! (`farthing_collectAuthorization`) at the seller's node; an agent's node fetches a priced
//! URL and pays for it (`farthing_fetch`).

use std::collections::BTreeMap;

use alloy_primitives::{Address, B256, Bytes};
use farthing_core::ChannelId;
use serde::{Deserialize, Serialize};

/// `farthing_redeem`'s answer: the payment that paid for the challenge, now spent on it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Redeemed {
    /// The channel it came on.
    pub channel_id: ChannelId,
    /// The nonce of the proof that carried it.
    pub nonce: u64,
    /// What it paid, token units.
    pub amount: String,
    /// Who paid (the channel's partner).
    pub payer: Address,
    /// Everything the channel has received so far (the cumulative proof's total), token units.
    pub received_total: String,
}

/// An EIP-3009 `TransferWithAuthorization` signed by `from` (the x402 `exact` and MPP
/// `charge` payloads carry one), as `farthing_collectAuthorization` takes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransferAuthorization {
    /// The payer.
    pub from: Address,
    /// The payee: must be the node.
    pub to: Address,
    /// The amount, base units (a decimal string of digits, as the standards carry it).
    pub value: String,
    /// Unix seconds after which it is valid.
    pub valid_after: u64,
    /// Unix seconds before which it is valid.
    pub valid_before: u64,
    /// Its nonce (the token refuses a nonce used twice by the same payer).
    pub nonce: B256,
    /// The payer's 65-byte signature.
    pub signature: Bytes,
}

/// `farthing_collectAuthorization`'s answer: the transfer is mined.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Collected {
    /// The transaction that moved the tokens.
    pub tx_hash: B256,
    /// The payer.
    pub payer: Address,
    /// What it moved, token units.
    pub amount: String,
}

/// What `farthing_fetch` paid for a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FetchPaid {
    /// The scheme it paid with (`farthing`).
    pub scheme: String,
    /// What it paid, token units.
    pub amount: String,
    /// The seller (the channel's partner).
    pub pay_to: Address,
    /// The channel.
    pub channel_id: ChannelId,
    /// The nonce of the proof that carried it.
    pub nonce: u64,
    /// The challenge it paid for.
    pub challenge: String,
    /// The channel the node opened to pay, if it had none with the seller.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opened: Option<ChannelId>,
}

/// `farthing_fetch`'s answer: the final HTTP response (after paying, when the URL asked to be
/// paid and its price was within the limit).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FetchResult {
    /// The HTTP status.
    pub status: u16,
    /// The response headers (names lowercase; a repeated header's values joined by ", ").
    pub headers: BTreeMap<String, String>,
    /// The body as text (invalid UTF-8 replaced), at most the node's limit.
    pub body: String,
    /// What was paid, if anything.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paid: Option<FetchPaid>,
    /// Why a 402 was not paid (price over the limit, no scheme the node can pay, …), if so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unpaid_reason: Option<String>,
}
