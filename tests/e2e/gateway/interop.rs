//! Clients nobody here wrote: the official x402 client (`@x402/fetch` + `@x402/evm`, `exact`)
//! and `mppx` (EVM `charge`) pay the gateway on anvil with MockUSDC and get the resource; the
//! seller's on-chain balance rises by exactly the price times the requests; the same payment
//! header sent again is refused; `x402conf` (PyPI `x402-conformance`) passes the 402. The
//! scripts are in `tests/interop/` (pinned, installed by `scripts/setup.sh`).

use std::process::Command;

use alloy::signers::local::PrivateKeySigner;
use farthing_e2e::market::Market;
use farthing_e2e::{USDC, repo_root};
use serde_json::Value;

/// Run `tests/interop/<script>` with `env`; its one JSON line.
fn run_script(script: &str, env: &[(&str, String)]) -> Value {
    let dir = repo_root().join("tests/interop");
    assert!(
        dir.join("node_modules").exists(),
        "tests/interop/node_modules is missing: run scripts/setup.sh (it installs the pinned clients)"
    );
    let output = Command::new("node")
        .arg(dir.join(script))
        .current_dir(&dir)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .expect("node runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{script} failed: {stderr}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("{script}: {e}: {stdout}\n{stderr}"))
}

async fn funded_buyer(market: &Market, usdc: u64) -> PrivateKeySigner {
    let buyer = PrivateKeySigner::random();
    market
        .net
        .devnet
        .mint(&market.net.d, buyer.address(), usdc * USDC)
        .await
        .unwrap();
    buyer
}

fn env(
    market: &Market,
    buyer: &PrivateKeySigner,
    path: &str,
    count: u32,
) -> Vec<(&'static str, String)> {
    vec![
        ("URL", format!("{}{path}", market.url)),
        (
            "BUYER_KEY",
            format!("0x{}", alloy::hex::encode(buyer.to_bytes())),
        ),
        ("CHAIN_ID", market.net.d.chain_id.to_string()),
        ("ASSET", market.net.d.token.to_string()),
        ("MAX_ATOMIC", "5000".into()),
        ("COUNT", count.to_string()),
    ]
}

async fn token_balance(market: &Market, who: alloy::primitives::Address) -> u64 {
    market
        .net
        .party("BOB")
        .token
        .balanceOf(who)
        .call()
        .await
        .unwrap()
        .to()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_official_x402_client_pays_exact_and_its_replay_is_refused() {
    let market = Market::open(|_| {}).await;
    let buyer = funded_buyer(&market, 10).await;
    let bob = market.net.devnet.key("BOB").address();
    let out = run_script("x402-pay.mjs", &env(&market, &buyer, "/data", 3));
    let results = out["results"].as_array().unwrap();
    assert_eq!(results.len(), 3, "{out}");
    let mut transactions = Vec::new();
    for r in results {
        assert_eq!(r["status"], 200, "{r}");
        assert!(
            r["body"].as_str().unwrap().contains("\"paid\":\"0.002\""),
            "{r}"
        );
        let response = &r["paymentResponse"];
        assert_eq!(response["success"], true, "{r}");
        assert_eq!(response["amount"], "2000");
        transactions.push(response["transaction"].as_str().unwrap().to_owned());
    }
    let distinct: std::collections::BTreeSet<_> = transactions.iter().collect();
    assert_eq!(distinct.len(), 3, "one transfer per request");
    // The same PAYMENT-SIGNATURE again: refused, nothing served, nothing moved.
    assert_eq!(out["replay"]["status"], 402, "{out}");
    assert_eq!(market.upstream.served("/data"), 3);
    assert_eq!(token_balance(&market, bob).await, 3 * 2_000);
    assert_eq!(
        token_balance(&market, buyer.address()).await,
        10 * USDC - 3 * 2_000
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn mppx_pays_with_its_evm_charge_and_its_replay_is_refused() {
    let market = Market::open(|_| {}).await;
    let buyer = funded_buyer(&market, 10).await;
    let bob = market.net.devnet.key("BOB").address();
    let out = run_script("mppx-pay.mjs", &env(&market, &buyer, "/articles/7", 2));
    let results = out["results"].as_array().unwrap();
    assert_eq!(results.len(), 2, "{out}");
    for r in results {
        assert_eq!(r["status"], 200, "{r}");
        assert_eq!(r["body"], "article 7 (paid 0.001)");
        assert_eq!(r["receipt"]["status"], "success", "{r}");
        assert_eq!(r["receipt"]["method"], "evm");
        assert!(
            r["authorization"].as_str().unwrap().starts_with("Payment "),
            "paid over MPP: {r}"
        );
    }
    assert_eq!(out["replay"]["status"], 402, "{out}");
    assert_eq!(market.upstream.served("/articles/7"), 2);
    assert_eq!(token_balance(&market, bob).await, 2 * 1_000);
    assert_eq!(
        token_balance(&market, buyer.address()).await,
        10 * USDC - 2 * 1_000
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn x402_conformance_passes_the_402() {
    let market = Market::open(|_| {}).await;
    let x402conf = repo_root().join("tests/interop/.venv/bin/x402conf");
    assert!(
        x402conf.exists(),
        "{} is missing: run scripts/setup.sh",
        x402conf.display()
    );
    for path in ["/data", "/articles/1"] {
        let output = Command::new(&x402conf)
            .args([
                "resource",
                "--fail-on-error",
                &format!("{}{path}", market.url),
            ])
            .output()
            .unwrap();
        let report = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "x402conf failed on {path}: {report}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let report: Value = serde_json::from_str(report.trim()).unwrap();
        let checks = report["results"][0]["checks"].as_array().unwrap();
        assert!(checks.len() >= 7, "{report}");
        assert!(checks.iter().all(|c| c["pass"] == true), "{report}");
    }
}
