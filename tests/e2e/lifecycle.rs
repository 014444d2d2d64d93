//! Every lifecycle step of a channel as real transactions on anvil, through the bindings:
//! exact token balances after each outcome, and the gas of each step checked against the
//! committed snapshot `contracts/gas-snapshot.json` (set `FARTHING_UPDATE_GAS_SNAPSHOT=1` to
//! rewrite it after a deliberate contract change).
//!
//! The scenario runs twice: with MockUSDC (what users pay with USDC) and with a plain
//! OpenZeppelin ERC-20 (what the channel contract itself costs, comparable with Raiden's
//! figures, which were measured with a plain token). Gas is measured in steady state: a
//! warm-up channel first, so the first-ever writes of the contract's counters are not counted.

use std::collections::BTreeMap;

use alloy::primitives::{B256, Bytes, U256, Uint, keccak256};
use alloy::providers::Provider;
use alloy::rpc::types::TransactionReceipt;
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::Eip712Domain;
use farthing_chain::Deployment;
use farthing_chain::contracts::{MockUSDC, PlainERC20};
use farthing_chain::messages::{
    self, BalanceProof, CooperativeClose, Permit, ReceiveWithAuthorization, Withdraw,
};
use farthing_e2e::{Devnet, Party, USDC, repo_root, send};

const PERIOD: u32 = 3600;
/// Fixed far-future expiry/deadline so signatures, and so calldata and gas, are deterministic.
const FAR_FUTURE: u64 = 4_000_000_000;

type U96 = Uint<96, 2>;

fn u96(v: u64) -> U96 {
    U96::from(v)
}

/// Gas used by each lifecycle step, in the order the README's table lists them.
#[derive(Default)]
struct GasLog {
    prefix: &'static str,
    steps: BTreeMap<String, u64>,
}

impl GasLog {
    fn record(&mut self, step: &str, receipt: &TransactionReceipt) {
        assert!(receipt.status(), "{step} reverted");
        self.steps
            .insert(format!("{}/{step}", self.prefix), receipt.gas_used);
    }
}

#[tokio::test]
async fn every_lifecycle_step_pays_exactly_and_costs_the_snapshot_gas() {
    let devnet = Devnet::start().unwrap();
    let usdc = devnet.deploy().await.unwrap();
    let deployer = devnet.provider(&devnet.key("DEPLOYER"));
    let plain = PlainERC20::deploy(&deployer).await.unwrap();
    let erc20 = Deployment {
        token: *plain.address(),
        token_name: "Plain Test Dollar".into(),
        token_version: "1".into(),
        ..usdc.clone()
    };
    let erc20_domain = Eip712Domain {
        name: Some("Plain Test Dollar".into()),
        version: Some("1".into()),
        chain_id: Some(U256::from(usdc.chain_id)),
        verifying_contract: Some(*plain.address()),
        salt: None,
    };

    let mut gas = GasLog {
        prefix: "usdc",
        ..Default::default()
    };
    let usdc_domain = usdc.token_domain().eip712();
    common_lifecycle(&devnet, &usdc, &usdc_domain, &mut gas).await;
    usdc_only_paths(&devnet, &usdc, &mut gas).await;

    gas.prefix = "erc20";
    common_lifecycle(&devnet, &erc20, &erc20_domain, &mut gas).await;

    check_gas_snapshot(&gas);
}

/// Open (approved, permit, no deposit), top-up, withdraw, close, update, settle, cooperative
/// close on a fresh pair of accounts, with exact balances after each payout.
async fn common_lifecycle(
    devnet: &Devnet,
    d: &Deployment,
    token_domain: &Eip712Domain,
    gas: &mut GasLog,
) {
    let domain = messages::channel_domain(d.chain_id, d.channel_manager);
    let alice = Party::new(devnet, d, devnet.key("ALICE"));
    let bob = Party::new(devnet, d, devnet.key("BOB"));
    let alice_start = alice.balance().await;
    let bob_start = bob.balance().await;
    for who in [&alice, &bob] {
        devnet.mint(d, who.address(), 1_000 * USDC).await.unwrap();
        send!(who.token.approve(d.channel_manager, U256::MAX));
    }
    let manager_start: u64 = alice
        .token
        .balanceOf(d.channel_manager)
        .call()
        .await
        .unwrap()
        .to();
    let first_id = alice.manager.channelCount().call().await.unwrap() + U256::from(1);
    let next_id = |n: u64| first_id + U256::from(n);

    // Warm-up (not measured): the contract holds a channel and tokens, as in steady state.
    send!(
        alice
            .manager
            .open(d.token, bob.address(), U256::from(USDC), PERIOD)
    );

    // --- Open with deposit (approved), top-up, withdraw, unilateral close, update, settle.
    let r = send!(
        alice
            .manager
            .open(d.token, bob.address(), U256::from(100 * USDC), PERIOD)
    );
    gas.record("open_with_deposit", &r);
    let id = next_id(1);
    let r = send!(bob.manager.topUp(id, bob.address(), U256::from(50 * USDC)));
    gas.record("top_up", &r);

    // Off-chain: alice has paid bob 30 USDC over three payments, bob paid alice 5 in one.
    let alice_proof = BalanceProof {
        channelId: id,
        nonce: 3,
        transferred: 30 * USDC as u128,
    };
    let bob_proof = BalanceProof {
        channelId: id,
        nonce: 1,
        transferred: 5 * USDC as u128,
    };
    let alice_sig = messages::sign(&alice.key, &alice_proof, &domain);
    let bob_sig = messages::sign(&bob.key, &bob_proof, &domain);

    // Bob withdraws 10 USDC while the channel stays open; both sign, alice submits.
    let w = Withdraw {
        channelId: id,
        participant: bob.address(),
        totalWithdrawn: u96(10 * USDC),
        expiry: FAR_FUTURE,
    };
    let r = send!(alice.manager.withdraw(
        id,
        bob.address(),
        U256::from(10 * USDC),
        U256::from(FAR_FUTURE),
        messages::sign(&alice.key, &w, &domain),
        messages::sign(&bob.key, &w, &domain),
    ));
    gas.record("withdraw", &r);
    assert_eq!(bob.balance().await, bob_start + 960 * USDC);

    // Alice closes with bob's proof; bob answers with alice's latest proof.
    let r = send!(
        alice
            .manager
            .close(id, bob_proof.nonce, bob_proof.transferred, bob_sig)
    );
    gas.record("close", &r);
    let r =
        send!(
            bob.manager
                .updateProof(id, alice_proof.nonce, alice_proof.transferred, alice_sig)
        );
    gas.record("update_proof", &r);
    let info = alice.manager.getChannel(id).call().await.unwrap();
    assert_eq!((info.nonceA, info.transferredA), (3, 30 * USDC as u128));
    assert_eq!((info.nonceB, info.transferredB), (1, 5 * USDC as u128));
    assert_eq!(info.closer, alice.address());

    // Settle too early is refused; after the window it pays out.
    let early = alice.manager.settle(id).call().await.unwrap_err();
    assert!(early.to_string().contains("revert"), "{early}");
    devnet.advance_time(u64::from(PERIOD) + 1).await.unwrap();
    let r = send!(bob.manager.settle(id));
    gas.record("settle", &r);
    // holdings 140 = 150 - 10; alice's net = 100 + 5 - 30 = 75; bob gets the other 65.
    // (alice also has 1 USDC in the warm-up channel)
    assert_eq!(alice.balance().await, alice_start + 899 * USDC + 75 * USDC);
    assert_eq!(bob.balance().await, bob_start + 960 * USDC + 65 * USDC);
    let manager_now: u64 = alice
        .token
        .balanceOf(d.channel_manager)
        .call()
        .await
        .unwrap()
        .to();
    assert_eq!(
        manager_now,
        manager_start + USDC,
        "only the warm-up channel's deposit is left"
    );

    // --- Open without deposit (the partner funds it), then cooperative close.
    let r = send!(
        alice
            .manager
            .open(d.token, bob.address(), U256::ZERO, PERIOD)
    );
    gas.record("open_without_deposit", &r);
    let id2 = next_id(2);
    send!(bob.manager.topUp(id2, bob.address(), U256::from(40 * USDC)));
    let close = CooperativeClose {
        channelId: id2,
        payoutA: U256::from(15 * USDC),
        payoutB: U256::from(25 * USDC),
        withdrawnA: u96(0),
        withdrawnB: u96(0),
    };
    let r = send!(bob.manager.cooperativeClose(
        id2,
        U256::from(15 * USDC),
        U256::from(25 * USDC),
        messages::sign(&alice.key, &close, &domain),
        messages::sign(&bob.key, &close, &domain),
    ));
    gas.record("cooperative_close", &r);
    assert_eq!(alice.balance().await, alice_start + 974 * USDC + 15 * USDC);
    assert_eq!(bob.balance().await, bob_start + 1025 * USDC - 15 * USDC);

    // --- A new payer with no allowance opens in ONE transaction with a permit.
    let carol_key = PrivateKeySigner::from_bytes(&keccak256(format!("carol {}", d.token))).unwrap();
    let carol = Party::new(devnet, d, carol_key);
    devnet.fund_ether(carol.address(), 1).await.unwrap();
    devnet.mint(d, carol.address(), 100 * USDC).await.unwrap();
    let permit = Permit {
        owner: carol.address(),
        spender: d.channel_manager,
        value: U256::from(60 * USDC),
        nonce: U256::ZERO,
        deadline: U256::from(FAR_FUTURE),
    };
    let (v, r_, s) = split(&messages::sign(&carol.key, &permit, token_domain));
    let r = send!(carol.manager.openWithPermit(
        d.token,
        carol.address(),
        bob.address(),
        U256::from(60 * USDC),
        PERIOD,
        U256::from(FAR_FUTURE),
        v,
        r_,
        s,
        Bytes::new(),
    ));
    gas.record("open_with_permit", &r);
    assert_eq!(carol.balance().await, 40 * USDC);
    let info = carol.manager.getChannel(next_id(3)).call().await.unwrap();
    assert_eq!(
        (info.participantA, info.depositA),
        (carol.address(), u96(60 * USDC))
    );
}

/// What only USDC-style tokens offer or do: a gasless EIP-3009 open, and a blacklisted
/// receiver whose payout is deferred and claimed later.
async fn usdc_only_paths(devnet: &Devnet, d: &Deployment, gas: &mut GasLog) {
    let domain = messages::channel_domain(d.chain_id, d.channel_manager);
    let token_domain = d.token_domain().eip712();
    let alice = Party::new(devnet, d, devnet.key("ALICE"));
    let bob = Party::new(devnet, d, devnet.key("BOB"));
    let count = alice.manager.channelCount().call().await.unwrap();

    // --- Gasless for the payer. Dave has no ether at all; he signs one EIP-3009
    // authorization whose nonce fixes the partner and period, and bob submits it.
    let dave = PrivateKeySigner::from_bytes(&keccak256("dave")).unwrap();
    devnet.mint(d, dave.address(), 100 * USDC).await.unwrap();
    let salt = B256::repeat_byte(0x5a);
    let auth = ReceiveWithAuthorization {
        from: dave.address(),
        to: d.channel_manager,
        value: U256::from(70 * USDC),
        validAfter: U256::ZERO,
        validBefore: U256::from(FAR_FUTURE),
        nonce: messages::open_authorization_nonce(bob.address(), PERIOD, salt),
    };
    let (v, r_, s) = split(&messages::sign(&dave, &auth, &token_domain));
    let r = send!(bob.manager.openWithAuthorization(
        d.token,
        dave.address(),
        bob.address(),
        U256::from(70 * USDC),
        PERIOD,
        U256::ZERO,
        U256::from(FAR_FUTURE),
        salt,
        v,
        r_,
        s,
    ));
    gas.record("open_gasless_eip3009", &r);
    let dave_provider = devnet.provider(&dave);
    assert_eq!(
        dave_provider.get_balance(dave.address()).await.unwrap(),
        U256::ZERO
    );
    let info = bob
        .manager
        .getChannel(count + U256::from(1))
        .call()
        .await
        .unwrap();
    assert_eq!(
        (info.participantA, info.participantB),
        (dave.address(), bob.address())
    );
    assert_eq!(info.depositA, u96(70 * USDC));

    // --- A payout the token refuses (blacklisted receiver) is deferred, then claimed.
    let alice_before = alice.balance().await;
    let r = send!(
        alice
            .manager
            .open(d.token, bob.address(), U256::from(20 * USDC), PERIOD)
    );
    assert!(r.status());
    let id5 = count + U256::from(2);
    let owner = MockUSDC::new(d.token, devnet.provider(&devnet.key("DEPLOYER")));
    send!(owner.blacklist(bob.address()));
    let close = CooperativeClose {
        channelId: id5,
        payoutA: U256::from(12 * USDC),
        payoutB: U256::from(8 * USDC),
        withdrawnA: u96(0),
        withdrawnB: u96(0),
    };
    send!(alice.manager.cooperativeClose(
        id5,
        U256::from(12 * USDC),
        U256::from(8 * USDC),
        messages::sign(&alice.key, &close, &domain),
        messages::sign(&bob.key, &close, &domain),
    ));
    assert_eq!(alice.balance().await, alice_before - 20 * USDC + 12 * USDC);
    assert_eq!(
        alice
            .manager
            .claimable(d.token, bob.address())
            .call()
            .await
            .unwrap(),
        U256::from(8 * USDC)
    );
    send!(owner.unBlacklist(bob.address()));
    let bob_before = bob.balance().await;
    let r = send!(alice.manager.claim(d.token, bob.address()));
    gas.record("claim", &r);
    assert_eq!(bob.balance().await, bob_before + 8 * USDC);
}

/// 65-byte r|s|v signature into the (v, r, s) the token functions take.
fn split(sig: &Bytes) -> (u8, B256, B256) {
    (
        sig[64],
        B256::from_slice(&sig[..32]),
        B256::from_slice(&sig[32..64]),
    )
}

fn check_gas_snapshot(gas: &GasLog) {
    let path = repo_root().join("contracts/gas-snapshot.json");
    let measured = serde_json::to_string_pretty(&gas.steps).unwrap() + "\n";
    if std::env::var_os("FARTHING_UPDATE_GAS_SNAPSHOT").is_some() {
        std::fs::write(&path, &measured).unwrap();
        return;
    }
    let committed: BTreeMap<String, u64> =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let measured_map: BTreeMap<String, u64> = serde_json::from_str(&measured).unwrap();
    assert_eq!(
        committed, measured_map,
        "gas changed: if the contract change is deliberate, rerun with FARTHING_UPDATE_GAS_SNAPSHOT=1 \
         and update the README's gas table"
    );
}
