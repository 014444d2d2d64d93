//! A leader in a child process dies or pauses; the standby in this process takes over.

use std::time::Duration;

use farthing_cluster::{campaign, current_leader, testing};
use tokio::time::{Instant, timeout};

use crate::holder::Holder;
use crate::{config, etcd, wait_for_candidates};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_leader_fails_over_after_its_lease() {
    let cluster = etcd(1).await;
    let name = "farthing/test/kill/leader";
    let ttl = 2;
    let mut holder = Holder::spawn(&cluster.endpoints(), name, ttl);
    let old = holder.leading().await;
    let standby_config = config(&cluster, name, "standby", ttl);
    let standby = tokio::spawn(async move { campaign(&standby_config).await });
    wait_for_candidates(&cluster.endpoints(), name, 2).await;

    holder.kill().await;
    let killed = Instant::now();
    let standby = timeout(Duration::from_secs(15), standby)
        .await
        .expect("the standby leads")
        .expect("task")
        .expect("campaign");
    let failover = killed.elapsed();
    println!("kill -9 of the leader (T = {ttl} s) -> standby leads: {failover:?}");

    assert!(
        standby.epoch() > old,
        "epoch {} after {old}",
        standby.epoch()
    );
    // The dead leader's lease had to expire: at most one keep-alive interval (1/3 s) of it
    // had passed at the kill.
    assert!(
        failover > Duration::from_millis(1500),
        "took over before the lease expired: {failover:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paused_leader_learns_it_lost_on_resume() {
    let cluster = etcd(1).await;
    let name = "farthing/test/pause/leader";
    let ttl = 2;
    let mut holder = Holder::spawn(&cluster.endpoints(), name, ttl);
    let old = holder.leading().await;
    let standby_config = config(&cluster, name, "standby", ttl);
    let standby = tokio::spawn(async move { campaign(&standby_config).await });
    wait_for_candidates(&cluster.endpoints(), name, 2).await;

    testing::signal(holder.pid(), "STOP").expect("SIGSTOP the leader");
    let stopped = Instant::now();
    let standby = timeout(Duration::from_secs(15), standby)
        .await
        .expect("the standby leads")
        .expect("task")
        .expect("campaign");
    println!(
        "SIGSTOP of the leader (T = {ttl} s) -> standby leads: {:?}",
        stopped.elapsed()
    );

    let resumed = Instant::now();
    testing::signal(holder.pid(), "CONT").expect("SIGCONT the leader");
    let line = holder.expect("LOST", Duration::from_secs(10)).await;
    let noticed = resumed.elapsed();
    println!("SIGCONT -> the old leader reports `{line}`: {noticed:?}");

    assert!(line.starts_with(&format!("LOST {old} ")), "{line}");
    assert!(
        ["DeadlinePassed", "LeaseExpired", "Superseded"]
            .iter()
            .any(|r| line.contains(r)),
        "unexpected reason: {line}"
    );
    assert!(
        standby.epoch() > old,
        "epoch {} after {old}",
        standby.epoch()
    );
    // Its local deadline passed while it was stopped: no network round trip needed.
    assert!(
        noticed < Duration::from_secs(1),
        "the resumed leader took {noticed:?} to notice"
    );
    let (value, epoch) = current_leader(&cluster.endpoints(), name)
        .await
        .expect("read")
        .expect("leader");
    assert_eq!((value.as_str(), epoch), ("standby", standby.epoch()));
    assert!(standby.is_leading());
}
