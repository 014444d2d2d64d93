//! Credential-level tests: round trips, tamper refusal, chain ids, narrowing.

use super::*;
use proptest::prelude::*;

const K: [u8; 32] = [0x42; 32];

fn cav(s: &str) -> Caveat {
    Caveat::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
}

fn sample() -> Credential {
    Credential::mint(&K, [9; 16], &[cav("scope=pay,read"), cav("max<=500000")])
}

fn ok<T, E: fmt::Display>(r: Result<T, E>) -> T {
    r.unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn mint_verify_round_trip() {
    let c = sample();
    let v = ok(c.verify(&K));
    assert_eq!(v.caveats(), c.caveats());
    assert_eq!(v.chain_ids().len(), 3);
    assert_eq!(v.id(), c.id());
}

#[test]
fn text_form_round_trip() {
    let c = sample().attenuate(&cav("origin=https://api.example.com"));
    let text = c.encode();
    assert!(text.starts_with("fth1_"));
    assert!(!text.contains('='));
    let back: Credential = ok(text.parse());
    assert_eq!(back, c);
    assert_eq!(back.encode(), text);
    ok(back.verify(&K));
}

#[test]
fn text_form_refusals() {
    let text = sample().encode();
    assert_eq!(
        "fth2_abc".parse::<Credential>(),
        Err(CredentialError::Prefix)
    );
    assert_eq!(
        text[1..].parse::<Credential>(),
        Err(CredentialError::Prefix)
    );
    assert_eq!(
        format!("{text}=").parse::<Credential>(),
        Err(CredentialError::Base64)
    );
    assert_eq!(
        format!("{text}!").parse::<Credential>(),
        Err(CredentialError::Base64)
    );
    assert_eq!(
        text.replacen("fth1_", "fth1_+", 1).parse::<Credential>(),
        Err(CredentialError::Base64)
    );
    // A dangling base64 character, and nonzero unused bits in the last character.
    assert!(format!("{text}A").parse::<Credential>().is_err());
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let body_len = text.len() - PREFIX.len();
    assert!(
        !body_len.is_multiple_of(4),
        "sample should end in a partial base64 group"
    );
    {
        let last = text.as_bytes()[text.len() - 1];
        let idx = alphabet.iter().position(|&b| b == last).unwrap_or(0);
        let mut t = text[..text.len() - 1].to_string();
        t.push(char::from(alphabet[idx ^ 1]));
        assert_eq!(t.parse::<Credential>(), Err(CredentialError::Base64));
    }
    // Trailing bytes after the tag.
    let mut b = sample().to_bytes();
    b.push(0);
    let t = format!("fth1_{}", URL_SAFE_NO_PAD.encode(&b));
    assert_eq!(
        t.parse::<Credential>(),
        Err(CredentialError::Malformed("trailing bytes"))
    );
    let huge = format!("fth1_{}", "A".repeat(6000));
    assert_eq!(huge.parse::<Credential>(), Err(CredentialError::TooLarge));
    let mut c = sample();
    for _ in 0..63 {
        c = c.attenuate(&cav("note#x"));
    }
    assert_eq!(
        c.encode().parse::<Credential>(),
        Err(CredentialError::TooManyCaveats)
    );
}

#[test]
fn every_single_byte_flip_is_refused() {
    let c = sample().attenuate(&cav("budget.day<=5000"));
    let bytes = c.to_bytes();
    for i in 0..bytes.len() {
        for bit in 0..8 {
            let mut b = bytes.clone();
            b[i] ^= 1 << bit;
            if let Ok(t) = Credential::from_bytes(&b) {
                assert!(t.verify(&K).is_err(), "flip of byte {i} bit {bit} verified");
            }
        }
        for v in [0x00, 0xff, 0x30] {
            let mut b = bytes.clone();
            if b[i] == v {
                continue;
            }
            b[i] = v;
            if let Ok(t) = Credential::from_bytes(&b) {
                assert!(t.verify(&K).is_err(), "byte {i} set to {v:#x} verified");
            }
        }
    }
}

#[test]
fn dropping_editing_reordering_caveats_refused() {
    let c = Credential::mint(
        &K,
        [3; 16],
        &[cav("scope=pay"), cav("max<=5"), cav("exp<99")],
    );
    let mut dropped = c.clone();
    dropped.caveats.remove(1);
    assert_eq!(dropped.verify(&K), Err(CredentialError::BadSignature));
    let mut edited = c.clone();
    edited.caveats[1] = cav("max<=6");
    assert_eq!(edited.verify(&K), Err(CredentialError::BadSignature));
    let mut reordered = c.clone();
    reordered.caveats.swap(0, 2);
    assert_eq!(reordered.verify(&K), Err(CredentialError::BadSignature));
    let mut truncated = c.clone();
    truncated.caveats.pop();
    assert_eq!(truncated.verify(&K), Err(CredentialError::BadSignature));
}

#[test]
fn wrong_key_refused() {
    let mut k2 = K;
    k2[31] ^= 1;
    assert_eq!(sample().verify(&k2), Err(CredentialError::BadSignature));
}

#[test]
fn chain_ids_extend_parent_and_differ_between_siblings() {
    let parent = sample();
    let pv = ok(parent.verify(&K));
    let a = ok(parent.attenuate(&cav("nonce=a")).verify(&K));
    let b = ok(parent.attenuate(&cav("nonce=b")).verify(&K));
    assert!(a.chain_ids().starts_with(pv.chain_ids()));
    assert!(b.chain_ids().starts_with(pv.chain_ids()));
    assert_ne!(a.id(), b.id());
    assert_ne!(a.id(), pv.id());
    let e = parent
        .attenuate(&cav("budget.hour<=7"))
        .verify(&K)
        .map(|v| v.effective());
    let e = ok(e);
    assert_eq!(e.budgets[0].step, 3);
    let v = ok(parent.attenuate(&cav("budget.hour<=7")).verify(&K));
    assert_eq!(e.budgets[0].cid, v.chain_ids()[3]);
}

#[test]
fn debug_hides_the_signature() {
    let c = sample();
    let dbg = format!("{c:?} {:?}", ok(c.verify(&K)));
    let tag_hex: String = c.tag.iter().map(|b| format!("{b:02x}")).collect();
    assert!(dbg.contains(&c.id().to_string()), "{dbg}");
    assert!(!dbg.contains(&tag_hex));
    assert!(!dbg.contains("fth1_"));
    assert!(!dbg.contains(&format!("{:?}", c.tag)));
}

#[test]
fn non_farthing_identifier_refused() {
    let mut raw = wire::decode(&sample().to_bytes()).unwrap_or_else(|e| panic!("{e}"));
    raw.identifier = b"hello".to_vec();
    assert_eq!(
        Credential::from_bytes(&wire::encode(&raw)),
        Err(CredentialError::Identifier)
    );
}

#[test]
fn unknown_non_canonical_or_non_utf8_caveat_refuses_whole_token() {
    let base = ok(wire::decode(&sample().to_bytes()));
    for bad in [
        &b"frob=1"[..],
        b"max<=0500000",
        b"scope=pay, read",
        &[0xff, 0xfe],
    ] {
        let mut raw = base.clone();
        raw.caveats.push(bad.to_vec());
        let err = Credential::from_bytes(&wire::encode(&raw));
        assert!(
            matches!(err, Err(CredentialError::Caveat(_))),
            "{bad:?}: {err:?}"
        );
        // The refusal never echoes the caveat.
        let msg = err.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(!msg.contains("frob") && !msg.contains("0500000"), "{msg}");
    }
}

/// Generated once with pymacaroons 0.13.0 (`Macaroon(location='fth', identifier=0x01 ‖ 9×16,
/// key=0x42×32, version=MACAROON_V2)`, caveats `scope=pay,read` and `max<=500000`,
/// `BinarySerializer`): byte-identical to what [`Credential::mint`] writes.
const PYMACAROONS_MINT: &str = "fth1_AgEDZnRoAhEBCQkJCQkJCQkJCQkJCQkJCQACDnNjb3BlPXBheSxyZWFkAAILbWF4PD01MDAwMDAAAAYgbhpJZTgSiVw3wFNQ4xUoHEJVa2EXW2Q0jcqwR6h8sqY";

/// The same chain minted by pymacaroons without a location (it writes an empty one) and
/// attenuated there with `nonce=py1` and `origin=https://api.example.com`.
const PYMACAROONS_ATTENUATED: &str = "fth1_AgEAAhEBCQkJCQkJCQkJCQkJCQkJCQACDnNjb3BlPXBheSxyZWFkAAILbWF4PD01MDAwMDAAAglub25jZT1weTEAAh5vcmlnaW49aHR0cHM6Ly9hcGkuZXhhbXBsZS5jb20AAAYgNwG0CunM_DZ_HY2HXYdiDWkAa54twSYkuJAuyy9QrYg";

#[test]
fn pymacaroons_tokens_interoperate() {
    assert_eq!(sample().encode(), PYMACAROONS_MINT);
    let c: Credential = ok(PYMACAROONS_ATTENUATED.parse());
    let v = ok(c.verify(&K));
    assert_eq!(
        v.caveats()[2..],
        [cav("nonce=py1"), cav("origin=https://api.example.com")]
    );
    // Chain ids do not depend on the (unsigned) location.
    assert!(
        v.chain_ids()
            .starts_with(ok(sample().verify(&K)).chain_ids())
    );
    assert_eq!(c.encode(), PYMACAROONS_ATTENUATED);
}

fn arb_caveat() -> impl Strategy<Value = Caveat> {
    let scopes = proptest::sample::subsequence(Scope::ALL.to_vec(), 1..=6);
    let origin =
        proptest::sample::select(vec!["https://a.com", "https://b.com", "http://a.com:8080"]);
    let origins = proptest::collection::btree_set(origin, 1..=3);
    prop_oneof![
        scopes.prop_map(Caveat::Scope),
        (0u64..2000).prop_map(Caveat::Exp),
        (0u128..2000).prop_map(Caveat::Max),
        (proptest::sample::select(Period::ALL.to_vec()), 0u128..2000)
            .prop_map(|(p, a)| Caveat::Budget(p, a)),
        (proptest::sample::select(Period::ALL.to_vec()), 0u128..2000)
            .prop_map(|(p, a)| Caveat::Deposit(p, a)),
        origins.prop_map(|os| Caveat::Origin(
            os.into_iter()
                .filter_map(|o| Origin::parse_canonical(o).ok())
                .collect()
        )),
        "[a-z0-9]{1,8}".prop_map(Caveat::Nonce),
    ]
}

fn narrower(child: &Effective, parent: &Effective) -> bool {
    fn set<T: Ord>(
        c: &Option<std::collections::BTreeSet<T>>,
        p: &Option<std::collections::BTreeSet<T>>,
    ) -> bool {
        match (c, p) {
            (_, None) => true,
            (None, Some(_)) => false,
            (Some(c), Some(p)) => c.is_subset(p),
        }
    }
    fn le<T: Ord>(c: Option<T>, p: Option<T>) -> bool {
        match (c, p) {
            (_, None) => true,
            (None, Some(_)) => false,
            (Some(c), Some(p)) => c <= p,
        }
    }
    set(&child.scopes, &parent.scopes)
        && set(&child.origins, &parent.origins)
        && set(&child.peers, &parent.peers)
        && le(child.expires, parent.expires)
        && le(child.max, parent.max)
        && child.budgets.starts_with(&parent.budgets)
}

proptest! {
    #[test]
    fn attenuation_only_narrows(base in proptest::collection::vec(arb_caveat(), 0..5),
                                added in proptest::collection::vec(arb_caveat(), 1..5)) {
        let parent = Credential::mint(&K, [5; 16], &base);
        let pv = parent.verify(&K).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let mut child = parent.clone();
        for c in &added {
            child = child.attenuate(c);
            let cv = child.verify(&K).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert!(narrower(&cv.effective(), &pv.effective()));
            prop_assert!(cv.chain_ids().starts_with(pv.chain_ids()));
            let back: Credential = child.encode().parse().map_err(|e: CredentialError| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(&back, &child);
        }
    }
}

/// Verify plus effective limits, timed: `cargo test --release -p farthing-credential -- --ignored --nocapture verify_timing`.
#[test]
#[ignore]
fn verify_timing() {
    let text = Credential::mint(
        &K,
        [1; 16],
        &[
            cav("nonce=abcdef"),
            cav("scope=pay,fetch,read"),
            cav("max<=500000"),
            cav("budget.day<=5000000"),
        ],
    )
    .attenuate(&cav("origin=https://api.example.com"))
    .encode();
    let n = 20_000u32;
    let t = std::time::Instant::now();
    let mut ids = 0usize;
    for _ in 0..n {
        let c: Credential = ok(text.parse());
        let v = ok(c.verify(&K));
        let e = v.effective();
        let r = Request {
            scope: Scope::Fetch,
            amount: Some(1000),
            peer: None,
            origin: Some("https://api.example.com/x"),
            now: 0,
            decimals: 6,
        };
        ok(check(&e, &r));
        ids += v.chain_ids().len();
    }
    let per = t.elapsed() / n;
    println!(
        "parse+verify+effective+check: {per:?} per request ({} chars, {ids} ids)",
        text.len()
    );
}
