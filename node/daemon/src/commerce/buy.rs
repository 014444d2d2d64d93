//! `farthing_fetch`: the agent's side of HTTP 402. Fetch a URL; on a 402 whose x402 offer
//! list has a `farthing` entry in this node's token and chain, priced within the caller's
//! limit, pay it over the channel with the seller (memo `402:<challenge> <METHOD> <url>`) and
//! fetch again with the payment's `PAYMENT-SIGNATURE`. With no channel to the seller, link to
//! the seller's node and open one, funded as configured
//! ([`BuyerConfig`](crate::config::BuyerConfig)), never past its ceiling for all the channels
//! to that seller together, when the offer says where the seller's node is. A paid answer carries the next
//! offer for the same route (`farthing-next`): the next request to it pays up front, without
//! the unpaid round trip.

use std::collections::BTreeMap;
use std::time::Duration;

use alloy::primitives::Address;
use farthing_core::{ChainState, ChannelId, MAX_DEPOSIT, format_amount, parse_amount};
use farthing_http402::x402::{
    self, FARTHING_NEXT, FarthingPayload, PAYMENT_REQUIRED, PAYMENT_SIGNATURE, PaymentPayload,
    PaymentRequired, Requirements, Resource,
};
use farthing_http402::{FARTHING_SCHEME, network};
use farthing_peer::PeerAddr;

use super::offers::is_private;
use crate::net::NotReady;
use crate::node::Node;
use crate::ops::OpError;
use crate::payments::PayError;

/// How long a newly opened channel may take to be ready both ways.
const OPEN_WAIT: Duration = Duration::from_secs(60);

/// What to fetch, and the most to pay for it.
#[derive(Debug, Clone, Default)]
pub struct FetchRequest {
    /// `http://…`.
    pub url: String,
    /// GET, POST, …
    pub method: String,
    /// Request headers.
    pub headers: BTreeMap<String, String>,
    /// Request body.
    pub body: Option<String>,
    /// The most to pay, base units.
    pub max_price: u128,
    /// A new channel's deposit, base units (else the configured one).
    pub deposit: Option<u128>,
    /// The agent's credential it is made under, if any: its origins, partners, per-payment
    /// max and budgets hold for what the fetch pays (and opens).
    pub spender: Option<std::sync::Arc<farthing_rpc::Agent>>,
}

/// The final answer.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// HTTP status.
    pub status: u16,
    /// Headers, lowercase names.
    pub headers: BTreeMap<String, String>,
    /// Body (lossy UTF-8, cut at the configured size).
    pub body: String,
    /// What was paid.
    pub paid: Option<Bought>,
    /// Why a 402 was not paid.
    pub unpaid_reason: Option<String>,
}

/// A payment made for a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bought {
    /// Base units.
    pub amount: u128,
    /// The seller.
    pub pay_to: Address,
    /// The channel.
    pub channel: ChannelId,
    /// The proof's nonce.
    pub nonce: u64,
    /// The challenge paid.
    pub challenge: String,
    /// A channel opened for it.
    pub opened: Option<ChannelId>,
}

/// Why a fetch failed (an HTTP answer, even a 402, is not a failure).
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The request itself is wrong (URL, method, header).
    #[error("{0}")]
    Request(String),
    /// The URL could not be fetched.
    #[error("could not fetch {url}: {reason}")]
    Unreachable {
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// The payment failed.
    #[error(transparent)]
    Pay(#[from] PayError),
    /// Opening a channel to the seller failed.
    #[error("opening a channel to the seller failed: {0}")]
    Open(#[from] OpError),
    /// The agent's credential does not allow it (nothing was paid).
    #[error("{0}")]
    Credential(#[from] farthing_credential::Refusal),
    /// The channel opened to the seller is not ready yet.
    #[error("channel {0} to the seller is open but not ready for payments yet: {1}")]
    NotReady(ChannelId, NotReady),
}

struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: String,
}

impl Node {
    /// Fetch `request.url`, paying for it as the module docs say.
    pub async fn fetch(&self, request: FetchRequest) -> Result<Fetched, FetchError> {
        let buyer = self.buyer();
        let method = reqwest::Method::from_bytes(request.method.to_ascii_uppercase().as_bytes())
            .map_err(|_| {
                FetchError::Request(format!("{:?} is not an HTTP method", request.method))
            })?;
        let url = reqwest::Url::parse(&request.url)
            .map_err(|e| FetchError::Request(format!("{:?} is not a URL: {e}", request.url)))?;
        if url.scheme() != "http" && url.scheme() != "https" {
            return Err(FetchError::Request(format!(
                "{url} is not an http:// or https:// URL"
            )));
        }
        if is_private(&url) && !self.buyer_may_fetch_private() {
            return Err(FetchError::Request(format!(
                "{url} is a loopback, private or link-local address: the node fetches those only on a local devnet or with [buyer] allow_private = true (an agent's URL must not reach the operator's own network)"
            )));
        }
        // A credential limited to some origins fetches nothing else, paid or not (an agent's
        // URL must not reach elsewhere either).
        if let Some(origins) = request
            .spender
            .as_ref()
            .and_then(|a| a.limits().origins.as_ref())
            && !farthing_credential::Origin::parse_url(url.as_str())
                .is_ok_and(|o| origins.contains(&o))
        {
            return Err(farthing_credential::Refusal::Origin.into());
        }
        let route = url.origin().ascii_serialization();
        // Known route: pay up front with the offer its last answer carried.
        if let Some(offer) = buyer.take_offer(method.as_str(), &url, request.max_price)
            && let Some(price) = offer.amount()
            && offer
                .pay_to
                .parse::<Address>()
                .is_ok_and(|seller| self.channel_to(seller, price).is_some())
        {
            let bought = self.buy(&offer, &request, &method, &url).await?;
            return Ok(self
                .send_paid(&method, &url, &request, bought, &route)
                .await);
        }
        let answer = self.send(&method, &url, &request, None).await?;
        if answer.status != 402 {
            return Ok(self.finish(&route, answer, None));
        }
        let offer = match self.pick_offer(&answer, request.max_price) {
            Ok(offer) => offer,
            Err(reason) => {
                let mut done = self.finish(&route, answer, None);
                done.unpaid_reason = Some(reason);
                return Ok(done);
            }
        };
        let bought = self.buy(&offer, &request, &method, &url).await?;
        Ok(self
            .send_paid(&method, &url, &request, bought, &route)
            .await)
    }

    fn finish(&self, origin: &str, answer: Answer, paid: Option<Bought>) -> Fetched {
        if let Some(next) = answer.headers.get(FARTHING_NEXT)
            && let Ok(offer) = x402::decode::<Requirements>(next.as_bytes(), "farthing offer")
            && offer.scheme == FARTHING_SCHEME
        {
            self.buyer().keep_offer(origin, offer);
        }
        let mut headers = BTreeMap::new();
        for (name, value) in &answer.headers {
            let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
            headers
                .entry(name.as_str().to_owned())
                .and_modify(|v: &mut String| {
                    v.push_str(", ");
                    v.push_str(&value);
                })
                .or_insert(value);
        }
        let unpaid_reason = (answer.status == 402 && paid.is_some()).then(|| {
            "the seller answered 402 to the paid request (see the payment-response header and the body); the payment stays in its history for a refund".to_owned()
        });
        Fetched {
            status: answer.status,
            headers,
            body: answer.body,
            paid,
            unpaid_reason,
        }
    }

    /// The `farthing` offer of a 402 this node can pay within `max_price`, or why not.
    fn pick_offer(&self, answer: &Answer, max_price: u128) -> Result<Requirements, String> {
        let decimals = self.deployment().token_decimals;
        let header = answer.headers.get(PAYMENT_REQUIRED).ok_or(
            "the 402 carries no PAYMENT-REQUIRED header (no x402 offer to pay)".to_owned(),
        )?;
        let required: PaymentRequired = x402::decode(header.as_bytes(), "PaymentRequired")
            .map_err(|e| format!("the 402's PAYMENT-REQUIRED header is unreadable: {e}"))?;
        let ours = network(self.deployment().chain_id);
        let token = self.deployment().token;
        let offer = required
            .accepts
            .into_iter()
            .find(|r| {
                r.scheme == FARTHING_SCHEME
                    && r.network == ours
                    && r.asset.parse::<Address>().ok() == Some(token)
            })
            .ok_or_else(|| {
                format!("the 402 offers no farthing payment in this node's token on {ours}")
            })?;
        let price = offer
            .amount()
            .ok_or_else(|| format!("the offer's amount {:?} is not base units", offer.amount))?;
        if price > max_price {
            return Err(format!(
                "the price {} is more than the most this call may pay ({}): nothing was paid",
                format_amount(price, decimals),
                format_amount(max_price, decimals)
            ));
        }
        Ok(offer)
    }

    /// Pay for `offer`; answers the payment and its `PAYMENT-SIGNATURE` header.
    async fn buy(
        &self,
        offer: &Requirements,
        request: &FetchRequest,
        method: &reqwest::Method,
        url: &reqwest::Url,
    ) -> Result<(Bought, String), FetchError> {
        let refuse =
            |why: String| FetchError::Request(format!("the seller's offer is unusable: {why}"));
        let price = offer.amount().ok_or_else(|| refuse("no amount".into()))?;
        let pay_to: Address = offer
            .pay_to
            .parse()
            .map_err(|_| refuse(format!("payTo {:?} is not an address", offer.pay_to)))?;
        let challenge = offer
            .extra_str("challenge")
            .filter(|c| !c.is_empty() && c.len() <= 100 && c.bytes().all(|b| b.is_ascii_graphic()))
            .ok_or_else(|| refuse("no challenge".into()))?
            .to_owned();
        if let Some(agent) = &request.spender {
            farthing_credential::check(
                agent.limits(),
                &farthing_credential::Request {
                    scope: farthing_credential::Scope::Fetch,
                    amount: Some(price),
                    peer: Some(pay_to.0.0),
                    origin: Some(url.as_str()),
                    now: crate::credentials::now_secs(),
                    decimals: self.deployment().token_decimals,
                },
            )?;
        }
        let (channel, opened) = match self.channel_to(pay_to, price) {
            Some(id) => (id, None),
            None => {
                let _one = self.buyer().opening.lock().await;
                match self.channel_to(pay_to, price) {
                    Some(id) => (id, None),
                    None => {
                        let id = self.open_to(offer, pay_to, price, request).await?;
                        (id, Some(id))
                    }
                }
            }
        };
        let mut memo = format!("402:{challenge} {method} {url}").into_bytes();
        memo.truncate(farthing_peer::message::MAX_MEMO);
        // No idempotency key: a challenge is paid by this call only (a retried fetch gets a
        // fresh one), and a keyed payment costs a store read and a queue of its own.
        let paid = self
            .pay_as(request.spender.clone(), channel, price, &memo, None)
            .await?;
        let payload = PaymentPayload {
            x402_version: x402::VERSION,
            resource: Some(Resource {
                url: url.to_string(),
                ..Resource::default()
            }),
            // The offer as accepted, its `extra` cut to the challenge (which binds the rest).
            accepted: Requirements {
                extra: offer
                    .extra
                    .iter()
                    .filter(|(k, _)| k.as_str() == "challenge")
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
                ..offer.clone()
            },
            payload: serde_json::to_value(FarthingPayload {
                challenge: challenge.clone(),
                channel_id: paid.channel,
                nonce: paid.nonce,
            })
            .unwrap_or_default(),
            extensions: None,
        };
        let bought = Bought {
            amount: price,
            pay_to,
            channel: paid.channel,
            nonce: paid.nonce,
            challenge,
            opened,
        };
        Ok((bought, x402::encode(&payload)))
    }

    /// Whether `farthing_fetch` may reach private addresses: `[buyer] allow_private`, or by
    /// default only on a local devnet.
    fn buyer_may_fetch_private(&self) -> bool {
        self.buyer()
            .config
            .allow_private
            .unwrap_or_else(|| crate::keys::DEVNET_CHAIN_IDS.contains(&self.deployment().chain_id))
    }

    /// An open channel to `partner` that can pay `amount` now.
    fn channel_to(&self, partner: Address, amount: u128) -> Option<ChannelId> {
        self.channel_records()
            .into_iter()
            .filter(|c| {
                c.partner == partner
                    && c.on_chain.state == ChainState::Open
                    && c.our_balance() >= amount
                    && !self.is_frozen(c.id)
            })
            .max_by_key(|c| c.our_balance())
            .map(|c| c.id)
    }

    /// Link to the seller's node and open a channel to it, funded within the ceiling.
    async fn open_to(
        &self,
        offer: &Requirements,
        seller: Address,
        price: u128,
        request: &FetchRequest,
    ) -> Result<ChannelId, FetchError> {
        // Opening locks the node's money: an agent needs the channel scope for it.
        if let Some(agent) = &request.spender
            && agent
                .limits()
                .scopes
                .as_ref()
                .is_some_and(|s| !s.contains(&farthing_credential::Scope::Channel))
        {
            return Err(farthing_credential::Refusal::Scope {
                needed: farthing_credential::Scope::Channel,
            }
            .into());
        }
        let asked = request.deposit;
        let decimals = self.deployment().token_decimals;
        let config = &self.buyer().config;
        let parse = |what: &str, text: &str| {
            parse_amount(text, decimals, MAX_DEPOSIT)
                .map_err(|e| FetchError::Request(format!("buyer.{what} {text:?}: {e}")))
        };
        let ceiling = parse("max_deposit", &config.max_deposit)?;
        let deposit = match asked {
            Some(asked) => asked,
            None => {
                let configured = parse("deposit", &config.deposit)?;
                let suggested = offer
                    .extra_str("suggestedDeposit")
                    .and_then(x402::digits)
                    .filter(|s| *s >= price);
                suggested.map_or(configured, |s| s.min(configured))
            }
        };
        // The ceiling holds for everything locked with this seller, not per channel: a seller
        // whose channel ran dry cannot have the node open one after another.
        let locked: u128 = self
            .channel_records()
            .iter()
            .filter(|c| c.partner == seller && c.on_chain.state == ChainState::Open)
            .map(|c| c.our_chain_side().deposit)
            .sum();
        if locked.saturating_add(deposit) > ceiling {
            return Err(FetchError::Request(format!(
                "a channel to the seller would be funded with {}, and {} is locked with it already: more than buyer.max_deposit ({}) in all; ask for less, top up or close a channel, or raise the ceiling",
                format_amount(deposit, decimals),
                format_amount(locked, decimals),
                format_amount(ceiling, decimals)
            )));
        }
        if deposit < price {
            return Err(FetchError::Request(format!(
                "a deposit of {} does not cover the price {}",
                format_amount(deposit, decimals),
                format_amount(price, decimals)
            )));
        }
        let peer: PeerAddr = offer
            .extra_str("peer")
            .ok_or_else(|| {
                FetchError::Request(
                    "no channel to the seller, and its offer does not say where its node is (extra.peer)".into(),
                )
            })?
            .parse()
            .map_err(|e| FetchError::Request(format!("the offer's extra.peer: {e}")))?;
        if peer.address != seller {
            return Err(FetchError::Request(format!(
                "the offer's extra.peer is {} but it pays {seller}",
                peer.address
            )));
        }
        let was_linked = self.is_linked(seller);
        self.keep_linked(peer);
        let channel = match self
            .open_channel_as(request.spender.as_ref(), seller, deposit, None)
            .await
        {
            Ok(channel) => channel,
            Err(e) => {
                // A 402 must not leave the node dialling an address it named for nothing.
                if !was_linked {
                    self.disconnect_peer(seller, true);
                }
                return Err(e.into());
            }
        };
        self.wait_ready(channel.id, OPEN_WAIT)
            .await
            .map_err(|missing| FetchError::NotReady(channel.id, missing))?;
        Ok(channel.id)
    }

    /// Send the paid request; sent again (same payment, same idempotency key) if the seller
    /// did not answer. An answer never had: a 502 made here, with what was paid.
    async fn send_paid(
        &self,
        method: &reqwest::Method,
        url: &reqwest::Url,
        request: &FetchRequest,
        (bought, header): (Bought, String),
        origin: &str,
    ) -> Fetched {
        let payment = Some((header.as_str(), bought.challenge.as_str()));
        let mut answer = self.send(method, url, request, payment).await;
        if answer.is_err() {
            answer = self.send(method, url, request, payment).await;
        }
        match answer {
            Ok(answer) => self.finish(origin, answer, Some(bought)),
            Err(e) => Fetched {
                status: 502,
                headers: BTreeMap::new(),
                body: format!(
                    "paid for this request, but the seller did not answer it (twice): {e}; the payment is in both nodes' history under challenge {}",
                    bought.challenge
                ),
                paid: Some(bought),
                unpaid_reason: None,
            },
        }
    }

    async fn send(
        &self,
        method: &reqwest::Method,
        url: &reqwest::Url,
        request: &FetchRequest,
        payment: Option<(&str, &str)>,
    ) -> Result<Answer, FetchError> {
        let buyer = self.buyer();
        let mut call = buyer.http.request(method.clone(), url.clone());
        for (name, value) in &request.headers {
            let name = reqwest::header::HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| FetchError::Request(format!("{name:?} is not a header name")))?;
            let value = reqwest::header::HeaderValue::from_str(value).map_err(|_| {
                FetchError::Request(format!("the value of {name} is not a header value"))
            })?;
            call = call.header(name, value);
        }
        if let Some((payment, challenge)) = payment {
            // Keyed by the challenge: a retry of this very request gets the first answer.
            call = call
                .header(PAYMENT_SIGNATURE, payment)
                .header("idempotency-key", format!("farthing-{challenge}"));
        }
        if let Some(body) = &request.body {
            call = call.body(body.clone());
        }
        let unreachable = |e: reqwest::Error| FetchError::Unreachable {
            url: url.to_string(),
            reason: e.to_string(),
        };
        let mut response = call.send().await.map_err(unreachable)?;
        let (status, headers) = (response.status().as_u16(), response.headers().clone());
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(unreachable)? {
            let room = buyer.config.max_body.saturating_sub(body.len());
            body.extend_from_slice(&chunk[..chunk.len().min(room)]);
            if chunk.len() > room {
                break;
            }
        }
        Ok(Answer {
            status,
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        })
    }
}
