//! `farthing gateway` on a credential of the seller's node (`--credential-file`, issue 15)
//! instead of its rpc.token: one with the `sell` and `pay` scopes serves paid requests and
//! refunds a failed one (a refund is a payment back); one without `sell` is refused when the
//! gateway starts, naming the scope, rather than at the first buyer's payment.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use farthing_e2e::market::{ARTICLE_PRICE, Market};
use farthing_rpc::FarthingApiClient;

/// A credential of bob's node with `scopes`, written 0600 to a file named `name`.
async fn credential(market: &Market, name: &str, scopes: &[&str]) -> PathBuf {
    let created = market
        .bob_rpc()
        .create_credential(
            Some(name.into()),
            Some(scopes.iter().map(|s| (*s).to_owned()).collect()),
            None,
            None,
            None,
            None,
            None,
            None,
            None,
            None,
            Some(3_600),
        )
        .await
        .unwrap();
    let file = market.net.dir.path().join(format!("{name}.cred"));
    std::fs::write(&file, format!("{}\n", created.token)).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    file
}

#[tokio::test(flavor = "multi_thread")]
async fn the_gateway_sells_on_a_sell_credential_and_refuses_one_without_sell() {
    let market = Market::open(|_| {}).await;
    let pay_only = credential(&market, "pay-only", &["pay"]).await;
    let seller = credential(&market, "gateway", &["sell", "pay"]).await;
    let mut settings = market.settings.clone();
    // No rpc.token to fall back on: the credential is all the gateway has.
    settings.node_data_dir = market.net.dir.path().join("no-token-here");
    std::fs::create_dir_all(&settings.node_data_dir).unwrap();

    settings.node_credential_file = Some(pay_only.clone());
    let refused = farthing_gateway::start(settings.clone())
        .await
        .err()
        .expect("a credential without sell is refused")
        .to_string();
    assert!(
        refused.contains("lacks the sell scope") && refused.contains("--scope sell,pay"),
        "{refused}"
    );

    settings.node_credential_file = Some(seller);
    let gateway = farthing_gateway::start(settings).await.unwrap();
    let base = format!("http://{}", gateway.addr);
    let alice = market.alice_rpc();
    let fetch = |path: &str| {
        alice.fetch(
            format!("{base}{path}"),
            "0.01".into(),
            None,
            None,
            None,
            Some("20".into()),
        )
    };
    let first = fetch("/articles/7").await.unwrap();
    assert_eq!(first.status, 200, "{first:?}");
    assert_eq!(first.body, format!("article 7 (paid {ARTICLE_PRICE})"));
    let channel = first.paid.expect("paid").channel_id;
    // The upstream fails: the buyer is paid back over the channel, under the credential.
    let failed = fetch("/fail").await.unwrap();
    assert_eq!(failed.status, 502, "{failed:?}");
    assert_eq!(
        gateway
            .stats
            .refunded
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
    let view = alice.get_channel(channel).await.unwrap();
    assert_eq!(
        (view.balance_ours.as_str(), view.balance_partner.as_str()),
        ("19.999", "0.001")
    );
    gateway.stop();
}
