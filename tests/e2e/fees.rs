//! The fee cap (`chain.max_fee_per_gas_gwei`) on an anvil whose base fee is high: below the
//! base fee nothing is sent and the error names both; above it the transaction offers exactly
//! the cap instead of the estimate; an urgent transaction's fee raises stop at the cap.

use std::sync::Arc;

use alloy::consensus::Transaction as _;
use alloy::eips::BlockNumberOrTag;
use alloy::primitives::U256;
use alloy::providers::Provider;
use farthing_chain::contracts::ChannelManager;
use farthing_chain::{ChainClient, ChainError, NodeKey};
use farthing_devnet::{Devnet, DevnetOptions};
use farthing_e2e::{PATIENCE, Party, USDC, done_if, eventually};

const GWEI: u128 = 1_000_000_000;

async fn base_fee(provider: &impl Provider) -> u128 {
    let block = provider
        .get_block_by_number(BlockNumberOrTag::Latest)
        .await
        .unwrap()
        .unwrap();
    u128::from(block.header.base_fee_per_gas.unwrap())
}

/// The highest `maxFeePerGas` in the pool.
async fn highest_pooled_fee(provider: &impl Provider) -> u128 {
    let pool: serde_json::Value = provider
        .raw_request("txpool_content".into(), ())
        .await
        .unwrap();
    pool["pending"]
        .as_object()
        .into_iter()
        .flat_map(|by_sender| by_sender.values())
        .filter_map(|by_nonce| by_nonce.as_object())
        .flat_map(|by_nonce| by_nonce.values())
        .filter_map(|tx| tx["maxFeePerGas"].as_str())
        .filter_map(|fee| u128::from_str_radix(fee.trim_start_matches("0x"), 16).ok())
        .max()
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fee_cap_refuses_below_the_base_fee_and_never_offers_more_than_itself() {
    let devnet = Devnet::spawn(&DevnetOptions {
        extra_args: vec!["--base-fee".into(), (100 * GWEI).to_string()],
        ..DevnetOptions::default()
    })
    .unwrap();
    let d = devnet.deploy().await.unwrap();
    let key = devnet.key("ALICE");
    let alice = Party::new(&devnet, &d, key.clone());
    let bob = devnet.key("BOB").address();
    devnet.mint(&d, key.address(), 100 * USDC).await.unwrap();
    let client = |cap: u128| {
        ChainClient::new(
            farthing_chain::rpc::connect(&devnet.rpc_url, &Default::default()).unwrap(),
            &devnet.rpc_url,
            Arc::new(NodeKey::new(key.clone())),
            d.chain_id,
            d.channel_manager,
            1,
        )
        .with_max_fee_per_gas(Some(cap))
        .with_urgent_wait(std::time::Duration::from_millis(700))
    };
    let rpc = devnet.reader();
    let base = base_fee(&rpc).await;
    assert!(base > 10 * GWEI, "a high base fee: {base}");
    let estimate = rpc.estimate_eip1559_fees().await.unwrap().max_fee_per_gas;

    // A cap below the base fee: nothing is sent, and the error says why with both numbers.
    let low = client(base / 10);
    let err = low
        .open_with_permit(&d.token_domain(), bob, 10 * USDC as u128, 600)
        .await
        .unwrap_err();
    match &err {
        ChainError::FeeCap {
            what: "open",
            base_fee,
            cap,
        } => assert_eq!((*base_fee, *cap), (base, base / 10)),
        other => panic!("expected FeeCap, got {other}"),
    }
    let text = err.to_string();
    assert!(
        text.starts_with("open not sent: the chain's base fee is ")
            && text.contains("above the cap chain.max_fee_per_gas_gwei = ")
            && !text.contains('\n'),
        "{text}"
    );
    assert_eq!(rpc.get_transaction_count(key.address()).await.unwrap(), 0);
    assert_eq!(alice.balance().await, 100 * USDC);

    // A cap above the base fee but below the estimate (about twice the base fee): the
    // transaction offers exactly the cap and is mined.
    let cap = base + base / 2;
    assert!(cap < estimate, "the cap binds: {cap} < {estimate}");
    let capped = Arc::new(client(cap));
    let opened = capped
        .open_with_permit(&d.token_domain(), bob, 10 * USDC as u128, 600)
        .await
        .unwrap();
    assert_eq!(opened.opened, Some(1));
    let mined = rpc
        .get_transaction_by_hash(opened.tx_hash)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(mined.max_fee_per_gas(), cap);
    assert!(mined.max_priority_fee_per_gas().unwrap() <= cap);
    assert_eq!(alice.balance().await, 90 * USDC);

    // An urgent settle that is not mined: its fees are raised, up to the cap and no further.
    capped.close(1, None).await.unwrap();
    devnet.advance_time(601).await.unwrap();
    let automine = |on: bool| {
        let rpc = rpc.clone();
        async move {
            let _: serde_json::Value = rpc
                .raw_request("evm_setAutomine".into(), (on,))
                .await
                .unwrap();
        }
    };
    let nonce_before = rpc.get_transaction_count(key.address()).await.unwrap();
    // Room for one raise by half, not two.
    let urgent_cap = rpc.estimate_eip1559_fees().await.unwrap().max_fee_per_gas * 2;
    let urgent = Arc::new(client(urgent_cap));
    automine(false).await;
    let settling = {
        let urgent = urgent.clone();
        tokio::spawn(async move { urgent.settle(1).await })
    };
    eventually(PATIENCE, "the settle raised to the cap", async || {
        let highest = highest_pooled_fee(&rpc).await;
        assert!(
            highest <= urgent_cap,
            "{highest} offered over the cap {urgent_cap}"
        );
        done_if(highest == urgent_cap, highest)
    })
    .await;
    let _: serde_json::Value = rpc.raw_request("evm_mine".into(), ()).await.unwrap();
    automine(true).await;
    let settled = settling.await.unwrap().unwrap();
    let mined = rpc
        .get_transaction_by_hash(settled.tx_hash)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        mined.max_fee_per_gas(),
        urgent_cap,
        "raised to the cap exactly"
    );
    assert_eq!(
        rpc.get_transaction_count(key.address()).await.unwrap(),
        nonce_before + 1,
        "one nonce: the versions replaced each other"
    );
    let manager = ChannelManager::new(d.channel_manager, &rpc);
    assert_eq!(
        manager
            .getChannel(U256::from(1))
            .call()
            .await
            .unwrap()
            .state,
        3,
        "settled"
    );
    assert_eq!(alice.balance().await, 100 * USDC, "the deposit came back");
}

/// The cap as the operator sets it: `chain.max_fee_per_gas_gwei` in the node's config file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_configured_with_a_fee_cap_refuses_to_open_above_it_and_says_why() {
    let net = farthing_e2e::Deployed::start().await;
    let chain = net.devnet.reader();
    let _: serde_json::Value = chain
        .raw_request(
            "anvil_setNextBlockBaseFeePerGas".into(),
            (U256::from(100 * GWEI),),
        )
        .await
        .unwrap();
    let _: serde_json::Value = chain.raw_request("evm_mine".into(), ()).await.unwrap();
    assert_eq!(base_fee(&chain).await, 100 * GWEI);
    let config = net.dir.path().join("capped.toml");
    std::fs::write(&config, "[chain]\nmax_fee_per_gas_gwei = 2.5\n").unwrap();
    let node = net.daemon(1, "alice", &["--config", config.to_str().unwrap()]);
    let client = net.rpc("alice", &node);
    let alice = net.party("ALICE");
    let err = farthing_rpc::OpenParams {
        partner: net.devnet.key("BOB").address(),
        amount: "5".into(),
        challenge_period: Some(600),
    }
    .call(&client)
    .await
    .unwrap_err();
    let farthing_rpc::ClientError::Call(call) = err else {
        panic!("expected a JSON-RPC error, got {err}");
    };
    assert_eq!(call.code(), farthing_rpc::code::CHAIN_UNAVAILABLE);
    assert!(
        call.message().contains(
            "open not sent: the chain's base fee is 100 gwei, above the cap chain.max_fee_per_gas_gwei = 2.5 gwei: raise the cap or retry when fees fall"
        ),
        "{}",
        call.message()
    );
    assert_eq!(alice.balance().await, 100 * USDC, "nothing moved");
    assert_eq!(
        chain.get_transaction_count(alice.address()).await.unwrap(),
        0,
        "nothing was sent"
    );
    assert!(node.stop().success());
}
