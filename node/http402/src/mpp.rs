//! MPP, the "Payment" HTTP authentication scheme (`draft-ryan-httpauth-payment`), for the EVM
//! `charge` intent as `mppx` speaks it: the challenge in `WWW-Authenticate`, the credential in
//! `Authorization`, the receipt in `Payment-Receipt` (base64url JSON without padding).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::x402::HeaderError;
use crate::{MAX_HEADER, b64};

/// The receipt's header.
pub const PAYMENT_RECEIPT: &str = "payment-receipt";

/// An EVM `charge` challenge as the gateway issues it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChargeChallenge {
    /// The challenge id (HMAC-bound to route and price).
    pub id: String,
    /// The protection space: the gateway's origin.
    pub realm: String,
    /// Base units.
    pub amount: u128,
    /// The token.
    pub currency: String,
    /// The seller's node.
    pub recipient: String,
    /// The chain.
    pub chain_id: u64,
    /// The token's decimals.
    pub decimals: u8,
    /// RFC 3339.
    pub expires: String,
}

impl ChargeChallenge {
    /// The `request` parameter: base64url (no padding) of the JCS-canonical JSON (keys sorted,
    /// no spaces; built by hand so that the order cannot depend on a map's).
    pub fn request(&self) -> String {
        let json = format!(
            r#"{{"amount":"{}","currency":"{}","methodDetails":{{"chainId":{},"credentialTypes":["authorization"],"decimals":{}}},"recipient":"{}"}}"#,
            self.amount, self.currency, self.chain_id, self.decimals, self.recipient
        );
        b64::url_encode(json.as_bytes())
    }

    /// The `WWW-Authenticate` value.
    pub fn header(&self) -> String {
        format!(
            r#"Payment id="{}", realm="{}", method="evm", intent="charge", request="{}", expires="{}""#,
            self.id,
            self.realm,
            self.request(),
            self.expires
        )
    }
}

/// The `Authorization: Payment` credential.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Credential {
    /// The challenge echoed.
    pub challenge: EchoedChallenge,
    /// Method-specific.
    pub payload: Value,
    /// `did:pkh:…` of the payer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

/// The challenge as the credential echoes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EchoedChallenge {
    /// Its id.
    pub id: String,
    /// Its realm.
    pub realm: String,
    /// `evm`.
    pub method: String,
    /// `charge`.
    pub intent: String,
    /// The request (the serialized string, or the object).
    pub request: Value,
    /// RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
}

impl EchoedChallenge {
    /// The request's JSON (decoded when it was echoed serialized).
    pub fn request_json(&self) -> Option<Value> {
        match &self.request {
            Value::String(text) => serde_json::from_slice(&b64::url_decode(text)?).ok(),
            other @ Value::Object(_) => Some(other.clone()),
            _ => None,
        }
    }
}

/// The EVM charge payload (`type: "authorization"`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthorizationPayload {
    /// `authorization`.
    #[serde(rename = "type")]
    pub kind: String,
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
    /// keccak256(id ‖ realm).
    pub nonce: String,
    /// 65 bytes hex.
    pub signature: String,
}

/// Read an `Authorization` header's `Payment` credential; `Ok(None)` for another scheme.
pub fn credential(header: &[u8]) -> Result<Option<Credential>, HeaderError> {
    if header.len() > MAX_HEADER {
        return Err(HeaderError::TooLong(header.len()));
    }
    let text = std::str::from_utf8(header).map_err(|_| HeaderError::NotBase64)?;
    let Some((scheme, rest)) = text.trim().split_once(' ') else {
        return Ok(None);
    };
    if !scheme.eq_ignore_ascii_case("payment") {
        return Ok(None);
    }
    let json = b64::url_decode(rest.trim()).ok_or(HeaderError::NotBase64)?;
    serde_json::from_slice(&json)
        .map(Some)
        .map_err(|e| HeaderError::BadJson {
            what: "Payment credential",
            reason: e.to_string(),
        })
}

/// The EIP-3009 nonce a `charge` credential must carry: keccak256(utf8(id ‖ realm)).
pub fn challenge_hash(id: &str, realm: &str) -> alloy_primitives::B256 {
    alloy_primitives::keccak256(format!("{id}{realm}"))
}

/// A `Payment-Receipt` value.
pub fn receipt(method: &str, reference: &str, timestamp: &str, extra: Value) -> String {
    let mut receipt = serde_json::json!({
        "method": method,
        "reference": reference,
        "status": "success",
        "timestamp": timestamp,
    });
    if let (Some(map), Value::Object(more)) = (receipt.as_object_mut(), extra) {
        map.extend(more);
    }
    b64::url_encode(&serde_json::to_vec(&receipt).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_challenge_reads_back_from_its_credential() {
        let challenge = ChargeChallenge {
            id: "abc".into(),
            realm: "127.0.0.1:8402".into(),
            amount: 1_000,
            currency: "0x0000000000000000000000000000000000000001".into(),
            recipient: "0x0000000000000000000000000000000000000002".into(),
            chain_id: 31_337,
            decimals: 6,
            expires: "2026-12-06T00:00:00Z".into(),
        };
        let header = challenge.header();
        assert!(header.starts_with("Payment id=\"abc\", realm="), "{header}");
        let credential = serde_json::json!({
            "challenge": {"id": "abc", "realm": challenge.realm, "method": "evm",
                          "intent": "charge", "request": challenge.request()},
            "payload": {"type": "authorization"},
        });
        let header = format!(
            "Payment {}",
            b64::url_encode(&serde_json::to_vec(&credential).unwrap_or_default())
        );
        let read = credential_of(&header);
        let request = read.challenge.request_json().expect("request");
        assert_eq!(request["amount"], "1000");
        assert_eq!(request["methodDetails"]["chainId"], 31_337);
        assert_eq!(credential_of_other("Bearer x"), None);
        assert_eq!(
            super::credential(b"Payment %%%"),
            Err(HeaderError::NotBase64)
        );
    }

    fn credential_of(header: &str) -> Credential {
        super::credential(header.as_bytes())
            .ok()
            .flatten()
            .expect("a credential")
    }

    fn credential_of_other(header: &str) -> Option<Credential> {
        super::credential(header.as_bytes()).ok().flatten()
    }
}
