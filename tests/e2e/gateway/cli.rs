//! The binaries as an operator and an agent run them: `farthing gateway` as a process,
//! configured by the `[gateway]` table of a TOML file and a flag; `farthing fetch` paying
//! through it (a channel opened from the 402), refusing a price over `--max-price` with exit
//! code 1 and nothing paid, and streaming `--count` requests.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};

use farthing_e2e::farthing_bin;
use farthing_e2e::market::Market;
use farthing_rpc::FarthingApiClient;

/// `farthing gateway` for bob's node; its child and its address once it listens.
fn gateway(market: &Market, config: &std::path::Path) -> (Child, String) {
    let mut child = Command::new(farthing_bin())
        .arg("--data-dir")
        .arg(market.net.data_dir("bob"))
        .args(["--node-url", &market.bob.url, "gateway", "--config"])
        .arg(config)
        .args(["--listen", "127.0.0.1:0", "--peer", &market.bob_peer])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(rest) = line.strip_prefix("gateway listening on ") {
            let url = rest.split_whitespace().next().unwrap().to_owned();
            std::thread::spawn(move || lines.for_each(drop));
            return (child, url);
        }
    }
    let _ = child.kill();
    let status = child.wait();
    panic!("the gateway exited before listening: {status:?}");
}

fn fetch(market: &Market, args: &[&str]) -> Output {
    Command::new(farthing_bin())
        .arg("--data-dir")
        .arg(market.net.data_dir("alice"))
        .args(["--node-url", &market.alice.url, "fetch"])
        .args(args)
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn farthing_fetch_pays_through_a_farthing_gateway_process() {
    let market = Market::open(|_| {}).await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("farthing.toml");
    // The node's own settings beside the table the gateway reads.
    std::fs::write(
        &config,
        format!(
            "[history]\nkeep_payments = 1000\n\n[gateway]\nupstream = \"{}\"\nroutes = [{{ method = \"GET\", path = \"/articles/*\", price = \"0.001\" }}, {{ path = \"/data\", price = \"0.002\" }}]\nfree = [{{ path = \"/health\" }}]\n",
            market.settings.upstream
        ),
    )
    .unwrap();
    let (mut child, url) = gateway(&market, &config);

    let paid = fetch(
        &market,
        &[
            &format!("{url}/articles/1"),
            "--max-price",
            "0.01",
            "--deposit",
            "3",
        ],
    );
    let (out, err) = (
        String::from_utf8_lossy(&paid.stdout),
        String::from_utf8_lossy(&paid.stderr),
    );
    assert!(paid.status.success(), "{err}");
    assert_eq!(out.trim(), "article 1 (paid 0.001)");
    assert!(
        err.contains("paid 0.001 to") && err.contains("opened for it"),
        "{err}"
    );

    let refused = fetch(&market, &[&format!("{url}/data"), "--max-price", "0.001"]);
    let err = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{err}");
    assert!(
        err.contains("the price 0.002 is more than the most this call may pay (0.001)"),
        "{err}"
    );
    assert!(refused.stdout.is_empty(), "no body for a refusal");

    let many = fetch(
        &market,
        &[
            &format!("{url}/articles/{{i}}"),
            "--max-price",
            "0.01",
            "--count",
            "20",
        ],
    );
    let err = String::from_utf8_lossy(&many.stderr);
    assert!(many.status.success(), "{err}");
    assert!(
        err.contains("20/20 requests") && err.contains("paid 0.02 USDC in all"),
        "{err}"
    );

    // 21 articles paid on the channel; /data never reached.
    let channel = market.alice_rpc().list_channels().await.unwrap().remove(0);
    assert_eq!(channel.sent, "0.021");
    assert_eq!(market.upstream.served("/data"), 0);
    child.kill().unwrap();
    child.wait().unwrap();
}
