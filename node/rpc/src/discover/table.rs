//! The table: every method, its parameters, result and error codes; the result types; the
//! error codes. Adding a method is one entry in [`METHODS`].

use crate::code;

use super::{Method, Param, credentials};

pub(super) const fn call(
    name: &'static str,
    summary: &'static str,
    params: &'static [Param],
    result: &'static str,
    errors: &'static [i32],
) -> Method {
    Method {
        name,
        summary,
        params,
        result,
        errors,
        subscription: None,
    }
}

pub(super) const fn req(name: &'static str, ty: &'static str, summary: &'static str) -> Param {
    Param {
        name,
        ty,
        required: true,
        summary,
    }
}

pub(super) const fn opt(name: &'static str, ty: &'static str, summary: &'static str) -> Param {
    Param {
        name,
        ty,
        required: false,
        summary,
    }
}

const CHANNEL: Param = req("channel_id", "integer", "the channel's id");
const AMOUNT: Param = req(
    "amount",
    "amount",
    "token units, a decimal string such as \"12.5\"",
);

/// Every method, in the order the document lists them. Subscriptions bring their
/// unsubscribe method.
pub const METHODS: &[Method] = &[
    call(
        "info",
        "Who and where the node is, how far it has synced, its health and its links.",
        &[],
        "NodeInfo",
        &[],
    ),
    call(
        "openChannel",
        "Open a channel to partner funded with amount from the node's tokens; one transaction, answered once mined.",
        &[
            req("partner", "address", "the partner's address"),
            AMOUNT,
            opt(
                "challenge_period",
                "integer",
                "seconds; the node's channels.default_challenge_period when absent",
            ),
        ],
        "ChannelView",
        &[1003, 1004, 1005, 1006, 1007, 1008, 1009, 1014],
    ),
    call(
        "topUp",
        "Add amount to our deposit in an open channel; answered once mined.",
        &[CHANNEL, AMOUNT],
        "ChannelView",
        &[1001, 1013, 1002, 1003, 1004, 1006, 1007, 1008, 1009, 1014],
    ),
    call(
        "withdraw",
        "Take amount of our balance out of an open channel, co-signed by the partner's node over the link; answered once mined.",
        &[CHANNEL, AMOUNT],
        "ChannelView",
        &[1001, 1013, 1002, 1003, 1004, 1006, 1007, 1008, 1009, 1012],
    ),
    call(
        "listChannels",
        "Every channel the node knows, in id order.",
        &[],
        "[ChannelView]",
        &[],
    ),
    call(
        "getChannel",
        "One channel.",
        &[CHANNEL],
        "ChannelView",
        &[1001, 1013],
    ),
    call(
        "waitChannel",
        "Wait until a channel can take payments both ways (open here, linked, known to the partner's node).",
        &[
            CHANNEL,
            opt(
                "timeout_secs",
                "integer",
                "at most this long (default 60, at most 120; past 16 waiting calls, none)",
            ),
        ],
        "ChannelView",
        &[1001, 1002, 1013],
    ),
    call(
        "closeChannel",
        "Close cooperatively over the link (paid out at once); if the partner cannot or will not co-sign, unilaterally with its latest proof (the challenge period runs).",
        &[CHANNEL],
        "ChannelView",
        &[1001, 1013, 1006, 1007, 1008, 1009],
    ),
    call(
        "settle",
        "Pay out a unilaterally closed channel once its challenge period is over.",
        &[CHANNEL],
        "ChannelView",
        &[1001, 1013, 1002, 1006, 1008, 1009],
    ),
    call(
        "claim",
        "Collect what settles left claimable for the node (payouts the token refused).",
        &[],
        "ClaimResult",
        &[1006, 1008, 1009],
    ),
    call(
        "pay",
        "Pay amount on a channel (by channel_id, or the open channel with partner); answered once the partner acknowledged it as durable.",
        &[
            opt("channel_id", "integer", "the channel; or give partner"),
            opt(
                "partner",
                "address",
                "the partner of an open channel; or give channel_id",
            ),
            AMOUNT,
            opt(
                "idempotency_key",
                "string",
                "1 to 128 bytes: a repeat with the same key pays nothing and answers the first payment",
            ),
            opt(
                "memo",
                "string",
                "free text for the partner, at most 256 bytes, not signed",
            ),
        ],
        "PayResult",
        &[1001, 1013, 1002, 1003, 1004, 1005, 1007, 1010, 1011],
    ),
    call(
        "redeem",
        "For the 402 gateway: spend the durable incoming payment whose memo is 402:<challenge> on one request priced price; once only, across restarts.",
        &[
            req("challenge", "string", "the challenge the gateway issued"),
            req("price", "amount", "the request's price, token units"),
            opt(
                "paid_by",
                "integer",
                "Unix seconds: the payment must have reached the node by then",
            ),
        ],
        "Redeemed",
        &[1004, 1005, 1007, 1016],
    ),
    call(
        "collectAuthorization",
        "For the 402 gateway: check an EIP-3009 TransferWithAuthorization of the node's token to the node and submit it; answered once mined.",
        &[req(
            "authorization",
            "TransferAuthorization",
            "the signed authorization",
        )],
        "Collected",
        &[1005, 1006, 1007, 1008, 1009, 1016],
    ),
    call(
        "refundCollection",
        "For the 402 gateway: send what a collection (by transaction hash) moved back to its payer, once; answered once mined.",
        &[req("tx_hash", "hash", "the collection's transaction hash")],
        "Collected",
        &[1005, 1006, 1007, 1008, 1009, 1016],
    ),
    call(
        "fetch",
        "Fetch a URL; a 402 with a farthing offer at most max_price is paid over the channel with the seller (opened with deposit if needed) and fetched again.",
        &[
            req("url", "string", "http:// URL"),
            req(
                "max_price",
                "amount",
                "the most to pay for this request, token units",
            ),
            opt("method", "string", "HTTP method, default GET"),
            opt("headers", "object", "request headers, name to value"),
            opt("body", "string", "request body, text"),
            opt(
                "deposit",
                "amount",
                "fund a new channel with this much when the seller has none with us",
            ),
        ],
        "FetchResult",
        &[1003, 1004, 1005, 1007, 1010, 1011, 1013],
    ),
    call(
        "connectPeer",
        "Link to a partner node and keep the link up (redialled with backoff up to 5 min); answers at once.",
        &[req("peer", "peer", "0xADDRESS@host:port")],
        "boolean",
        &[1005],
    ),
    call(
        "listPeers",
        "Every peer the node is linked to, keeps a link to, or shares a channel with.",
        &[],
        "[PeerView]",
        &[],
    ),
    call(
        "disconnectPeer",
        "Drop the link to peer and stop redialling it; forget: also forget its address (for this run).",
        &[
            req("peer", "address", "the peer's address"),
            opt(
                "forget",
                "boolean",
                "also forget its dial address (default false)",
            ),
        ],
        "Disconnected",
        &[],
    ),
    call(
        "balances",
        "Gas money, free tokens, tokens in channels, claimable tokens.",
        &[],
        "Balances",
        &[1006, 1014],
    ),
    call(
        "listPayments",
        "The payment log (every payment made or received, numbered by seq, kept across restarts) by cursor, oldest first: after a seq, or the newest.",
        &[
            opt("channel_id", "integer", "only this channel's payments"),
            opt(
                "limit",
                "integer",
                "at most this many (default 100, at most 1000)",
            ),
            opt(
                "after",
                "integer",
                "the payments after this seq (the page's next); none: the newest",
            ),
        ],
        "PaymentPage",
        &[1001, 1007, 1013],
    ),
    Method {
        subscription: Some(("payment", "unsubscribePayments")),
        ..call(
            "subscribePayments",
            "WebSocket: a notification farthing_payment for every payment made or received, once durable, in seq order; with after, the logged ones after that seq first, with no gap or repeat.",
            &[opt(
                "after",
                "integer",
                "replay the log after this seq (0: from the oldest kept), then go live",
            )],
            "PaymentView",
            &[1005, 1007, 1015],
        )
    },
    Method {
        subscription: Some(("channelUpdate", "unsubscribeChannels")),
        ..call(
            "subscribeChannels",
            "WebSocket: a notification farthing_channelUpdate each time a channel changes on-chain.",
            &[],
            "ChannelUpdate",
            &[1015],
        )
    },
    call(
        "discover",
        "This document (OpenRPC 1.2); also answered as rpc.discover.",
        &[],
        "object",
        &[],
    ),
    credentials::CREATE,
    credentials::LIST,
    credentials::SHOW,
    credentials::REVOKE,
    credentials::WHOAMI,
];

/// Other names the server answers to: (alias, the method it calls, without prefix).
pub const ALIASES: &[(&str, &str)] = &[("rpc.discover", "discover")];

/// The methods that also accept their parameters wrapped the old way (`{"params": {…}}` or
/// `[{…}]`), from when they took one object; kept so older callers keep working.
pub const WRAPPED_PARAMS: &[&str] = &["openChannel", "pay"];

/// A result type's field: (name, type, whether it is always present).
pub type Field = (&'static str, &'static str, bool);

/// The result types: (name, fields).
pub const SCHEMAS: &[(&str, &[Field])] = &[
    (
        "NodeInfo",
        &[
            ("address", "address", true),
            ("chain_id", "integer", true),
            ("channel_manager", "address", true),
            ("token", "address", true),
            ("token_symbol", "string", true),
            ("token_decimals", "integer", true),
            ("token_name", "string", true),
            ("token_version", "string", true),
            ("synced_block", "integer", true),
            ("chain_head", "integer", true),
            ("health", "Health", true),
            ("store_syncs", "integer", true),
            ("store_batches", "integer", true),
            ("store", "string", true),
            ("links", "LinkCounts", true),
        ],
    ),
    (
        "Health",
        &[
            ("status", "HealthStatus", true),
            ("reasons", "[string]", true),
            ("warnings", "[string]", false),
        ],
    ),
    (
        "LinkCounts",
        &[
            ("up", "integer", true),
            ("kept", "integer", true),
            ("down", "integer", true),
        ],
    ),
    (
        "ChannelView",
        &[
            ("id", "integer", true),
            ("state", "ChannelState", true),
            ("role", "ChannelRole", true),
            ("partner", "address", true),
            ("token", "address", true),
            ("challenge_period", "integer", true),
            ("deposit_ours", "amount", true),
            ("deposit_partner", "amount", true),
            ("balance_ours", "amount", true),
            ("balance_partner", "amount", true),
            ("settle_after", "integer?", true),
            ("closer", "address?", true),
            ("sent", "amount", true),
            ("sent_nonce", "integer", true),
            ("received", "amount", true),
            ("received_nonce", "integer", true),
        ],
    ),
    ("ClaimResult", &[("claimed", "amount", true)]),
    (
        "PayResult",
        &[
            ("channel_id", "integer", true),
            ("nonce", "integer", true),
            ("amount", "amount", true),
            ("balance_ours", "amount", true),
            ("balance_partner", "amount", true),
            ("repeated", "boolean", true),
        ],
    ),
    (
        "Redeemed",
        &[
            ("channel_id", "integer", true),
            ("nonce", "integer", true),
            ("amount", "amount", true),
            ("payer", "address", true),
            ("received_total", "amount", true),
        ],
    ),
    (
        "TransferAuthorization",
        &[
            ("from", "address", true),
            ("to", "address", true),
            ("value", "string", true),
            ("valid_after", "integer", true),
            ("valid_before", "integer", true),
            ("nonce", "hash", true),
            ("signature", "string", true),
        ],
    ),
    (
        "Collected",
        &[
            ("tx_hash", "hash", true),
            ("payer", "address", true),
            ("amount", "amount", true),
        ],
    ),
    (
        "FetchPaid",
        &[
            ("scheme", "string", true),
            ("amount", "amount", true),
            ("pay_to", "address", true),
            ("channel_id", "integer", true),
            ("nonce", "integer", true),
            ("challenge", "string", true),
            ("opened", "integer", false),
        ],
    ),
    (
        "FetchResult",
        &[
            ("status", "integer", true),
            ("headers", "object", true),
            ("body", "string", true),
            ("paid", "FetchPaid", false),
            ("unpaid_reason", "string", false),
        ],
    ),
    (
        "Balances",
        &[
            ("gas", "amount", true),
            ("token", "amount", true),
            ("in_channels", "amount", true),
            ("claimable", "amount", true),
        ],
    ),
    (
        "PaymentPage",
        &[
            ("payments", "[PaymentView]", true),
            ("next", "integer", true),
            ("more", "boolean", true),
        ],
    ),
    (
        "PaymentView",
        &[
            ("seq", "integer", true),
            ("channel_id", "integer", true),
            ("direction", "Direction", true),
            ("nonce", "integer", true),
            ("amount", "amount", true),
            ("at_ms", "integer", true),
            ("memo", "string", false),
            ("key", "string", false),
            ("carried", "boolean", false),
            ("credential", "string", false),
        ],
    ),
    (
        "ChannelUpdate",
        &[
            ("channel_id", "integer", true),
            ("kind", "UpdateKind", true),
            ("channel", "ChannelView", true),
        ],
    ),
    (
        "PeerView",
        &[
            ("address", "address", true),
            ("dial", "string?", true),
            ("linked", "boolean", true),
            ("linked_since_ms", "integer?", true),
            ("dialled_by", "Dialler?", true),
            ("kept", "boolean", true),
            ("failed_dials", "integer", true),
            ("last_error", "string?", true),
            ("last_error_at_ms", "integer?", true),
            ("next_dial_in_secs", "integer?", true),
            ("channels", "[integer]", true),
        ],
    ),
    (
        "Disconnected",
        &[
            ("was_linked", "boolean", true),
            ("was_kept", "boolean", true),
            ("forgotten", "boolean", true),
        ],
    ),
    credentials::SCHEMAS[0],
    credentials::SCHEMAS[1],
    credentials::SCHEMAS[2],
    credentials::SCHEMAS[3],
];

/// The string enumerations: (name, values).
pub const ENUMS: &[(&str, &[&str])] = &[
    ("ChannelState", &["open", "closed", "settled"]),
    ("ChannelRole", &["A", "B"]),
    ("HealthStatus", &["ok", "degraded"]),
    ("Direction", &["out", "in"]),
    ("Dialler", &["us", "them"]),
    ("UpdateKind", &crate::api::CHANNEL_UPDATE_KINDS),
];

/// The error codes: (code, name, what it means and what to do). The crate docs have the
/// same table with the `data` each carries.
pub const ERRORS: &[(i32, &str, &str)] = &[
    (
        code::UNKNOWN_CHANNEL,
        "UnknownChannel",
        "no channel with this id; farthing_listChannels",
    ),
    (
        code::WRONG_STATE,
        "WrongState",
        "the channel's state does not allow the call; the message names the call that fits",
    ),
    (
        code::INSUFFICIENT_FUNDS,
        "InsufficientFunds",
        "token balance, allowance or channel balance too low; the message says how much is missing",
    ),
    (
        code::INVALID_AMOUNT,
        "InvalidAmount",
        "amount malformed, too precise for the token, zero, or out of range",
    ),
    (
        code::INVALID_PARAMS,
        "InvalidParams",
        "another parameter is wrong; the message says which",
    ),
    (
        code::CHAIN_UNAVAILABLE,
        "ChainUnavailable",
        "the chain RPC does not answer; retry later",
    ),
    (
        code::DEGRADED,
        "Degraded",
        "the node takes no new risk; reads still work; data.reasons",
    ),
    (
        code::UNCONFIRMED,
        "Unconfirmed",
        "sent but not confirmed in time: do NOT send again; data.tx_hash",
    ),
    (
        code::REFUSED,
        "Refused",
        "the contract refuses the call; nothing changed",
    ),
    (
        code::PAYMENT_FAILED,
        "PaymentFailed",
        "payment not made: no link (farthing_connectPeer) or refused by the partner",
    ),
    (
        code::UNDELIVERED,
        "Undelivered",
        "signed and stored but not acknowledged: do not pay again; repeat with the same idempotency key",
    ),
    (
        code::WITHDRAW_FAILED,
        "WithdrawFailed",
        "withdrawal not made: no link, no answer, or refused for now; the message says when a retry can work",
    ),
    (
        code::NOT_READY,
        "NotReady",
        "the channel cannot take payments yet (not confirmed here, no link, or not confirmed by the partner's node); farthing_waitChannel",
    ),
    (
        code::TOO_MANY_SUBSCRIPTIONS,
        "TooManySubscriptions",
        "the node serves rpc.max_subscriptions subscriptions; unsubscribe some or raise the limit",
    ),
    (
        code::NO_CONTRACTS,
        "NoContracts",
        "the chain RPC answers but the node's contracts are not there",
    ),
    (
        code::PAYMENT_REJECTED,
        "PaymentRejected",
        "a payment presented for a sale is not acceptable; data.reason says why; nothing was spent",
    ),
    (
        code::SCOPE_DENIED,
        "ScopeDenied",
        "the caller's credential lacks the scope this method needs; data.scope names it",
    ),
    (
        code::OVER_LIMIT,
        "OverLimit",
        "the caller's credential does not allow this spend; data.limit names which, data.frees_at when a budget frees",
    ),
    (
        code::CREDENTIAL_INVALID,
        "CredentialInvalid",
        "the credential a WebSocket was opened with expired or was revoked since; reconnect with a valid one",
    ),
    (
        code::INTERNAL,
        "Internal",
        "a bug or unexpected failure; the node's log has the details",
    ),
    (
        -32602,
        "InvalidParamsShape",
        "parameters of the wrong name, count or type (JSON-RPC invalid params)",
    ),
];
