//! The watcher's view of the chain: the ChannelManager's events, read in confirmed ranges and
//! replayed through `farthing_core::apply`, rebuild exactly the channel state the contract
//! stores — for the channels the node is part of, and only those.

use alloy::primitives::U256;
use alloy::providers::{Provider, ProviderBuilder};
use farthing_chain::contracts::ChannelManager;
use farthing_chain::events::EventSource;
use farthing_chain::messages::{self, BalanceProof};
use farthing_core::{ChainState, Channel, Role, apply};
use farthing_e2e::{Devnet, Party, USDC, send};

#[tokio::test]
async fn events_replayed_rebuild_the_contracts_channel_state() {
    let devnet = Devnet::start().unwrap();
    let d = devnet.deploy().await.unwrap();
    let domain = messages::channel_domain(d.chain_id, d.channel_manager);
    let alice = Party::new(&devnet, &d, devnet.key("ALICE"));
    let bob = Party::new(&devnet, &d, devnet.key("BOB"));
    let carol = Party::new(&devnet, &d, devnet.key("DEPLOYER"));
    for who in [&alice, &bob, &carol] {
        devnet.mint(&d, who.address(), 1_000 * USDC).await.unwrap();
        send!(who.token.approve(d.channel_manager, U256::MAX));
    }

    // Channel 1: alice → bob, full unilateral lifecycle.
    send!(
        alice
            .manager
            .open(d.token, bob.address(), U256::from(100 * USDC), 3600)
    );
    let one = U256::from(1);
    send!(bob.manager.topUp(one, bob.address(), U256::from(50 * USDC)));
    let from_bob = BalanceProof {
        channelId: one,
        nonce: 2,
        transferred: 7 * USDC as u128,
    };
    let from_alice = BalanceProof {
        channelId: one,
        nonce: 4,
        transferred: 20 * USDC as u128,
    };
    send!(alice.manager.close(
        one,
        2,
        from_bob.transferred,
        messages::sign(&bob.key, &from_bob, &domain)
    ));
    send!(bob.manager.updateProof(
        one,
        4,
        from_alice.transferred,
        messages::sign(&alice.key, &from_alice, &domain)
    ));
    devnet.advance_time(3601).await.unwrap();
    send!(carol.manager.settle(one));
    // Channel 2: opened by bob towards alice, stays open.
    send!(
        bob.manager
            .open(d.token, alice.address(), U256::from(30 * USDC), 600)
    );
    // Channel 3: between bob and carol only; alice's node must ignore it.
    send!(
        carol
            .manager
            .open(d.token, bob.address(), U256::from(5 * USDC), 600)
    );

    let provider = ProviderBuilder::new().connect_http(devnet.rpc_url.parse().unwrap());
    let source = EventSource::new(&provider, d.channel_manager, 1);
    let head = source.confirmed_head().await.unwrap().unwrap();
    assert_eq!(head, provider.get_block_number().await.unwrap());
    let events = source.events(d.deployment_block, head).await.unwrap();

    let replay = |events: &[farthing_chain::events::Observed]| {
        let mut channels: std::collections::BTreeMap<u64, Channel> = Default::default();
        for o in events {
            let id = o.event.channel_id();
            if let Some(c) = apply(channels.remove(&id), &o.event, alice.address(), o.block) {
                channels.insert(id, c);
            }
        }
        channels
    };
    let channels = replay(&events);
    assert_eq!(
        channels.keys().copied().collect::<Vec<_>>(),
        vec![1, 2],
        "only alice's channels"
    );
    assert_eq!(channels[&1].role, Role::A);
    assert_eq!(channels[&2].role, Role::B);
    assert_eq!(channels[&2].partner, bob.address());
    assert_eq!(channels[&1].on_chain.state, ChainState::Settled);
    assert_eq!(channels[&2].on_chain.state, ChainState::Open);

    // Field for field what the contract stores.
    let manager = ChannelManager::new(d.channel_manager, &provider);
    for (id, record) in &channels {
        let info = manager.getChannel(U256::from(*id)).call().await.unwrap();
        let c = &record.on_chain;
        assert_eq!(c.deposit_a, info.depositA.to::<u128>(), "channel {id}");
        assert_eq!(c.deposit_b, info.depositB.to::<u128>(), "channel {id}");
        assert_eq!(c.withdrawn_a, info.withdrawnA.to::<u128>(), "channel {id}");
        assert_eq!(c.withdrawn_b, info.withdrawnB.to::<u128>(), "channel {id}");
        assert_eq!(c.settle_after, info.settleAfter.to::<u64>(), "channel {id}");
        assert_eq!(c.proof_a, (info.nonceA, info.transferredA), "channel {id}");
        assert_eq!(c.proof_b, (info.nonceB, info.transferredB), "channel {id}");
        assert_eq!(c.closer.unwrap_or_default(), info.closer, "channel {id}");
        assert_eq!(
            record.challenge_period, info.challengePeriod,
            "channel {id}"
        );
        assert_eq!(record.token, info.token, "channel {id}");
    }

    // Replaying everything twice (a watcher unsure where it stopped) changes nothing.
    let twice: Vec<_> = events.iter().chain(events.iter()).cloned().collect();
    assert_eq!(replay(&twice), channels);

    // With 3 confirmations, the two newest blocks (channels 2 and 3's opens) are not yet seen.
    let cautious = EventSource::new(&provider, d.channel_manager, 3);
    let confirmed = cautious.confirmed_head().await.unwrap().unwrap();
    assert_eq!(confirmed, head - 2);
    let early = replay(
        &cautious
            .events(d.deployment_block, confirmed)
            .await
            .unwrap(),
    );
    assert_eq!(early.keys().copied().collect::<Vec<_>>(), vec![1]);
}

/// Raw anvil calls: mine a block, reorganise the last `depth` blocks away.
async fn anvil(devnet: &Devnet, method: &str, params: serde_json::Value) -> serde_json::Value {
    let provider = ProviderBuilder::new().connect_http(devnet.rpc_url.parse().unwrap());
    provider
        .raw_request(method.to_owned().into(), params)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deposit_counts_after_its_confirmations_and_a_reorg_never_counts_it_twice_or_keeps_it() {
    let devnet = Devnet::start().unwrap();
    let d = devnet.deploy().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let alice = Party::new(&devnet, &d, devnet.key("ALICE"));
    let bob = Party::new(&devnet, &d, devnet.key("BOB"));
    for who in [&alice, &bob] {
        devnet.mint(&d, who.address(), 100 * USDC).await.unwrap();
        send!(who.token.approve(d.channel_manager, U256::MAX));
    }
    // alice's node applies an event once it has 3 confirmations (its block and 2 more).
    let mut config = farthing_e2e::node_config(&devnet, &d, dir.path(), 1);
    config.chain.confirmations = 3;
    let node = farthing_daemon::Node::start(config).await.unwrap();
    send!(
        alice
            .manager
            .open(d.token, bob.address(), U256::from(10 * USDC), 600)
    );
    for _ in 0..2 {
        anvil(&devnet, "evm_mine", serde_json::json!([])).await;
    }
    node.sync().await.unwrap();
    assert!(node.channel_record(1).is_some(), "the open is confirmed");
    let deposit_b = || node.channel_record(1).unwrap().on_chain.deposit_b;

    // bob's top-up: not counted with 1 or 2 confirmations, counted with 3.
    send!(
        bob.manager
            .topUp(U256::from(1), bob.address(), U256::from(5 * USDC))
    );
    node.sync().await.unwrap();
    assert_eq!(deposit_b(), 0, "1 confirmation");
    anvil(&devnet, "evm_mine", serde_json::json!([])).await;
    node.sync().await.unwrap();
    assert_eq!(deposit_b(), 0, "2 confirmations");
    anvil(&devnet, "evm_mine", serde_json::json!([])).await;
    node.sync().await.unwrap();
    assert_eq!(deposit_b(), 5 * USDC as u128, "3 confirmations");

    // A reorg deeper than the confirmations takes the top-up's block away: the node notices
    // that the block under its cursor changed, rebuilds from the contract, and no longer counts
    // the deposit that does not exist any more.
    anvil(&devnet, "anvil_reorg", serde_json::json!([3, []])).await;
    let on_chain = bob.manager.getChannel(U256::from(1)).call().await.unwrap();
    assert_eq!(on_chain.depositB.to::<u64>(), 0, "the top-up is gone");
    node.sync().await.unwrap();
    assert_eq!(deposit_b(), 0, "not counted once it vanished");
    assert!(node.health().problems.is_empty(), "{:?}", node.health());

    // bob tops up again on the new branch: counted once, not on top of the vanished one.
    // (A fresh provider: the old one's cached account nonce counts the vanished transaction.)
    let bob = Party::new(&devnet, &d, devnet.key("BOB"));
    let before_second_top_up = anvil(&devnet, "evm_snapshot", serde_json::json!([])).await;
    send!(
        bob.manager
            .topUp(U256::from(1), bob.address(), U256::from(3 * USDC))
    );
    for _ in 0..2 {
        anvil(&devnet, "evm_mine", serde_json::json!([])).await;
    }
    node.sync().await.unwrap();
    assert_eq!(deposit_b(), 3 * USDC as u128);
    // Events arriving again (a replayed range) change nothing.
    node.sync().await.unwrap();
    assert_eq!(deposit_b(), 3 * USDC as u128);

    // A reorg to a SHORTER branch: the block under the cursor no longer exists. The node says
    // so (it cannot tell yet from another chain) and changes nothing; once the branch grows
    // past the cursor, the block is there with another hash and the node rebuilds.
    let cursor_block = node.sync().await.unwrap();
    anvil(
        &devnet,
        "evm_revert",
        serde_json::json!([before_second_top_up]),
    )
    .await;
    let head = ProviderBuilder::new()
        .connect_http(devnet.rpc_url.parse().unwrap())
        .get_block_number()
        .await
        .unwrap();
    assert!(head < cursor_block, "the chain is shorter than the cursor");
    let err = node.sync().await.unwrap_err();
    assert!(err.to_string().contains("is missing"), "{err}");
    assert_eq!(deposit_b(), 3 * USDC as u128, "nothing changed yet");
    for _ in head..=cursor_block {
        anvil(&devnet, "evm_mine", serde_json::json!([])).await;
    }
    node.sync().await.unwrap();
    assert_eq!(deposit_b(), 0, "the reverted top-up is not counted");
    // Every successful pass clears the watcher's problem, also one an operation runs.
    assert!(node.health().problems.is_empty(), "{:?}", node.health());
    node.shutdown().await;
}

/// Another chain behind the same RPC URL (a devnet restarted, the contracts at the same
/// addresses) with a channel 1 of other parties is not a reorg: the node refuses it, keeps its
/// records and its cursor, and says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_chain_at_the_same_address_is_refused_not_rebuilt_from() {
    let dir = tempfile::tempdir().unwrap();
    // A port outside the ephemeral range: nothing else can take it between the two chains
    // (the node keeps dialing it meanwhile).
    let port = farthing_e2e::fixed_port();
    let devnet = Devnet::start_on(port).unwrap();
    let d = devnet.deploy().await.unwrap();
    let alice = Party::new(&devnet, &d, devnet.key("ALICE"));
    devnet.mint(&d, alice.address(), 100 * USDC).await.unwrap();
    send!(alice.token.approve(d.channel_manager, U256::MAX));
    let node = farthing_daemon::Node::start(farthing_e2e::node_config(&devnet, &d, dir.path(), 1))
        .await
        .unwrap();
    let bob_address = devnet.key("BOB").address();
    send!(
        alice
            .manager
            .open(d.token, bob_address, U256::from(10 * USDC), 600)
    );
    for _ in 0..5 {
        anvil(&devnet, "evm_mine", serde_json::json!([])).await;
    }
    let cursor = node.sync().await.unwrap();
    let before = node.channel_record(1).unwrap();
    drop(devnet);

    // A new chain on the same port: same chain id, same contract addresses; bob opens channel
    // 1 towards alice, and the chain grows past the node's cursor.
    let devnet = Devnet::start_persistent(port, &dir.path().join("other-chain.json")).unwrap();
    let other = devnet.deploy().await.unwrap();
    assert_eq!(
        (other.channel_manager, other.token),
        (d.channel_manager, d.token)
    );
    let bob = Party::new(&devnet, &other, devnet.key("BOB"));
    devnet
        .mint(&other, bob.address(), 100 * USDC)
        .await
        .unwrap();
    send!(bob.token.approve(other.channel_manager, U256::MAX));
    send!(
        bob.manager
            .open(other.token, alice.address(), U256::from(3 * USDC), 600)
    );
    for _ in 0..cursor {
        anvil(&devnet, "evm_mine", serde_json::json!([])).await;
    }
    let err = node.sync().await.unwrap_err();
    assert!(
        err.to_string().contains("not the chain the node followed"),
        "{err}"
    );
    assert_eq!(node.channel_record(1).unwrap(), before, "nothing changed");
    assert_eq!(
        node.store().cursor().unwrap().map(|c| c.block),
        Some(cursor),
        "the cursor stays on the node's chain"
    );
    node.shutdown().await;
}
