//! The credential token decoders (issue 15): arbitrary bytes as the V2 binary form, and as text
//! (lossy UTF-8 as given, and behind the `fth1_` prefix) never panic. Whatever decodes
//! re-encodes to text that parses back to the same credential; the text decoder accepts the
//! canonical base64url of exactly the bytes the binary decoder accepts; verifying with a fixed
//! key never panics, and a credential that verifies (a seed minted with that key) yields limits
//! that check and charge without panicking either.
#![no_main]

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use farthing_credential::{Credential, Kind, Ledgers, Request, Scope, check};
use libfuzzer_sys::fuzz_target;

/// The key of the crate's tests: tokens minted with it (as in its pymacaroons vectors) verify.
const KEY: [u8; 32] = [0x42; 32];

fn exercise(c: &Credential) {
    let text = c.encode();
    let back: Credential = match text.parse() {
        Ok(back) => back,
        Err(e) => panic!("an encoded credential does not parse: {e}"),
    };
    assert_eq!(&back, c);
    assert_eq!(back.encode(), text, "one text per credential");
    assert_eq!(Credential::from_bytes(&c.to_bytes()).as_ref(), Ok(c));
    let Ok(verified) = c.verify(&KEY) else {
        return;
    };
    assert_eq!(verified.id(), c.id());
    let limits = verified.effective();
    let req = Request {
        scope: Scope::Fetch,
        amount: Some(1000),
        peer: None,
        origin: Some("https://api.example.com/x"),
        now: 1_000,
        decimals: 6,
    };
    let _ = check(&limits, &req);
    let mut ledgers = Ledgers::default();
    for kind in [Kind::Pay, Kind::Deposit] {
        for now in [0, 1, u64::MAX] {
            let _ = ledgers.admit(&limits.budgets, kind, 1000, now, 6);
        }
    }
    let _ = ledgers.remaining(&limits.budgets, u64::MAX);
}

fuzz_target!(|data: &[u8]| {
    let binary = Credential::from_bytes(data);
    if let Ok(c) = &binary {
        exercise(c);
    }
    // The text form of the same bytes decodes exactly when the bytes do.
    let text = format!("fth1_{}", URL_SAFE_NO_PAD.encode(data));
    match (text.parse::<Credential>(), &binary) {
        (Ok(t), Ok(b)) => assert_eq!(&t, b),
        (Err(_), Err(_)) => {}
        (t, b) => panic!("text and binary decoders disagree: {t:?} vs {b:?}"),
    }
    // Arbitrary text, as given and behind the prefix.
    let lossy = String::from_utf8_lossy(data);
    for s in [lossy.to_string(), format!("fth1_{lossy}")] {
        if let Ok(c) = s.parse::<Credential>() {
            assert_eq!(c.encode(), s, "only the canonical text parses");
            exercise(&c);
        }
    }
});
