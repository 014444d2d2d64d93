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
        deployment.token_domain().separator()
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
    assert_eq!(
        (
            deployment.token_name.as_str(),
            deployment.token_version.as_str()
        ),
        ("USD Coin", "2")
    );
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
    // A keystore made by cast, and a wrong password for it.
    let dir = tempfile::tempdir().unwrap();
    let made = Command::new(repo_root().join("contracts/node_modules/.bin/cast"))
        .args(["wallet", "new"])
        .arg(dir.path())
        .arg("deployer.json")
        .env("CAST_PASSWORD", "right password")
        .output()
        .unwrap();
    assert!(made.status.success());
    let keystore = dir.path().join("deployer.json");
    let wrong_password = dir.path().join("password");
    std::fs::write(&wrong_password, "wrong password\n").unwrap();
    let run = |args: &[&str]| {
        let output = Command::new(repo_root().join("scripts/deploy.sh"))
            .args(args)
            .output()
            .unwrap();
        assert!(!output.status.success(), "{args:?} should fail");
        String::from_utf8(output.stderr).unwrap()
    };
    let cases: [(&[&str], &str); 7] = [
        (
            &["--rpc-url", "http://127.0.0.1:9"],
            "no chain answers at http://127.0.0.1:9",
        ),
        (
            &[
                "--rpc-url",
                &devnet.rpc_url,
                "--keystore",
                "/nonexistent/key.json",
            ],
            "--keystore: no file at /nonexistent/key.json",
        ),
        (
            &[
                "--rpc-url",
                &devnet.rpc_url,
                "--private-key",
                "0x01",
                "--keystore",
                "/nonexistent/key.json",
            ],
            "--private-key and --keystore both name a deployer key",
        ),
        (
            &[
                "--rpc-url",
                &devnet.rpc_url,
                "--keystore",
                keystore.to_str().unwrap(),
                "--password-file",
                wrong_password.to_str().unwrap(),
            ],
            "cannot decrypt the keystore",
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

/// `scripts/deploy.sh` with `ARGS`: (success, stderr).
fn deploy_sh(args: &[&str]) -> (bool, String) {
    let output = Command::new(repo_root().join("scripts/deploy.sh"))
        .args(args)
        .output()
        .unwrap();
    (
        output.status.success(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

#[tokio::test]
async fn deploy_script_with_token_deploys_only_a_channel_manager_and_records_the_tokens_domain() {
    let devnet = Devnet::start().unwrap();
    // An existing token, as Circle's USDC on Base Sepolia is named.
    let usdc = devnet.deploy_token("USDC", "2").await.unwrap();
    let provider = ProviderBuilder::new().connect_http(devnet.rpc_url.parse().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("deployment.json");
    let token = usdc.token.to_string();
    let (ok, stderr) = deploy_sh(&[
        "--rpc-url",
        &devnet.rpc_url,
        "--out",
        out.to_str().unwrap(),
        "--token",
        &token,
    ]);
    assert!(ok, "{stderr}");
    let d = Deployment::load(&out).unwrap();
    assert_eq!(d.token, usdc.token);
    assert_ne!(
        d.channel_manager, usdc.channel_manager,
        "a new ChannelManager"
    );
    assert_eq!(
        (
            d.token_decimals,
            d.token_name.as_str(),
            d.token_version.as_str()
        ),
        (6, "USDC", "2")
    );
    d.check(&provider).await.unwrap();
    // The token was not redeployed, nor anything minted: its supply is what it was (none).
    let erc20 = MockUSDC::new(usdc.token, &provider);
    assert_eq!(erc20.totalSupply().call().await.unwrap(), U256::ZERO);

    // A token with no version(): its domain's version comes from EIP-5267's eip712Domain()
    // (an OpenZeppelin ERC20Permit, version "1"), in the script and in the node's check.
    let deployer = devnet.provider(&devnet.key("DEPLOYER"));
    let plain = farthing_chain::contracts::PlainERC20::deploy(&deployer)
        .await
        .unwrap();
    let plain_out = dir.path().join("plain.json");
    let (ok, stderr) = deploy_sh(&[
        "--rpc-url",
        &devnet.rpc_url,
        "--out",
        plain_out.to_str().unwrap(),
        "--token",
        &plain.address().to_string(),
    ]);
    assert!(ok, "{stderr}");
    let d = Deployment::load(&plain_out).unwrap();
    assert_eq!(
        (d.token_name.as_str(), d.token_version.as_str()),
        ("Plain Test Dollar", "1")
    );
    d.check(&provider).await.unwrap();
}

#[tokio::test]
async fn deploy_script_with_token_refuses_what_the_node_cannot_use_in_one_line() {
    let devnet = Devnet::start().unwrap();
    let usdc = devnet.deploy_token("USDC", "2").await.unwrap();
    let provider = ProviderBuilder::new().connect_http(devnet.rpc_url.parse().unwrap());
    // Code that answers 18 to every call: an 18-decimal "token".
    let eighteen = Address::repeat_byte(0x18);
    let _: serde_json::Value = provider
        .raw_request("anvil_setCode".into(), (eighteen, "0x601260005260206000f3"))
        .await
        .unwrap();
    let blocks = provider.get_block_number().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("deployment.json");
    let (token, empty, wide) = (
        usdc.token.to_string(),
        Address::repeat_byte(0x42).to_string(),
        eighteen.to_string(),
    );
    let base = [
        "--rpc-url",
        devnet.rpc_url.as_str(),
        "--out",
        out.to_str().unwrap(),
    ];
    let cases: [(&[&str], String); 5] = [
        (
            &[
                "--token",
                &token,
                "--fund",
                "0x70997970C51812dc3A010C7d01b50e0d17dc79C8=5",
            ],
            "--fund mints MockUSDC, which --token does not deploy".into(),
        ),
        (
            &["--token", &token, "--mock-name", "X"],
            "--mock-name and --mock-version name a MockUSDC, which --token does not deploy".into(),
        ),
        (
            &["--token", "0x12"],
            "--token: '0x12' is not an address".into(),
        ),
        (
            &["--token", &empty],
            format!("no contract at --token {empty} on chain 31337"),
        ),
        (
            &["--token", &wide],
            format!(
                "the token at {wide} has 18 decimals, Farthing's channels take a 6-decimal token (USDC)"
            ),
        ),
    ];
    for (args, expected) in cases {
        let args: Vec<&str> = base.iter().copied().chain(args.iter().copied()).collect();
        let (ok, stderr) = deploy_sh(&args);
        assert!(!ok, "{args:?} should fail");
        assert_eq!(stderr.lines().count(), 1, "one line for {args:?}: {stderr}");
        assert!(
            stderr.starts_with("error: ") && stderr.contains(&expected),
            "{args:?}: {stderr}"
        );
    }
    assert!(!out.exists(), "no deployment file written");
    assert_eq!(
        provider.get_block_number().await.unwrap(),
        blocks,
        "nothing was sent"
    );

    // A token whose EIP-712 domain is not keccak(EIP712Domain(name, version, chainId,
    // token)) (the chain id in a salt, as Polygon's bridged USDC): refused, both hashes named.
    let deployer = devnet.provider(&devnet.key("DEPLOYER"));
    let salted = farthing_chain::contracts::SaltedDomainToken::deploy(&deployer)
        .await
        .unwrap();
    let blocks = provider.get_block_number().await.unwrap();
    let theirs = salted.DOMAIN_SEPARATOR().call().await.unwrap();
    let standard = farthing_chain::messages::TokenDomain {
        name: "USDC".into(),
        version: "2".into(),
        chain_id: 31337,
        token: *salted.address(),
    }
    .separator();
    let salted_address = salted.address().to_string();
    let args: Vec<&str> = base
        .iter()
        .copied()
        .chain(["--token", salted_address.as_str()])
        .collect();
    let (ok, stderr) = deploy_sh(&args);
    assert!(!ok);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains(&format!(
            r#"the token at {salted_address} has DOMAIN_SEPARATOR() {theirs}, but its name "USDC" and version "2" on chain 31337 hash to {standard}: the node cannot sign in its domain"#
        )),
        "{stderr}"
    );
    assert!(!out.exists());
    assert_eq!(provider.get_block_number().await.unwrap(), blocks);
}
