//! Paid fetches under an agent's credential (issue 15): the agent's node pays a 402 only within
//! the credential's origins, partners, per-payment max and budget; a credential without the
//! channel scope cannot make the node open a channel for a 402; one limited to origins cannot
//! pay directly.

use farthing_e2e::market::{ARTICLE_PRICE, Market};
use farthing_rpc::{ClientError, FarthingApiClient, connect_http};

fn refused<T: std::fmt::Debug>(result: Result<T, ClientError>) -> (i32, String) {
    match result {
        Err(ClientError::Call(e)) => (
            e.code(),
            format!(
                "{} {}",
                e.message(),
                e.data().map(|d| d.get()).unwrap_or("")
            ),
        ),
        other => panic!("expected a call error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_fetches_only_within_its_credential() {
    let market = Market::open(|_| {}).await;
    let admin = market.alice_rpc();
    let article = |n: u32| format!("{}/articles/{n}", market.url);
    // A fetch-only credential cannot have the node lock money in a new channel.
    let fetch_only = admin
        .create_credential(
            Some("reader".into()),
            Some(vec!["fetch".into()]),
            None,
            None,
            Some("0.003".into()),
            None,
            None,
            None,
            None,
            Some(vec![market.url.clone()]),
            None,
        )
        .await
        .unwrap();
    let agent = connect_http(&market.alice.url, &fetch_only.token).unwrap();
    let (code, message) = refused(
        agent
            .fetch(
                article(0),
                "0.01".into(),
                None,
                None,
                None,
                Some("5".into()),
            )
            .await,
    );
    assert_eq!(code, 1017, "{message}");
    assert!(message.contains("channel"), "{message}");
    assert_eq!(
        admin.list_channels().await.unwrap().len(),
        0,
        "nothing opened"
    );

    // The operator opens the channel (a first paid fetch of its own).
    let first = admin
        .fetch(
            article(0),
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
    let sent = async || admin.get_channel(channel).await.unwrap().sent;
    assert_eq!(sent().await, ARTICLE_PRICE);

    // Now the agent reads within its day budget of 0.003 (three articles), then is refused.
    for n in 1..=3 {
        let read = agent
            .fetch(article(n), "0.01".into(), None, None, None, None)
            .await
            .unwrap();
        assert_eq!(read.status, 200, "{read:?}");
        assert_eq!(read.paid.unwrap().amount, ARTICLE_PRICE);
    }
    let (code, message) = refused(
        agent
            .fetch(article(4), "0.01".into(), None, None, None, None)
            .await,
    );
    assert_eq!(code, 1018, "{message}");
    assert!(
        message.contains("budget.day") && message.contains("0.003 of 0.003 spent"),
        "{message}"
    );
    assert_eq!(
        sent().await,
        "0.004",
        "the operator's 0.001 and the agent's 0.003"
    );
    // Another origin is not fetched at all, paid or not.
    let (code, message) = refused(
        agent
            .fetch(
                "http://127.0.0.2:9/x".into(),
                "0.01".into(),
                None,
                None,
                None,
                None,
            )
            .await,
    );
    assert_eq!(
        (code, message.contains("origin")),
        (1018, true),
        "{message}"
    );

    // A credential with a per-payment max under the price leaves the 402 unpaid, saying why;
    // one limited to origins cannot pay the seller directly.
    let cheap = admin
        .create_credential(
            None,
            Some(vec!["fetch".into(), "pay".into()]),
            Some("0.0005".into()),
            None,
            None,
            None,
            None,
            None,
            None,
            Some(vec![market.url.clone()]),
            None,
        )
        .await
        .unwrap();
    let cheap = connect_http(&market.alice.url, &cheap.token).unwrap();
    let unpaid = cheap
        .fetch(article(5), "0.01".into(), None, None, None, None)
        .await
        .unwrap();
    assert_eq!(unpaid.status, 402);
    assert!(
        unpaid.paid.is_none() && unpaid.unpaid_reason.is_some(),
        "{unpaid:?}"
    );
    let (code, message) = refused(
        cheap
            .pay(Some(channel), None, "0.0001".into(), None, None)
            .await,
    );
    assert_eq!(code, 1018, "{message}");
    assert!(message.contains("origin"), "{message}");
    assert_eq!(sent().await, "0.004");
    // The agent's purchases are in the history with its credential.
    let history = admin
        .list_payments(Some(channel), None, None)
        .await
        .unwrap();
    let by_agent = history
        .payments
        .iter()
        .filter(|p| p.credential == fetch_only.credential.id)
        .count();
    assert_eq!(by_agent, 3);
}
