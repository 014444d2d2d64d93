//! The 402: both standards' headers at once — x402 v2's `PAYMENT-REQUIRED` (a `farthing`
//! offer and an `exact` one) and MPP's `WWW-Authenticate: Payment` (EVM `charge`) — each with a
//! challenge id of its own, bound to the route and price. Cheap to make (three HMACs, one
//! JSON), and nothing is kept for it.

use bytes::Bytes;
use farthing_core::format_amount;
use farthing_http402::mpp::ChargeChallenge;
use farthing_http402::x402::{self, PaymentRequired, Requirements, Resource};
use farthing_http402::{Bound, FARTHING_SCHEME, network, rfc3339};
use http::{HeaderValue, Response, StatusCode, header};
use serde_json::{Map, Value, json};

use crate::Inner;

/// The scheme names bound into challenge ids.
pub(crate) const EXACT: &str = "exact";
/// MPP's EVM charge, as a challenge kind.
pub(crate) const EVM_CHARGE: &str = "evm-charge";

/// The request a 402 answers.
pub(crate) struct Priced<'a> {
    pub(crate) method: &'a str,
    pub(crate) path: &'a str,
    /// The route that prices it: a challenge is bound to the route (`GET /articles/*`), so
    /// that one paid up front serves any request of that route.
    pub(crate) route: &'a crate::RouteConfig,
    pub(crate) url: String,
    pub(crate) price: u128,
    pub(crate) description: Option<&'a str>,
}

impl Priced<'_> {
    pub(crate) fn bound<'b>(&'b self, kind: &'b str, amount: u128) -> Bound<'b> {
        Bound {
            kind,
            method: &self.route.method,
            path: &self.route.path,
            amount,
        }
    }
}

impl Inner {
    fn requirements(&self, priced: &Priced<'_>, scheme: &str, now: u64) -> Requirements {
        let expires = now + self.config.challenge_ttl_secs;
        let challenge = self.key.issue(&priced.bound(scheme, priced.price), expires);
        let mut extra = Map::new();
        extra.insert("challenge".into(), json!(challenge));
        extra.insert("expires".into(), json!(expires));
        extra.insert(
            "route".into(),
            json!(format!("{} {}", priced.route.method, priced.route.path)),
        );
        if scheme == FARTHING_SCHEME {
            extra.insert(
                "channelManager".into(),
                json!(self.node.manager.to_string()),
            );
            extra.insert("decimals".into(), json!(self.node.decimals));
            extra.insert(
                "suggestedDeposit".into(),
                json!(self.suggested_deposit.to_string()),
            );
            extra.insert("memo".into(), json!(format!("402:{challenge}")));
            if let Some(peer) = &self.config.peer {
                extra.insert("peer".into(), json!(peer));
            }
        } else {
            // The token's EIP-712 domain, which x402 clients sign in.
            extra.insert("name".into(), json!(self.node.token_name));
            extra.insert("version".into(), json!(self.node.token_version));
        }
        Requirements {
            scheme: scheme.into(),
            network: network(self.node.chain_id),
            amount: priced.price.to_string(),
            asset: self.node.token.to_string(),
            pay_to: self.node.address.to_string(),
            max_timeout_seconds: self.config.challenge_ttl_secs,
            extra,
        }
    }

    /// A fresh `farthing` offer for the same route, for a paid answer's `farthing-next`: only
    /// what paying up front needs (the buyer has a channel: no peer, no deposit).
    pub(crate) fn next_offer(&self, priced: &Priced<'_>, now: u64) -> String {
        let mut offer = self.requirements(priced, FARTHING_SCHEME, now);
        offer
            .extra
            .retain(|k, _| matches!(k.as_str(), "challenge" | "expires" | "route"));
        x402::encode(&offer)
    }

    /// The 402 for `priced`, saying `error` (why the request was not served).
    pub(crate) fn payment_required(
        &self,
        priced: &Priced<'_>,
        error: &str,
        now: u64,
    ) -> Response<Bytes> {
        let required = PaymentRequired {
            x402_version: x402::VERSION,
            error: Some(error.to_owned()),
            resource: Resource {
                url: priced.url.clone(),
                description: Some(priced.description.map_or_else(
                    || {
                        format!(
                            "{} {} for {} {}",
                            priced.method,
                            priced.path,
                            format_amount(priced.price, self.node.decimals),
                            self.node.symbol
                        )
                    },
                    str::to_owned,
                )),
                mime_type: None,
            },
            accepts: vec![
                self.requirements(priced, FARTHING_SCHEME, now),
                self.requirements(priced, EXACT, now),
            ],
            extensions: Some(json!({
                "payment-identifier": {
                    "info": { "required": false },
                    "schema": {
                        "type": "object",
                        "properties": { "id": { "type": "string", "minLength": 16, "maxLength": 128 } }
                    }
                }
            })),
        };
        let expires = now + self.config.challenge_ttl_secs;
        let charge = ChargeChallenge {
            id: self
                .key
                .issue(&priced.bound(EVM_CHARGE, priced.price), expires),
            realm: self.realm.clone(),
            amount: priced.price,
            currency: self.node.token.to_string(),
            recipient: self.node.address.to_string(),
            chain_id: self.node.chain_id,
            decimals: self.node.decimals,
            expires: rfc3339(expires),
        };
        let body = serde_json::to_vec(&required).unwrap_or_default();
        let mut response = Response::new(Bytes::from(body));
        *response.status_mut() = StatusCode::PAYMENT_REQUIRED;
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Ok(value) = HeaderValue::from_str(&x402::encode(&required)) {
            headers.insert(x402::PAYMENT_REQUIRED, value);
        }
        if let Ok(value) = HeaderValue::from_str(&charge.header()) {
            headers.insert(header::WWW_AUTHENTICATE, value);
        }
        headers.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static(
                "PAYMENT-REQUIRED, PAYMENT-RESPONSE, WWW-Authenticate, Payment-Receipt",
            ),
        );
        response
    }
}

/// A plain JSON error answer (no payment involved): `{"error": message}`.
pub(crate) fn error(status: StatusCode, message: &str, extra: Option<Value>) -> Response<Bytes> {
    let mut body = json!({ "error": message });
    if let (Some(map), Some(Value::Object(more))) = (body.as_object_mut(), extra) {
        map.extend(more);
    }
    let mut response = Response::new(Bytes::from(body.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}
