//! x402 v2 over HTTP (`specs/x402-specification-v2.md`, `specs/transports-v2/http.md`):
//! headers hold standard base64 of UTF-8 JSON.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::{MAX_HEADER, b64};

/// The 402's header.
pub const PAYMENT_REQUIRED: &str = "payment-required";
/// The paid retry's header.
pub const PAYMENT_SIGNATURE: &str = "payment-signature";
/// The answer's header.
pub const PAYMENT_RESPONSE: &str = "payment-response";
/// On a paid `farthing` answer: a fresh `farthing` offer for the same route (one
/// [`Requirements`], base64 JSON), so that the buyer's next request can pay up front.
pub const FARTHING_NEXT: &str = "farthing-next";

/// The version this speaks.
pub const VERSION: u32 = 2;

/// What a resource is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Resource {
    /// Its URL.
    pub url: String,
    /// What it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Its media type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mime_type: Option<String>,
}

/// One way to pay (`PaymentRequirements`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Requirements {
    /// `exact`, `farthing`, …
    pub scheme: String,
    /// CAIP-2, e.g. `eip155:31337`.
    pub network: String,
    /// Base units, a string of digits.
    pub amount: String,
    /// The token's address.
    pub asset: String,
    /// Who is paid.
    pub pay_to: String,
    /// How long the payer has.
    pub max_timeout_seconds: u64,
    /// Scheme-specific: the token's EIP-712 name and version for `exact`; the challenge id
    /// (`challenge`) for every scheme Farthing offers; how to reach the seller's node for
    /// `farthing`.
    #[serde(default)]
    pub extra: Map<String, Value>,
}

impl Requirements {
    /// `extra[name]` as a string.
    pub fn extra_str(&self, name: &str) -> Option<&str> {
        self.extra.get(name).and_then(Value::as_str)
    }

    /// The amount in base units, if it is a string of digits.
    pub fn amount(&self) -> Option<u128> {
        digits(&self.amount)
    }
}

/// The 402's body and `PAYMENT-REQUIRED` header.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentRequired {
    /// Always [`VERSION`].
    pub x402_version: u32,
    /// Why the request was not served.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The resource.
    pub resource: Resource,
    /// The ways to pay.
    pub accepts: Vec<Requirements>,
    /// Extensions (`payment-identifier`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extensions: Option<Value>,
}

/// The paid retry's `PAYMENT-SIGNATURE`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentPayload {
    /// Must be [`VERSION`].
    pub x402_version: u32,
    /// The resource paid for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<Resource>,
    /// A copy of the chosen requirements.
    pub accepted: Requirements,
    /// Scheme-specific: [`ExactPayload`], [`FarthingPayload`].
    pub payload: Value,
    /// Extensions (`payment-identifier`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extensions: Option<Value>,
}

impl PaymentPayload {
    /// The `payment-identifier` extension's id, if the payer sent one.
    pub fn payment_identifier(&self) -> Option<&str> {
        self.extensions
            .as_ref()?
            .get("payment-identifier")?
            .get("info")?
            .get("id")?
            .as_str()
    }
}

/// `exact` on EVM: an EIP-3009 authorization and its signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExactPayload {
    /// 65 bytes, 0x hex.
    pub signature: String,
    /// The authorization signed.
    pub authorization: Authorization,
}

/// EIP-3009's `TransferWithAuthorization` fields as x402 carries them (strings).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Authorization {
    /// Payer.
    pub from: String,
    /// Payee.
    pub to: String,
    /// Base units.
    pub value: String,
    /// Unix seconds.
    pub valid_after: String,
    /// Unix seconds.
    pub valid_before: String,
    /// 32 bytes, 0x hex.
    pub nonce: String,
}

/// `farthing`: where the channel payment for the challenge is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FarthingPayload {
    /// The challenge paid for (the payment's memo is `402:<challenge>`).
    pub challenge: String,
    /// The channel paid on.
    pub channel_id: u64,
    /// The nonce of the proof that carried it.
    pub nonce: u64,
}

/// The answer's `PAYMENT-RESPONSE` (`SettleResponse`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct SettleResponse {
    /// Whether the payment was taken.
    pub success: bool,
    /// Why not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_reason: Option<String>,
    /// Who paid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payer: Option<String>,
    /// The transaction (`""` for a channel payment).
    pub transaction: String,
    /// CAIP-2.
    pub network: String,
    /// Base units.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount: Option<String>,
    /// For `farthing`: the channel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel_id: Option<u64>,
    /// For `farthing`: the proof's nonce.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<u64>,
    /// For `farthing`: everything the channel has paid the seller so far, base units.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cumulative: Option<String>,
    /// What happened to the payment when the request was not served (`refunded` + how).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refund: Option<Value>,
}

/// Why a header could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    /// Longer than [`MAX_HEADER`].
    #[error("the header is {0} bytes, more than the {MAX_HEADER} this gateway reads")]
    TooLong(usize),
    /// Not base64 (x402: standard alphabet with padding; MPP: base64url without).
    #[error("the header is not valid base64")]
    NotBase64,
    /// Not the JSON expected.
    #[error("the header's JSON is not a valid {what}: {reason}")]
    BadJson {
        /// What was expected.
        what: &'static str,
        /// serde's words.
        reason: String,
    },
}

/// Encode `value` as an x402 header.
pub fn encode<T: Serialize>(value: &T) -> String {
    b64::encode(&serde_json::to_vec(value).unwrap_or_default())
}

/// Decode an x402 header as `what`.
pub fn decode<T: DeserializeOwned>(header: &[u8], what: &'static str) -> Result<T, HeaderError> {
    if header.len() > MAX_HEADER {
        return Err(HeaderError::TooLong(header.len()));
    }
    let text = std::str::from_utf8(header).map_err(|_| HeaderError::NotBase64)?;
    let json = b64::decode(text).ok_or(HeaderError::NotBase64)?;
    serde_json::from_slice(&json).map_err(|e| HeaderError::BadJson {
        what,
        reason: e.to_string(),
    })
}

/// A string of 1 to 39 ASCII digits as a number.
pub fn digits(text: &str) -> Option<u128> {
    if text.is_empty() || text.len() > 39 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_round_trip_and_bad_ones_are_named() {
        let required = PaymentRequired {
            x402_version: VERSION,
            error: None,
            resource: Resource {
                url: "http://h/a".into(),
                ..Resource::default()
            },
            accepts: vec![Requirements {
                scheme: "exact".into(),
                network: "eip155:31337".into(),
                amount: "1000".into(),
                asset: "0x00".into(),
                pay_to: "0x01".into(),
                max_timeout_seconds: 60,
                extra: Map::new(),
            }],
            extensions: None,
        };
        let header = encode(&required);
        let back: PaymentRequired = decode(header.as_bytes(), "PaymentRequired").expect("decode");
        assert_eq!(back, required);
        assert!(!header.contains('"'));
        assert_eq!(
            decode::<PaymentRequired>(b"%%%", "PaymentRequired"),
            Err(HeaderError::NotBase64)
        );
        assert!(matches!(
            decode::<PaymentRequired>(b64::encode(b"{}").as_bytes(), "PaymentRequired"),
            Err(HeaderError::BadJson { .. })
        ));
        let long = vec![b'A'; MAX_HEADER + 1];
        assert_eq!(
            decode::<PaymentRequired>(&long, "x"),
            Err(HeaderError::TooLong(MAX_HEADER + 1))
        );
        assert_eq!(digits("0012"), Some(12));
        assert_eq!(digits("1.5"), None);
        assert_eq!(digits(""), None);
        assert_eq!(digits("-1"), None);
    }
}
