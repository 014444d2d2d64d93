//! The named parameters of the two methods that take several, as structs for Rust callers
//! (`OpenParams::call`, `PayParams::call` send them with a client): the wire takes the same
//! fields flat, by name or by position (see the crate docs).

use alloy_primitives::Address;
use farthing_core::ChannelId;
use serde::{Deserialize, Serialize};

use crate::api::{ChannelView, FarthingApiClient, PayResult};

/// `farthing_pay`'s parameters by name: the channel by id, or by partner address (the node's
/// open channel with that partner). [`PayParams::call`] sends them with a client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PayParams {
    /// The channel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel_id: Option<ChannelId>,
    /// Or the partner.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partner: Option<Address>,
    /// Amount in token units, e.g. "0.001".
    pub amount: String,
    /// Pay once per key: a repeat returns the first result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
    /// Free text for the partner (≤ 256 bytes, not signed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memo: Option<String>,
}

/// `farthing_openChannel`'s parameters by name ([`OpenParams::call`] sends them with a
/// client). Unknown fields are refused, so a misspelt option is an error rather than silently
/// ignored (the server refuses unknown parameter names the same way).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenParams {
    /// Who to open the channel to.
    pub partner: Address,
    /// Our deposit, in token units ("100").
    pub amount: String,
    /// Challenge period in seconds; the node's default when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub challenge_period: Option<u32>,
}

impl OpenParams {
    /// `farthing_openChannel` with these parameters.
    pub async fn call<C: FarthingApiClient + Sync>(
        self,
        client: &C,
    ) -> Result<ChannelView, jsonrpsee::core::ClientError> {
        client
            .open_channel(self.partner, self.amount, self.challenge_period)
            .await
    }
}

impl PayParams {
    /// `farthing_pay` with these parameters.
    pub async fn call<C: FarthingApiClient + Sync>(
        self,
        client: &C,
    ) -> Result<PayResult, jsonrpsee::core::ClientError> {
        client
            .pay(
                self.channel_id,
                self.partner,
                self.amount,
                self.idempotency_key,
                self.memo,
            )
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn open_params_refuse_unknown_fields_and_default_the_period() {
        let partner = format!("0x{}", "ab".repeat(20));
        let params: OpenParams =
            serde_json::from_value(json!({ "partner": partner, "amount": "100" })).unwrap();
        assert_eq!(params.challenge_period, None);
        let typo = json!({ "partner": partner, "amount": "1", "challengePeriod": 60 });
        assert!(serde_json::from_value::<OpenParams>(typo).is_err());
    }
}
