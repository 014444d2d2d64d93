//! The node in-process against a real anvil: its watcher follows every channel it is part of
//! (including one a partner opens towards it) into its RocksDB store, and after a restart it
//! catches up on what happened while it was down, resuming from its persisted cursor.

use alloy::primitives::U256;
use farthing_core::{ChainState, Role};
use farthing_daemon::Node;
use farthing_e2e::{Devnet, PATIENCE, Party, USDC, done_if, eventually, node_config, send, soon};

/// Wait until the node's own watcher has applied `block`.
async fn until_synced(node: &Node, block: u64) {
    eventually(
        PATIENCE,
        &format!("the node's watcher to apply block {block}"),
        async || {
            let health = node.health();
            done_if(health.synced_block >= block, health)
        },
    )
    .await;
}

#[tokio::test]
async fn the_watcher_follows_our_channels_and_catches_up_after_a_restart() {
    let devnet = Devnet::start().unwrap();
    let d = devnet.deploy().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = node_config(&devnet, &d, dir.path(), 1);

    let alice = Party::new(&devnet, &d, devnet.key("ALICE"));
    let bob = Party::new(&devnet, &d, devnet.key("BOB"));
    for who in [&alice, &bob] {
        devnet.mint(&d, who.address(), 1_000 * USDC).await.unwrap();
        send!(who.token.approve(d.channel_manager, U256::MAX));
    }

    let node = Node::start(config.clone()).await.unwrap();
    assert_eq!(
        node.address(),
        alice.address(),
        "dev account 1 is the devnet's alice"
    );
    let mut changes = node.subscribe();

    // Alice opens to bob; bob opens towards alice.
    send!(
        alice
            .manager
            .open(d.token, bob.address(), U256::from(100 * USDC), 600)
    );
    let r = send!(
        bob.manager
            .open(d.token, alice.address(), U256::from(40 * USDC), 600)
    );
    until_synced(&node, r.block_number.unwrap()).await;
    let channels = node.store().channels().unwrap();
    assert_eq!(channels.len(), 2);
    assert_eq!(
        (channels[0].role, channels[0].on_chain.deposit_a),
        (Role::A, 100 * USDC as u128)
    );
    assert_eq!(
        (channels[1].role, channels[1].partner),
        (Role::B, bob.address())
    );
    let first = changes.recv().await.unwrap();
    assert_eq!((first.kind.as_str(), first.channel.id), ("opened", 1));

    // Down: bob tops up channel 1 and closes channel 2 while the node is stopped.
    node.shutdown().await;
    drop(node);
    send!(
        bob.manager
            .topUp(U256::from(1), bob.address(), U256::from(25 * USDC))
    );
    let r = send!(bob.manager.close(U256::from(2), 0, 0, Default::default()));

    let node = Node::start(config).await.unwrap();
    until_synced(&node, r.block_number.unwrap()).await;
    let one = node.store().channel(1).unwrap().unwrap();
    assert_eq!(
        one.on_chain.deposit_b,
        25 * USDC as u128,
        "top-up made while down"
    );
    let two = node.store().channel(2).unwrap().unwrap();
    assert_eq!(
        two.on_chain.state,
        ChainState::Closed,
        "close made while down"
    );
    assert_eq!(two.on_chain.closer, Some(bob.address()));
    let cursor = node.store().cursor().unwrap().unwrap();
    assert_eq!(cursor.block, r.block_number.unwrap());
    assert!(node.health().problems.is_empty(), "{:?}", node.health());
    node.shutdown().await;
}

#[tokio::test]
async fn operations_through_the_node_with_exact_balances_and_clear_refusals() {
    let devnet = Devnet::start().unwrap();
    let d = devnet.deploy().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut config = node_config(&devnet, &d, dir.path(), 1);
    // The operator settles below: the node's watchtower must not settle first.
    config.watchtower.act = false;
    let alice = Party::new(&devnet, &d, devnet.key("ALICE"));
    let bob = Party::new(&devnet, &d, devnet.key("BOB"));
    devnet.mint(&d, alice.address(), 100 * USDC).await.unwrap();
    let node = Node::start(config).await.unwrap();
    let sent = async || {
        use alloy::providers::Provider as _;
        node.reader()
            .get_transaction_count(alice.address())
            .pending()
            .await
            .unwrap()
    };

    // Open in one transaction (permit: the node never sent an approve).
    let opened = node
        .open_channel(bob.address(), 50 * USDC as u128, Some(600))
        .await
        .unwrap();
    assert_eq!(
        (opened.id, opened.role, opened.on_chain.deposit_a),
        (1, Role::A, 50 * USDC as u128)
    );
    assert_eq!(alice.balance().await, 50 * USDC);
    let topped = node.top_up(1, 10 * USDC as u128).await.unwrap();
    assert_eq!(topped.on_chain.deposit_a, 60 * USDC as u128);
    assert_eq!(alice.balance().await, 40 * USDC);

    // Refusals, before anything is sent.
    use farthing_daemon::OpError;
    assert!(matches!(node.channel(99), Err(OpError::UnknownChannel(99))));
    assert!(matches!(
        node.settle_channel(1).await,
        Err(OpError::WrongState {
            state: ChainState::Open,
            ..
        })
    ));
    let broke = node.top_up(1, 41 * USDC as u128).await.unwrap_err();
    assert!(
        matches!(broke, OpError::InsufficientFunds { needed, available } if needed == 41_000_000 && available == 40_000_000),
        "{broke}"
    );
    assert!(matches!(
        node.open_channel(alice.address(), 1, None).await,
        Err(OpError::InvalidParams(_))
    ));
    assert!(matches!(
        node.open_channel(bob.address(), 1, Some(1)).await,
        Err(OpError::InvalidParams(_))
    ));

    // Unilateral close (no payments yet), the window passes, settle: all 60 come back.
    let closed = node.close_channel(1).await.unwrap();
    assert_eq!(closed.on_chain.state, ChainState::Closed);
    // Closing again (a retry) answers the closed channel and sends nothing, like settle does.
    let before_retry = sent().await;
    let again = node.close_channel(1).await.unwrap();
    assert_eq!(again, closed);
    assert_eq!(sent().await, before_retry, "a repeated close sends nothing");
    let early = node.settle_channel(1).await.unwrap_err();
    assert!(
        matches!(
            early,
            OpError::WrongState {
                state: ChainState::Closed,
                ..
            }
        ),
        "settling inside the challenge period is refused before sending: {early}"
    );
    devnet.advance_time(601).await.unwrap();
    let before = sent().await;
    let settled = node.settle_channel(1).await.unwrap();
    assert_eq!(settled.on_chain.state, ChainState::Settled);
    assert_eq!(
        sent().await,
        before + 1,
        "the operator's settle is the one transaction"
    );
    assert_eq!(alice.balance().await, 100 * USDC);
    assert_eq!(bob.balance().await, 0);
    assert_eq!(node.claim().await.unwrap(), 0, "nothing deferred");
    assert_eq!(sent().await, before + 1, "nothing to claim: nothing sent");
    // Paying on the settled channel says it is settled (not "no link", though there is none).
    let refused = node.pay(1, 1, b"", None).await.unwrap_err();
    assert!(
        matches!(
            refused,
            farthing_daemon::PayError::Unpayable(farthing_core::PaymentError::NotOpen {
                state: ChainState::Settled,
                ..
            })
        ),
        "{refused}"
    );
    let again = node.close_channel(1).await.unwrap();
    assert_eq!(
        again.on_chain.state,
        ChainState::Settled,
        "closing a settled channel answers it as it is"
    );
    node.shutdown().await;
}

#[tokio::test]
async fn channel_updates_stream_over_the_websocket_subscription() {
    use farthing_rpc::{FarthingApiClient, FarthingApiServer, RpcServerConfig};

    let devnet = Devnet::start().unwrap();
    let d = devnet.deploy().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(node_config(&devnet, &d, dir.path(), 1))
        .await
        .unwrap();
    let token = farthing_rpc::ensure_token(&node.config().data_dir).unwrap();
    let (addr, server) = farthing_rpc::start(
        &RpcServerConfig::ephemeral(),
        &token,
        farthing_daemon::RpcHandler::new(node.clone()).into_rpc(),
    )
    .await
    .unwrap();
    let ws = farthing_rpc::connect_ws(&format!("ws://{addr}"), &token)
        .await
        .unwrap();
    let mut updates = ws.subscribe_channels().await.unwrap();

    // bob opens towards alice's node and funds it; alice's agent hears both without polling.
    let bob = Party::new(&devnet, &d, devnet.key("BOB"));
    devnet.mint(&d, bob.address(), 100 * USDC).await.unwrap();
    send!(bob.token.approve(d.channel_manager, U256::MAX));
    send!(
        bob.manager
            .open(d.token, node.address(), U256::from(30 * USDC), 600)
    );
    send!(
        bob.manager
            .topUp(U256::from(1), bob.address(), U256::from(45 * USDC))
    );
    let first = soon("the open's update", updates.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!((first.channel_id, first.kind.as_str()), (1, "opened"));
    assert_eq!(first.channel.deposit_partner, "30");
    let second = soon("the top-up's update", updates.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            second.kind.as_str(),
            second.channel.deposit_partner.as_str()
        ),
        ("deposit", "45")
    );
    assert_eq!(ws.get_channel(1).await.unwrap().balance_partner, "45");
    server.stop().unwrap();
    node.shutdown().await;
}

#[tokio::test]
async fn a_chain_that_drops_out_makes_the_node_degraded_and_refuse_new_risk() {
    use farthing_rpc::{ApiError, FarthingApiServer, HealthStatus};

    let devnet = Devnet::start().unwrap();
    let d = devnet.deploy().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(node_config(&devnet, &d, dir.path(), 1))
        .await
        .unwrap();
    let rpc = farthing_daemon::RpcHandler::new(node.clone());
    assert_eq!(rpc.info().await.unwrap().health.status, HealthStatus::Ok);

    drop(devnet); // anvil is killed
    let reasons = eventually(PATIENCE, "the node to report itself degraded", async || {
        let health = rpc.info().await.unwrap().health;
        match health.status {
            HealthStatus::Degraded => Ok(health.reasons),
            _ => Err(health),
        }
    })
    .await;
    assert!(reasons.iter().any(|r| r.contains("chain")), "{reasons:?}");
    let refused = rpc
        .open_channel(
            &farthing_rpc::Principal::Admin.extensions(),
            alloy::primitives::Address::repeat_byte(0xb),
            "1".into(),
            None,
        )
        .await
        .unwrap_err();
    assert!(matches!(refused, ApiError::Degraded { .. }), "{refused}");
    // Reads still work from the store.
    assert!(rpc.list_channels().await.unwrap().is_empty());
    node.shutdown().await;
}

#[tokio::test]
async fn the_node_survives_the_chain_going_away_and_coming_back() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("anvil-state.json");
    // A port outside the ephemeral range: nothing else can take it while the chain is away
    // (the node keeps dialing it meanwhile).
    let devnet = Devnet::start_persistent(farthing_e2e::fixed_port(), &state).unwrap();
    let d = devnet.deploy().await.unwrap();
    devnet
        .mint(&d, devnet.key("ALICE").address(), 100 * USDC)
        .await
        .unwrap();
    let node = Node::start(node_config(&devnet, &d, dir.path(), 1))
        .await
        .unwrap();
    let bob = devnet.key("BOB").address();
    node.open_channel(bob, 10 * USDC as u128, Some(600))
        .await
        .unwrap();

    // The chain goes away: the node notices and says so.
    let port = devnet.port();
    devnet.stop_gracefully();
    eventually(PATIENCE, "the node to say the chain is away", async || {
        let health = node.health();
        done_if(!health.problems.is_empty(), health)
    })
    .await;

    // The same chain comes back on the same port: no operator action, the node recovers.
    let devnet = Devnet::start_persistent(port, &state).unwrap();
    eventually(PATIENCE, "the node healthy again", async || {
        let health = node.health();
        done_if(health.problems.is_empty(), health)
    })
    .await;
    let second = node
        .open_channel(bob, 5 * USDC as u128, Some(600))
        .await
        .unwrap();
    assert_eq!(second.id, 2);
    assert_eq!(node.store().channels().unwrap().len(), 2);
    node.shutdown().await;
    drop(devnet);
}

#[tokio::test]
async fn a_transaction_sent_before_a_crash_is_broadcast_again_after_the_restart() {
    use alloy::providers::{Provider, ProviderBuilder};
    use farthing_store::TxKind;

    let devnet = Devnet::start().unwrap();
    let d = devnet.deploy().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = node_config(&devnet, &d, dir.path(), 1);
    devnet
        .mint(&d, devnet.key("ALICE").address(), 100 * USDC)
        .await
        .unwrap();
    let node = Node::start(config.clone()).await.unwrap();
    node.open_channel(devnet.key("BOB").address(), 10 * USDC as u128, Some(600))
        .await
        .unwrap();
    assert!(
        node.store().pending_txs().unwrap().is_empty(),
        "mined transactions are forgotten"
    );

    // The chain stops mining; the node sends its close and dies waiting for the receipt.
    let chain = ProviderBuilder::new().connect_http(devnet.rpc_url.parse().unwrap());
    let _: serde_json::Value = chain
        .raw_request("evm_setAutomine".into(), (false,))
        .await
        .unwrap();
    let closing = tokio::spawn({
        let node = node.clone();
        async move { node.close_channel(1).await }
    });
    let journaled = eventually(PATIENCE, "the close in the journal", async || {
        let journaled = node.store().pending_txs().unwrap();
        done_if(!journaled.is_empty(), journaled)
    })
    .await;
    assert_eq!(
        journaled.len(),
        1,
        "the close was journaled before it left the process"
    );
    assert_eq!(journaled[0].kind, TxKind::Close);
    closing.abort();
    let _ = closing.await;
    node.shutdown().await;
    drop(node);

    // ... and the chain loses it too.
    let _: serde_json::Value = chain
        .raw_request("anvil_dropAllTransactions".into(), ())
        .await
        .unwrap();
    let _: serde_json::Value = chain.raw_request("evm_mine".into(), ()).await.unwrap();
    let node = Node::start(config).await.unwrap();
    assert_eq!(
        node.channel(1).unwrap().on_chain.state,
        ChainState::Open,
        "the close never made it"
    );

    // The restarted node broadcast it again before it started serving: it waits in the pool,
    // and one block mines it. Once its receipt is in, it is forgotten and the channel closed.
    let pool: serde_json::Value = chain
        .raw_request("txpool_content".into(), ())
        .await
        .unwrap();
    let alice = format!("{:?}", devnet.key("ALICE").address());
    let pending = pool["pending"]
        .as_object()
        .unwrap()
        .iter()
        .find(|(sender, _)| sender.eq_ignore_ascii_case(&alice))
        .map(|(_, by_nonce)| by_nonce.as_object().unwrap().len());
    assert_eq!(pending, Some(1), "the close, sent again: {pool}");
    let _: serde_json::Value = chain.raw_request("evm_mine".into(), ()).await.unwrap();
    eventually(
        PATIENCE,
        "the close mined and out of the journal",
        async || {
            let journaled = node.store().pending_txs().unwrap();
            let state = node.channel(1).unwrap().on_chain.state;
            done_if(
                journaled.is_empty() && state == ChainState::Closed,
                (journaled.len(), state),
            )
        },
    )
    .await;
    node.shutdown().await;
}

#[tokio::test]
async fn channels_in_another_token_are_not_the_nodes_business() {
    use farthing_chain::contracts::{ChannelManager, PlainERC20};

    let devnet = Devnet::start().unwrap();
    let d = devnet.deploy().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(node_config(&devnet, &d, dir.path(), 1))
        .await
        .unwrap();

    // bob opens towards the node in a token of his own making, and funds the node's side too.
    let bob_key = devnet.key("BOB");
    let bob = devnet.provider(&bob_key);
    let junk = PlainERC20::deploy(&bob).await.unwrap();
    send!(junk.mint(bob_key.address(), U256::from(1u64) << 100));
    send!(junk.approve(d.channel_manager, U256::MAX));
    let manager = ChannelManager::new(d.channel_manager, &bob);
    send!(manager.open(*junk.address(), node.address(), U256::from(5 * USDC), 600));
    let r = send!(manager.topUp(U256::from(1), node.address(), U256::from(1u64) << 90));
    // ... and then a real channel in the deployment's token.
    devnet.mint(&d, bob_key.address(), 10 * USDC).await.unwrap();
    let usdc = farthing_chain::contracts::MockUSDC::new(d.token, &bob);
    send!(usdc.approve(d.channel_manager, U256::MAX));
    let r2 = send!(manager.open(d.token, node.address(), U256::from(10 * USDC), 600));
    assert!(r2.block_number > r.block_number);

    until_synced(&node, r2.block_number.unwrap()).await;
    let channels = node.store().channels().unwrap();
    assert_eq!(
        channels.iter().map(|c| c.id).collect::<Vec<_>>(),
        vec![2],
        "the junk-token channel is ignored"
    );
    assert_eq!(channels[0].token, d.token);
    node.shutdown().await;
}
