//! Every wire frame decoder: arbitrary bytes never panic, and whatever decodes re-encodes to
//! exactly the bytes it came from (no two encodings of one message, nothing silently dropped).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(message) = farthing_peer::decode(data) {
        assert_eq!(farthing_peer::encode(&message), data, "{message:?}");
    }
    // A stream of frames: the reader's path.
    let mut rest = data;
    while let Ok(Some((message, used))) = farthing_peer::frame::decode_first(rest) {
        assert!(used > 0 && used <= rest.len());
        assert_eq!(farthing_peer::encode(&message), rest[..used]);
        rest = &rest[used..];
    }
});
