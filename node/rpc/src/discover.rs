//! The API described by one table, [`METHODS`]: `farthing_discover` (also `rpc.discover`)
//! serves it as an OpenRPC 1.2 document ([`document`]), and the server checks every call's
//! parameter names and count against it (see `params.rs`), so what the document says is what
//! the server takes. A test checks the table against the methods the server registers.
//!
//! Adding a method: one entry in [`METHODS`] (and its result type in [`SCHEMAS`] if new).

use serde_json::{Map, Value, json};

use crate::code;

/// One method of the API (without the `farthing_` prefix).
#[derive(Debug, Clone, Copy)]
pub struct Method {
    /// The name after `farthing_`, e.g. `"openChannel"`.
    pub name: &'static str,
    /// One line: what it does.
    pub summary: &'static str,
    /// Its parameters, in positional order.
    pub params: &'static [Param],
    /// Its result, in the type language of [`schema`] (a subscription: its items).
    pub result: &'static str,
    /// The [`code`]s it may answer besides 1099 (internal) and -32602 (invalid parameters).
    pub errors: &'static [i32],
    /// For a subscription: (notification method, unsubscribe method), both without prefix.
    pub subscription: Option<(&'static str, &'static str)>,
}

/// One parameter: by name in an object (`snake_case`, or its `camelCase` twin), or by
/// position in an array.
#[derive(Debug, Clone, Copy)]
pub struct Param {
    /// Its name, `snake_case`.
    pub name: &'static str,
    /// Its type, in the type language of [`schema`].
    pub ty: &'static str,
    /// Whether it must be given (an optional one may be left out or `null`).
    pub required: bool,
    /// One line.
    pub summary: &'static str,
}

const fn call(
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

const fn req(name: &'static str, ty: &'static str, summary: &'static str) -> Param {
    Param {
        name,
        ty,
        required: true,
        summary,
    }
}

const fn opt(name: &'static str, ty: &'static str, summary: &'static str) -> Param {
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
        &[1001, 1002, 1003, 1004, 1006, 1007, 1008, 1009, 1014],
    ),
    call(
        "withdraw",
        "Take amount of our balance out of an open channel, co-signed by the partner's node over the link; answered once mined.",
        &[CHANNEL, AMOUNT],
        "ChannelView",
        &[1001, 1002, 1003, 1004, 1006, 1007, 1008, 1009, 1012],
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
        &[1001],
    ),
    call(
        "closeChannel",
        "Close cooperatively over the link (paid out at once); if the partner cannot or will not co-sign, unilaterally with its latest proof (the challenge period runs).",
        &[CHANNEL],
        "ChannelView",
        &[1001, 1006, 1007, 1008, 1009],
    ),
    call(
        "settle",
        "Pay out a unilaterally closed channel once its challenge period is over.",
        &[CHANNEL],
        "ChannelView",
        &[1001, 1002, 1006, 1008, 1009],
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
        &[1001, 1002, 1003, 1004, 1005, 1007, 1010, 1011],
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
        "The most recent payments of a channel, newest last (kept in memory while the node runs).",
        &[
            CHANNEL,
            opt("limit", "integer", "at most this many (default 100)"),
        ],
        "[PaymentView]",
        &[1001],
    ),
    Method {
        subscription: Some(("payment", "unsubscribePayments")),
        ..call(
            "subscribePayments",
            "WebSocket: a notification farthing_payment for every payment made or received, once durable.",
            &[],
            "PaymentView",
            &[],
        )
    },
    Method {
        subscription: Some(("channelUpdate", "unsubscribeChannels")),
        ..call(
            "subscribeChannels",
            "WebSocket: a notification farthing_channelUpdate each time a channel changes on-chain.",
            &[],
            "ChannelUpdate",
            &[],
        )
    },
    call(
        "discover",
        "This document (OpenRPC 1.2); also answered as rpc.discover.",
        &[],
        "object",
        &[],
    ),
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
            ("synced_block", "integer", true),
            ("chain_head", "integer", true),
            ("health", "Health", true),
            ("store_syncs", "integer", true),
            ("store_batches", "integer", true),
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
        "Balances",
        &[
            ("gas", "amount", true),
            ("token", "amount", true),
            ("in_channels", "amount", true),
            ("claimable", "amount", true),
        ],
    ),
    (
        "PaymentView",
        &[
            ("channel_id", "integer", true),
            ("direction", "Direction", true),
            ("nonce", "integer", true),
            ("amount", "amount", true),
            ("at_ms", "integer", true),
            ("memo", "string", false),
            ("carried", "boolean", false),
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
        code::NOT_CONFIRMED_HERE,
        "NotConfirmedHere",
        "the channel is on-chain but not yet confirmed here; farthing_waitChannel",
    ),
    (
        code::NO_CONTRACTS,
        "NoContracts",
        "the chain RPC answers but the node's contracts are not there",
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

/// The method named `name` on the wire (`farthing_…`, or an alias), if the table has it.
pub fn method(name: &str) -> Option<&'static Method> {
    let short = match name.strip_prefix("farthing_") {
        Some(short) => short,
        None => ALIASES.iter().find(|(alias, _)| *alias == name)?.1,
    };
    METHODS.iter().find(|m| m.name == short)
}

/// Every name the server answers to, as the table has them: methods, unsubscribe methods,
/// aliases.
pub fn wire_names() -> Vec<String> {
    let mut names = Vec::new();
    for m in METHODS {
        names.push(format!("farthing_{}", m.name));
        if let Some((_, unsubscribe)) = m.subscription {
            names.push(format!("farthing_{unsubscribe}"));
        }
    }
    names.extend(ALIASES.iter().map(|(alias, _)| (*alias).to_owned()));
    names
}

/// The JSON schema of a type in the table's little language: `integer`, `boolean`, `string`,
/// `amount` (token units), `address`, `peer` (`0xADDRESS@host:port`), `object`, a name from
/// [`SCHEMAS`] or [`ENUMS`], `[T]` (an array of T), `T?` (T or null).
pub fn schema(ty: &str) -> Value {
    if let Some(inner) = ty.strip_suffix('?') {
        return json!({ "oneOf": [schema(inner), { "type": "null" }] });
    }
    if let Some(inner) = ty.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
        return json!({ "type": "array", "items": schema(inner) });
    }
    match ty {
        "integer" => json!({ "type": "integer", "minimum": 0 }),
        "boolean" | "string" | "object" => json!({ "type": ty }),
        "amount" => json!({
            "type": "string",
            "pattern": "^[0-9]+(\\.[0-9]+)?$",
            "description": "an amount in token units (ether for gas), as a decimal string"
        }),
        "address" => json!({ "type": "string", "pattern": "^0x[0-9a-fA-F]{40}$" }),
        "peer" => json!({ "type": "string", "pattern": "^0x[0-9a-fA-F]{40}@[^@]+:[0-9]+$" }),
        name => json!({ "$ref": format!("#/components/schemas/{name}") }),
    }
}

/// `camelCase` of a `snake_case` name (the server accepts both).
pub fn camel(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper = false;
    for c in name.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// The OpenRPC 1.2 document of the API.
pub fn document() -> Value {
    let error_ref = |c: &i32| json!({ "$ref": format!("#/components/errors/{}", error_key(*c)) });
    let common = [code::INTERNAL, -32602];
    let mut methods = Vec::new();
    for m in METHODS {
        let params: Vec<Value> = m
            .params
            .iter()
            .map(|p| {
                json!({
                    "name": p.name,
                    "summary": p.summary,
                    "required": p.required,
                    "schema": schema(p.ty),
                })
            })
            .collect();
        let errors: Vec<Value> = m.errors.iter().chain(&common).map(error_ref).collect();
        let mut entry = json!({
            "name": format!("farthing_{}", m.name),
            "summary": m.summary,
            "paramStructure": "either",
            "params": params,
            "result": { "name": "result", "schema": schema(m.result) },
            "errors": errors,
        });
        if let Some((notification, unsubscribe)) = m.subscription {
            entry["result"] = json!({
                "name": "subscription",
                "summary": "the subscription id; each item arrives as a notification",
                "schema": { "type": "string" },
            });
            entry["x-notification"] = json!({
                "method": format!("farthing_{notification}"),
                "params": { "subscription": { "type": "string" }, "result": schema(m.result) },
            });
            entry["x-unsubscribe"] = json!(format!("farthing_{unsubscribe}"));
            methods.push(entry);
            methods.push(json!({
                "name": format!("farthing_{unsubscribe}"),
                "summary": format!("End a farthing_{} subscription.", m.name),
                "paramStructure": "by-position",
                "params": [{ "name": "subscription", "required": true, "schema": { "type": "string" } }],
                "result": { "name": "result", "schema": { "type": "boolean" } },
            }));
        } else {
            methods.push(entry);
        }
    }
    for (alias, target) in ALIASES {
        if let Some(mut entry) = methods
            .iter()
            .find(|e| e["name"] == format!("farthing_{target}"))
            .cloned()
        {
            entry["name"] = json!(alias);
            methods.push(entry);
        }
    }

    let mut schemas = Map::new();
    for (name, fields) in SCHEMAS {
        let properties: Map<String, Value> = fields
            .iter()
            .map(|(field, ty, _)| ((*field).to_owned(), schema(ty)))
            .collect();
        let required: Vec<&str> = fields
            .iter()
            .filter(|(_, _, always)| *always)
            .map(|(field, _, _)| *field)
            .collect();
        schemas.insert(
            (*name).to_owned(),
            json!({ "type": "object", "properties": properties, "required": required }),
        );
    }
    for (name, values) in ENUMS {
        schemas.insert(
            (*name).to_owned(),
            json!({ "type": "string", "enum": values }),
        );
    }
    let errors: Map<String, Value> = ERRORS
        .iter()
        .map(|(c, name, meaning)| {
            (
                error_key(*c),
                json!({ "code": c, "message": meaning, "data": { "name": name } }),
            )
        })
        .collect();

    json!({
        "openrpc": "1.2.6",
        "info": {
            "title": "Farthing node JSON-RPC API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "JSON-RPC 2.0 over HTTP and WebSocket on one port, with Authorization: Bearer <rpc.token>. \
                Parameters by name (an object; snake_case, camelCase also accepted) or by position (an array, in the order listed); \
                unknown names and extra positions are refused (-32602). Amounts are decimal strings in token units, never base units. \
                Error codes are stable: match on code, never on message.",
        },
        "methods": methods,
        "components": { "schemas": schemas, "errors": errors },
    })
}

fn error_key(code: i32) -> String {
    if code < 0 {
        format!("E_{}", code.unsigned_abs())
    } else {
        format!("E{code}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_code_is_described_once() {
        for c in code::ALL {
            let described = ERRORS.iter().filter(|(e, _, _)| *e == c).count();
            assert_eq!(described, 1, "code {c}");
        }
        for m in METHODS {
            for c in m.errors {
                assert!(
                    code::ALL.contains(c),
                    "{}: code {c} is not an ApiError code",
                    m.name
                );
            }
        }
    }

    #[test]
    fn every_type_the_table_names_is_defined() {
        let defined = |name: &str| {
            SCHEMAS.iter().any(|(n, _)| *n == name) || ENUMS.iter().any(|(n, _)| *n == name)
        };
        let mut types: Vec<&str> = METHODS.iter().map(|m| m.result).collect();
        types.extend(METHODS.iter().flat_map(|m| m.params.iter().map(|p| p.ty)));
        types.extend(
            SCHEMAS
                .iter()
                .flat_map(|(_, f)| f.iter().map(|(_, ty, _)| *ty)),
        );
        let doc = document();
        for ty in types {
            let base = ty
                .trim_end_matches('?')
                .trim_start_matches('[')
                .trim_end_matches(']');
            if base.starts_with(char::is_uppercase) {
                assert!(defined(base), "type {base} is used but not defined");
                assert!(doc["components"]["schemas"][base].is_object(), "{base}");
            }
        }
    }

    /// One value of each result type, every optional field filled.
    fn samples() -> Vec<(&'static str, Value)> {
        use crate::api::*;
        use alloy_primitives::Address;
        let view = ChannelView {
            id: 1,
            state: ChannelState::Closed,
            role: ChannelRole::A,
            partner: Address::ZERO,
            token: Address::ZERO,
            challenge_period: 60,
            deposit_ours: "1".into(),
            deposit_partner: "0".into(),
            balance_ours: "1".into(),
            balance_partner: "0".into(),
            settle_after: Some(5),
            closer: Some(Address::ZERO),
            sent: "0".into(),
            sent_nonce: 0,
            received: "0".into(),
            received_nonce: 0,
        };
        let health = Health {
            warnings: vec!["low gas".into()],
            ..Health::ok()
        };
        let info = NodeInfo {
            address: Address::ZERO,
            chain_id: 1,
            channel_manager: Address::ZERO,
            token: Address::ZERO,
            token_symbol: "USDC".into(),
            token_decimals: 6,
            synced_block: 1,
            chain_head: 1,
            health: health.clone(),
            store_syncs: 0,
            store_batches: 0,
            links: LinkCounts::default(),
        };
        let peer = PeerView {
            address: Address::ZERO,
            dial: Some("127.0.0.1:1".into()),
            linked: true,
            linked_since_ms: Some(1),
            dialled_by: Some("us".into()),
            kept: true,
            failed_dials: 0,
            last_error: Some("refused".into()),
            last_error_at_ms: Some(1),
            next_dial_in_secs: Some(1),
            channels: vec![1],
        };
        let payment = PaymentView {
            channel_id: 1,
            direction: "in".into(),
            nonce: 1,
            amount: "1".into(),
            at_ms: 1,
            memo: Some("m".into()),
            carried: true,
        };
        let value = |v: &dyn erased::Ser| v.value();
        vec![
            ("NodeInfo", value(&info)),
            ("Health", value(&health)),
            ("LinkCounts", value(&LinkCounts::default())),
            ("ChannelView", value(&view)),
            (
                "ClaimResult",
                value(&ClaimResult {
                    claimed: "0".into(),
                }),
            ),
            (
                "PayResult",
                value(&PayResult {
                    channel_id: 1,
                    nonce: 1,
                    amount: "1".into(),
                    balance_ours: "1".into(),
                    balance_partner: "1".into(),
                    repeated: false,
                }),
            ),
            (
                "Balances",
                value(&Balances {
                    gas: "0".into(),
                    token: "0".into(),
                    in_channels: "0".into(),
                    claimable: "0".into(),
                }),
            ),
            ("PaymentView", value(&payment)),
            (
                "ChannelUpdate",
                value(&ChannelUpdate {
                    channel_id: 1,
                    kind: "opened".into(),
                    channel: view.clone(),
                }),
            ),
            ("PeerView", value(&peer)),
            ("Disconnected", value(&Disconnected::default())),
        ]
    }

    mod erased {
        pub(super) trait Ser {
            fn value(&self) -> serde_json::Value;
        }
        impl<T: serde::Serialize> Ser for T {
            fn value(&self) -> serde_json::Value {
                serde_json::to_value(self).unwrap_or_default()
            }
        }
    }

    #[test]
    fn every_result_schema_has_exactly_the_fields_the_type_sends() {
        let samples = samples();
        assert_eq!(samples.len(), SCHEMAS.len(), "a sample for every schema");
        for (name, value) in samples {
            let (_, fields) = SCHEMAS.iter().find(|(n, _)| *n == name).unwrap();
            let mut sent: Vec<&str> = value
                .as_object()
                .unwrap()
                .keys()
                .map(String::as_str)
                .collect();
            let mut documented: Vec<&str> = fields.iter().map(|(f, _, _)| *f).collect();
            sent.sort_unstable();
            documented.sort_unstable();
            assert_eq!(sent, documented, "{name}");
        }
    }

    #[test]
    fn names_are_looked_up_with_their_prefix_or_alias() {
        assert_eq!(method("farthing_topUp").map(|m| m.name), Some("topUp"));
        assert_eq!(method("rpc.discover").map(|m| m.name), Some("discover"));
        assert!(method("topUp").is_none() && method("farthing_nothing").is_none());
        assert_eq!(camel("idempotency_key"), "idempotencyKey");
        assert_eq!(camel("amount"), "amount");
    }

    #[test]
    fn the_document_is_openrpc_with_params_results_and_errors() {
        let doc = document();
        assert_eq!(doc["openrpc"], "1.2.6");
        let methods = doc["methods"].as_array().unwrap();
        let names: Vec<&str> = methods
            .iter()
            .map(|m| m["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, wire_names());
        let pay = &methods[names.iter().position(|n| *n == "farthing_pay").unwrap()];
        let params: Vec<(&str, bool)> = pay["params"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    p["name"].as_str().unwrap(),
                    p["required"].as_bool().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            params,
            [
                ("channel_id", false),
                ("partner", false),
                ("amount", true),
                ("idempotency_key", false),
                ("memo", false)
            ]
        );
        assert_eq!(
            pay["result"]["schema"]["$ref"],
            "#/components/schemas/PayResult"
        );
        assert!(
            pay["errors"]
                .as_array()
                .unwrap()
                .contains(&json!({ "$ref": "#/components/errors/E1011" }))
        );
        assert_eq!(doc["components"]["errors"]["E1011"]["code"], 1011);
        let sub = &methods[names
            .iter()
            .position(|n| *n == "farthing_subscribeChannels")
            .unwrap()];
        assert_eq!(sub["x-notification"]["method"], "farthing_channelUpdate");
        assert_eq!(
            doc["components"]["schemas"]["UpdateKind"]["enum"],
            json!(crate::api::CHANNEL_UPDATE_KINDS)
        );
    }
}
