//! The chain RPC over https and wss: anvil behind stunnel with a certificate from a CA the test
//! makes.
//! With that CA as `--ca-file` two `farthing node` processes sync, open, pay and close through
//! it; an untrusted certificate, a certificate for another host, plain http to the TLS port
//! and https to a plain port are each refused at start in one line that names the URL without
//! its secret path and says what to do.

use farthing_e2e::tls::{TestCa, TlsFront, socket_of};
use farthing_e2e::{Deployed, PATIENCE, done_if, eventually, farthing_bin, fixed_port};
use farthing_rpc::{FarthingApiClient, HealthStatus};

use crate::providers::{Pair, refusal};

/// A CA, a certificate it signs for localhost and 127.0.0.1, stunnel with it before anvil.
fn tls_before(net: &Deployed) -> (TestCa, TlsFront) {
    let ca = TestCa::new("farthing test CA");
    let (cert, key) = ca.issue("localhost", "DNS:localhost,IP:127.0.0.1");
    let front = TlsFront::start(socket_of(&net.devnet.rpc_url), &cert, &key);
    (ca, front)
}

#[tokio::test]
async fn two_nodes_sync_open_pay_and_close_over_https_with_a_private_ca() {
    let net = Deployed::start().await;
    let (alice, bob) = (net.party("ALICE"), net.party("BOB"));
    let bob_before = bob.balance().await;
    let (ca, front) = tls_before(&net);
    let https = format!("https://localhost:{}", front.port);
    let ca_file = ca.cert.to_str().unwrap();
    // alice's node takes the CA as a flag, bob's from its config file.
    std::fs::create_dir_all(net.data_dir("bob")).unwrap();
    std::fs::write(
        net.data_dir("bob").join("farthing.toml"),
        format!("[chain]\nca_file = {ca_file:?}\n"),
    )
    .unwrap();
    let pair = Pair::start_with(&net, &https, &["--ca-file", ca_file], &[]);
    pair.open(&bob).await;
    pair.pay(0, 12).await;
    // Synced through TLS: the watcher applied the opening (the channel is open at bob's) and
    // follows the head.
    let info = pair.bob_rpc.info().await.unwrap();
    assert_eq!(info.health.status, HealthStatus::Ok, "{:?}", info.health);
    assert!(info.synced_block >= 1, "{info:?}");
    pair.close(&alice, &bob, 12, bob_before).await;

    // `farthing check` takes the CA too.
    let out = std::process::Command::new(farthing_bin())
        .args([
            "check",
            "--rpc-url",
            &https,
            "--ca-file",
            ca_file,
            "--deployment",
        ])
        .arg(&net.deployment)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with("chain 31337 at block "),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(pair.alice.stop().success() && pair.bob.stop().success());
}

#[tokio::test]
async fn untrusted_or_misnamed_certificates_and_wrong_schemes_are_refused_in_one_line() {
    let net = Deployed::start().await;
    let (ca, front) = tls_before(&net);
    let port = front.port;
    // The path stands for a provider's API key: it must never be printed.
    let https = format!("https://localhost:{port}/v3/SECRET");
    let node = |who: &str, url: &str, extra: &[&str]| {
        let mut args = vec!["--dev", "1", "--rpc-url", url];
        args.extend_from_slice(extra);
        let line = refusal(&net, who, &args);
        assert!(!line.contains("SECRET"), "{line}");
        line
    };
    let untrusted = format!(
        "error: chain RPC https://localhost:{port}: invalid peer certificate: UnknownIssuer (its certificate is not signed by a CA this node trusts: give that CA's PEM file in chain.ca_file (--ca-file), or fix the RPC's certificate)"
    );
    // No CA given: the system's roots do not know the test's CA.
    assert_eq!(node("no-ca", &https, &[]), untrusted);
    // Another CA given.
    let other = TestCa::new("another CA");
    let other_ca = other.cert.to_str().unwrap();
    assert_eq!(
        node("other-ca", &https, &["--ca-file", other_ca]),
        untrusted
    );

    // A certificate from the right CA, for another host.
    let (cert, key) = ca.issue("example", "DNS:example.org");
    let misnamed = TlsFront::start(socket_of(&net.devnet.rpc_url), &cert, &key);
    let ca_file = ca.cert.to_str().unwrap();
    let line = node(
        "misnamed",
        &format!("https://localhost:{}/v3/SECRET", misnamed.port),
        &["--ca-file", ca_file],
    );
    assert_eq!(
        line,
        format!(
            "error: chain RPC https://localhost:{}: invalid peer certificate: certificate not valid for name \"localhost\"; certificate is only valid for DnsName(\"example.org\") (its certificate is for another host: use the host name the certificate names in chain.rpc_url, or give the RPC a certificate for this one)",
            misnamed.port
        )
    );

    // Plain http to the TLS port.
    let line = node(
        "http-to-tls",
        &format!("http://127.0.0.1:{port}/v3/SECRET"),
        &["--ca-file", ca_file],
    );
    assert!(
        line.starts_with(&format!("error: chain RPC http://127.0.0.1:{port}: "))
            && line
                .ends_with("(the server closed the connection: if it is a TLS port, use https://)"),
        "{line}"
    );

    // https to anvil's plain port.
    let plain = socket_of(&net.devnet.rpc_url).port();
    let line = node(
        "https-to-plain",
        &format!("https://127.0.0.1:{plain}/v3/SECRET"),
        &["--ca-file", ca_file],
    );
    assert!(
        line.starts_with(&format!("error: chain RPC https://127.0.0.1:{plain}: "))
            && line.ends_with(
                "(the server does not speak TLS on that port: is this an https port? use http:// for a plain one)"
            ),
        "{line}"
    );

    // A CA file that is not one.
    let junk = net.dir.path().join("junk.pem");
    std::fs::write(&junk, "not a certificate").unwrap();
    assert_eq!(
        node("junk-ca", &https, &["--ca-file", junk.to_str().unwrap()]),
        format!(
            "error: chain.ca_file {} holds no PEM certificate (no certificate found): give the CA's certificate as PEM (-----BEGIN CERTIFICATE-----)",
            junk.display()
        )
    );
}

#[tokio::test]
async fn two_nodes_sync_open_pay_and_close_over_wss_with_a_private_ca() {
    let net = Deployed::start().await;
    let (alice, bob) = (net.party("ALICE"), net.party("BOB"));
    let bob_before = bob.balance().await;
    let (ca, front) = tls_before(&net);
    // anvil serves WebSockets on its HTTP port: stunnel carries either.
    let wss = format!("wss://localhost:{}", front.port);
    let ca_file = ca.cert.to_str().unwrap();
    let pair = Pair::start(&net, &wss, &["--ca-file", ca_file]);
    pair.open(&bob).await;
    pair.pay(0, 7).await;
    let info = pair.bob_rpc.info().await.unwrap();
    assert_eq!(info.health.status, HealthStatus::Ok, "{:?}", info.health);
    pair.close(&alice, &bob, 7, bob_before).await;
    assert!(pair.alice.stop().success() && pair.bob.stop().success());

    // Without the CA, and with a certificate for another host: refused in one line.
    let line = refusal(
        &net,
        "wss-no-ca",
        &["--dev", "1", "--rpc-url", &format!("{wss}/v3/SECRET")],
    );
    assert_eq!(
        line,
        format!(
            "error: chain RPC wss://localhost:{}: invalid peer certificate: UnknownIssuer (its certificate is not signed by a CA this node trusts: give that CA's PEM file in chain.ca_file (--ca-file), or fix the RPC's certificate)",
            front.port
        )
    );
    let (cert, key) = ca.issue("example", "DNS:example.org");
    let misnamed = TlsFront::start(socket_of(&net.devnet.rpc_url), &cert, &key);
    let line = refusal(
        &net,
        "wss-misnamed",
        &[
            "--dev",
            "1",
            "--rpc-url",
            &format!("wss://localhost:{}/v3/SECRET", misnamed.port),
            "--ca-file",
            ca_file,
        ],
    );
    assert_eq!(
        line,
        format!(
            "error: chain RPC wss://localhost:{}: invalid peer certificate: certificate not valid for name \"localhost\"; certificate is only valid for DnsName(\"example.org\") (its certificate is for another host: use the host name the certificate names in chain.rpc_url, or give the RPC a certificate for this one)",
            misnamed.port
        )
    );
}

#[tokio::test]
async fn a_wss_provider_that_goes_away_and_comes_back_is_reconnected() {
    let net = Deployed::start().await;
    let (alice, bob) = (net.party("ALICE"), net.party("BOB"));
    let bob_before = bob.balance().await;
    let ca = TestCa::new("farthing test CA");
    let (cert, key) = ca.issue("localhost", "DNS:localhost,IP:127.0.0.1");
    let anvil = socket_of(&net.devnet.rpc_url);
    let port = fixed_port();
    let front = TlsFront::start_on(port, anvil, &cert, &key);
    let wss = format!("wss://localhost:{port}");
    let pair = Pair::start(&net, &wss, &["--ca-file", ca.cert.to_str().unwrap()]);
    pair.open(&bob).await;
    pair.pay(0, 3).await;

    // The provider goes away: both nodes' WebSockets drop, their watchers fail and say so,
    // naming the URL.
    drop(front);
    let reason = format!("watcher: chain: chain RPC {wss}: ");
    for rpc in [&pair.alice_rpc, &pair.bob_rpc] {
        eventually(PATIENCE, "the node to say the chain is gone", async || {
            let health = rpc.info().await.unwrap().health;
            done_if(
                health.status == HealthStatus::Degraded
                    && health.reasons.iter().any(|r| r.starts_with(&reason)),
                health,
            )
        })
        .await;
    }
    // Meanwhile the node takes no new risk: a payment is refused, nothing is signed.
    let refused = farthing_rpc::PayParams {
        channel_id: Some(1),
        partner: None,
        amount: "0.01".into(),
        idempotency_key: None,
        memo: None,
    }
    .call(&pair.alice_rpc)
    .await
    .unwrap_err();
    match refused {
        farthing_rpc::ClientError::Call(call) => {
            assert_eq!(
                call.code(),
                farthing_rpc::code::DEGRADED,
                "{}",
                call.message()
            )
        }
        other => panic!("expected a refusal, got {other}"),
    }
    // It comes back on the same address: the nodes reconnect on their own and are healthy.
    let _front = TlsFront::start_on(port, anvil, &cert, &key);
    for rpc in [&pair.alice_rpc, &pair.bob_rpc] {
        eventually(PATIENCE, "the node to reconnect", async || {
            let health = rpc.info().await.unwrap().health;
            done_if(health.status == HealthStatus::Ok, health)
        })
        .await;
    }
    // Payments go on where they stopped (nonce 4: the refused one signed nothing).
    pair.pay(3, 3).await;
    pair.close(&alice, &bob, 6, bob_before).await;
    assert!(pair.alice.stop().success() && pair.bob.stop().success());
}
