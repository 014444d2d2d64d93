//! What a call can fail with: [`ApiError`], typed by what the caller must do, each variant with
//! a stable numeric code (the table is in the crate docs), and its conversion into a JSON-RPC
//! error object.

use farthing_core::{AmountError, ChannelId, format_amount};
use jsonrpsee::types::{ErrorObject, ErrorObjectOwned};
use serde_json::{Value, json};

use crate::state::ChannelState;

/// The stable JSON-RPC error codes of [`ApiError`]. Clients match on these, never on messages.
pub mod code {
    /// [`super::ApiError::UnknownChannel`].
    pub const UNKNOWN_CHANNEL: i32 = 1001;
    /// [`super::ApiError::WrongState`].
    pub const WRONG_STATE: i32 = 1002;
    /// [`super::ApiError::InsufficientFunds`].
    pub const INSUFFICIENT_FUNDS: i32 = 1003;
    /// [`super::ApiError::InvalidAmount`].
    pub const INVALID_AMOUNT: i32 = 1004;
    /// [`super::ApiError::InvalidParams`].
    pub const INVALID_PARAMS: i32 = 1005;
    /// [`super::ApiError::ChainUnavailable`].
    pub const CHAIN_UNAVAILABLE: i32 = 1006;
    /// [`super::ApiError::Degraded`].
    pub const DEGRADED: i32 = 1007;
    /// [`super::ApiError::Unconfirmed`].
    pub const UNCONFIRMED: i32 = 1008;
    /// [`super::ApiError::Refused`].
    pub const REFUSED: i32 = 1009;
    /// [`super::ApiError::PaymentFailed`].
    pub const PAYMENT_FAILED: i32 = 1010;
    /// [`super::ApiError::Undelivered`].
    pub const UNDELIVERED: i32 = 1011;
    /// [`super::ApiError::WithdrawFailed`].
    pub const WITHDRAW_FAILED: i32 = 1012;
    /// [`super::ApiError::NotReady`].
    pub const NOT_READY: i32 = 1013;
    /// [`super::ApiError::NoContracts`].
    pub const NO_CONTRACTS: i32 = 1014;
    /// [`super::ApiError::TooManySubscriptions`].
    pub const TOO_MANY_SUBSCRIPTIONS: i32 = 1015;
    /// [`super::ApiError::PaymentRejected`].
    pub const PAYMENT_REJECTED: i32 = 1016;
    /// [`super::ApiError::ScopeDenied`].
    pub const SCOPE_DENIED: i32 = 1017;
    /// [`super::ApiError::OverLimit`].
    pub const OVER_LIMIT: i32 = 1018;
    /// [`super::ApiError::CredentialInvalid`].
    pub const CREDENTIAL_INVALID: i32 = 1019;
    /// [`super::ApiError::Internal`].
    pub const INTERNAL: i32 = 1099;

    /// Every code, in order (a node counts the errors it answers by these).
    pub const ALL: [i32; 20] = [
        UNKNOWN_CHANNEL,
        WRONG_STATE,
        INSUFFICIENT_FUNDS,
        INVALID_AMOUNT,
        INVALID_PARAMS,
        CHAIN_UNAVAILABLE,
        DEGRADED,
        UNCONFIRMED,
        REFUSED,
        PAYMENT_FAILED,
        UNDELIVERED,
        WITHDRAW_FAILED,
        NOT_READY,
        NO_CONTRACTS,
        TOO_MANY_SUBSCRIPTIONS,
        PAYMENT_REJECTED,
        SCOPE_DENIED,
        OVER_LIMIT,
        CREDENTIAL_INVALID,
        INTERNAL,
    ];
}

/// Why a call failed. The message (`Display`, sent as the JSON-RPC error message) says what
/// was wrong and what to do; the code (see [`code`]) is stable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// No channel has this id (code 1001).
    #[error("no channel {id}: farthing_listChannels lists the node's channels")]
    UnknownChannel {
        /// The id asked for.
        id: ChannelId,
    },
    /// The channel is not in a state that allows the call (code 1002).
    #[error("channel {id} is {state}, so {call} is not possible; next: {}", next_step(*.state))]
    WrongState {
        /// The channel.
        id: ChannelId,
        /// Its current state.
        state: ChannelState,
        /// The refused method, e.g. `"farthing_topUp"`.
        call: &'static str,
    },
    /// The node's token balance or allowance is too low for the call (code 1003).
    #[error(
        "{kind} is too low: {} needed, {} available, {} missing; {}",
        format_amount(*.needed, *.decimals),
        format_amount(*.available, *.decimals),
        format_amount(.needed.saturating_sub(*.available), *.decimals),
        kind.remedy(&format_amount(.needed.saturating_sub(*.available), *.decimals))
    )]
    InsufficientFunds {
        /// What is short.
        kind: Shortfall,
        /// What the call needs, in base units.
        needed: u128,
        /// What there is, in base units.
        available: u128,
        /// The token's decimals, to show the amounts.
        decimals: u8,
    },
    /// An amount parameter is malformed, too precise, zero or out of range (code 1004).
    #[error("invalid amount: {0}")]
    InvalidAmount(#[from] AmountProblem),
    /// Another parameter is wrong, e.g. the partner is the zero address or the node itself
    /// (code 1005). The text says which and why.
    #[error("invalid parameters: {0}")]
    InvalidParams(String),
    /// The chain's RPC does not answer (code 1006): retry later.
    #[error(
        "the chain RPC is unavailable ({0}): retry later; farthing_info shows the node's health"
    )]
    ChainUnavailable(String),
    /// The node is degraded and takes no new risk (code 1007); reads still work.
    #[error(
        "the node is degraded and takes no new risk ({}): reads still work; retry when farthing_info reports health \"ok\"",
        .reasons.join("; ")
    )]
    Degraded {
        /// Why, as in [`crate::Health::reasons`].
        reasons: Vec<String>,
    },
    /// The node sent the transaction but its receipt has not arrived in time (code 1008): it
    /// must not be sent again; the node keeps following it.
    #[error(
        "transaction {tx_hash} was sent but is not confirmed yet ({reason}); do not send it again: \
         the node keeps following it, farthing_getChannel shows the outcome"
    )]
    Unconfirmed {
        /// The transaction's hash.
        tx_hash: String,
        /// Why the node stopped waiting.
        reason: String,
    },
    /// The contract refuses the call, or a transaction of it reverted (code 1009); the message
    /// names the contract's error.
    #[error("the contract refuses this: {0}")]
    Refused(String),
    /// A payment was not made: no link to the partner (nothing was signed), or the partner
    /// refused it (its reason is given; the signed amount travels with the next payment)
    /// (code 1010).
    #[error("payment not acknowledged: {0}")]
    PaymentFailed(String),
    /// The payment is signed and stored but the partner has not acknowledged it: the link
    /// dropped or the partner did not answer (code 1011). It is delivered when the link is
    /// back; it must not be paid again. Repeating the call with the same idempotency key
    /// answers with its outcome.
    #[error(
        "payment nonce {nonce} on channel {channel_id} is signed and stored but the partner has not acknowledged it \
         (the link dropped or the partner did not answer); it reaches the partner when the link is back: \
         do not pay again, repeat the call with the same idempotency key to learn the outcome"
    )]
    Undelivered {
        /// The channel.
        channel_id: ChannelId,
        /// The nonce of the proof that carries the payment.
        nonce: u64,
    },
    /// A withdrawal was not made (code 1012): no link, no answer, or this node's or the
    /// partner's rules refuse it for now; the message says why and when a retry can work.
    #[error("withdrawal not made: {0}")]
    WithdrawFailed(String),
    /// The channel cannot take payments yet (code 1013): it is on-chain but not confirmed
    /// here yet, there is no link to the partner, or the partner's node has not confirmed it.
    /// `farthing_waitChannel` waits until it can.
    #[error(
        "channel {id} is not ready for payments yet: {reason}; farthing_waitChannel waits until it is"
    )]
    NotReady {
        /// The channel.
        id: ChannelId,
        /// What is missing.
        reason: String,
    },
    /// The chain at the node's RPC answers but does not hold the node's contracts (code
    /// 1014): a devnet restarted, or the wrong RPC or deployment file. Nothing to retry until
    /// the node is pointed at the chain that holds them.
    #[error(
        "{0}: the chain RPC answers but the node's contracts are not there (a restarted devnet, or the wrong chain RPC or deployment file): deploy again (scripts/deploy.sh) or point the node at the chain that holds them, and restart it"
    )]
    NoContracts(String),
    /// The node serves `rpc.max_subscriptions` subscriptions already, over all connections
    /// (code 1015): unsubscribe ones no longer needed, or raise the limit.
    #[error(
        "the node already serves {limit} subscriptions over all connections, its limit (rpc.max_subscriptions = {limit}): \
         unsubscribe the ones you no longer need (or close idle WebSocket connections), or raise rpc.max_subscriptions \
         in the node's config"
    )]
    TooManySubscriptions {
        /// The configured limit.
        limit: u32,
    },
    /// A payment presented for a sale is not acceptable (code 1016): `reason` names why
    /// (`unpaid`, `redeemed`, `busy`, `short`, `invalid_signature`, `wrong_payee`,
    /// `not_yet_valid`, `expired`, `nonce_used`, `wrong_token`, `store`); nothing was spent.
    #[error("payment rejected ({reason}): {message}")]
    PaymentRejected {
        /// A stable name for why.
        reason: String,
        /// What was wrong, and what to do.
        message: String,
    },
    /// The caller's credential does not allow this method (code 1017): it lacks `scope`.
    #[error(
        "this credential may not call {method}: it needs the `{scope}` scope; ask the node's operator for a credential that has it"
    )]
    ScopeDenied {
        /// The method called.
        method: String,
        /// The scope it needs.
        scope: &'static str,
    },
    /// The caller's credential does not allow this spend (code 1018): `limit` names which
    /// (`max`, `peer`, `origin`, `budget.hour`, `deposit.total`, …), the message says how much
    /// was spent and when the period frees budget again (`frees_at`, Unix seconds).
    #[error("{message}")]
    OverLimit {
        /// A stable name for the limit hit.
        limit: String,
        /// What was wrong, in token units, and when it frees.
        message: String,
        /// When the period frees enough budget for this spend, if it ever does.
        frees_at: Option<u64>,
    },
    /// The credential a WebSocket was opened with expired or was revoked since (code 1019):
    /// `reason` is `expired` or `revoked`; reconnect with a valid credential.
    #[error("credential no longer valid ({reason}): {message}")]
    CredentialInvalid {
        /// A stable name for why.
        reason: String,
        /// What happened, and what to do.
        message: String,
    },
    /// A bug or an unexpected failure inside the node (code 1099).
    #[error("internal error: {0}; the node's log has the details")]
    Internal(String),
}

impl ApiError {
    /// The stable JSON-RPC error code (the table in the crate docs).
    pub fn code(&self) -> i32 {
        match self {
            Self::UnknownChannel { .. } => code::UNKNOWN_CHANNEL,
            Self::WrongState { .. } => code::WRONG_STATE,
            Self::InsufficientFunds { .. } => code::INSUFFICIENT_FUNDS,
            Self::InvalidAmount(_) => code::INVALID_AMOUNT,
            Self::InvalidParams(_) => code::INVALID_PARAMS,
            Self::ChainUnavailable(_) => code::CHAIN_UNAVAILABLE,
            Self::Degraded { .. } => code::DEGRADED,
            Self::Unconfirmed { .. } => code::UNCONFIRMED,
            Self::Refused(_) => code::REFUSED,
            Self::PaymentFailed(_) => code::PAYMENT_FAILED,
            Self::Undelivered { .. } => code::UNDELIVERED,
            Self::WithdrawFailed(_) => code::WITHDRAW_FAILED,
            Self::NotReady { .. } => code::NOT_READY,
            Self::NoContracts(_) => code::NO_CONTRACTS,
            Self::TooManySubscriptions { .. } => code::TOO_MANY_SUBSCRIPTIONS,
            Self::PaymentRejected { .. } => code::PAYMENT_REJECTED,
            Self::ScopeDenied { .. } => code::SCOPE_DENIED,
            Self::OverLimit { .. } => code::OVER_LIMIT,
            Self::CredentialInvalid { .. } => code::CREDENTIAL_INVALID,
            Self::Internal(_) => code::INTERNAL,
        }
    }

    /// Machine-readable details sent as the error object's `data`, where there are any.
    pub fn data(&self) -> Option<Value> {
        match self {
            Self::UnknownChannel { id } => Some(json!({ "channel_id": id })),
            Self::WrongState { id, state, .. } => Some(json!({ "channel_id": id, "state": state })),
            Self::InsufficientFunds {
                kind,
                needed,
                available,
                decimals,
            } => Some(json!({
                "kind": kind.as_str(),
                "needed": format_amount(*needed, *decimals),
                "available": format_amount(*available, *decimals),
                "missing": format_amount(needed.saturating_sub(*available), *decimals),
            })),
            Self::Degraded { reasons } => Some(json!({ "reasons": reasons })),
            Self::Unconfirmed { tx_hash, .. } => Some(json!({ "tx_hash": tx_hash })),
            Self::Undelivered { channel_id, nonce } => {
                Some(json!({ "channel_id": channel_id, "nonce": nonce }))
            }
            Self::NotReady { id, .. } => Some(json!({ "channel_id": id })),
            Self::TooManySubscriptions { limit } => Some(json!({ "limit": limit })),
            Self::PaymentRejected { reason, .. } | Self::CredentialInvalid { reason, .. } => {
                Some(json!({ "reason": reason }))
            }
            Self::ScopeDenied { method, scope } => {
                Some(json!({ "method": method, "scope": scope }))
            }
            Self::OverLimit {
                limit, frees_at, ..
            } => Some(json!({ "limit": limit, "frees_at": frees_at })),
            Self::InvalidAmount(_)
            | Self::Refused(_)
            | Self::PaymentFailed(_)
            | Self::InvalidParams(_)
            | Self::ChainUnavailable(_)
            | Self::WithdrawFailed(_)
            | Self::NoContracts(_)
            | Self::Internal(_) => None,
        }
    }
}

impl From<AmountError> for ApiError {
    fn from(error: AmountError) -> Self {
        Self::InvalidAmount(AmountProblem::Parse(error))
    }
}

impl From<ApiError> for ErrorObjectOwned {
    fn from(error: ApiError) -> Self {
        ErrorObject::owned(error.code(), error.to_string(), error.data())
    }
}

/// What is wrong with an amount ([`ApiError::InvalidAmount`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmountProblem {
    /// Not a decimal amount the token can hold, or above the bound (the core's message).
    #[error(transparent)]
    Parse(#[from] AmountError),
    /// Zero where a positive amount is needed.
    #[error("the amount is zero: give a positive amount like 12.5")]
    Zero,
}

/// What [`ApiError::InsufficientFunds`] is short of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Shortfall {
    /// The node's token balance.
    TokenBalance,
    /// The node's token allowance for the `ChannelManager`.
    Allowance,
    /// What the node can still pay on a channel.
    ChannelBalance,
}

impl Shortfall {
    /// The name in the error's `data.kind`: `"token_balance"` or `"allowance"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::TokenBalance => "token_balance",
            Self::Allowance => "allowance",
            Self::ChannelBalance => "channel_balance",
        }
    }

    fn remedy(self, missing: &str) -> String {
        match self {
            Self::TokenBalance => format!(
                "send at least {missing} more tokens to the node's address (farthing_info) or ask for less"
            ),
            Self::Allowance => format!(
                "approve the ChannelManager (farthing_info) for at least {missing} more tokens or ask for less"
            ),
            Self::ChannelBalance => {
                format!("top the channel up by at least {missing} (farthing_topUp) or pay less")
            }
        }
    }
}

impl std::fmt::Display for Shortfall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::TokenBalance => "the node's token balance",
            Self::Allowance => "the node's token allowance for the ChannelManager",
            Self::ChannelBalance => "what the node can still pay on the channel",
        })
    }
}

/// The call that fits a channel in `state`.
fn next_step(state: ChannelState) -> &'static str {
    match state {
        ChannelState::Open => {
            "farthing_closeChannel closes it, then farthing_settle pays out after the challenge period"
        }
        ChannelState::Closed => {
            "wait until its settle_after (farthing_getChannel), then call farthing_settle"
        }
        ChannelState::Settled => {
            "none, it is final; farthing_claim collects anything left claimable, farthing_openChannel opens a new channel"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every variant, with the code the crate docs give it.
    fn every_error() -> Vec<(ApiError, i32)> {
        vec![
            (ApiError::UnknownChannel { id: 9 }, 1001),
            (
                ApiError::WrongState {
                    id: 9,
                    state: ChannelState::Closed,
                    call: "farthing_topUp",
                },
                1002,
            ),
            (
                ApiError::InsufficientFunds {
                    kind: Shortfall::TokenBalance,
                    needed: 12_500_000,
                    available: 10_000_000,
                    decimals: 6,
                },
                1003,
            ),
            (AmountError::Malformed("1e6".into()).into(), 1004),
            (ApiError::InvalidAmount(AmountProblem::Zero), 1004),
            (
                ApiError::InvalidParams("partner is the zero address".into()),
                1005,
            ),
            (
                ApiError::ChainUnavailable("connection refused".into()),
                1006,
            ),
            (
                ApiError::Degraded {
                    reasons: vec!["store stalled".into()],
                },
                1007,
            ),
            (
                ApiError::Unconfirmed {
                    tx_hash: "0xabc".into(),
                    reason: "timeout".into(),
                },
                1008,
            ),
            (ApiError::Refused("ChallengePeriodActive".into()), 1009),
            (ApiError::PaymentFailed("no link".into()), 1010),
            (
                ApiError::Undelivered {
                    channel_id: 9,
                    nonce: 4,
                },
                1011,
            ),
            (
                ApiError::WithdrawFailed("a withdrawal is pending".into()),
                1012,
            ),
            (
                ApiError::NotReady {
                    id: 9,
                    reason: "this node has not applied its opening".into(),
                },
                1013,
            ),
            (ApiError::NoContracts("balance".into()), 1014),
            (ApiError::TooManySubscriptions { limit: 256 }, 1015),
            (ApiError::Internal("oops".into()), 1099),
            (
                ApiError::ScopeDenied {
                    method: "farthing_openChannel".into(),
                    scope: "channel",
                },
                1017,
            ),
            (
                ApiError::OverLimit {
                    limit: "budget.day".into(),
                    message: "over the day budget".into(),
                    frees_at: Some(7),
                },
                1018,
            ),
            (
                ApiError::CredentialInvalid {
                    reason: "revoked".into(),
                    message: "revoked".into(),
                },
                1019,
            ),
        ]
    }

    #[test]
    fn every_error_maps_to_its_documented_code_and_message() {
        let docs = include_str!("lib.rs");
        for (error, expected) in every_error() {
            let message = error.to_string();
            let object = ErrorObjectOwned::from(error.clone());
            assert_eq!(object.code(), expected, "{error:?}");
            assert_eq!(error.code(), expected);
            assert_eq!(object.message(), message);
            assert!(
                docs.contains(&format!("//! | {expected} | ")),
                "code {expected} is missing from the table in the crate docs"
            );
        }
    }

    #[test]
    fn messages_say_what_to_do() {
        let messages: Vec<String> = every_error().iter().map(|(e, _)| e.to_string()).collect();
        assert!(
            messages[0].contains("no channel 9") && messages[0].contains("farthing_listChannels")
        );
        assert!(
            messages[1].contains("channel 9 is closed"),
            "{}",
            messages[1]
        );
        assert!(messages[1].contains("farthing_topUp") && messages[1].contains("farthing_settle"));
        assert_eq!(
            messages[2],
            "the node's token balance is too low: 12.5 needed, 10 available, 2.5 missing; \
             send at least 2.5 more tokens to the node's address (farthing_info) or ask for less"
        );
        // The core's own message is carried.
        assert!(messages[3].contains(&AmountError::Malformed("1e6".into()).to_string()));
        assert!(messages[4].contains("zero"));
        assert!(messages[5].contains("partner is the zero address"));
        assert!(messages[6].contains("retry later"));
        assert!(messages[7].contains("store stalled") && messages[7].contains("no new risk"));
        assert!(
            messages[8].contains("0xabc") && messages[8].contains("do not send it again"),
            "{}",
            messages[8]
        );
        assert!(messages[9].contains("ChallengePeriodActive"));
        assert!(messages[11].contains("do not pay again"));
        assert!(messages[12].starts_with("withdrawal not made: "));
        assert!(
            messages[13].contains("not ready for payments yet")
                && messages[13].contains("farthing_waitChannel")
        );
        assert!(messages[14].contains("deploy again"));
        assert!(
            messages[15].contains("rpc.max_subscriptions = 256")
                && messages[15].contains("unsubscribe"),
            "{}",
            messages[15]
        );
        assert!(messages[16].contains("log"));

        let open = ApiError::WrongState {
            id: 1,
            state: ChannelState::Open,
            call: "farthing_settle",
        };
        assert!(open.to_string().contains("farthing_closeChannel"), "{open}");
        let settled = ApiError::WrongState {
            id: 1,
            state: ChannelState::Settled,
            call: "farthing_closeChannel",
        };
        assert!(settled.to_string().contains("final"), "{settled}");
        let allowance = ApiError::InsufficientFunds {
            kind: Shortfall::Allowance,
            needed: 5,
            available: 0,
            decimals: 0,
        };
        assert!(allowance.to_string().contains("5 missing"), "{allowance}");
        assert!(allowance.to_string().contains("approve"), "{allowance}");
    }

    #[test]
    fn data_carries_the_details() {
        let errors = every_error();
        let data = |i: usize| {
            ErrorObjectOwned::from(errors[i].0.clone())
                .data()
                .map(|d| d.get().to_owned())
        };
        assert_eq!(data(0).as_deref(), Some(r#"{"channel_id":9}"#));
        assert_eq!(
            data(1).as_deref(),
            Some(r#"{"channel_id":9,"state":"closed"}"#)
        );
        let funds: Value = serde_json::from_str(&data(2).unwrap()).unwrap();
        assert_eq!(
            funds,
            json!({ "kind": "token_balance", "needed": "12.5", "available": "10", "missing": "2.5" })
        );
        assert_eq!(data(7).as_deref(), Some(r#"{"reasons":["store stalled"]}"#));
        assert_eq!(data(8).as_deref(), Some(r#"{"tx_hash":"0xabc"}"#));
        assert_eq!(data(9), None);
        assert_eq!(data(10), None);
        assert_eq!(data(11).as_deref(), Some(r#"{"channel_id":9,"nonce":4}"#));
        assert_eq!(data(12), None);
        assert_eq!(data(13).as_deref(), Some(r#"{"channel_id":9}"#));
        assert_eq!(data(15).as_deref(), Some(r#"{"limit":256}"#));
        assert_eq!(data(16), None);
        assert_eq!(
            data(17).as_deref(),
            Some(r#"{"method":"farthing_openChannel","scope":"channel"}"#)
        );
        assert_eq!(
            data(18).as_deref(),
            Some(r#"{"frees_at":7,"limit":"budget.day"}"#)
        );
        assert_eq!(data(19).as_deref(), Some(r#"{"reason":"revoked"}"#));
    }
}
