use std::time::Instant;

use proptest::prelude::*;

use super::*;
use crate::message::{
    MAX_BATCH, MAX_BATCH_BYTES, MAX_MEMO, MAX_REASON, PROTOCOL_VERSION, RawSignature,
};

fn signature() -> impl Strategy<Value = RawSignature> {
    prop::collection::vec(any::<u8>(), 65).prop_map(|v| {
        let mut sig = [0; 65];
        sig.copy_from_slice(&v);
        sig
    })
}

fn address() -> impl Strategy<Value = Address> {
    any::<[u8; 20]>().prop_map(Address::from)
}

fn memo() -> impl Strategy<Value = Memo> {
    prop::collection::vec(any::<u8>(), 0..=MAX_MEMO).prop_map(|v| Memo::new(v).unwrap())
}

/// Payments as a payer fills a batch: in order, until the next one does not fit.
fn payments() -> impl Strategy<Value = Payments> {
    prop::collection::vec((any::<u128>(), memo()), 0..40).prop_map(|entries| {
        let mut payments = Payments::new();
        for (amount, memo) in entries {
            if payments.push(amount, memo).is_err() {
                break;
            }
        }
        payments
    })
}

fn reason() -> impl Strategy<Value = Reason> {
    // Multi-byte characters included; cut to the byte bound like a real sender would.
    prop::collection::vec(any::<char>(), 0..100)
        .prop_map(|chars| Reason::truncated(chars.into_iter().collect::<String>()))
}

fn message() -> impl Strategy<Value = Message> {
    prop_oneof![
        (any::<u16>(), address(), any::<[u8; 32]>()).prop_map(|(version, address, challenge)| {
            Message::Hello {
                version,
                address,
                challenge,
            }
        }),
        signature().prop_map(|signature| Message::HelloAck { signature }),
        prop::collection::vec(any::<u8>(), 0..=crate::message::MAX_NOISE)
            .prop_map(|message| Message::Noise { message }),
        (
            any::<u64>(),
            any::<u64>(),
            any::<u128>(),
            any::<u128>(),
            signature(),
            any::<[u8; 16]>(),
            memo()
        )
            .prop_map(
                |(channel_id, nonce, transferred, amount, signature, payment_id, memo)| {
                    Message::Pay {
                        channel_id,
                        nonce,
                        transferred,
                        amount,
                        signature,
                        payment_id,
                        memo,
                    }
                }
            ),
        (
            any::<u64>(),
            any::<u64>(),
            any::<u128>(),
            signature(),
            payments()
        )
            .prop_map(|(channel_id, nonce, transferred, signature, payments)| {
                Message::PayBatch {
                    channel_id,
                    nonce,
                    transferred,
                    signature,
                    payments,
                }
            }),
        (any::<u64>(), any::<u64>())
            .prop_map(|(channel_id, nonce)| Message::Ack { channel_id, nonce }),
        (any::<u64>(), any::<u64>(), any::<u16>(), reason()).prop_map(
            |(channel_id, nonce, code, reason)| Message::Reject {
                channel_id,
                nonce,
                code,
                reason
            }
        ),
        (
            any::<u64>(),
            proptest::option::of((any::<u64>(), any::<u128>(), signature())),
            any::<u64>()
        )
            .prop_map(|(channel_id, sent, received_nonce)| Message::Sync {
                channel_id,
                sent: sent.map(|(nonce, transferred, signature)| SignedBalance {
                    nonce,
                    transferred,
                    signature
                }),
                received_nonce,
            }),
        (
            any::<u64>(),
            any::<u128>(),
            any::<u128>(),
            any::<u128>(),
            any::<u128>(),
            signature()
        )
            .prop_map(
                |(channel_id, payout_a, payout_b, withdrawn_a, withdrawn_b, signature)| {
                    Message::CloseRequest {
                        channel_id,
                        payout_a,
                        payout_b,
                        withdrawn_a,
                        withdrawn_b,
                        signature,
                    }
                }
            ),
        (any::<u64>(), signature()).prop_map(|(channel_id, signature)| Message::CloseAccept {
            channel_id,
            signature
        }),
        (
            any::<u64>(),
            address(),
            any::<u128>(),
            any::<u64>(),
            signature()
        )
            .prop_map(
                |(channel_id, participant, total_withdrawn, expiry, signature)| {
                    Message::WithdrawRequest {
                        channel_id,
                        participant,
                        total_withdrawn,
                        expiry,
                        signature,
                    }
                }
            ),
        (any::<u64>(), signature()).prop_map(|(channel_id, signature)| Message::WithdrawAccept {
            channel_id,
            signature
        }),
        any::<u64>().prop_map(|nonce| Message::Ping { nonce }),
        any::<u64>().prop_map(|nonce| Message::Pong { nonce }),
        (any::<u16>(), reason()).prop_map(|(code, reason)| Message::Error { code, reason }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn every_message_round_trips(m in message()) {
        let frame = encode(&m);
        prop_assert!(frame.len() <= MAX_FRAME);
        prop_assert_eq!(frame_len(&frame).unwrap(), Some(frame.len()));
        prop_assert_eq!(decode(&frame).unwrap(), m.clone());
        // Appending to a used buffer gives the same bytes after what was there.
        let mut buf = vec![0xee; 3];
        encode_into(&m, &mut buf);
        prop_assert_eq!(&buf[3..], &frame[..]);
    }

    #[test]
    fn every_truncation_is_refused(m in message()) {
        let frame = encode(&m);
        for cut in 0..frame.len() {
            prop_assert!(decode(&frame[..cut]).is_err(), "cut at {}", cut);
            prop_assert_eq!(decode_first(&frame[..cut]), Ok(None), "cut at {}", cut);
        }
        let mut longer = frame.clone();
        longer.push(0);
        prop_assert_eq!(decode(&longer), Err(DecodeError::TrailingBytes { extra: 1 }));
    }

    /// The length field says the payload is one byte shorter or longer than the message:
    /// refused either way (the declared frame is whole, its contents are not).
    #[test]
    fn a_payload_of_the_wrong_length_is_refused(m in message()) {
        let frame = encode(&m);
        let declared = u32::from_be_bytes(frame[..4].try_into().unwrap());
        let mut short = frame[..frame.len() - 1].to_vec();
        short[..4].copy_from_slice(&(declared - 1).to_be_bytes());
        prop_assert!(decode(&short).is_err());
        let mut long = frame.clone();
        long.push(0);
        long[..4].copy_from_slice(&(declared + 1).to_be_bytes());
        prop_assert!(decode(&long).is_err());
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        let _ = decode(&bytes);
        let _ = decode_first(&bytes);
    }

    /// Random noise rarely gets past the header; valid frames with bytes flipped reach every
    /// field decoder.
    #[test]
    fn corrupted_frames_never_panic(
        m in message(),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
    ) {
        let mut frame = encode(&m);
        for (at, byte) in flips {
            let i = at.index(frame.len());
            frame[i] = byte;
        }
        if let Ok(decoded) = decode(&frame) {
            // Anything accepted is canonical: it encodes back to the same bytes.
            prop_assert_eq!(encode(&decoded), frame);
        }
    }
}

#[test]
fn golden_ack_bytes() {
    let frame = encode(&Message::Ack {
        channel_id: 0x0102,
        nonce: 0x0a0b,
    });
    let expected = [
        0, 0, 0, 18, // length: version + type + 16 bytes
        1, 0x11, // version 1, Ack
        0, 0, 0, 0, 0, 0, 1, 2, // channel id
        0, 0, 0, 0, 0, 0, 0x0a, 0x0b, // nonce
    ];
    assert_eq!(frame, expected);
}

#[test]
fn largest_frames_fit_with_room_to_spare() {
    let sig = [0xff; 65];
    let pay = Message::Pay {
        channel_id: u64::MAX,
        nonce: u64::MAX,
        transferred: u128::MAX,
        amount: u128::MAX,
        signature: sig,
        payment_id: [0xff; 16],
        memo: Memo::new(vec![0xff; MAX_MEMO]).unwrap(),
    };
    let reject = Message::Reject {
        channel_id: 1,
        nonce: 1,
        code: 1,
        reason: Reason::new("r".repeat(MAX_REASON)).unwrap(),
    };
    for m in [pay, reject] {
        let len = encode(&m).len();
        assert!(len < MAX_FRAME / 4, "{} takes {len} bytes", m.kind());
    }
}

#[test]
fn a_full_batch_fits_a_frame_and_one_more_payment_does_not_fit_the_batch() {
    let full_memo = || Memo::new(vec![0xff; MAX_MEMO]).unwrap();
    // By bytes: full memos.
    let mut by_bytes = Payments::new();
    while by_bytes.push(u128::MAX, full_memo()).is_ok() {}
    assert_eq!(by_bytes.len(), MAX_BATCH_BYTES / batch_entry_len(MAX_MEMO));
    // By count: empty memos.
    let mut by_count = Payments::new();
    while by_count.push(u128::MAX, Memo::empty()).is_ok() {}
    assert_eq!(by_count.len(), MAX_BATCH);
    for payments in [by_bytes, by_count] {
        let m = Message::PayBatch {
            channel_id: u64::MAX,
            nonce: u64::MAX,
            transferred: u128::MAX,
            signature: [0xff; 65],
            payments,
        };
        let frame = encode(&m);
        assert!(frame.len() <= MAX_FRAME, "{} bytes", frame.len());
        assert_eq!(decode(&frame).unwrap(), m);
    }
}

#[test]
fn a_batch_past_its_bounds_is_refused() {
    let batch = |count: u16, memo_len: usize| {
        let mut frame = header(0, FRAME_VERSION, MessageKind::PayBatch.code());
        frame.extend_from_slice(&[0; 8 + 8 + 16 + 65]);
        frame.extend_from_slice(&count.to_be_bytes());
        for _ in 0..count {
            frame.extend_from_slice(&[0; 16]);
            frame.extend_from_slice(&(memo_len as u16).to_be_bytes());
            frame.extend(std::iter::repeat_n(0, memo_len));
        }
        let len = (frame.len() - LENGTH_PREFIX) as u32;
        frame[..4].copy_from_slice(&len.to_be_bytes());
        frame
    };
    assert!(decode(&batch(MAX_BATCH as u16, 0)).is_ok());
    assert_eq!(
        decode(&batch(MAX_BATCH as u16 + 1, 0)),
        Err(DecodeError::FieldTooLong {
            kind: MessageKind::PayBatch,
            field: "payments",
            len: MAX_BATCH + 1,
            max: MAX_BATCH
        })
    );
    // 24 memos of 140 bytes (3,792 bytes of payments) fit; 25 (3,950) fit the frame but not
    // the batch's budget.
    assert!(decode(&batch(24, 140)).is_ok());
    assert_eq!(
        decode(&batch(25, 140)),
        Err(DecodeError::FieldTooLong {
            kind: MessageKind::PayBatch,
            field: "payments",
            len: 25 * 158,
            max: MAX_BATCH_BYTES
        })
    );
}

fn header(len: u32, version: u8, kind: u8) -> Vec<u8> {
    let mut frame = len.to_be_bytes().to_vec();
    frame.extend_from_slice(&[version, kind]);
    frame
}

#[test]
fn header_errors() {
    let ping = encode(&Message::Ping { nonce: 1 });

    let mut bad_version = ping.clone();
    bad_version[4] = 2;
    assert_eq!(
        decode(&bad_version),
        Err(DecodeError::UnsupportedVersion(2))
    );

    let mut bad_type = ping.clone();
    bad_type[5] = 0x7f;
    assert_eq!(decode(&bad_type), Err(DecodeError::UnknownType(0x7f)));

    assert_eq!(
        decode(&u32::MAX.to_be_bytes()),
        Err(DecodeError::TooLarge {
            declared: u64::from(u32::MAX) + 4,
            max: MAX_FRAME
        })
    );
    // The limit is exact.
    let at_limit = ((MAX_FRAME - LENGTH_PREFIX) as u32).to_be_bytes();
    assert_eq!(frame_len(&at_limit), Ok(Some(MAX_FRAME)));
    let over = ((MAX_FRAME - LENGTH_PREFIX + 1) as u32).to_be_bytes();
    assert!(matches!(
        frame_len(&over),
        Err(DecodeError::TooLarge { .. })
    ));

    assert_eq!(
        decode(&[0, 0, 0, 1, 1]),
        Err(DecodeError::TooSmall { declared: 1 })
    );
    assert_eq!(
        decode(&[0, 0, 0, 0]),
        Err(DecodeError::TooSmall { declared: 0 })
    );
    assert_eq!(
        decode(&[0, 0]),
        Err(DecodeError::Truncated {
            needed: 4,
            available: 2
        })
    );
}

#[test]
fn field_errors() {
    // A memo declared 257 bytes long, sent in full: refused on its length.
    let mut pay = header(0, FRAME_VERSION, MessageKind::Pay.code());
    pay.extend_from_slice(&[0; 8 + 8 + 16 + 16 + 65 + 16]);
    pay.extend_from_slice(&257u16.to_be_bytes());
    pay.extend_from_slice(&[b'm'; 257]);
    let len = (pay.len() - 4) as u32;
    pay[..4].copy_from_slice(&len.to_be_bytes());
    assert_eq!(
        decode(&pay),
        Err(DecodeError::FieldTooLong {
            kind: MessageKind::Pay,
            field: "memo",
            len: 257,
            max: MAX_MEMO
        })
    );

    let mut error = header(2 + 2 + 2 + 2, FRAME_VERSION, MessageKind::Error.code());
    error.extend_from_slice(&[0, 1, 0, 2, 0xc3, 0x28]); // code 1, 2 bytes, invalid UTF-8
    assert_eq!(
        decode(&error),
        Err(DecodeError::InvalidUtf8 {
            kind: MessageKind::Error,
            field: "reason"
        })
    );

    let mut sync = header(2 + 8 + 1, FRAME_VERSION, MessageKind::Sync.code());
    sync.extend_from_slice(&[0; 8]);
    sync.push(2);
    assert_eq!(
        decode(&sync),
        Err(DecodeError::InvalidTag {
            kind: MessageKind::Sync,
            field: "sent",
            tag: 2
        })
    );

    let mut ping = header(2 + 9, FRAME_VERSION, MessageKind::Ping.code());
    ping.extend_from_slice(&[0; 9]);
    assert_eq!(
        decode(&ping),
        Err(DecodeError::PayloadTrailing {
            kind: MessageKind::Ping,
            extra: 1
        })
    );

    let hello = header(2 + 2, FRAME_VERSION, MessageKind::Hello.code());
    let mut hello = hello;
    hello.extend_from_slice(&PROTOCOL_VERSION.to_be_bytes());
    assert_eq!(
        decode(&hello),
        Err(DecodeError::PayloadTruncated {
            kind: MessageKind::Hello
        })
    );
}

#[test]
fn decode_first_reads_one_frame_of_many() {
    let mut buf = Vec::new();
    encode_into(&Message::Ping { nonce: 1 }, &mut buf);
    encode_into(&Message::Pong { nonce: 2 }, &mut buf);
    let (first, used) = decode_first(&buf).unwrap().unwrap();
    assert_eq!(first, Message::Ping { nonce: 1 });
    let (second, rest) = decode_first(&buf[used..]).unwrap().unwrap();
    assert_eq!(second, Message::Pong { nonce: 2 });
    assert_eq!(used + rest, buf.len());
}

/// `cargo test -p farthing-peer --release -- --ignored --nocapture pay_codec_timing`
#[test]
#[ignore = "timing, run by hand in release"]
fn pay_codec_timing() {
    let pay = Message::Pay {
        channel_id: 42,
        nonce: 1,
        transferred: 1_000_000,
        amount: 1_000,
        signature: [0x5a; 65],
        payment_id: [7; 16],
        memo: Memo::empty(),
    };
    let mut buf = Vec::with_capacity(256);
    let rounds = 2_000_000u64;
    let mut check = 0u64;
    let start = Instant::now();
    for i in 0..rounds {
        buf.clear();
        let m = match &pay {
            Message::Pay {
                channel_id,
                transferred,
                amount,
                signature,
                payment_id,
                ..
            } => Message::Pay {
                channel_id: *channel_id,
                nonce: i,
                transferred: *transferred,
                amount: *amount,
                signature: *signature,
                payment_id: *payment_id,
                memo: Memo::empty(),
            },
            _ => unreachable!(),
        };
        encode_into(&m, &mut buf);
        if let Ok(Message::Pay { nonce, .. }) = decode(std::hint::black_box(&buf)) {
            check = check.wrapping_add(nonce);
        }
    }
    let elapsed = start.elapsed();
    assert_eq!(check, rounds * (rounds - 1) / 2);
    println!(
        "Pay encode+decode: {:.1} ns per frame ({} bytes), {rounds} rounds in {elapsed:?}",
        elapsed.as_nanos() as f64 / rounds as f64,
        buf.len()
    );
}
