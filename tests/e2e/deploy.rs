//! The contracts deploy to a real anvil (through the bindings and through `scripts/deploy.sh`)
//! and read back through the bindings generated from the forge artifacts.

use std::process::Command;

use alloy::primitives::{Address, U256, keccak256};
use alloy::providers::{Provider, ProviderBuilder};
use alloy::sol_types::SolStruct;
use farthing_chain::contracts::{ChannelManager, MockUSDC};
use farthing_chain::messages::{self, BalanceProof, CooperativeClose, Withdraw};
use farthing_chain::{Deployment, DeploymentError};
use farthing_e2e::{Devnet, repo_root};

#[tokio::test]
async fn contracts_deploy_and_read_back_through_bindings() {
    let devnet = Devnet::start().unwrap();
    let deployment = devnet.deploy().await.unwrap();
    let provider = ProviderBuilder::new().connect_http(devnet.rpc_url.parse().unwrap());

    let check = deployment.check(&provider).await.unwrap();
    assert_eq!(check.chain_id, 31337);
    assert_eq!(check.channel_count, 0);
    assert_eq!(check.token_symbol, "USDC");

    let manager = ChannelManager::new(deployment.channel_manager, &provider);
    let unknown = manager.getChannel(U256::from(1)).call().await.unwrap();
    assert_eq!(unknown.state, 0, "no channel exists yet");
    assert_eq!(unknown.participantA, Address::ZERO);

    // The node's EIP-712 hashing equals the contract's, for every message type.
    let domain = messages::channel_domain(deployment.chain_id, deployment.channel_manager);
    assert_eq!(
        manager.DOMAIN_SEPARATOR().call().await.unwrap(),
        domain.separator()
    );
    let proof = BalanceProof {
        channelId: U256::from(7),
        nonce: 42,
        transferred: 123_456_789,
    };
    assert_eq!(
        manager
            .balanceProofDigest(proof.channelId, proof.nonce, proof.transferred)
            .call()
            .await
            .unwrap(),
        proof.eip712_signing_hash(&domain)
    );
    assert_eq!(
        manager.BALANCE_PROOF_TYPEHASH().call().await.unwrap(),
        proof.eip712_type_hash()
    );
    let withdraw = Withdraw {
        channelId: U256::from(3),
        participant: Address::repeat_byte(0xab),
        totalWithdrawn: alloy::primitives::Uint::from(5u64),
        expiry: 4_000_000_000,
    };
    assert_eq!(
        manager
            .withdrawDigest(
                withdraw.channelId,
                withdraw.participant,
                withdraw.totalWithdrawn,
                withdraw.expiry
            )
            .call()
            .await
            .unwrap(),
        withdraw.eip712_signing_hash(&domain)
    );
    let close = CooperativeClose {
        channelId: U256::from(3),
        payoutA: U256::from(1),
        payoutB: U256::from(2),
        withdrawnA: Default::default(),
        withdrawnB: Default::default(),
    };
    assert_eq!(
        manager
            .cooperativeCloseDigest(close.channelId, close.payoutA, close.payoutB)
            .call()
            .await
            .unwrap(),
        close.eip712_signing_hash(&domain)
    );
    let salt = keccak256("salt");
    assert_eq!(
        manager
            .openAuthorizationNonce(Address::repeat_byte(1), 3600, salt)
            .call()
            .await
            .unwrap(),
        messages::open_authorization_nonce(Address::repeat_byte(1), 3600, salt)
    );

    let token = MockUSDC::new(deployment.token, &provider);
    assert_eq!(token.decimals().call().await.unwrap(), 6);
    assert_eq!(
        token.DOMAIN_SEPARATOR().call().await.unwrap(),
        messages::usdc_domain(deployment.chain_id, deployment.token).separator()
    );
}

#[tokio::test]
async fn deploy_script_writes_a_deployment_the_node_checks() {
    let devnet = Devnet::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("deployment.json");
    let alice = devnet.key("ALICE").address();
    let status = Command::new(repo_root().join("scripts/deploy.sh"))
        .args(["--rpc-url", &devnet.rpc_url, "--chain-id", "31337"])
        .arg("--out")
        .arg(&out)
        .args(["--fund", &format!("{alice}=12.5")])
        .status()
        .unwrap();
    assert!(status.success());

    let deployment = Deployment::load(&out).unwrap();
    let provider = ProviderBuilder::new().connect_http(devnet.rpc_url.parse().unwrap());
    let check = deployment.check(&provider).await.unwrap();
    assert_eq!(check.chain_id, 31337);
    assert_eq!(deployment.token_decimals, 6);
    assert_eq!(deployment.deployer, devnet.key("DEPLOYER").address());
    assert!(deployment.deployment_block >= 1 && deployment.deployment_block <= check.block_number);
    let token = MockUSDC::new(deployment.token, &provider);
    assert_eq!(
        token.balanceOf(alice).call().await.unwrap(),
        U256::from(12_500_000u64)
    );
}

#[tokio::test]
async fn deploy_script_refuses_bad_input_in_one_line() {
    let devnet = Devnet::start().unwrap();
    let run = |args: &[&str]| {
        let output = Command::new(repo_root().join("scripts/deploy.sh"))
            .args(args)
            .output()
            .unwrap();
        assert!(!output.status.success(), "{args:?} should fail");
        String::from_utf8(output.stderr).unwrap()
    };
    let cases: [(&[&str], &str); 4] = [
        (
            &["--rpc-url", "http://127.0.0.1:9"],
            "no chain answers at http://127.0.0.1:9",
        ),
        (
            &["--rpc-url", &devnet.rpc_url, "--chain-id", "1"],
            "has id 31337, not 1",
        ),
        (
            &[
                "--rpc-url",
                &devnet.rpc_url,
                "--private-key",
                "0x0000000000000000000000000000000000000000000000000000000000000001",
            ],
            "has no ether on chain 31337",
        ),
        (
            &["--rpc-url", &devnet.rpc_url, "--fund", "0x12=5"],
            "'0x12' is not an address",
        ),
    ];
    for (args, expected) in cases {
        let stderr = run(args);
        assert_eq!(
            stderr.lines().count(),
            1,
            "one line for {args:?}, got: {stderr}"
        );
        assert!(
            stderr.starts_with("error: ") && stderr.contains(expected),
            "{args:?}: {stderr}"
        );
    }
    // Nothing was deployed by any refused run.
    let provider = ProviderBuilder::new().connect_http(devnet.rpc_url.parse().unwrap());
    assert_eq!(provider.get_block_number().await.unwrap(), 0);
}

#[tokio::test]
async fn chain_check_refuses_wrong_chain_missing_code_and_dead_rpc() {
    let devnet = Devnet::start().unwrap();
    let deployment = devnet.deploy().await.unwrap();
    let provider = ProviderBuilder::new().connect_http(devnet.rpc_url.parse().unwrap());

    let wrong_chain = Deployment {
        chain_id: 1,
        ..deployment.clone()
    };
    let err = wrong_chain.check(&provider).await.unwrap_err();
    assert!(
        matches!(
            err,
            DeploymentError::WrongChain {
                expected: 1,
                actual: 31337
            }
        ),
        "{err}"
    );

    let no_code = Deployment {
        channel_manager: Address::repeat_byte(0x42),
        ..deployment.clone()
    };
    let err = no_code.check(&provider).await.unwrap_err();
    assert!(
        matches!(
            err,
            DeploymentError::NoCode {
                name: "ChannelManager",
                ..
            }
        ),
        "{err}"
    );

    let swapped = Deployment {
        channel_manager: deployment.token,
        ..deployment.clone()
    };
    let err = swapped.check(&provider).await.unwrap_err();
    assert!(
        matches!(
            err,
            DeploymentError::Mismatch {
                name: "ChannelManager",
                ..
            }
        ),
        "{err}"
    );

    let dead = ProviderBuilder::new().connect_http("http://127.0.0.1:9".parse().unwrap());
    let err = deployment.check(&dead).await.unwrap_err();
    assert!(matches!(err, DeploymentError::Unreachable(_)), "{err}");
    assert!(err.to_string().contains("is the chain running"), "{err}");
}
