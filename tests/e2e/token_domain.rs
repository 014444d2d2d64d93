//! The token's EIP-712 domain comes from the token, not from a constant: Circle's USDC is
//! ("USD Coin", "2") on Ethereum and Base but ("USDC", "2") on Base Sepolia. With MockUSDC
//! deployed under other names and versions, permits and EIP-3009 opens signed in the
//! deployment's domain land (balances exact) and ones signed in USDC's default domain are
//! refused; a node whose deployment file names another domain than the token's does not start.

use std::process::Command;
use std::sync::Arc;

use alloy::primitives::{B256, U256};
use alloy::providers::Provider;
use alloy::signers::local::PrivateKeySigner;
use farthing_chain::contracts::ChannelManager;
use farthing_chain::messages::{self, TokenDomain, TransferWithAuthorization};
use farthing_chain::{ChainClient, ChainError, NodeKey, OpenAuthorization};
use farthing_e2e::{Daemon, Devnet, Party, USDC, farthing_bin};
use farthing_http402::x402::{self, PaymentRequired};
use farthing_rpc::{FarthingApiClient, OpenParams, TransferAuthorization};

/// A node's permit open and a funder's gasless EIP-3009 open, on a MockUSDC named `name`,
/// version `version`.
async fn gasless_opens_in(name: &str, version: &str) {
    let devnet = Devnet::start().unwrap();
    let d = devnet.deploy_token(name, version).await.unwrap();
    assert_eq!(
        (d.token_name.as_str(), d.token_version.as_str()),
        (name, version)
    );
    let provider = devnet.reader();
    d.check(&provider)
        .await
        .expect("the file's domain is the token's");

    let node_key = devnet.key("ALICE");
    let alice = Party::new(&devnet, &d, node_key.clone());
    devnet
        .mint(&d, node_key.address(), 100 * USDC)
        .await
        .unwrap();
    let client = Arc::new(ChainClient::new(
        farthing_chain::rpc::connect(&devnet.rpc_url, &Default::default()).unwrap(),
        &devnet.rpc_url,
        Arc::new(NodeKey::new(node_key.clone())),
        d.chain_id,
        d.channel_manager,
        1,
    ));
    let manager = ChannelManager::new(d.channel_manager, client.provider());
    let bob = devnet.key("BOB").address();

    // A permit signed in USDC's default domain is not this token's: refused before sending
    // (the client simulates first).
    if (name, version) != ("USD Coin", "2") {
        let default = TokenDomain {
            name: "USD Coin".into(),
            version: "2".into(),
            ..d.token_domain()
        };
        let err = client
            .open_with_permit(&default, bob, 10 * USDC as u128, 600)
            .await
            .unwrap_err();
        // The contract tries the permit and then cannot pull the deposit: nothing moved.
        assert!(matches!(err, ChainError::Refused { .. }), "{err}");
        assert_eq!(alice.balance().await, 100 * USDC);
    }
    // In the deployment's domain: one transaction, exactly the deposit moves.
    let opened = client
        .open_with_permit(&d.token_domain(), bob, 12_345_678, 600)
        .await
        .unwrap();
    assert_eq!(opened.opened, Some(1));
    assert_eq!(alice.balance().await, 100 * USDC - 12_345_678);
    let info = manager.getChannel(U256::from(1)).call().await.unwrap();
    assert_eq!(
        (
            info.participantA,
            info.participantB,
            info.depositA.to::<u64>()
        ),
        (node_key.address(), bob, 12_345_678)
    );

    // EIP-3009: a funder without ether signs; the node submits and pays the gas.
    let funder = PrivateKeySigner::random();
    devnet.mint(&d, funder.address(), 70 * USDC).await.unwrap();
    let salt = B256::repeat_byte(7);
    if (name, version) != ("USD Coin", "2") {
        let default = TokenDomain {
            name: "USD Coin".into(),
            version: "2".into(),
            ..d.token_domain()
        };
        let wrong = OpenAuthorization::sign(
            &funder,
            d.channel_manager,
            &default,
            node_key.address(),
            70 * USDC as u128,
            600,
            u64::MAX / 2,
            salt,
        );
        let err = client.open_with_authorization(&wrong).await.unwrap_err();
        assert!(matches!(err, ChainError::Refused { .. }), "{err}");
    }
    let auth = OpenAuthorization::sign(
        &funder,
        d.channel_manager,
        &d.token_domain(),
        node_key.address(),
        69_999_999,
        600,
        u64::MAX / 2,
        salt,
    );
    let outcome = client.open_with_authorization(&auth).await.unwrap();
    assert_eq!(outcome.opened, Some(2));
    let info = manager.getChannel(U256::from(2)).call().await.unwrap();
    assert_eq!(
        (
            info.participantA,
            info.participantB,
            info.depositA.to::<u64>()
        ),
        (funder.address(), node_key.address(), 69_999_999)
    );
    let funder_party = Party::new(&devnet, &d, funder.clone());
    assert_eq!(
        funder_party.balance().await,
        1,
        "the funder keeps one base unit"
    );
    assert_eq!(
        provider.get_balance(funder.address()).await.unwrap(),
        U256::ZERO,
        "the funder paid no gas"
    );
    assert_eq!(
        Party::new(&devnet, &d, devnet.key("DEPLOYER"))
            .token
            .balanceOf(d.channel_manager)
            .call()
            .await
            .unwrap(),
        U256::from(12_345_678u64 + 69_999_999),
        "the manager holds both deposits exactly"
    );
}

#[tokio::test]
async fn gasless_opens_in_base_sepolias_usdc_domain() {
    gasless_opens_in("USDC", "2").await;
}

#[tokio::test]
async fn gasless_opens_in_a_domain_of_another_name_and_version() {
    gasless_opens_in("Farthing Test Dollar", "7").await;
}

#[tokio::test]
async fn a_node_signs_in_its_tokens_domain_and_refuses_a_file_naming_another_or_an_odd_domain() {
    let devnet = Devnet::start().unwrap();
    let d = devnet.deploy_token("USDC", "2").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let deployment = dir.path().join("deployment.json");
    let alice = Party::new(&devnet, &d, devnet.key("ALICE"));
    devnet.mint(&d, alice.address(), 100 * USDC).await.unwrap();

    // The file says what Base Sepolia's USDC would have been called on Base: refused at
    // start, one line naming both domains.
    let wrong = farthing_chain::Deployment {
        token_name: "USD Coin".into(),
        ..d.clone()
    };
    std::fs::write(&deployment, serde_json::to_string(&wrong).unwrap()).unwrap();
    let refused_start = || {
        let output = Command::new(farthing_bin())
            .arg("--data-dir")
            .arg(dir.path().join("alice"))
            .args(["node", "--rpc-listen", "127.0.0.1:0", "--dev", "1"])
            .args(["--peer-listen", "127.0.0.1:0"])
            .args(["--rpc-url", &devnet.rpc_url])
            .arg("--deployment")
            .arg(&deployment)
            .output()
            .unwrap();
        assert!(!output.status.success(), "a node must not start on it");
        String::from_utf8(output.stderr).unwrap()
    };
    let stderr = refused_start();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("error: ")
            && stderr.contains(&format!(
                r#"the token at {}: its EIP-712 domain is name "USDC", version "2", but the deployment file says token_name "USD Coin", token_version "2""#,
                d.token
            )),
        "{stderr}"
    );

    // A token whose DOMAIN_SEPARATOR() is not the standard hash of its domain (the chain id
    // in a salt): refused at start, both hashes named.
    let salted = farthing_chain::contracts::SaltedDomainToken::deploy(
        devnet.provider(&devnet.key("DEPLOYER")),
    )
    .await
    .unwrap();
    let odd = farthing_chain::Deployment {
        token: *salted.address(),
        ..d.clone()
    };
    std::fs::write(&deployment, serde_json::to_string(&odd).unwrap()).unwrap();
    let stderr = refused_start();
    let theirs = salted.DOMAIN_SEPARATOR().call().await.unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains(&format!(
            "DOMAIN_SEPARATOR() is {theirs}, but keccak(EIP712Domain{}) is {}",
            odd.token_domain(),
            odd.token_domain().separator()
        )),
        "{stderr}"
    );

    // With the token's own domain the node starts, says so, and its permit open lands.
    std::fs::write(&deployment, serde_json::to_string(&d).unwrap()).unwrap();
    let data_dir = dir.path().join("alice");
    let daemon = Daemon::start(&data_dir, &devnet.rpc_url, &deployment);
    let token = farthing_rpc::read_token(&data_dir).unwrap();
    let client = farthing_rpc::connect_http(&daemon.url, &token).unwrap();
    let info = client.info().await.unwrap();
    assert_eq!(
        (info.token_name.as_str(), info.token_version.as_str()),
        ("USDC", "2")
    );
    let open = OpenParams {
        partner: devnet.key("BOB").address(),
        amount: "25.5".into(),
        challenge_period: Some(600),
    }
    .call(&client)
    .await
    .unwrap();
    assert_eq!((open.id, open.deposit_ours.as_str()), (1, "25.5"));
    assert_eq!(alice.balance().await, 74_500_000);

    // Its 402 gateway offers `exact` in the token's domain, which x402 clients sign in.
    let gateway = farthing_gateway::start(farthing_gateway::GatewayConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        upstream: "http://127.0.0.1:9".into(),
        node_url: daemon.url.replacen("http://", "ws://", 1),
        node_data_dir: data_dir.clone(),
        routes: vec![farthing_gateway::RouteConfig::parse_priced("GET /data=0.002").unwrap()],
        ..Default::default()
    })
    .await
    .unwrap();
    let answer = crate::gateway::Raw::new()
        .get(&format!("http://{}/data", gateway.addr), &[])
        .await;
    assert_eq!(answer.status, 402, "{answer:?}");
    let required: PaymentRequired =
        x402::decode(answer.header("payment-required").unwrap().as_bytes(), "402").unwrap();
    let exact = required
        .accepts
        .iter()
        .find(|r| r.scheme == "exact")
        .unwrap();
    assert_eq!(
        (exact.extra_str("name"), exact.extra_str("version")),
        (Some("USDC"), Some("2"))
    );
    gateway.stop();

    // As its own facilitator, the node takes an EIP-3009 transfer signed in that domain and
    // refuses one signed in USDC's default domain, naming the one it checks.
    let payer = PrivateKeySigner::random();
    devnet.mint(&d, payer.address(), 3 * USDC).await.unwrap();
    let valid_before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3_600;
    let nonce = B256::repeat_byte(9);
    let message = TransferWithAuthorization {
        from: payer.address(),
        to: alice.address(),
        value: U256::from(1_500_000u64),
        validAfter: U256::ZERO,
        validBefore: U256::from(valid_before),
        nonce,
    };
    let authorization = |domain: &TokenDomain| TransferAuthorization {
        from: payer.address(),
        to: alice.address(),
        value: "1500000".into(),
        valid_after: 0,
        valid_before,
        nonce,
        signature: messages::sign(&payer, &message, &domain.eip712()),
    };
    let usd_coin = TokenDomain {
        name: "USD Coin".into(),
        ..d.token_domain()
    };
    let refused = match client
        .collect_authorization(authorization(&usd_coin))
        .await
        .unwrap_err()
    {
        farthing_rpc::ClientError::Call(call) => call.message().to_owned(),
        other => panic!("expected a refusal, got {other}"),
    };
    assert!(
        refused.contains(&format!(
            r#"in the token's EIP-712 domain ("USDC", "2", chain 31337, {})"#,
            d.token
        )),
        "{refused}"
    );
    let collected = client
        .collect_authorization(authorization(&d.token_domain()))
        .await
        .unwrap();
    assert_eq!(
        (collected.payer, collected.amount.as_str()),
        (payer.address(), "1.5")
    );
    assert_eq!(Party::new(&devnet, &d, payer).balance().await, 1_500_000);
    assert_eq!(alice.balance().await, 76_000_000, "74.5 + 1.5");
    assert!(daemon.stop().success());
}
