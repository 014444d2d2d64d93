//! The `farthing` command line as an operator meets it: what `node --help` shows, and how a
//! client command that fails says why — once, in the node's terms, as JSON with `--json`.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

use alloy::providers::Provider as _;
use farthing_e2e::{Deployed, farthing_bin};

fn farthing(data_dir: &Path, node_url: &str, args: &[&str]) -> Output {
    Command::new(farthing_bin())
        .arg("--data-dir")
        .arg(data_dir)
        .args(["--node-url", node_url])
        .args(args)
        .output()
        .unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).unwrap()
}

#[test]
fn node_help_shows_defaults_and_no_client_flags() {
    let output = Command::new(farthing_bin())
        .args(["node", "--help"])
        .output()
        .unwrap();
    assert!(output.status.success());
    let help = String::from_utf8(output.stdout).unwrap();
    assert!(
        help.contains("Listen address of the RPC [default: 127.0.0.1:7750"),
        "{help}"
    );
    assert!(
        help.contains("[default: 31337, or the config file's]"),
        "{help}"
    );
    for client_only in ["--node-url", "--json"] {
        assert!(!help.contains(client_only), "{client_only} in:\n{help}");
    }
    // Client commands still take them, before or after the command.
    let info = Command::new(farthing_bin())
        .args(["info", "--help"])
        .output()
        .unwrap();
    assert!(
        String::from_utf8(info.stdout)
            .unwrap()
            .contains("--node-url")
    );
}

#[tokio::test]
async fn a_refused_client_command_says_why_once_and_as_json_with_json() {
    let net = Deployed::start().await;
    let (devnet, d, dir) = (&net.devnet, &net.d, net.dir.path());
    let data_dir = net.data_dir("node");
    let daemon = net.daemon(1, "node", &[]);

    let ok = farthing(&data_dir, &daemon.url, &["--json", "info"]);
    assert!(ok.status.success(), "{}", stderr(&ok));

    // Another data dir, another token: the node answers 401, the CLI says what that means.
    let stranger = dir.join("stranger");
    std::fs::create_dir(&stranger).unwrap();
    let token = stranger.join("rpc.token");
    std::fs::write(&token, format!("{}\n", "ab".repeat(32))).unwrap();
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).unwrap();
    let refused = farthing(&stranger, &daemon.url, &["info"]);
    assert_eq!(refused.status.code(), Some(1));
    let text = stderr(&refused);
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(
        text.starts_with("error: the node refused the RPC token (HTTP 401)"),
        "{text}"
    );

    // The same over a WebSocket (pay --count streams over one): refused at the upgrade.
    let refused = farthing(
        &stranger,
        &daemon.url,
        &["pay", "1", "0.001", "--count", "2"],
    );
    let text = stderr(&refused);
    assert!(
        text.starts_with("error: the node refused the RPC token (HTTP 401)"),
        "{text}"
    );
    // A URL that merely contains "401" or "429" is not a refusal.
    let nowhere = farthing(&data_dir, "http://127.0.0.1:9/429", &["info"]);
    let text = stderr(&nowhere);
    assert!(
        text.starts_with("error: cannot reach the node's RPC"),
        "{text}"
    );

    let refused = farthing(&stranger, &daemon.url, &["info", "--json"]);
    assert_eq!(refused.status.code(), Some(1));
    let json: serde_json::Value = serde_json::from_slice(&refused.stdout).unwrap();
    assert_eq!(json["error"]["code"], serde_json::Value::Null);
    assert!(
        json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("HTTP 401"),
        "{json}"
    );

    // No token at all: one line, each cause once, and what to do.
    let empty = dir.join("empty");
    std::fs::create_dir(&empty).unwrap();
    let missing = farthing(&empty, &daemon.url, &["info"]);
    let text = stderr(&missing);
    assert!(
        text.starts_with("error: no RPC token at ") && text.contains("--data-dir"),
        "{text}"
    );
    // A refusal of the node's own comes with its stable code, as JSON too.
    let unknown = farthing(&data_dir, &daemon.url, &["--json", "channel", "get", "77"]);
    assert_eq!(unknown.status.code(), Some(1));
    let json: serde_json::Value = serde_json::from_slice(&unknown.stdout).unwrap();
    assert_eq!(json["error"]["code"], 1001, "{json}");

    // The chain answers but the token is gone (as after a devnet restart): "contracts not
    // found", not "chain RPC unavailable".
    let chain = devnet.provider(&devnet.key("DEPLOYER"));
    let _: () = chain
        .raw_request("anvil_setCode".into(), (d.token, "0x"))
        .await
        .unwrap();
    let balances = farthing(&data_dir, &daemon.url, &["balances"]);
    let text = stderr(&balances);
    assert!(
        text.starts_with(&format!(
            "error 1014: balance: no contract at {}: the chain RPC answers but the node's contracts are not there",
            d.token
        )),
        "{text}"
    );
}
