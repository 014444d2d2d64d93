//! The API explains itself, on two real `farthing node` processes over raw HTTP: discovery
//! lists every method the node serves; one parameter style (by name, by position, and the old
//! wrapped form where it existed) opens, tops up and pays; the peers a node knows, links it
//! keeps, a bogus address's error, and `disconnectPeer` stopping its redial; refusals in token
//! units; the CLI's `peers` and `disconnect`.

use std::collections::BTreeSet;
use std::process::Command;

use farthing_e2e::{Deployed, PATIENCE, done_if, eventually, farthing_bin};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One JSON-RPC call over a fresh HTTP connection; the whole response object.
async fn call(url: &str, token: &str, method: &str, params: Value) -> Value {
    let addr = url.trim_start_matches("http://");
    let body = json!({ "jsonrpc": "2.0", "id": 1, "method": method, "params": params }).to_string();
    let request = format!(
        "POST / HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nAuthorization: Bearer {token}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let (_, body) = response.split_once("\r\n\r\n").unwrap();
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {response}"))
}

/// The `result` of a call that must succeed.
async fn ok(url: &str, token: &str, method: &str, params: Value) -> Value {
    let answer = call(url, token, method, params.clone()).await;
    assert!(answer.get("error").is_none(), "{method} {params}: {answer}");
    answer["result"].clone()
}

/// The peer `address` in `farthing_listPeers`, if listed.
fn peer<'a>(peers: &'a Value, address: &str) -> Option<&'a Value> {
    peers
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["address"].as_str().unwrap().eq_ignore_ascii_case(address))
}

#[tokio::test]
async fn the_api_explains_itself_on_real_nodes() {
    let net = Deployed::start().await;
    let (alice, bob) = (net.party("ALICE"), net.party("BOB"));
    let bob_node = net.daemon(2, "bob", &[]);
    let bob_link = format!("{}@{}", bob.address(), bob_node.peers);
    let alice_node = net.daemon(1, "alice", &["--connect", &bob_link]);
    let token = |who: &str| farthing_rpc::read_token(&net.data_dir(who)).unwrap();
    let (a, a_token) = (alice_node.url.as_str(), token("alice"));
    let (b, b_token) = (bob_node.url.as_str(), token("bob"));
    let bob_address = bob.address().to_string();
    let alice_address = alice.address().to_string();

    // Discovery: every method the node serves, by either name, and nothing else.
    let documented: BTreeSet<String> = farthing_rpc::discover::wire_names().into_iter().collect();
    for name in ["rpc.discover", "farthing_discover"] {
        let doc = ok(a, &a_token, name, json!([])).await;
        assert_eq!(doc["openrpc"], "1.2.6");
        let listed: BTreeSet<String> = doc["methods"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["name"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(listed, documented, "{name}");
    }
    // Every documented method is served (an unknown one answers -32601, not these).
    for name in &documented {
        let answer = call(a, &a_token, name, json!({ "no_such_param": 1 })).await;
        assert_ne!(answer["error"]["code"], json!(-32601), "{name}: {answer}");
    }

    // One parameter style: flat by name, by position (camelCase names too), the old wrapper.
    let opened = ok(
        a,
        &a_token,
        "farthing_openChannel",
        json!({ "partner": bob_address, "amount": "20", "challenge_period": 600 }),
    )
    .await;
    assert_eq!(
        (&opened["id"], &opened["deposit_ours"]),
        (&json!(1), &json!("20"))
    );
    ok(a, &a_token, "farthing_topUp", json!([1, "1.5"])).await;
    let topped = ok(
        a,
        &a_token,
        "farthing_topUp",
        json!({ "channelId": 1, "amount": "0.5" }),
    )
    .await;
    assert_eq!(topped["deposit_ours"], "22");
    eventually(PATIENCE, "bob's node to see the channel", async || {
        call(
            b,
            &b_token,
            "farthing_getChannel",
            json!({ "channel_id": 1 }),
        )
        .await["result"]["deposit_partner"]
            == json!("22")
    })
    .await;
    let paid = eventually(PATIENCE, "a first payment once linked", async || {
        let answer = call(
            a,
            &a_token,
            "farthing_pay",
            json!({ "channel_id": 1, "amount": "0.25", "memo": "by name" }),
        )
        .await;
        done_if(answer.get("result").is_some(), answer)
    })
    .await;
    assert_eq!(paid["result"]["nonce"], 1);
    let by_position = ok(
        a,
        &a_token,
        "farthing_pay",
        json!([null, bob_address, "0.25"]),
    )
    .await;
    assert_eq!(by_position["nonce"], 2);
    let wrapped = ok(
        a,
        &a_token,
        "farthing_pay",
        json!({ "params": { "channel_id": 1, "amount": "0.25" } }),
    )
    .await;
    assert_eq!(wrapped["nonce"], 3);
    // A misspelt name is refused, not ignored: nothing is paid.
    let typo = call(
        a,
        &a_token,
        "farthing_pay",
        json!({ "channel_id": 1, "amount": "0.25", "idempotencykey": "k" }),
    )
    .await;
    assert_eq!(typo["error"]["code"], -32602, "{typo}");
    assert!(
        typo["error"]["message"]
            .as_str()
            .unwrap()
            .contains("idempotency_key?")
    );
    // Refusals speak token units.
    ok(
        a,
        &a_token,
        "farthing_pay",
        json!({ "channel_id": 1, "amount": "0.25", "idempotency_key": "k" }),
    )
    .await;
    let reused = call(
        a,
        &a_token,
        "farthing_pay",
        json!({ "channel_id": 1, "amount": "0.5", "idempotency_key": "k" }),
    )
    .await;
    let message = reused["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("a payment of 0.25 on channel 1"),
        "{message}"
    );
    assert!(!message.contains("base units"), "{message}");
    let at_bob = ok(b, &b_token, "farthing_getChannel", json!([1])).await;
    assert_eq!(
        at_bob["received"], "1",
        "four payments of 0.25, the typo paid nothing"
    );

    // Peers: alice's node keeps and dialled the link to bob's; bob's sees alice dial in.
    let peers = ok(a, &a_token, "farthing_listPeers", json!([])).await;
    let seen = peer(&peers, &bob_address).unwrap();
    assert_eq!(
        (
            &seen["linked"],
            &seen["kept"],
            &seen["dialled_by"],
            &seen["channels"]
        ),
        (&json!(true), &json!(true), &json!("us"), &json!([1])),
        "{peers}"
    );
    assert_eq!(seen["dial"], json!(bob_node.peers));
    let peers = ok(b, &b_token, "farthing_listPeers", json!([])).await;
    let seen = peer(&peers, &alice_address).unwrap();
    assert_eq!(
        (&seen["linked"], &seen["kept"], &seen["dialled_by"]),
        (&json!(true), &json!(false), &json!("them")),
        "{peers}"
    );
    let links = ok(a, &a_token, "farthing_info", json!([])).await["links"].clone();
    assert_eq!(links, json!({ "up": 1, "kept": 1, "down": 0 }));

    // A bogus address: kept, never linked, its error shown; disconnect + forget ends its
    // redial (the count of running redials drops) and the node forgets it.
    let nobody = format!("0x{}", "42".repeat(20));
    let bogus = format!("{nobody}@127.0.0.1:1");
    assert_eq!(
        ok(a, &a_token, "farthing_connectPeer", json!([bogus])).await,
        true
    );
    let failing = eventually(PATIENCE, "the bogus address's dial error", async || {
        let peers = call(a, &a_token, "farthing_listPeers", json!([])).await;
        let entry = peer(&peers["result"], &nobody).cloned().unwrap_or_default();
        done_if(entry["last_error"].is_string(), entry)
    })
    .await;
    assert_eq!(
        (&failing["linked"], &failing["kept"], &failing["dial"]),
        (&json!(false), &json!(true), &json!("127.0.0.1:1"))
    );
    assert!(failing["failed_dials"].as_u64().unwrap() >= 1, "{failing}");
    assert!(
        failing["last_error"]
            .as_str()
            .unwrap()
            .contains("cannot reach"),
        "{failing}"
    );
    let links = ok(a, &a_token, "farthing_info", json!([])).await["links"].clone();
    assert_eq!(
        (&links["kept"], &links["down"]),
        (&json!(2), &json!(1)),
        "{links}"
    );
    let done = ok(
        a,
        &a_token,
        "farthing_disconnectPeer",
        json!({ "peer": nobody, "forget": true }),
    )
    .await;
    assert_eq!(
        done,
        json!({ "was_linked": false, "was_kept": true, "forgotten": true })
    );
    eventually(PATIENCE, "the bogus address's redial to end", async || {
        let links = call(a, &a_token, "farthing_info", json!([])).await["result"]["links"].clone();
        done_if(links == json!({ "up": 1, "kept": 1, "down": 0 }), links)
    })
    .await;
    let peers = ok(a, &a_token, "farthing_listPeers", json!([])).await;
    assert!(peer(&peers, &nobody).is_none(), "forgotten: {peers}");

    // The CLI: `farthing peers`, `farthing disconnect` (without --forget: the address stays,
    // no longer redialled), then `connectPeer` links again.
    let farthing = |args: &[&str]| {
        let output = Command::new(farthing_bin())
            .arg("--data-dir")
            .arg(net.data_dir("alice"))
            .args(["--node-url", a, "--json"])
            .args(args)
            .output()
            .unwrap();
        assert!(output.status.success(), "{args:?}: {output:?}");
        serde_json::from_slice::<Value>(&output.stdout).unwrap()
    };
    let listed = farthing(&["peers"]);
    assert_eq!(peer(&listed, &bob_address).unwrap()["linked"], true);
    let dropped = farthing(&["disconnect", &bob_address]);
    assert_eq!(
        dropped,
        json!({ "was_linked": true, "was_kept": true, "forgotten": false })
    );
    let peers = ok(a, &a_token, "farthing_listPeers", json!([])).await;
    let seen = peer(&peers, &bob_address).unwrap();
    assert_eq!(
        (&seen["kept"], &seen["dial"]),
        (&json!(false), &json!(bob_node.peers)),
        "{peers}"
    );
    ok(
        a,
        &a_token,
        "farthing_connectPeer",
        json!({ "peer": bob_link }),
    )
    .await;
    eventually(
        PATIENCE,
        "alice's node to link to bob's again",
        async || {
            let links =
                call(a, &a_token, "farthing_info", json!([])).await["result"]["links"].clone();
            done_if(links == json!({ "up": 1, "kept": 1, "down": 0 }), links)
        },
    )
    .await;
    assert!(alice_node.stop().success() && bob_node.stop().success());
}
