//! The node's chain client against a real anvil: one key, concurrent operations, refusals
//! decoded before anything is sent, and nonce resynchronisation after someone else used the key.

use std::sync::Arc;

use alloy::primitives::U256;
use alloy::providers::Provider;
use farthing_chain::contracts::ChannelManager;
use farthing_chain::{ChainClient, ChainError, NodeKey, OpenAuthorization};
use farthing_e2e::{Devnet, PATIENCE, Party, USDC, done_if, eventually, send};

#[tokio::test]
async fn one_key_many_concurrent_operations_refusals_and_resync() {
    let devnet = Devnet::start().unwrap();
    let d = devnet.deploy().await.unwrap();
    let alice_key = devnet.key("ALICE");
    let bob = Party::new(&devnet, &d, devnet.key("BOB"));
    devnet
        .mint(&d, alice_key.address(), 1_000 * USDC)
        .await
        .unwrap();
    let client = Arc::new(ChainClient::new(
        farthing_chain::rpc::connect(&devnet.rpc_url, &Default::default()).unwrap(),
        &devnet.rpc_url,
        Arc::new(NodeKey::new(alice_key.clone())),
        d.chain_id,
        d.channel_manager,
        1,
    ));

    // Opens in one transaction each (permit, no approve); ids come back from the receipts.
    let mut ids = Vec::new();
    for i in 1..=4u64 {
        let outcome = client
            .open_with_permit(&d.token_domain(), bob.address(), 10 * USDC as u128, 600)
            .await
            .unwrap();
        assert_eq!(outcome.opened, Some(i));
        ids.push(i);
    }

    // Four closes from the same key at once: four distinct nonces, all mined.
    let closes = ids.iter().map(|&id| {
        let client = client.clone();
        tokio::spawn(async move { client.close(id, None).await })
    });
    for close in closes {
        close.await.unwrap().unwrap();
    }
    let manager = ChannelManager::new(d.channel_manager, client.provider());
    for &id in &ids {
        assert_eq!(
            manager
                .getChannel(U256::from(id))
                .call()
                .await
                .unwrap()
                .state,
            2,
            "channel {id} closed"
        );
    }

    // Someone else sends from the same key: the client's next nonce is stale; the send that
    // hits it fails and the client resynchronises, so the following one goes through.
    let other = Party::new(&devnet, &d, alice_key.clone());
    send!(other.token.approve(d.channel_manager, U256::from(1)));
    devnet.advance_time(601).await.unwrap();
    let stale = client.settle(1).await.unwrap_err();
    assert!(
        matches!(stale, ChainError::Rpc { what: "settle", .. }),
        "{stale}"
    );
    assert!(
        stale.to_string().to_lowercase().contains("nonce"),
        "{stale}"
    );
    client
        .settle(2)
        .await
        .expect("after a resync the next operation lands");
    client
        .settle(1)
        .await
        .expect("and the one that hit the stale nonce can be retried");
    // A call the contract refuses fails before sending, with the contract's error by name.
    let err = client.close(1, None).await.unwrap_err();
    assert!(
        matches!(err, ChainError::Refused { what: "close", .. }),
        "{err}"
    );
    assert!(err.to_string().contains("ChannelNotOpen"), "{err}");

    for id in [1, 2] {
        assert_eq!(
            manager
                .getChannel(U256::from(id))
                .call()
                .await
                .unwrap()
                .state,
            3,
            "channel {id} settled"
        );
    }
    // 4 opens, 4 closes, the other approve, 2 settles; the stale and the refused sends used none.
    let nonce = client
        .provider()
        .get_transaction_count(alice_key.address())
        .await
        .unwrap();
    assert_eq!(nonce, 11);
}

#[tokio::test]
async fn a_gasless_open_signed_by_a_funder_without_ether_is_submitted_by_the_node() {
    let devnet = Devnet::start().unwrap();
    let d = devnet.deploy().await.unwrap();
    let node_key = devnet.key("ALICE");
    let client = ChainClient::new(
        farthing_chain::rpc::connect(&devnet.rpc_url, &Default::default()).unwrap(),
        &devnet.rpc_url,
        Arc::new(NodeKey::new(node_key.clone())),
        d.chain_id,
        d.channel_manager,
        1,
    );
    // The funder has tokens and no ether at all.
    let funder = alloy::signers::local::PrivateKeySigner::random();
    devnet.mint(&d, funder.address(), 70 * USDC).await.unwrap();
    let salt = alloy::primitives::B256::repeat_byte(7);
    let auth = OpenAuthorization::sign(
        &funder,
        d.channel_manager,
        &d.token_domain(),
        node_key.address(),
        70 * USDC as u128,
        600,
        u64::MAX / 2,
        salt,
    );

    // A relayer cannot redirect it: another partner changes the nonce the funder signed.
    let redirected = OpenAuthorization {
        partner: devnet.key("BOB").address(),
        ..auth.clone()
    };
    let err = client
        .open_with_authorization(&redirected)
        .await
        .unwrap_err();
    assert!(matches!(err, ChainError::Refused { .. }), "{err}");

    let outcome = client.open_with_authorization(&auth).await.unwrap();
    assert_eq!(outcome.opened, Some(1));
    let manager = ChannelManager::new(d.channel_manager, client.provider());
    let info = manager.getChannel(U256::from(1)).call().await.unwrap();
    assert_eq!(
        (info.participantA, info.participantB),
        (funder.address(), node_key.address())
    );
    assert_eq!(info.depositA.to::<u64>(), 70 * USDC);
    assert_eq!(
        client
            .provider()
            .get_balance(funder.address())
            .await
            .unwrap(),
        U256::ZERO,
        "the funder paid no gas"
    );
    // Replaying the same authorization is refused.
    let replay = client.open_with_authorization(&auth).await.unwrap_err();
    assert!(matches!(replay, ChainError::Refused { .. }), "{replay}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_urgent_transaction_not_mined_in_time_is_sent_again_with_higher_fees() {
    let devnet = Devnet::start().unwrap();
    let d = devnet.deploy().await.unwrap();
    let alice_key = devnet.key("ALICE");
    let bob = Party::new(&devnet, &d, devnet.key("BOB"));
    devnet
        .mint(&d, alice_key.address(), 100 * USDC)
        .await
        .unwrap();
    let client = Arc::new(
        ChainClient::new(
            farthing_chain::rpc::connect(&devnet.rpc_url, &Default::default()).unwrap(),
            &devnet.rpc_url,
            Arc::new(NodeKey::new(alice_key.clone())),
            d.chain_id,
            d.channel_manager,
            1,
        )
        .with_urgent_wait(std::time::Duration::from_millis(700)),
    );
    client
        .open_with_permit(&d.token_domain(), bob.address(), 10 * USDC as u128, 600)
        .await
        .unwrap();
    client.close(1, None).await.unwrap();
    devnet.advance_time(601).await.unwrap();

    // Blocks stop coming (a congested chain): the settle waits in the pool.
    let rpc = client.provider().clone();
    let automine = |on: bool| {
        let rpc = rpc.clone();
        async move {
            let _: serde_json::Value = rpc
                .raw_request("evm_setAutomine".into(), (on,))
                .await
                .unwrap();
        }
    };
    let fees = rpc.estimate_eip1559_fees().await.unwrap();
    let nonce_before = rpc
        .get_transaction_count(alice_key.address())
        .await
        .unwrap();
    automine(false).await;
    let settling = {
        let client = client.clone();
        tokio::spawn(async move { client.settle(1).await })
    };
    // Every 0.7 s unmined, the settle is signed again with fees raised by half: wait until the
    // pool holds a version raised twice (however long a loaded machine takes to get there).
    let raised_twice = fees.max_fee_per_gas * 9 / 4;
    eventually(
        PATIENCE,
        "the settle raised twice in the pool",
        async || {
            let pool: serde_json::Value =
                rpc.raw_request("txpool_content".into(), ()).await.unwrap();
            let highest = pool["pending"]
                .as_object()
                .into_iter()
                .flat_map(|by_sender| by_sender.values())
                .filter_map(|by_nonce| by_nonce.as_object())
                .flat_map(|by_nonce| by_nonce.values())
                .filter_map(|tx| tx["maxFeePerGas"].as_str())
                .filter_map(|fee| u128::from_str_radix(fee.trim_start_matches("0x"), 16).ok())
                .max()
                .unwrap_or(0);
            done_if(highest >= raised_twice, highest)
        },
    )
    .await;
    let _: serde_json::Value = rpc.raw_request("evm_mine".into(), ()).await.unwrap();
    automine(true).await;
    let outcome = settling.await.unwrap().unwrap();
    let mined = rpc
        .get_transaction_by_hash(outcome.tx_hash)
        .await
        .unwrap()
        .unwrap();
    use alloy::consensus::Transaction as _;
    assert!(
        mined.max_fee_per_gas() >= fees.max_fee_per_gas * 9 / 4,
        "the mined version carries the raised fees: {} vs {}",
        mined.max_fee_per_gas(),
        fees.max_fee_per_gas
    );
    assert_eq!(
        rpc.get_transaction_count(alice_key.address())
            .await
            .unwrap(),
        nonce_before + 1,
        "one nonce: the versions replaced each other"
    );
    let manager = ChannelManager::new(d.channel_manager, client.provider());
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
}
