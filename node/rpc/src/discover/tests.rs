//! The table against itself and the types it describes.
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
        token_name: "USD Coin".into(),
        token_version: "2".into(),
        synced_block: 1,
        chain_head: 1,
        health: health.clone(),
        store_syncs: 0,
        store_batches: 0,
        store: String::new(),
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
        seq: 1,
        channel_id: 1,
        direction: "in".into(),
        nonce: 1,
        amount: "1".into(),
        at_ms: 1,
        memo: Some("m".into()),
        key: Some("k".into()),
        carried: true,
        credential: Some("cid_00".into()),
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
        ("PaymentView", value(&payment.clone())),
        (
            "PaymentPage",
            value(&crate::PaymentPage {
                payments: vec![payment],
                next: 1,
                more: false,
            }),
        ),
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
        (
            "Redeemed",
            value(&crate::Redeemed {
                channel_id: 1,
                nonce: 1,
                amount: "1".into(),
                payer: Default::default(),
                received_total: "1".into(),
            }),
        ),
        (
            "TransferAuthorization",
            value(&crate::TransferAuthorization {
                from: Default::default(),
                to: Default::default(),
                value: "1".into(),
                valid_after: 0,
                valid_before: 1,
                nonce: Default::default(),
                signature: Default::default(),
            }),
        ),
        (
            "Collected",
            value(&crate::Collected {
                tx_hash: Default::default(),
                payer: Default::default(),
                amount: "1".into(),
            }),
        ),
        ("FetchPaid", value(&fetch_paid())),
        (
            "FetchResult",
            value(&crate::FetchResult {
                status: 200,
                headers: Default::default(),
                body: String::new(),
                paid: Some(fetch_paid()),
                unpaid_reason: Some("r".into()),
            }),
        ),
        ("CreatedCredential", value(&created())),
        ("CredentialView", value(&created().credential)),
        ("BudgetView", value(&created().credential.budgets[0])),
        (
            "Revoked",
            value(&crate::Revoked {
                id: "cid_00".into(),
                revoked_at: 1,
            }),
        ),
    ]
}

fn created() -> crate::CreatedCredential {
    crate::CreatedCredential {
        token: "fth1_x".into(),
        credential: crate::CredentialView {
            id: Some("cid_00".into()),
            admin: false,
            label: Some("agent".into()),
            parent: Some("cid_01".into()),
            created: Some(1),
            caveats: vec!["scope=pay".into()],
            scopes: Some(vec!["pay".into()]),
            expires: Some(2),
            max_payment: Some("1".into()),
            peers: Some(vec![Default::default()]),
            origins: Some(vec!["https://a.example".into()]),
            budgets: vec![crate::BudgetView {
                kind: "pay".into(),
                period: "day".into(),
                limit: "10".into(),
                spent: "1".into(),
                remaining: "9".into(),
                counted_under: "cid_00".into(),
            }],
            revoked: false,
        },
    }
}

fn fetch_paid() -> crate::FetchPaid {
    crate::FetchPaid {
        scheme: "farthing".into(),
        amount: "1".into(),
        pay_to: Default::default(),
        channel_id: 1,
        nonce: 1,
        challenge: "c".into(),
        opened: Some(1),
    }
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
