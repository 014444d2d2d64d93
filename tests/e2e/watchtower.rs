//! The built-in watchtower against a partner that closes with an old state (RELIABILITY C1,
//! C5): two real nodes pay each other over their link; then bob's node goes away and bob, with
//! his key, closes the channel and pushes his own OLDEST proof on-chain (erasing most of what
//! he paid). alice's node answers with bob's latest proof inside the challenge period and
//! settles once it is over — with no operator action, also when alice's node was down when bob
//! closed and starts again inside the window. On-chain balances exact to the unit.

use alloy::primitives::{Address, U256};
use alloy::providers::Provider;
use farthing_core::{ChainState, SignedProof};
use farthing_daemon::Node;
use farthing_e2e::{Devnet, PATIENCE, Party, USDC, done_if, eventually, node_config, send};

const USDC_U: u128 = USDC as u128;

/// Two nodes with a channel: alice opened it with 10, bob topped up 10; alice paid bob 3 in
/// three payments, bob paid alice 2 in four payments. Returns bob's first and last proofs and
/// alice's last (as bob holds it), with bob's node stopped.
struct Setup {
    devnet: Devnet,
    d: farthing_chain::Deployment,
    dir: tempfile::TempDir,
    alice: Node,
    bob_first: SignedProof,
    bob_last: SignedProof,
    alice_last: SignedProof,
    /// Transactions alice's address had sent when bob's node went away (the open).
    alice_sent: u64,
}

/// How many transactions `who` has sent, counting those still in the pool.
async fn sent_by(s: &Setup, who: Address) -> u64 {
    s.devnet
        .provider(&s.devnet.key("DEPLOYER"))
        .get_transaction_count(who)
        .pending()
        .await
        .unwrap()
}

async fn setup() -> Setup {
    let devnet = Devnet::start().unwrap();
    let d = devnet.deploy().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    for who in ["ALICE", "BOB"] {
        devnet
            .mint(&d, devnet.key(who).address(), 100 * USDC)
            .await
            .unwrap();
    }
    let alice = Node::start(node_config(&devnet, &d, dir.path(), 1))
        .await
        .unwrap();
    let bob = Node::start(node_config(&devnet, &d, dir.path(), 2))
        .await
        .unwrap();
    let at = bob
        .listen_peers("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    alice
        .connect_peer(&format!("{}@{at}", bob.address()).parse().unwrap())
        .await
        .unwrap();
    alice
        .open_channel(bob.address(), 10 * USDC_U, Some(600))
        .await
        .unwrap();
    eventually(PATIENCE, "bob to see the channel", async || {
        bob.channel_record(1)
    })
    .await;
    bob.top_up(1, 10 * USDC_U).await.unwrap();
    eventually(PATIENCE, "alice to see bob's deposit", async || {
        let deposit = alice.channel_record(1).unwrap().on_chain.deposit_b;
        done_if(deposit == 10 * USDC_U, deposit)
    })
    .await;
    for _ in 0..3 {
        alice.pay(1, USDC_U, b"", None).await.unwrap();
    }
    bob.pay(1, USDC_U / 2, b"", None).await.unwrap();
    let bob_first = bob.channel_record(1).unwrap().ours.unwrap();
    for _ in 0..3 {
        bob.pay(1, USDC_U / 2, b"", None).await.unwrap();
    }
    let at_bob = bob.channel_record(1).unwrap();
    let (bob_last, alice_last) = (at_bob.ours.unwrap(), at_bob.theirs.unwrap());
    assert_eq!((bob_last.nonce, bob_last.transferred), (4, 2 * USDC_U));
    assert_eq!(
        alice.channel_record(1).unwrap().theirs.unwrap(),
        bob_last,
        "alice's node holds bob's latest proof"
    );
    bob.shutdown().await;
    let alice_sent = devnet
        .provider(&devnet.key("DEPLOYER"))
        .get_transaction_count(alice.address())
        .pending()
        .await
        .unwrap();
    assert_eq!(
        alice_sent, 1,
        "alice's node opened the channel (permit: no approve)"
    );
    Setup {
        devnet,
        d,
        dir,
        alice,
        bob_first,
        bob_last,
        alice_last,
        alice_sent,
    }
}

/// bob, with his key, closes with alice's latest proof and records `his` own proof, both in
/// one block (mined by hand): alice's node never sees the channel closed without his proof, so
/// whatever it does answers exactly that state. Returns bob and the block. The chain is read
/// before anyone can answer (what alice's node sends meanwhile waits in the pool); then blocks
/// come on their own again and whatever was sent meanwhile is mined.
async fn bob_closes(s: &Setup, his: &SignedProof) -> (Party, u64) {
    let bob = Party::new(&s.devnet, &s.d, s.devnet.key("BOB"));
    let rpc = s.devnet.provider(&s.devnet.key("DEPLOYER"));
    let automine = |on: bool| {
        let rpc = rpc.clone();
        async move {
            let _: serde_json::Value = rpc
                .raw_request("evm_setAutomine".into(), (on,))
                .await
                .unwrap();
        }
    };
    let mine = || {
        let rpc = rpc.clone();
        async move {
            let _: serde_json::Value = rpc.raw_request("evm_mine".into(), ()).await.unwrap();
        }
    };
    automine(false).await;
    let a = &s.alice_last;
    let close = bob
        .manager
        .close(U256::from(1), a.nonce, a.transferred, a.signature.clone())
        .send()
        .await
        .unwrap();
    let update = bob
        .manager
        .updateProof(
            U256::from(1),
            his.nonce,
            his.transferred,
            his.signature.clone(),
        )
        .send()
        .await
        .unwrap();
    mine().await;
    let mut blocks = Vec::new();
    for pending in [close, update] {
        let receipt = pending.get_receipt().await.unwrap();
        assert!(receipt.status());
        blocks.push(receipt.block_number.unwrap());
    }
    assert_eq!(
        blocks[0], blocks[1],
        "the close and bob's proof share a block"
    );
    let on_chain = bob.manager.getChannel(U256::from(1)).call().await.unwrap();
    assert_eq!(
        (on_chain.nonceB, on_chain.transferredB),
        (his.nonce, his.transferred),
        "bob's chosen proof is on-chain"
    );
    automine(true).await;
    mine().await;
    (bob, blocks[0])
}

/// bob closes with his own OLDEST proof: he claims to have paid 0.5 instead of 2.
async fn bob_closes_stale(s: &Setup) -> Party {
    assert_eq!(
        (s.bob_first.nonce, s.bob_first.transferred),
        (1, USDC_U / 2)
    );
    bob_closes(s, &s.bob_first).await.0
}

/// alice's node answers with bob's latest proof (if `challenged`), then settles after the
/// window; exact payouts: alice 10 - 3 + 2 = 9, bob 10 + 3 - 2 = 11. Those are the only
/// transactions alice's node sends.
async fn alice_defends(s: &Setup, alice: &Node, bob: &Party, challenged: bool) {
    let latest = (s.bob_last.nonce, s.bob_last.transferred);
    eventually(
        PATIENCE,
        "alice's node to record bob's latest proof on-chain",
        async || {
            let recorded = alice.channel_record(1).unwrap().on_chain.proof_b;
            done_if(recorded == latest, recorded)
        },
    )
    .await;
    let on_chain = bob.manager.getChannel(U256::from(1)).call().await.unwrap();
    assert_eq!((on_chain.nonceB, on_chain.transferredB), latest);
    s.devnet.advance_time(601).await.unwrap();
    eventually(PATIENCE, "alice's node to settle on its own", async || {
        let state = alice.channel_record(1).unwrap().on_chain.state;
        done_if(state == ChainState::Settled, state)
    })
    .await;
    let alice_party = Party::new(&s.devnet, &s.d, s.devnet.key("ALICE"));
    assert_eq!(alice_party.balance().await, 90 * USDC + 9 * USDC);
    assert_eq!(bob.balance().await, 90 * USDC + 11 * USDC);
    assert_eq!(
        sent_by(s, alice.address()).await,
        s.alice_sent + u64::from(challenged) + 1,
        "alice's node sent its answer (if one was due) and the settle, nothing else"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_close_is_answered_with_the_newer_proof_and_settled_without_the_operator() {
    let s = setup().await;
    let bob = bob_closes_stale(&s).await;
    alice_defends(&s, &s.alice.clone(), &bob, true).await;
    s.alice.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_down_when_the_partner_closed_answers_after_restarting_inside_the_window() {
    let s = setup().await;
    s.alice.shutdown().await;
    let bob = bob_closes_stale(&s).await;
    // 300 of the 600 seconds pass while alice's node is down.
    s.devnet.advance_time(300).await.unwrap();
    let alice = Node::start(node_config(&s.devnet, &s.d, s.dir.path(), 1))
        .await
        .unwrap();
    alice_defends(&s, &alice, &bob, true).await;
    alice.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_is_sent_when_the_partner_closed_with_the_latest_state() {
    let s = setup().await;
    // bob closes honestly: alice's latest proof and his own latest, in one block.
    let (bob, block) = bob_closes(&s, &s.bob_last).await;
    // Once alice's node has applied that block, a guard pass over it calls for nothing (the
    // node's own passes see the same state: the close and the proof came in one block).
    s.alice.sync_to(block).await.unwrap();
    let channel = s.alice.channel_record(1).unwrap();
    assert_eq!(channel.on_chain.state, ChainState::Closed);
    assert_eq!(
        channel.on_chain.proof_b,
        (s.bob_last.nonce, s.bob_last.transferred)
    );
    let pass = s.alice.guard(false).await.unwrap();
    assert_eq!(pass.actions, vec![], "nothing to answer inside the window");
    assert_eq!(pass.warnings, Vec::<String>::new());
    // ... and nothing left the node: not mined, not waiting in the pool.
    assert_eq!(
        sent_by(&s, s.alice.address()).await,
        s.alice_sent,
        "no transaction inside the window"
    );
    alice_defends(&s, &s.alice.clone(), &bob, false).await;
    s.alice.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_little_gas_to_defend_the_channels_is_a_warning() {
    let devnet = Devnet::start().unwrap();
    let d = devnet.deploy().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let alice = Party::new(&devnet, &d, devnet.key("ALICE"));
    devnet.mint(&d, alice.address(), 10 * USDC).await.unwrap();
    let bob = Node::start(node_config(&devnet, &d, dir.path(), 2))
        .await
        .unwrap();
    assert!(bob.warnings().is_empty(), "no channel to defend yet");
    // alice opens a channel to bob's node; bob's key is left with 1,000 wei.
    send!(alice.token.approve(d.channel_manager, U256::MAX));
    send!(
        alice
            .manager
            .open(d.token, bob.address(), U256::from(USDC), 600u32)
    );
    let _: serde_json::Value = devnet
        .provider(&devnet.key("DEPLOYER"))
        .raw_request(
            "anvil_setBalance".into(),
            (bob.address(), U256::from(1_000)),
        )
        .await
        .unwrap();
    eventually(PATIENCE, "bob's node to see the channel", async || {
        bob.channel_record(1)
    })
    .await;
    // The gas check runs every 30 s and at start: force a pass. (Its own warnings: a
    // background pass may rewrite the node's list at the same moment.)
    let pass = bob.guard(true).await.unwrap();
    assert_eq!(
        pass.actions,
        vec![],
        "an open channel needs nothing on-chain"
    );
    let warnings = pass.warnings;
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].contains("cannot defend its 1 channels") && warnings[0].contains("send ether"),
        "{}",
        warnings[0]
    );
    bob.shutdown().await;
}
