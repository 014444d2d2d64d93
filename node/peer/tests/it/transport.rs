//! Pay frames streamed over an authenticated TCP link, in order, with cumulative acks.

use std::time::{Duration, Instant};

use alloy::signers::local::PrivateKeySigner;
use farthing_peer::{FrameReader, FrameWriter, Memo, Message, handshake};
use tokio::io::{ReadHalf, WriteHalf};
use tokio::net::TcpStream;

use crate::{CHAIN, tcp_pair};

const BATCH: usize = 256;

fn pay(nonce: u64) -> Message {
    Message::Pay {
        channel_id: 42,
        nonce,
        transferred: u128::from(nonce) * 1_000,
        amount: 1_000,
        signature: [(nonce % 251) as u8; 65],
        payment_id: nonce.to_be_bytes().repeat(2).try_into().unwrap(),
        memo: if nonce.is_multiple_of(100) {
            Memo::new(b"every hundredth".to_vec()).unwrap()
        } else {
            Memo::empty()
        },
    }
}

/// The receiver: checks order, drains each burst already buffered, answers it with one
/// cumulative Ack (the shape the node's group commit will have).
async fn receive(
    mut reader: FrameReader<ReadHalf<TcpStream>>,
    mut writer: FrameWriter<WriteHalf<TcpStream>>,
    count: u64,
) -> (Instant, u64) {
    let mut next = 1;
    let mut acks = 0;
    while next <= count {
        let mut message = reader.recv().await.unwrap();
        loop {
            assert_eq!(message, pay(next), "frame {next} out of order or altered");
            next += 1;
            match reader.next_buffered().unwrap() {
                Some(m) => message = m,
                None => break,
            }
        }
        writer
            .send(&Message::Ack {
                channel_id: 42,
                nonce: next - 1,
            })
            .await
            .unwrap();
        acks += 1;
    }
    (Instant::now(), acks)
}

/// Stream `count` Pay frames from Alice to Bob; returns frames/s one way and the number of
/// acks Bob sent.
async fn stream_pays(count: u64) -> (f64, u64) {
    let alice = PrivateKeySigner::random();
    let bob = PrivateKeySigner::random();
    let (a, b) = tcp_pair().await;
    let t = Duration::from_secs(5);
    let (ra, rb) = tokio::join!(
        handshake(a, &alice, CHAIN, Some(bob.address()), t),
        handshake(b, &bob, CHAIN, None, t),
    );
    let (_, alice_conn) = ra.unwrap();
    let (_, bob_conn) = rb.unwrap();
    let (bob_reader, bob_writer) = bob_conn.split();
    let receiver = tokio::spawn(receive(bob_reader, bob_writer, count));

    let (mut alice_reader, mut alice_writer) = alice_conn.split();
    let acks = tokio::spawn(async move {
        // Cumulative acks only grow; the last one covers everything.
        let mut highest = 0;
        while highest < count {
            match alice_reader.recv().await.unwrap() {
                Message::Ack {
                    channel_id: 42,
                    nonce,
                } => {
                    assert!(nonce > highest, "ack {nonce} after {highest}");
                    highest = nonce;
                }
                other => panic!("unexpected {other:?}"),
            }
        }
    });

    let start = Instant::now();
    let mut batch = Vec::with_capacity(BATCH);
    for nonce in 1..=count {
        batch.push(pay(nonce));
        if batch.len() == BATCH || nonce == count {
            alice_writer.send_batch(&batch).await.unwrap();
            batch.clear();
        }
    }
    let (done, acks_sent) = receiver.await.unwrap();
    acks.await.unwrap();
    let rate = count as f64 / done.duration_since(start).as_secs_f64();
    (rate, acks_sent)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_pays_arrive_in_order_and_are_acked() {
    let (rate, acks) = stream_pays(10_000).await;
    assert!(acks >= 1);
    println!("10,000 Pay frames over TCP: {rate:.0} frames/s, {acks} cumulative acks");
}

/// `cargo test -p farthing-peer --release --test it -- --ignored --nocapture pay_throughput`
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "throughput, run by hand in release"]
async fn pay_throughput() {
    let count = 1_000_000;
    let (rate, acks) = stream_pays(count).await;
    println!("{count} Pay frames over TCP: {rate:.0} frames/s, {acks} cumulative acks");
}
