//! The API explains itself: the discovery document lists exactly what the server registers,
//! and every method takes its parameters by the names and in the order the document gives.

use std::collections::BTreeSet;
use std::net::SocketAddr;

use farthing_rpc::FarthingApiServer;
use farthing_rpc::discover::{self, METHODS, Param};
use serde_json::{Value, json};

use crate::fake::{Fake, TOKEN, serve_default};
use crate::raw::{bearer, post};

/// A value of the type a parameter takes.
fn sample(param: &Param) -> Value {
    match param.ty {
        "integer" => json!(1),
        "amount" => json!("1.5"),
        "address" => json!(format!("0x{}", "bb".repeat(20))),
        "peer" => json!(format!("0x{}@127.0.0.1:1", "bb".repeat(20))),
        "boolean" => json!(true),
        "string" => json!("k"),
        "object" => json!({}),
        "hash" => json!(format!("0x{}", "ab".repeat(32))),
        "[string]" => json!(["k"]),
        "[address]" => json!([format!("0x{}", "bb".repeat(20))]),
        "TransferAuthorization" => json!({
            "from": format!("0x{}", "bb".repeat(20)),
            "to": format!("0x{}", "cc".repeat(20)),
            "value": "1000",
            "valid_after": 0,
            "valid_before": 1,
            "nonce": format!("0x{}", "00".repeat(32)),
            "signature": format!("0x{}", "11".repeat(65)),
        }),
        other => panic!("no sample for parameter type {other}"),
    }
}

/// A value the parameter's type does not accept.
fn wrong(param: &Param) -> Value {
    if param.ty.starts_with('[') {
        json!(7)
    } else {
        Value::Array(Vec::new())
    }
}

async fn call(addr: SocketAddr, method: &str, params: Value) -> Value {
    let body = json!({ "jsonrpc": "2.0", "id": 1, "method": method, "params": params });
    let response = post(addr, &bearer(TOKEN), &body.to_string()).await;
    serde_json::from_str(&response.body).unwrap()
}

fn is_invalid_params(answer: &Value) -> bool {
    answer["error"]["code"] == json!(-32602)
}

#[tokio::test]
async fn discovery_lists_every_registered_method_and_nothing_else() {
    let registered: BTreeSet<String> = Fake::new()
        .into_rpc()
        .method_names()
        .map(str::to_owned)
        .collect();
    let documented: BTreeSet<String> = discover::wire_names().into_iter().collect();
    assert_eq!(
        registered, documented,
        "a method the server registers is missing from discover::METHODS, or the other way round"
    );

    let (_fake, addr, _handle) = serve_default().await;
    for name in ["rpc.discover", "farthing_discover"] {
        let answer = call(addr, name, json!([])).await;
        let doc = &answer["result"];
        assert_eq!(doc["openrpc"], "1.2.6", "{answer}");
        let listed: BTreeSet<String> = doc["methods"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["name"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(listed, registered);
    }
}

#[tokio::test]
async fn every_method_takes_the_documented_params_by_name_and_by_position() {
    let (_fake, addr, _handle) = serve_default().await;
    for method in METHODS.iter().filter(|m| m.subscription.is_none()) {
        let name = format!("farthing_{}", method.name);
        let named: serde_json::Map<String, Value> = method
            .params
            .iter()
            .map(|p| (p.name.to_owned(), sample(p)))
            .collect();
        let answer = call(addr, &name, Value::Object(named.clone())).await;
        assert!(!is_invalid_params(&answer), "{name} by name: {answer}");
        let camel: serde_json::Map<String, Value> = method
            .params
            .iter()
            .map(|p| (discover::camel(p.name), sample(p)))
            .collect();
        let answer = call(addr, &name, Value::Object(camel)).await;
        assert!(
            !is_invalid_params(&answer),
            "{name} by camelCase name: {answer}"
        );
        let positional: Vec<Value> = method.params.iter().map(sample).collect();
        let answer = call(addr, &name, Value::Array(positional)).await;
        assert!(!is_invalid_params(&answer), "{name} by position: {answer}");

        for param in method.params {
            // The method reads this name: a value of the wrong type is refused...
            let mut wrong = named.clone();
            wrong.insert(param.name.to_owned(), self::wrong(param));
            let answer = call(addr, &name, Value::Object(wrong)).await;
            assert!(
                is_invalid_params(&answer),
                "{name}.{}: {answer}",
                param.name
            );
            // ...and a required one cannot be left out.
            if param.required {
                let mut missing = named.clone();
                missing.remove(param.name);
                let answer = call(addr, &name, Value::Object(missing)).await;
                let message = answer["error"].to_string();
                assert!(
                    is_invalid_params(&answer) && message.contains(param.name),
                    "{name} without {}: {answer}",
                    param.name
                );
            }
        }
        let mut unknown = named.clone();
        unknown.insert("no_such_param".into(), json!(1));
        let answer = call(addr, &name, Value::Object(unknown)).await;
        assert!(is_invalid_params(&answer), "{name}: {answer}");
        let too_many: Vec<Value> = method.params.iter().map(sample).chain([json!(1)]).collect();
        let answer = call(addr, &name, Value::Array(too_many)).await;
        assert!(is_invalid_params(&answer), "{name}: {answer}");
    }
}

#[tokio::test]
async fn open_channel_and_pay_take_flat_params_and_still_their_old_wrapped_form() {
    let (fake, addr, _handle) = serve_default().await;
    let partner = format!("0x{}", "bb".repeat(20));
    let flat = json!({ "partner": partner, "amount": "2.5", "challenge_period": 600 });
    for params in [
        flat.clone(),
        json!([partner, "2.5", 600]),
        json!({ "params": flat }),
        json!([flat]),
    ] {
        let answer = call(addr, "farthing_openChannel", params.clone()).await;
        let opened = &answer["result"];
        assert_eq!(
            (&opened["deposit_ours"], &opened["challenge_period"]),
            (&json!("2.5"), &json!(600)),
            "{params}: {answer}"
        );
    }
    // The fake answers the memo's length as the nonce: the memo arrived.
    for params in [
        json!({ "channel_id": 4, "amount": "0.001", "memo": "abc" }),
        json!([4, null, "0.001", null, "abc"]),
        json!({ "params": { "channel_id": 4, "amount": "0.001", "memo": "abc" } }),
    ] {
        let answer = call(addr, "farthing_pay", params.clone()).await;
        assert_eq!(
            (&answer["result"]["channel_id"], &answer["result"]["nonce"]),
            (&json!(4), &json!(3)),
            "{params}: {answer}"
        );
    }
    assert_eq!(fake.calls().len(), 7);
}
