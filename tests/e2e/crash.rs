//! kill -9 under load (RELIABILITY D1): two real `farthing node` processes with their own
//! RocksDB, payments streaming from alice's node to bob's through alice's RPC, and one of the
//! two processes SIGKILLed at a random moment, 50 times, each time restarted on the same data
//! directory. After every restart:
//! - every payment whose RPC call returned success is still counted by both nodes;
//! - both nodes agree on alice's latest proof (nonce and cumulative amount) — a nonce signed
//!   twice with different contents, or a proof lost by either side, would break this;
//! - payments share a nonce only if one proof carried them (paid at the same moment): never
//!   across a restart;
//! - alice's latest proof never goes backwards.
//!
//! Then the channel closes cooperatively and the on-chain balances are exact to the unit.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use farthing_e2e::{
    Daemon, Devnet, PATIENCE, Party, USDC, base_units, done_if, eventually, pay_units,
};
use farthing_rpc::{ChannelView, FarthingApiClient, OpenParams};

const ROUNDS: u32 = 50;
const PAYERS: usize = 4;

/// A small deterministic generator (xorshift), so a failing run can be repeated from its seed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

struct Nodes {
    devnet_url: String,
    deployment: std::path::PathBuf,
    dir: std::path::PathBuf,
    bob_peers: String,
    bob_address: String,
}

impl Nodes {
    fn alice(&self) -> Daemon {
        Daemon::start_as(
            1,
            &self.dir.join("alice"),
            &self.devnet_url,
            &self.deployment,
            &[
                "--connect",
                &format!("{}@{}", self.bob_address, self.bob_peers),
            ],
        )
    }

    fn bob(&self) -> Daemon {
        Daemon::start_as(
            2,
            &self.dir.join("bob"),
            &self.devnet_url,
            &self.deployment,
            &["--peer-listen", &self.bob_peers],
        )
    }

    fn client(&self, who: &str, node: &Daemon) -> farthing_rpc::HttpClient {
        let token = farthing_rpc::read_token(&self.dir.join(who)).unwrap();
        farthing_rpc::connect_http(&node.url, &token).unwrap()
    }
}

/// Every acknowledged payment: (phase, nonce, base units). Phases run one after the other: a
/// round's payers, then the payment that finds the link back.
type Acked = Mutex<Vec<(u32, u64, u128)>>;

/// Pay until one payment is acknowledged (the link is back after a restart); it counts. A
/// payment that fails meanwhile (no link yet, or signed but not acknowledged) is not counted:
/// the checks below only ask that every acknowledged payment is kept.
async fn pay_until_linked(alice: &farthing_rpc::HttpClient, acked: &Acked, phase: u32) {
    let paid = eventually(PATIENCE, "a payment once the link is back", async || {
        pay_units(1).call(alice).await.map_err(|e| e.to_string())
    })
    .await;
    acked.lock().unwrap().push((phase, paid.nonce, 1));
}

async fn view(client: &farthing_rpc::HttpClient) -> ChannelView {
    client.get_channel(1).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_payments_survive_fifty_kill_9s_of_either_node() {
    let devnet = Devnet::start().unwrap();
    let d = devnet.deploy().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let deployment = dir.path().join("deployment.json");
    std::fs::write(&deployment, serde_json::to_string(&d).unwrap()).unwrap();
    let alice_party = Party::new(&devnet, &d, devnet.key("ALICE"));
    let bob_party = Party::new(&devnet, &d, devnet.key("BOB"));
    devnet
        .mint(&d, alice_party.address(), 10 * USDC)
        .await
        .unwrap();
    // bob listens on a fixed port, so that alice's node finds him again after his restarts:
    // one outside the ephemeral range, which no outgoing connection (alice's node keeps
    // dialing it while bob is down) can take in the meantime.
    let bob_peers = format!("127.0.0.1:{}", farthing_e2e::fixed_port());
    let nodes = Nodes {
        devnet_url: devnet.rpc_url.clone(),
        deployment,
        dir: dir.path().to_owned(),
        bob_peers,
        bob_address: bob_party.address().to_string(),
    };
    let mut bob = nodes.bob();
    let mut alice = nodes.alice();
    OpenParams {
        partner: bob_party.address(),
        amount: "10".into(),
        challenge_period: Some(600),
    }
    .call(&nodes.client("alice", &alice))
    .await
    .unwrap();
    let acked: Arc<Acked> = Arc::default();
    pay_until_linked(&nodes.client("alice", &alice), &acked, 0).await;

    let seed = std::env::var("FARTHING_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_f00d_u64);
    eprintln!("kill -9 test: seed {seed} (FARTHING_CRASH_SEED repeats a run)");
    let mut rng = Rng(seed);
    let mut last = (0u64, 0u128);
    let (mut alice_kills, mut bob_kills) = (0, 0);
    for round in 0..ROUNDS {
        // Payers stream payments of 1..=7 base units until their node goes away or the round
        // ends (a payment caught by a kill of bob's node may well be acknowledged after his
        // restart).
        let client = nodes.client("alice", &alice);
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let payers: Vec<_> = (0..PAYERS)
            .map(|p| {
                let (client, acked, stop) = (client.clone(), acked.clone(), stop.clone());
                tokio::spawn(async move {
                    for i in 0u128.. {
                        if stop.load(std::sync::atomic::Ordering::SeqCst) {
                            return;
                        }
                        let units = (i + p as u128) % 7 + 1;
                        match pay_units(units).call(&client).await {
                            Ok(paid) => {
                                acked
                                    .lock()
                                    .unwrap()
                                    .push((2 * round + 1, paid.nonce, units))
                            }
                            Err(_) => return,
                        }
                    }
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(20 + rng.below(180))).await;
        if rng.below(2) == 0 {
            alice.kill();
            alice_kills += 1;
            alice = nodes.alice();
        } else {
            bob.kill();
            bob_kills += 1;
            bob = nodes.bob();
        }
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        for payer in payers {
            payer.await.unwrap();
        }
        let (alice_rpc, bob_rpc) = (nodes.client("alice", &alice), nodes.client("bob", &bob));
        pay_until_linked(&alice_rpc, &acked, 2 * round + 2).await;

        // Both nodes agree on alice's latest proof once the link has resynchronised.
        let what = format!("round {round}: both nodes to agree on alice's latest proof");
        let a = eventually(PATIENCE, &what, async || {
            let (a, b) = (view(&alice_rpc).await, view(&bob_rpc).await);
            let (sent, received) = (
                (a.sent_nonce, base_units(&a.sent)),
                (b.received_nonce, base_units(&b.received)),
            );
            done_if(sent == received, (sent, received)).map(|_| a)
        })
        .await;
        let now = (a.sent_nonce, base_units(&a.sent));
        assert!(
            now.0 >= last.0 && now.1 >= last.1,
            "round {round}: alice's latest proof went backwards: {last:?} -> {now:?}"
        );
        last = now;
        farthing_e2e::check_acknowledged(&acked.lock().unwrap(), now, &format!("round {round}"));
    }
    eprintln!(
        "kill -9 test: {alice_kills} kills of alice's node, {bob_kills} of bob's, {} acknowledged payments, {} units",
        acked.lock().unwrap().len(),
        last.1
    );
    assert!(alice_kills > 0 && bob_kills > 0);

    // The channel closes cooperatively with exact balances.
    let closed = nodes
        .client("alice", &alice)
        .close_channel(1)
        .await
        .unwrap();
    assert_eq!(
        closed.state.as_str(),
        "settled",
        "cooperative: paid out at once"
    );
    let sent = last.1 as u64;
    assert_eq!(alice_party.balance().await, 10 * USDC - sent);
    assert_eq!(bob_party.balance().await, sent);
    alice.stop();
    bob.stop();
}
