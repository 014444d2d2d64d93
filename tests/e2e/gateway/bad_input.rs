//! Hostile and broken input at the gateway: every case gets the right status, and nobody
//! loses money — a refused payment is not taken, a taken one that was not served is given back.

use std::sync::atomic::Ordering::Relaxed;

use farthing_e2e::market::{ARTICLE_PRICE, Market};
use farthing_http402::x402::{
    self, FarthingPayload, PaymentPayload, PaymentRequired, Requirements, SettleResponse,
};
use farthing_http402::{Bound, ChallengeKey};
use farthing_rpc::{FarthingApiClient, PayParams};

use super::{Answer, Raw};

/// A market where alice's node already has a channel to bob (opened by a first paid fetch).
async fn market_with_channel() -> (Market, u64) {
    let market = Market::open(|_| {}).await;
    let first = market
        .alice_rpc()
        .fetch(
            format!("{}/articles/0", market.url),
            "0.01".into(),
            None,
            None,
            None,
            Some("5".into()),
        )
        .await
        .unwrap();
    assert_eq!(first.status, 200, "{first:?}");
    let channel = first.paid.unwrap().opened.unwrap();
    (market, channel)
}

/// The `farthing` offer of a fresh 402 for `path`.
async fn offer(raw: &Raw, market: &Market, path: &str) -> Requirements {
    let answer = raw.get(&format!("{}{path}", market.url), &[]).await;
    assert_eq!(answer.status, 402, "{answer:?}");
    let required: PaymentRequired =
        x402::decode(answer.header("payment-required").unwrap().as_bytes(), "402").unwrap();
    required
        .accepts
        .into_iter()
        .find(|r| r.scheme == "farthing")
        .unwrap()
}

fn challenge(offer: &Requirements) -> String {
    offer.extra_str("challenge").unwrap().to_owned()
}

/// Alice pays `amount` to bob with the memo of `challenge`.
async fn pay_for(market: &Market, challenge: &str, amount: &str) -> farthing_rpc::PayResult {
    PayParams {
        channel_id: None,
        partner: Some(market.net.devnet.key("BOB").address()),
        amount: amount.into(),
        idempotency_key: None,
        memo: Some(format!("402:{challenge}")),
    }
    .call(&market.alice_rpc())
    .await
    .unwrap()
}

fn header(offer: &Requirements, paid_challenge: &str, paid: &farthing_rpc::PayResult) -> String {
    x402::encode(&PaymentPayload {
        x402_version: 2,
        resource: None,
        accepted: offer.clone(),
        payload: serde_json::to_value(FarthingPayload {
            challenge: paid_challenge.into(),
            channel_id: paid.channel_id,
            nonce: paid.nonce,
        })
        .unwrap(),
        extensions: None,
    })
}

fn reason(answer: &Answer) -> String {
    let response: SettleResponse =
        x402::decode(answer.header("payment-response").unwrap().as_bytes(), "r").unwrap();
    assert!(!response.success);
    response.error_reason.unwrap()
}

async fn alice_balance(market: &Market, channel: u64) -> String {
    market
        .alice_rpc()
        .get_channel(channel)
        .await
        .unwrap()
        .balance_ours
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_forged_expired_replayed_and_short_payments_are_refused() {
    let (market, channel) = market_with_channel().await;
    let (raw, url) = (Raw::new(), format!("{}/articles/1", market.url));
    let get = async |headers: &[(&str, &str)]| raw.get(&url, headers).await;

    // Malformed headers: 400, with what was wrong.
    for bad in ["%%% not base64", "eyJub3QiOiAianNvbiBvZiBhIHBheW1lbnQifQ=="] {
        let answer = get(&[("PAYMENT-SIGNATURE", bad)]).await;
        assert_eq!(answer.status, 400, "{answer:?}");
        assert_eq!(reason(&answer), "invalid_payload");
    }
    let huge = "A".repeat(20_000);
    assert_eq!(get(&[("PAYMENT-SIGNATURE", &huge)]).await.status, 400);
    let answer = get(&[("Authorization", "Payment !!!")]).await;
    assert_eq!(answer.status, 400, "{answer:?}");

    // A real payment for offer A, presented in every wrong way, then rightly, then again.
    let a = offer(&raw, &market, "/articles/1").await;
    let paid = pay_for(&market, &challenge(&a), ARTICLE_PRICE).await;
    let right = header(&a, &challenge(&a), &paid);
    let mut v1: PaymentPayload = x402::decode(right.as_bytes(), "p").unwrap();
    v1.x402_version = 1;
    let answer = get(&[("PAYMENT-SIGNATURE", &x402::encode(&v1))]).await;
    assert_eq!(
        (answer.status, reason(&answer).as_str()),
        (402, "invalid_x402_version")
    );
    let mut scheme = v1.clone();
    scheme.x402_version = 2;
    scheme.accepted.scheme = "upto".into();
    let answer = get(&[("PAYMENT-SIGNATURE", &x402::encode(&scheme))]).await;
    assert_eq!(
        (answer.status, reason(&answer).as_str()),
        (402, "unsupported_scheme")
    );
    // Another seller's offer (pay to someone else).
    let mut elsewhere = a.clone();
    elsewhere.pay_to = market.net.devnet.key("ALICE").address().to_string();
    let answer = get(&[(
        "PAYMENT-SIGNATURE",
        &header(&elsewhere, &challenge(&a), &paid),
    )])
    .await;
    assert_eq!(
        (answer.status, reason(&answer).as_str()),
        (402, "invalid_payment_requirements")
    );
    // A forged challenge (one letter changed), and a cheaper price under the real one.
    let mut forged = a.clone();
    let mut id = challenge(&a).into_bytes();
    id[30] = if id[30] == b'A' { b'B' } else { b'A' };
    let forged_id = String::from_utf8(id).unwrap();
    forged
        .extra
        .insert("challenge".into(), forged_id.clone().into());
    let answer = get(&[("PAYMENT-SIGNATURE", &header(&forged, &forged_id, &paid))]).await;
    assert_eq!(
        (answer.status, reason(&answer).as_str()),
        (402, "invalid_challenge")
    );
    let mut cheaper = a.clone();
    cheaper.amount = "1".into();
    let answer = get(&[(
        "PAYMENT-SIGNATURE",
        &header(&cheaper, &challenge(&a), &paid),
    )])
    .await;
    assert_eq!(
        (answer.status, reason(&answer).as_str()),
        (402, "invalid_challenge")
    );
    // An expired challenge, issued with the gateway's own key (its file in bob's data dir).
    let key: [u8; 32] = std::fs::read(market.net.data_dir("bob").join("gateway.secret"))
        .unwrap()
        .try_into()
        .unwrap();
    let bound = Bound {
        kind: "farthing",
        method: "GET",
        path: "/articles/*",
        amount: 1_000,
    };
    let expired_id = ChallengeKey::from_bytes(key).issue(&bound, 1);
    let mut expired = a.clone();
    expired
        .extra
        .insert("challenge".into(), expired_id.clone().into());
    let answer = get(&[("PAYMENT-SIGNATURE", &header(&expired, &expired_id, &paid))]).await;
    assert_eq!(
        (answer.status, reason(&answer).as_str()),
        (402, "challenge_expired")
    );
    // A challenge paid in time but presented after its expiry is honoured (bob's node knows
    // when the payment arrived).
    let soon = unix_now() + 3;
    let in_time_id = ChallengeKey::from_bytes(key).issue(&bound, soon);
    let mut in_time = a.clone();
    in_time
        .extra
        .insert("challenge".into(), in_time_id.clone().into());
    let paid_in_time = pay_for(&market, &in_time_id, ARTICLE_PRICE).await;
    farthing_e2e::eventually(
        farthing_e2e::PATIENCE,
        "the challenge to expire",
        async || unix_now() > soon,
    )
    .await;
    let late_url = format!("{}/articles/3", market.url);
    let answer = raw
        .get(
            &late_url,
            &[(
                "PAYMENT-SIGNATURE",
                &header(&in_time, &in_time_id, &paid_in_time),
            )],
        )
        .await;
    assert_eq!(answer.status, 200, "{answer:?}");
    // Offer B, genuine but unpaid, claimed with A's payment: B was not paid.
    let b = offer(&raw, &market, "/articles/1").await;
    let answer = get(&[("PAYMENT-SIGNATURE", &header(&b, &challenge(&b), &paid))]).await;
    assert_eq!((answer.status, reason(&answer).as_str()), (402, "unpaid"));
    assert_eq!(
        market.upstream.served("/articles/1"),
        0,
        "nothing served so far"
    );

    // Rightly: served once; the same header again is refused.
    let answer = get(&[("PAYMENT-SIGNATURE", &right)]).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.body, "article 1 (paid 0.001)");
    let answer = get(&[("PAYMENT-SIGNATURE", &right)]).await;
    assert_eq!((answer.status, reason(&answer).as_str()), (402, "redeemed"));
    assert_eq!(market.upstream.served("/articles/1"), 1);

    // An increase below the price is refused, and stays at bob (not redeemed, in history).
    let c = offer(&raw, &market, "/articles/2").await;
    let short = pay_for(&market, &challenge(&c), "0.0005").await;
    let answer = get_path(
        &raw,
        &market,
        "/articles/2",
        &header(&c, &challenge(&c), &short),
    )
    .await;
    assert_eq!((answer.status, reason(&answer).as_str()), (402, "short"));
    assert_eq!(market.upstream.served("/articles/2"), 0);
    let _ = channel;
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

async fn get_path(raw: &Raw, market: &Market, path: &str, payment: &str) -> Answer {
    raw.get(
        &format!("{}{path}", market.url),
        &[("PAYMENT-SIGNATURE", payment)],
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_or_slow_upstream_costs_the_buyer_nothing() {
    let (market, channel) = market_with_channel().await;
    let before = alice_balance(&market, channel).await;
    for (path, status) in [("/fail", 502), ("/slow", 504), ("/cut", 502)] {
        let got = market
            .alice_rpc()
            .fetch(
                format!("{}{path}", market.url),
                "0.01".into(),
                None,
                None,
                None,
                None,
            )
            .await
            .unwrap();
        assert_eq!(got.status, status, "{got:?}");
        let response: SettleResponse =
            x402::decode(got.headers["payment-response"].as_bytes(), "r").unwrap();
        assert_eq!(response.error_reason.as_deref(), Some("upstream_failed"));
        assert_eq!(
            response.refund.as_ref().unwrap()["refunded"],
            true,
            "{response:?}"
        );
    }
    // Paid three times, given back three times: alice's channel balance is where it was.
    let after = alice_balance(&market, channel).await;
    assert_eq!(after, before);
    assert_eq!(market.gateway.stats.refunded.load(Relaxed), 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_retry_with_the_same_idempotency_key_pays_once_and_another_payment_conflicts() {
    let (market, _) = market_with_channel().await;
    let raw = Raw::new();
    let a = offer(&raw, &market, "/articles/5").await;
    let paid = pay_for(&market, &challenge(&a), ARTICLE_PRICE).await;
    let payment = header(&a, &challenge(&a), &paid);
    let url = format!("{}/articles/5", market.url);
    let with = [
        ("PAYMENT-SIGNATURE", payment.as_str()),
        ("Idempotency-Key", "order-5"),
    ];
    let first = raw.get(&url, &with).await;
    let again = raw.get(&url, &with).await;
    assert_eq!((first.status, again.status), (200, 200));
    assert_eq!(first.body, again.body);
    assert_eq!(market.upstream.served("/articles/5"), 1, "served once");
    let b = offer(&raw, &market, "/articles/5").await;
    let other = pay_for(&market, &challenge(&b), ARTICLE_PRICE).await;
    let conflict = raw
        .get(
            &url,
            &[
                ("PAYMENT-SIGNATURE", &header(&b, &challenge(&b), &other)),
                ("Idempotency-Key", "order-5"),
            ],
        )
        .await;
    assert_eq!(conflict.status, 409, "{conflict:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn ten_thousand_unpaid_requests_get_cheap_402s_and_reach_nothing() {
    let market = Market::open(|_| {}).await;
    let raw = std::sync::Arc::new(Raw::new());
    let mut tasks = Vec::new();
    for t in 0..500 {
        let (raw, base) = (raw.clone(), market.url.clone());
        tasks.push(tokio::spawn(async move {
            for i in 0..20 {
                let answer = raw
                    .get(&format!("{base}/articles/{}", t * 20 + i), &[])
                    .await;
                assert_eq!(answer.status, 402);
                assert!(
                    answer
                        .header("www-authenticate")
                        .unwrap()
                        .starts_with("Payment id=")
                );
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(market.gateway.stats.challenged.load(Relaxed), 10_000);
    assert_eq!(market.upstream.hits.load(Relaxed), 0);
    // Unlisted routes are not proxied for free; listed free ones are.
    assert_eq!(
        raw.get(&format!("{}/admin", market.url), &[]).await.status,
        404
    );
    let health = raw.get(&format!("{}/health", market.url), &[]).await;
    assert_eq!((health.status, health.body.as_str()), (200, "ok"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_buyer_that_disconnects_mid_request_is_still_served_and_its_retry_pays_nothing() {
    use tokio::io::AsyncWriteExt;
    let (market, _) = market_with_channel().await;
    let raw = Raw::new();
    let a = offer(&raw, &market, "/wait").await;
    let paid = pay_for(&market, &challenge(&a), ARTICLE_PRICE).await;
    let payment = header(&a, &challenge(&a), &paid);
    // The request, then the connection closed at once (the API takes half a second).
    let mut stream = tokio::net::TcpStream::connect(market.gateway.addr)
        .await
        .unwrap();
    let request = format!(
        "GET /wait HTTP/1.1\r\nHost: {}\r\nPAYMENT-SIGNATURE: {payment}\r\nIdempotency-Key: wait-1\r\n\r\n",
        market.gateway.addr
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    drop(stream);
    // Its payment was taken: the request is served all the same, and its answer kept.
    farthing_e2e::eventually(
        farthing_e2e::PATIENCE,
        "the paid request served",
        async || market.upstream.served("/wait") == 1,
    )
    .await;
    let url = format!("{}/wait", market.url);
    let again = farthing_e2e::eventually(farthing_e2e::PATIENCE, "the kept answer", async || {
        let answer = raw
            .get(
                &url,
                &[
                    ("PAYMENT-SIGNATURE", payment.as_str()),
                    ("Idempotency-Key", "wait-1"),
                ],
            )
            .await;
        (answer.status == 200).then_some(answer)
    })
    .await;
    assert_eq!(again.body, "waited (paid 0.001)");
    assert_eq!(market.upstream.served("/wait"), 1, "served once, paid once");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_402_is_a_quote_honoured_after_the_price_changes_until_it_expires() {
    let (market, _) = market_with_channel().await;
    let raw = Raw::new();
    let quoted = offer(&raw, &market, "/data").await;
    assert_eq!(quoted.amount, "2000");
    let paid = pay_for(&market, &challenge(&quoted), "0.002").await;
    // The seller raises the price: a second gateway with the same key, /data at 0.003.
    let mut settings = market.settings.clone();
    for route in &mut settings.routes {
        if route.path == "/data" {
            route.price = Some("0.003".into());
        }
    }
    let repriced = farthing_gateway::start(settings).await.unwrap();
    let url = format!("http://{}/data", repriced.addr);
    let fresh = raw.get(&url, &[]).await;
    let required: PaymentRequired =
        x402::decode(fresh.header("payment-required").unwrap().as_bytes(), "402").unwrap();
    assert_eq!(
        required.accepts[0].amount, "3000",
        "new 402s carry the new price"
    );
    let answer = raw
        .get(
            &url,
            &[(
                "PAYMENT-SIGNATURE",
                &header(&quoted, &challenge(&quoted), &paid),
            )],
        )
        .await;
    assert_eq!(answer.status, 200, "the quote is honoured: {answer:?}");
    assert!(
        answer.body.contains("\"paid\":\"0.002\""),
        "{}",
        answer.body
    );
    repriced.stop();
}
