//! The `farthing` scheme with Farthing's own buyer: a first fetch opens a channel to the seller
//! its 402 names, then 10,000 requests from 64 concurrent callers on that one channel — every
//! response served exactly once, the seller's earnings the sum of the prices to the unit, paid
//! up front once the route is known, and the channel closed cooperatively with exact payouts.

use std::sync::Arc;

use farthing_e2e::USDC;
use farthing_e2e::market::{ARTICLE_PRICE, Market};
use farthing_rpc::{FarthingApiClient, FetchResult};

const REQUESTS: u64 = 10_000;
const CALLERS: u64 = 64;
/// 0.001 in base units.
const PRICE: u64 = 1_000;

async fn fetch(client: &farthing_rpc::WsClient, url: String) -> FetchResult {
    client
        .fetch(url, "0.01".into(), None, None, None, Some("20".into()))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_thousand_paid_requests_from_64_callers_on_one_channel_then_an_exact_close() {
    let market = Market::open(|_| {}).await;
    let alice = Arc::new(market.alice_ws().await);
    let (alice_address, bob_address) = (
        market.net.devnet.key("ALICE").address(),
        market.net.devnet.key("BOB").address(),
    );

    // First contact: no channel to bob; the 402 says where bob's node is, so alice's node
    // links, opens one (funded with the 20 asked), waits until it is ready, pays and fetches again.
    let first = fetch(&alice, format!("{}/articles/0", market.url)).await;
    assert_eq!(first.status, 200, "{first:?}");
    assert_eq!(first.body, format!("article 0 (paid {ARTICLE_PRICE})"));
    let paid = first.paid.clone().expect("paid");
    let channel = paid.opened.expect("a channel opened for it");
    assert_eq!(
        (paid.amount.as_str(), paid.pay_to),
        (ARTICLE_PRICE, bob_address)
    );
    assert_eq!(paid.nonce, 1);
    let receipt = first.headers.get("payment-response").expect("a receipt");
    let receipt: farthing_http402::x402::SettleResponse =
        farthing_http402::x402::decode(receipt.as_bytes(), "SettleResponse").unwrap();
    assert!(receipt.success);
    assert_eq!(receipt.channel_id, Some(channel));
    assert_eq!(receipt.cumulative.as_deref(), Some("1000"));

    // 64 callers share the rest; each request is its own article, served once.
    let next = Arc::new(std::sync::atomic::AtomicU64::new(1));
    let mut callers = Vec::new();
    for _ in 0..CALLERS {
        let (alice, next, base) = (alice.clone(), next.clone(), market.url.clone());
        callers.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= REQUESTS {
                    return;
                }
                let got = fetch(&alice, format!("{base}/articles/{i}")).await;
                assert_eq!(got.status, 200, "article {i}: {got:?}");
                assert_eq!(got.body, format!("article {i} (paid {ARTICLE_PRICE})"));
                let paid = got.paid.expect("paid");
                assert_eq!(
                    (paid.channel_id, paid.amount.as_str()),
                    (channel, ARTICLE_PRICE)
                );
            }
        }));
    }
    for caller in callers {
        caller.await.unwrap();
    }

    // Every article served exactly once, nothing else reached the API.
    let served = market.upstream.all_served();
    assert_eq!(served.len() as u64, REQUESTS);
    assert!(served.values().all(|n| *n == 1), "an article served twice");
    assert_eq!(
        market
            .upstream
            .hits
            .load(std::sync::atomic::Ordering::Relaxed),
        REQUESTS
    );
    assert_eq!(
        market
            .gateway
            .stats
            .paid
            .load(std::sync::atomic::Ordering::Relaxed),
        REQUESTS
    );
    // Once the route was known, requests paid up front: far fewer 402s than requests.
    let challenged = market
        .gateway
        .stats
        .challenged
        .load(std::sync::atomic::Ordering::Relaxed);
    assert!(challenged <= CALLERS + 1, "{challenged} unpaid round trips");

    // Bob's node received exactly the sum of the prices, one proof per payment or fewer.
    let bob_rpc = market.bob_rpc();
    let at_bob = bob_rpc.get_channel(channel).await.unwrap();
    assert_eq!(at_bob.received, "10");
    // The history names what each payment bought.
    let page = bob_rpc
        .list_payments(Some(channel), Some(5), None)
        .await
        .unwrap();
    for p in &page.payments {
        let memo = p.memo.as_deref().unwrap_or("");
        assert!(
            memo.starts_with("402:") && memo.contains(&format!(" GET {}/articles/", market.url)),
            "{memo}"
        );
    }

    // Cooperative close: on-chain payouts exact to the base unit.
    let alice_rpc = market.alice_rpc();
    let closed = alice_rpc.close_channel(channel).await.unwrap();
    assert_eq!(
        serde_json::to_value(closed.state).unwrap(),
        serde_json::json!("settled")
    );
    let (alice_party, bob_party) = (market.net.party("ALICE"), market.net.party("BOB"));
    assert_eq!(bob_party.balance().await, REQUESTS * PRICE);
    assert_eq!(alice_party.balance().await, 100 * USDC - REQUESTS * PRICE);
    assert_eq!(
        (alice_party.address(), bob_party.address()),
        (alice_address, bob_address)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_buyer_never_locks_more_than_its_ceiling_with_one_seller() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("alice.toml");
    std::fs::write(&config, "[buyer]\nmax_deposit = \"0.003\"\n").unwrap();
    let market = Market::open_with(&["--config", config.to_str().unwrap()], |_| {}).await;
    let alice = market.alice_rpc();
    let get = async |i: u32| {
        alice
            .fetch(
                format!("{}/articles/{i}", market.url),
                "0.01".into(),
                None,
                None,
                None,
                Some("0.002".into()),
            )
            .await
    };
    // A channel of 0.002 pays two articles; a third would need a second channel of 0.002,
    // and 0.004 locked with bob is over the ceiling of 0.003: refused, nothing paid.
    assert_eq!(get(1).await.unwrap().status, 200);
    assert_eq!(get(2).await.unwrap().status, 200);
    let refused = get(3).await.expect_err("over the ceiling");
    let message = refused.to_string();
    assert!(
        message.contains("0.002 is locked with it already")
            && message.contains("max_deposit (0.003)"),
        "{message}"
    );
    assert_eq!(market.upstream.served("/articles/3"), 0);
    assert_eq!(
        alice.list_channels().await.unwrap().len(),
        1,
        "no second channel"
    );
}
