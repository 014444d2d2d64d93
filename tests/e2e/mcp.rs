//! `farthing mcp` as an AI agent meets it: the official MCP SDK client
//! (`tests/interop/mcp-client.mjs`, `@modelcontextprotocol/sdk`) starts the real binary over
//! stdio against node A of a two-node devnet, lists the tools and calls them in order — info,
//! open a channel to B, pay B, channels, balances, fetch a free URL, refuse a URL priced over
//! the limit, close — with exact amounts in the structured results and on-chain after the
//! cooperative close.
//!
//! A fetch paid through the real 402 gateway: `gateway::mcp`.

use std::os::unix::fs::PermissionsExt;

use alloy::primitives::Address;
use farthing_e2e::{Deployed, USDC, farthing_bin, repo_root};
use farthing_http402::x402::{self, PaymentRequired, Requirements, Resource};
use farthing_rpc::FarthingApiClient;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A tiny HTTP server on 127.0.0.1: `/hello` answers 200 "hello"; any other path answers
/// 402 with an x402 `farthing` offer of 0.05 (base units 50000) to `seller` — a price over
/// the test's limit, so nothing may be paid. Answers its base URL.
async fn web(seller: Address, chain_id: u64, token: Address) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let offer = PaymentRequired {
        x402_version: x402::VERSION,
        error: None,
        resource: Resource {
            url: format!("{base}/pricey"),
            ..Resource::default()
        },
        accepts: vec![Requirements {
            scheme: farthing_http402::FARTHING_SCHEME.into(),
            network: farthing_http402::network(chain_id),
            amount: "50000".into(),
            asset: token.to_string(),
            pay_to: seller.to_string(),
            max_timeout_seconds: 60,
            extra: [("challenge".to_owned(), json!("c0ffee"))]
                .into_iter()
                .collect(),
        }],
        extensions: None,
    };
    let header = x402::encode(&offer);
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            let header = header.clone();
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let response = if request.starts_with(b"GET /hello ") {
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello".to_owned()
                } else {
                    format!(
                        "HTTP/1.1 402 Payment Required\r\nPAYMENT-REQUIRED: {header}\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}"
                    )
                };
                let _ = stream.write_all(response.as_bytes()).await;
            });
        }
    });
    base
}

/// Run the SDK client script: `farthing mcp` on `node_url` with `data_dir`, making `calls`.
pub(crate) async fn mcp_client(node_url: &str, data_dir: &std::path::Path, calls: &Value) -> Value {
    let args = json!(["mcp", "--node-url", node_url, "--data-dir", data_dir]);
    mcp_client_with(&args, calls).await.0
}

/// Run the SDK client script: `farthing` with `args` (a JSON array), making `calls`; its
/// output and the server's log (stderr).
pub(crate) async fn mcp_client_with(args: &Value, calls: &Value) -> (Value, String) {
    let root = repo_root();
    assert!(
        root.join("tests/interop/node_modules/@modelcontextprotocol/sdk")
            .exists(),
        "tests/interop/node_modules is missing: run scripts/setup.sh"
    );
    let output = tokio::process::Command::new("node")
        .arg("tests/interop/mcp-client.mjs")
        .current_dir(&root)
        .env("FARTHING_BIN", farthing_bin())
        .env("MCP_ARGS", args.to_string())
        .env("CALLS", calls.to_string())
        .env("CALL_TIMEOUT_MS", "110000")
        .env("TIMEOUT_MS", "600000")
        .env("RUST_LOG", "info")
        .output()
        .await
        .unwrap();
    // The script's and the server's diagnostics (tokio's `output` captures stderr).
    let stderr = String::from_utf8_lossy(&output.stderr);
    eprint!("{stderr}");
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(output.status.success(), "mcp-client failed: {stderr}");
    // The server logs to stderr, plain text: stdout carried nothing but the protocol.
    assert!(stderr.contains("serving MCP on stdio"), "{stderr}");
    assert!(
        !stderr.contains('\u{1b}'),
        "ANSI escapes in the log: {stderr}"
    );
    assert_eq!(stdout.lines().count(), 1, "one JSON line: {stdout}");
    (serde_json::from_str(&stdout).unwrap(), stderr.into_owned())
}

/// The text of a tool result.
pub(crate) fn text(result: &Value) -> &str {
    result["content"][0]["text"].as_str().unwrap()
}

#[tokio::test]
async fn an_agent_pays_and_fetches_through_farthing_mcp() {
    let net = Deployed::start().await;
    let (alice, bob) = (net.party("ALICE"), net.party("BOB"));
    let (alice_start, bob_start) = (alice.balance().await, bob.balance().await);
    let bob_node = net.daemon(2, "bob", &[]);
    let bob_link = format!("{}@{}", bob.address(), bob_node.peers);
    let alice_node = net.daemon(1, "alice", &["--connect", &bob_link]);
    let base = web(bob.address(), net.d.chain_id, net.d.token).await;

    let calls = json!([
        { "name": "info" },
        { "name": "open_channel", "arguments": { "partner": bob.address(), "amount": "5" } },
        { "name": "pay", "arguments": {
            "partner": bob.address(), "amount": "0.25", "memo": "from an agent",
            "idempotency_key": "agent-1" } },
        { "name": "channels" },
        { "name": "balances" },
        { "name": "fetch", "arguments": { "url": format!("{base}/hello"), "max_price": "0.01" } },
        { "name": "fetch", "arguments": { "url": format!("{base}/pricey"), "max_price": "0.01" } },
        { "name": "pay", "arguments": { "channel_id": 1, "amount": "0.0000001" } },
        { "name": "close_channel", "arguments": { "channel_id": 1 } },
    ]);
    let out = mcp_client(&alice_node.url, &net.data_dir("alice"), &calls).await;

    let mut tools: Vec<&str> = out["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    tools.sort_unstable();
    assert_eq!(
        tools,
        [
            "balances",
            "channels",
            "close_channel",
            "fetch",
            "info",
            "open_channel",
            "pay",
            "whoami"
        ]
    );
    let fetch_tool = out["tools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "fetch")
        .unwrap();
    assert_eq!(
        fetch_tool["inputSchema"]["required"],
        json!(["url", "max_price"])
    );

    let results = out["calls"].as_array().unwrap();
    assert_eq!(results.len(), 9, "{out}");
    let [
        info,
        opened,
        paid,
        channels,
        balances,
        free,
        pricey,
        too_precise,
        closed,
    ] = <&[Value; 9]>::try_from(results.as_slice()).unwrap();
    for (i, ok) in [info, opened, paid, channels, balances, free, closed]
        .iter()
        .enumerate()
    {
        assert_eq!(ok["isError"], json!(false), "call {i}: {ok}");
    }

    let info = &info["structuredContent"];
    assert_eq!(info["token_symbol"], "USDC");
    assert_eq!(
        info["address"]
            .as_str()
            .unwrap()
            .parse::<Address>()
            .unwrap(),
        alice.address()
    );

    let opened_view = &opened["structuredContent"];
    assert_eq!(
        (&opened_view["id"], &opened_view["deposit_ours"]),
        (&json!(1), &json!("5"))
    );
    assert_eq!(opened_view["ready"], json!(true), "{opened}");

    let paid_view = &paid["structuredContent"];
    assert_eq!(
        (
            &paid_view["channel_id"],
            &paid_view["nonce"],
            &paid_view["amount"]
        ),
        (&json!(1), &json!(1), &json!("0.25"))
    );
    assert_eq!(paid_view["balance_ours"], "4.75");
    assert!(text(paid).contains("paid 0.25 USDC on channel 1"), "{paid}");

    let listed = channels["structuredContent"]["channels"]
        .as_array()
        .unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (
            &listed[0]["state"],
            &listed[0]["balance_ours"],
            &listed[0]["balance_partner"]
        ),
        (&json!("open"), &json!("4.75"), &json!("0.25"))
    );

    // 100 minted, 5 locked in the channel, 0.25 of it paid.
    let balances = &balances["structuredContent"];
    assert_eq!(
        (&balances["token"], &balances["in_channels"]),
        (&json!("95"), &json!("4.75"))
    );

    // A free URL: fetched, nothing paid.
    let fetched = &free["structuredContent"];
    assert_eq!(
        (&fetched["status"], &fetched["body"], &fetched["paid"]),
        (&json!(200), &json!("hello"), &Value::Null)
    );
    assert!(text(free).contains("nothing paid"), "{free}");

    // A price over the limit: refused, naming the price and the limit; nothing paid.
    assert_eq!(pricey["isError"], json!(true), "{pricey}");
    assert_eq!(pricey["structuredContent"]["status"], 402);
    assert_eq!(pricey["structuredContent"]["paid"], Value::Null);
    let refusal = text(pricey);
    assert!(
        refusal.contains("0.05")
            && refusal.contains("0.01")
            && refusal.contains("Nothing was paid"),
        "{refusal}"
    );

    // The node's own refusal reaches the agent as a tool error with its code and words.
    assert_eq!(too_precise["isError"], json!(true), "{too_precise}");
    assert_eq!(too_precise["structuredContent"]["error"]["code"], 1004);

    // Cooperative close: paid out at once, exactly.
    let closed_view = &closed["structuredContent"];
    assert_eq!(closed_view["state"], "settled", "{closed}");
    assert_eq!(closed_view["sent"], "0.25");
    assert_eq!(alice.balance().await, alice_start - USDC / 4);
    assert_eq!(bob.balance().await, bob_start + USDC / 4);
    drop(bob_node);
}

/// `farthing mcp` started with an agent's credential (pay only, 0.5 a day): the agent reads its
/// limits with `whoami`, pays until the day budget refuses it (an `isError` result naming
/// `budget.day` and when it frees, as RFC 3339 and Unix seconds), pays what is left to the
/// unit, and is refused `open_channel` for want of the `channel` scope.
#[tokio::test]
async fn an_agent_under_a_credential_pays_until_its_day_budget_refuses_it() {
    let net = Deployed::start().await;
    let bob = net.party("BOB");
    let (alice_node, bob_node, channel_id) = net.linked_pair("5", &[]).await;
    let admin = net.rpc("alice", &alice_node);
    let created = admin
        .create_credential(
            Some("mcp agent".into()),
            Some(vec!["pay".into()]),
            None,
            None,
            Some("0.5".into()),
            None,
            None,
            None,
            None,
            None,
            Some(3_600),
        )
        .await
        .unwrap();
    let file = net.dir.path().join("agent.cred");
    std::fs::write(&file, format!("{}\n", created.token)).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();

    let pay = |amount: &str| json!({ "name": "pay", "arguments": { "partner": bob.address(), "amount": amount } });
    let calls = json!([
        { "name": "whoami" },
        pay("0.2"),
        pay("0.2"),
        pay("0.2"),
        pay("0.1"),
        { "name": "open_channel", "arguments": { "partner": bob.address(), "amount": "1" } },
    ]);
    // No data dir: the credential is all the server has.
    let args = json!([
        "mcp",
        "--node-url",
        alice_node.url,
        "--credential-file",
        file
    ]);
    let (out, log) = mcp_client_with(&args, &calls).await;
    // The server's log (at info) never shows the credential, nor do its answers.
    assert!(!log.contains("fth1_"), "{log}");
    assert!(!out.to_string().contains("fth1_"), "{out}");
    let results = out["calls"].as_array().unwrap();
    let [whoami, first, second, over, rest, open] =
        <&[Value; 6]>::try_from(results.as_slice()).unwrap();

    assert_eq!(whoami["isError"], json!(false), "{whoami}");
    assert_eq!(
        whoami["structuredContent"]["id"],
        json!(created.credential.id)
    );
    let limits = text(whoami);
    assert!(
        limits.contains("scopes pay")
            && limits.contains("payment budget per day: 0 USDC spent of 0.5 USDC, 0.5 USDC left"),
        "{limits}"
    );
    for ok in [first, second, rest] {
        assert_eq!(ok["isError"], json!(false), "{ok}");
    }
    assert_eq!(rest["structuredContent"]["balance_ours"], "4.5");

    // Over the day budget: refused, the limit named, when it frees as RFC 3339 and Unix.
    assert_eq!(over["isError"], json!(true), "{over}");
    let error = &over["structuredContent"]["error"];
    assert_eq!(error["code"], 1018);
    assert_eq!(error["limit"], "budget.day");
    let frees_at = error["frees_at"].as_u64().unwrap();
    assert!(
        (started + 86_400 - 5..=started + 86_400 + 300).contains(&frees_at),
        "{frees_at} {started}"
    );
    let utc = error["frees_at_utc"].as_str().unwrap();
    assert!(utc.ends_with('Z') && utc.len() == 20, "{utc}");
    let refusal = text(over);
    assert!(
        refusal.contains("`budget.day`")
            && refusal.contains("0.4 of 0.5 spent")
            && refusal.contains(&format!("{utc} (unix {frees_at})"))
            && refusal.contains("Nothing was paid"),
        "{refusal}"
    );

    // A channel open needs the `channel` scope.
    assert_eq!(open["isError"], json!(true), "{open}");
    assert_eq!(open["structuredContent"]["error"]["code"], 1017);
    assert!(text(open).contains("`channel` scope"), "{open}");

    // Exactly the budget was paid: 0.2 + 0.2 + 0.1.
    let view = admin.get_channel(channel_id).await.unwrap();
    assert_eq!(
        (view.balance_ours.as_str(), view.balance_partner.as_str()),
        ("4.5", "0.5")
    );
    drop(bob_node);
}
