//! Agent credentials through the `farthing` command line (issue 15), against two real nodes
//! on a devnet: the operator creates a day-budget credential for an agent (written 0600);
//! the agent pays with `--credential-file` until the node refuses it at its per-payment max,
//! at its scope and at its day budget (exit code 1, the message naming the budget, what was
//! spent and when it frees); the agent derives a smaller credential offline for a sub-agent,
//! which is refused at its own smaller budget while the parent still pays; revoking the
//! parent locks both out (HTTP 401, in the credential's words). Every amount is checked
//! exactly: the channel's balances are what the credentials let through, to the unit.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{SystemTime, UNIX_EPOCH};

use farthing_e2e::{Deployed, farthing_bin};
use farthing_rpc::FarthingApiClient;
use serde_json::Value;

/// Run `farthing` with `args` against `node_url`: with the admin token of `data_dir`, or,
/// given `credential`, with that file and a data dir that holds no token at all.
fn farthing(data_dir: &Path, node_url: &str, credential: Option<&Path>, args: &[&str]) -> Output {
    let mut command = Command::new(farthing_bin());
    command.args(["--node-url", node_url]);
    match credential {
        Some(file) => command
            .arg("--credential-file")
            .arg(file)
            .arg("--data-dir")
            .arg(data_dir.join("no-token-here")),
        None => command.arg("--data-dir").arg(data_dir),
    };
    let output = command
        .env_remove("FARTHING_CREDENTIAL_FILE")
        .args(args)
        .output()
        .unwrap();
    // A token goes to stdout (or --out) only, never to stderr ("fth1_…" in advice is fine).
    let text = stderr(&output);
    assert!(
        text.match_indices("fth1_")
            .all(|(i, _)| text[i + 5..].starts_with('…')),
        "{text}"
    );
    output
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).unwrap()
}

/// The command succeeded; its stdout.
fn ok(output: Output) -> String {
    assert!(
        output.status.success(),
        "exit {:?}: {}{}",
        output.status.code(),
        stdout(&output),
        stderr(&output)
    );
    stdout(&output)
}

/// The command failed with exit code 1; its one line of stderr.
fn refused(output: Output) -> String {
    assert_eq!(output.status.code(), Some(1), "{}", stdout(&output));
    let text = stderr(&output);
    assert_eq!(text.lines().count(), 1, "{text}");
    text
}

fn json(output: Output) -> Value {
    serde_json::from_str(&ok(output)).unwrap()
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The Unix time in a refusal's "… frees enough at 2026-…Z (unix N)".
fn frees_at(message: &str) -> u64 {
    let tail = message
        .split("budget frees enough at ")
        .nth(1)
        .unwrap_or_else(|| panic!("no frees-at in {message}"));
    let unix = tail.split("(unix ").nth(1).unwrap();
    unix[..unix.find(')').unwrap()].parse().unwrap()
}

#[tokio::test]
async fn an_agent_and_its_sub_agent_pay_until_their_budgets_refuse_them() {
    let net = Deployed::start().await;
    let bob = net.party("BOB");
    let (alice_node, bob_node, channel_id) = net.linked_pair("10", &[]).await;
    let admin = net.rpc("alice", &alice_node);
    let channel = channel_id.to_string();
    let started = now();

    let alice_dir = net.data_dir("alice");
    let dir = net.dir.path();
    let url = alice_node.url.as_str();
    let run =
        |credential: Option<&Path>, args: &[&str]| farthing(&alice_dir, url, credential, args);
    let agent_file = dir.join("agent.cred");
    let sub_file = dir.join("sub.cred");
    let (agent, sub) = (Some(agent_file.as_path()), Some(sub_file.as_path()));
    let pay = |who: Option<&Path>, amount: &str| run(who, &["pay", &channel, amount]);

    // The operator creates the agent's credential: pay only, 0.5 at most per payment, 2 a day.
    let created = json(run(
        None,
        &[
            "--json",
            "credential",
            "create",
            "--label",
            "agent",
            "--scope",
            "pay",
            "--max",
            "0.5",
            "--day",
            "2",
            "--expires",
            "1d",
            "--out",
            agent_file.to_str().unwrap(),
        ],
    ));
    let agent_id = created["credential"]["id"].as_str().unwrap().to_owned();
    assert!(agent_id.starts_with("cid_"), "{created}");
    assert_eq!(created["credential"]["scopes"], serde_json::json!(["pay"]));
    assert_eq!(created["credential"]["max_payment"], "0.5");
    assert!(
        created.get("token").is_none(),
        "the token is in the file only"
    );
    assert_eq!(mode(&agent_file), 0o600);
    let token = std::fs::read_to_string(&agent_file).unwrap();
    assert!(
        token.starts_with("fth1_") && token.ends_with('\n'),
        "{token}"
    );
    let expires = created["credential"]["expires"].as_u64().unwrap();
    assert!((started + 86_400..=now() + 86_400).contains(&expires));
    // Never over an existing file (and then no credential is made at all).
    let again = refused(run(
        None,
        &[
            "credential",
            "create",
            "--out",
            agent_file.to_str().unwrap(),
        ],
    ));
    assert!(
        again.contains("exists") && again.contains("--force"),
        "{again}"
    );
    assert_eq!(std::fs::read_to_string(&agent_file).unwrap(), token);
    // Without --out, the token alone goes to stdout; what it allows, to stderr.
    let spare = run(
        None,
        &["credential", "create", "--label", "spare", "--total", "1"],
    );
    let spare_token = ok(spare.clone());
    assert_eq!(spare_token.lines().count(), 1);
    assert!(spare_token.starts_with("fth1_"), "{spare_token}");
    let summary = stderr(&spare);
    assert!(
        summary.contains("credential cid_") && summary.contains("budget total: 1, spent 0, 1 left"),
        "{summary}"
    );
    assert!(!summary.contains("fth1_"), "{summary}");

    // The agent pays; the node refuses what its credential does not allow.
    let paid = ok(pay(agent, "0.5"));
    assert!(
        paid.starts_with(&format!("paid 0.5 on channel {channel}")),
        "{paid}"
    );
    let over_max = refused(pay(agent, "0.6"));
    assert!(
        over_max.starts_with("error 1018: ") && over_max.contains("per-payment max 0.5"),
        "{over_max}"
    );
    let bob_address = bob.address().to_string();
    let no_scope = refused(run(agent, &["channel", "open", &bob_address, "1"]));
    assert!(
        no_scope.starts_with("error 1017: ") && no_scope.contains("`channel` scope"),
        "{no_scope}"
    );
    // The file's path may come from the environment too.
    let whoami: Value = {
        let output = Command::new(farthing_bin())
            .args(["--node-url", url, "--json", "credential", "show"])
            .env("FARTHING_CREDENTIAL_FILE", &agent_file)
            .output()
            .unwrap();
        json(output)
    };
    assert_eq!(whoami["id"], agent_id.as_str());
    assert_eq!(
        (
            &whoami["budgets"][0]["period"],
            &whoami["budgets"][0]["spent"]
        ),
        (&serde_json::json!("day"), &serde_json::json!("0.5"))
    );
    // The budget is counted under its own step's id (the label came after it).
    let agent_budget = whoami["budgets"][0]["counted_under"]
        .as_str()
        .unwrap()
        .to_owned();

    // The agent derives a smaller credential for a sub-agent, offline (no node at that URL).
    let derived = farthing(
        &alice_dir,
        "http://127.0.0.1:9",
        None,
        &[
            "credential",
            "derive",
            "--from",
            agent_file.to_str().unwrap(),
            "--day",
            "0.3",
            "--max",
            "0.1",
            "--out",
            sub_file.to_str().unwrap(),
        ],
    );
    let derived = ok(derived);
    let sub_id = derived.split_whitespace().nth(1).unwrap().to_owned();
    assert!(
        sub_id.starts_with("cid_") && derived.contains(&format!("from {agent_id}")),
        "{derived}"
    );
    assert!(derived.contains("budget day: 0.3 (its own)"), "{derived}");
    assert!(
        derived.contains("budget day: 2 (an ancestor's"),
        "{derived}"
    );
    assert_eq!(mode(&sub_file), 0o600);
    let again = refused(run(
        None,
        &[
            "credential",
            "derive",
            "--from",
            agent_file.to_str().unwrap(),
            "--out",
            sub_file.to_str().unwrap(),
        ],
    ));
    assert!(again.contains("exists"), "{again}");
    // The node's admin token is no credential to derive from.
    let token_file = alice_dir.join("rpc.token");
    let from_admin = refused(run(
        None,
        &[
            "credential",
            "derive",
            "--from",
            token_file.to_str().unwrap(),
            "--out",
            dir.join("x.cred").to_str().unwrap(),
        ],
    ));
    assert!(from_admin.contains("admin token"), "{from_admin}");

    // The sub-agent pays until its own day budget (0.3) refuses it.
    for _ in 0..3 {
        ok(pay(sub, "0.1"));
    }
    let over_sub = refused(pay(sub, "0.1"));
    assert!(
        over_sub.starts_with(&format!(
            "error 1018: payment of 0.1 is over this credential's day budget ({sub_id}): 0.3 of 0.3 spent; budget frees enough at "
        )),
        "{over_sub}"
    );
    let frees = frees_at(&over_sub);
    assert!(
        (started + 86_400..=now() + 86_400).contains(&frees),
        "{frees}: {over_sub}"
    );
    // As JSON, for scripts: the limit and when it frees.
    let over_json = run(sub, &["--json", "pay", &channel, "0.1"]);
    assert_eq!(over_json.status.code(), Some(1));
    let error: Value = serde_json::from_slice(&over_json.stdout).unwrap();
    assert_eq!(error["error"]["code"], 1018, "{error}");
    assert_eq!(error["error"]["data"]["limit"], "budget.day");
    assert_eq!(error["error"]["data"]["frees_at"], frees);
    // Its per-payment max is its own too: 0.1, under the parent's 0.5.
    let sub_max = refused(pay(sub, "0.2"));
    assert!(sub_max.contains("per-payment max 0.1"), "{sub_max}");

    // The parent still pays: 0.5 + 0.3 (its sub-agent's) + 0.5 + 0.5 = 1.8 of its 2.
    ok(pay(agent, "0.5"));
    ok(pay(agent, "0.5"));
    let over_agent = refused(pay(agent, "0.5"));
    assert!(
        over_agent.starts_with(&format!(
            "error 1018: payment of 0.5 is over this credential's day budget ({agent_budget}): 1.8 of 2 spent; budget frees enough at "
        )),
        "{over_agent}"
    );
    let frees = frees_at(&over_agent);
    assert!(
        (started + 86_400..=now() + 86_400).contains(&frees),
        "{over_agent}"
    );
    // What is left fits, to the unit; then nothing does.
    ok(pay(agent, "0.2"));
    let full = refused(pay(agent, "0.000001"));
    assert!(full.contains("2 of 2 spent"), "{full}");

    // What each sees of its budgets; the operator sees the offline-derived one by its token.
    let parent = json(run(agent, &["--json", "credential", "show"]));
    assert_eq!(
        (
            &parent["budgets"][0]["spent"],
            &parent["budgets"][0]["remaining"]
        ),
        (&serde_json::json!("2"), &serde_json::json!("0"))
    );
    let child = json(run(
        None,
        &[
            "--json",
            "credential",
            "show",
            "--token-file",
            sub_file.to_str().unwrap(),
        ],
    ));
    assert_eq!(child["id"], sub_id.as_str());
    let spent: Vec<(&str, &str)> = child["budgets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| (b["limit"].as_str().unwrap(), b["spent"].as_str().unwrap()))
        .collect();
    assert_eq!(spent, [("2", "2"), ("0.3", "0.3")]);
    let listed = json(run(None, &["--json", "credential", "list"]));
    let ids: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 2, "{listed}");
    assert!(ids.contains(&agent_id.as_str()) && !ids.contains(&sub_id.as_str()));
    let table = ok(run(None, &["credential", "list"]));
    assert!(
        table.contains("day 2/2") && table.contains("agent"),
        "{table}"
    );

    // Exactly what the credentials let through: 0.5 + 0.3 + 0.5 + 0.5 + 0.2 = 2 of 10.
    let view = admin.get_channel(channel_id).await.unwrap();
    assert_eq!(
        (view.balance_ours.as_str(), view.balance_partner.as_str()),
        ("8", "2")
    );

    // A credential file others can read is refused before anything is sent.
    std::fs::set_permissions(&sub_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let loose = refused(pay(sub, "0.1"));
    assert!(loose.contains("chmod 600"), "{loose}");
    std::fs::set_permissions(&sub_file, std::fs::Permissions::from_mode(0o600)).unwrap();

    // Revoking the parent revokes what was derived from it: both get 401, said as such.
    let revoked = ok(run(None, &["credential", "revoke", &agent_id]));
    assert!(
        revoked.starts_with(&format!("revoked {agent_id}")),
        "{revoked}"
    );
    for (who, args) in [
        (sub, vec!["pay", channel.as_str(), "0.1"]),
        (agent, vec!["pay", channel.as_str(), "0.1"]),
        // Over a WebSocket: refused at the upgrade.
        (sub, vec!["pay", channel.as_str(), "0.1", "--count", "2"]),
    ] {
        let text = refused(run(who, &args));
        assert!(
            text.starts_with(
                "error: the node refused the credential (expired, revoked, or not this node's): HTTP 401"
            ),
            "{text}"
        );
    }
    let listed = json(run(None, &["--json", "credential", "list"]));
    let revoked: Vec<bool> = listed
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["id"] == agent_id.as_str())
        .map(|c| c["revoked"].as_bool().unwrap())
        .collect();
    assert_eq!(revoked, [true]);
    let view = admin.get_channel(channel_id).await.unwrap();
    assert_eq!(view.balance_ours, "8");
    drop(bob_node);
}
