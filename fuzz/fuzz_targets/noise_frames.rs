//! The encrypted reader (`FrameReader::encrypted`): the input's first two bytes choose how
//! the rest is cut into Noise transport messages, sealed under a fixed key, and where one
//! byte of the sealed stream is flipped (or none); a first byte of 255 feeds the rest as the
//! wire itself. Whatever the input, the reader never panics, and it delivers exactly the
//! frames a plaintext decode of the same bytes yields, up to the first tampered message —
//! after which it delivers nothing and fails (raw bytes: nothing at all).
#![no_main]

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use farthing_peer::cipher::{CipherState, MAX_PLAINTEXT};
use farthing_peer::frame::decode_first;
use farthing_peer::{FrameReader, LinkError, Message};
use libfuzzer_sys::fuzz_target;

const KEY: [u8; 32] = [0x42; 32];

/// Everything the reader yields from `wire`, then how it stopped.
fn read_all(wire: &[u8]) -> (Vec<Message>, LinkError) {
    let mut reader = FrameReader::encrypted(wire, CipherState::new(KEY));
    let mut cx = Context::from_waker(Waker::noop());
    let mut out = Vec::new();
    loop {
        // A byte slice is always ready: one poll completes.
        match pin!(reader.recv()).poll(&mut cx) {
            Poll::Ready(Ok(message)) => out.push(message),
            Poll::Ready(Err(err)) => return (out, err),
            Poll::Pending => unreachable!("a slice never blocks"),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&[cut, flip], plaintext)) = data.split_first_chunk::<2>() else {
        return;
    };
    if cut == u8::MAX {
        // Arbitrary bytes as the wire: nothing authenticates, nothing is delivered.
        let (got, _) = read_all(plaintext);
        assert!(got.is_empty(), "{got:?}");
        return;
    }
    let chunk = (usize::from(cut) * 257 + 1).min(MAX_PLAINTEXT);
    let mut sender = CipherState::new(KEY);
    let mut wire = Vec::new();
    let mut ends = Vec::new();
    for part in plaintext.chunks(chunk) {
        sender.seal(part, &mut wire).unwrap();
        ends.push(wire.len());
    }
    // Plaintext frames, as an unencrypted reader would see them.
    let mut expected = Vec::new();
    let mut rest = plaintext;
    while let Ok(Some((message, used))) = decode_first(rest) {
        expected.push((message, plaintext.len() - rest.len() + used));
        rest = &rest[used..];
    }

    if flip == 0 || wire.is_empty() {
        let (got, _) = read_all(&wire);
        let want: Vec<Message> = expected.into_iter().map(|(m, _)| m).collect();
        assert_eq!(got, want);
        return;
    }
    let at = usize::from(flip) * 131 % wire.len();
    wire[at] ^= 0x01;
    let (got, err) = read_all(&wire);
    // The message holding byte `at`, and the plaintext before it.
    let tampered = ends.iter().position(|&end| at < end).unwrap();
    let intact = tampered * chunk;
    let want: Vec<Message> = expected
        .into_iter()
        .take_while(|&(_, end)| end <= intact)
        .map(|(m, _)| m)
        .collect();
    assert_eq!(got, want);
    assert!(
        matches!(err, LinkError::Cipher(_) | LinkError::Io(_) | LinkError::Decode(_)),
        "{err}"
    );
});
