//! Farthing's agent credentials (issue 15; node/CREDENTIALS-PLAN.md, Part A): HMAC-SHA256
//! macaroons with first-party caveats only, in the libmacaroons V2 binary layout ([`wire`]),
//! written as `fth1_` + base64url without padding. A holder narrows a credential offline by
//! appending a caveat ([`Credential::attenuate`]); the node checks the chain with its root key
//! ([`Credential::verify`]), then the caveats' static limits ([`effective`]). Budgets
//! (`budget.` for payments, `deposit.` for channel opens and top-ups) are listed with the chain
//! step they are charged to; the node enforces them with [`ledger::Ledgers`], pure ledger math
//! kept here.
//!
//! The chain, as libmacaroons: `sig_0 = HMAC(HMAC("macaroons-key-generator" ‖ 0-pad to 32,
//! K), identifier)`, `sig_i = HMAC(sig_{i-1}, caveat_i)`, tag = `sig_n`. Each step has a
//! chain id, `cid_i = SHA256("fth1-cid" ‖ sig_i)[..16]`; intermediate signatures are never
//! exposed (whoever holds one could widen the credential from that point). Pure: no I/O, no
//! randomness (the caller supplies the mint nonce), time a parameter.
//!
//! Two siblings derived from one parent with byte-identical caveats are the same credential
//! (same tag, same ids, shared budgets, revoked together): derive with a random `nonce=`
//! caveat first.
//!
//! ```
//! use farthing_credential::{Caveat, Credential, Request, Scope, check};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let key = [7u8; 32];
//! let root = Credential::mint(&key, [1; 16], &[Caveat::parse("scope=pay,fetch")?]);
//! // The holder narrows it offline, without the key.
//! let agent = root.attenuate(&Caveat::parse("nonce=x1")?).attenuate(&Caveat::parse("max<=500000")?);
//! let text = agent.encode(); // "fth1_…": a secret, never logged
//! let verified = text.parse::<Credential>()?.verify(&key)?;
//! let limits = verified.effective();
//! let req = Request { scope: Scope::Pay, amount: Some(600_000), peer: None, origin: None, now: 0, decimals: 6 };
//! assert!(check(&limits, &req).is_err()); // over the per-payment max
//! # Ok(())
//! # }
//! ```

pub mod caveat;
pub mod effective;
pub mod ledger;
pub mod origin;
mod render;
pub mod wire;

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

pub use caveat::{Caveat, CaveatError, Kind, Origin, Period, Scope};
pub use effective::{Budget, Effective, Refusal, Request, check};
pub use ledger::{Frees, Ledger, Ledgers, OverBudget, Update};

/// The text form's prefix.
pub const PREFIX: &str = "fth1_";
/// The identifier's format version byte.
pub const ID_VERSION: u8 = 0x01;

/// The longest text form read: the prefix plus [`wire::MAX_TOKEN`] bytes in base64.
const MAX_TEXT: usize = PREFIX.len() + (wire::MAX_TOKEN * 4).div_ceil(3);

type HmacSha256 = Hmac<Sha256>;

/// Why a token was refused. Never echoes the token or any part of it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialError {
    /// The text does not start with `fth1_`.
    #[error("not a farthing credential (expected the fth1_ prefix)")]
    Prefix,
    /// The text after the prefix is not unpadded base64url.
    #[error("credential is not valid base64url")]
    Base64,
    /// Over the size cap.
    #[error("credential too large (over {} bytes)", wire::MAX_TOKEN)]
    TooLarge,
    /// Over the caveat-count cap.
    #[error("credential has more than {} caveats", wire::MAX_CAVEATS)]
    TooManyCaveats,
    /// A caveat over the length cap.
    #[error("credential caveat longer than {} bytes", wire::MAX_CAVEAT)]
    CaveatTooLong,
    /// A third-party caveat (a location or verification id on a caveat).
    #[error("third-party caveats are not supported")]
    ThirdParty,
    /// The V2 binary layout is broken.
    #[error("malformed credential: {0}")]
    Malformed(&'static str),
    /// The identifier is not `0x01` ‖ 16 bytes.
    #[error("unknown credential identifier format")]
    Identifier,
    /// A caveat is unknown, non-canonical or not UTF-8.
    #[error("credential refused: {0}")]
    Caveat(#[from] CaveatError),
    /// The signature chain does not match the root key.
    #[error("credential signature does not verify")]
    BadSignature,
}

/// A chain id: `SHA256("fth1-cid" ‖ sig_i)[..16]`, safe to log and store.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ChainId(pub [u8; 16]);

impl ChainId {
    fn of(sig: &[u8; 32]) -> ChainId {
        let mut h = Sha256::new();
        h.update(b"fth1-cid");
        h.update(sig);
        let d = h.finalize();
        let mut id = [0u8; 16];
        id.copy_from_slice(&d[..16]);
        ChainId(id)
    }
}

impl fmt::Display for ChainId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("cid_")?;
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for ChainId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

fn hmac(key: &[u8], msg: &[u8]) -> [u8; 32] {
    // HMAC takes a key of any length: new_from_slice cannot fail for it.
    let mut mac = match HmacSha256::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => unreachable!("HMAC accepts any key length"),
    };
    mac.update(msg);
    mac.finalize().into_bytes().into()
}

fn sig_0(root_key: &[u8; 32], identifier: &[u8]) -> [u8; 32] {
    let mut generator = [0u8; 32];
    generator[..23].copy_from_slice(b"macaroons-key-generator");
    hmac(&hmac(&generator, root_key), identifier)
}

/// A credential: an HMAC-SHA256 macaroon. Its `Debug` shows only its chain id, never the tag.
#[derive(Clone, PartialEq, Eq)]
pub struct Credential {
    location: Option<Vec<u8>>,
    identifier: Vec<u8>,
    caveats: Vec<Caveat>,
    tag: [u8; 32],
}

/// A credential whose chain checked out: its chain ids (`cid_0` for the root through
/// `cid_n`, one per caveat after it) and its caveats. No signature is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    chain_ids: Vec<ChainId>,
    caveats: Vec<Caveat>,
}

impl Verified {
    /// `cid_0 ..= cid_n`: `chain_ids()[i]` is the step after caveat `i` (1-based).
    pub fn chain_ids(&self) -> &[ChainId] {
        &self.chain_ids
    }

    /// The caveats, in chain order.
    pub fn caveats(&self) -> &[Caveat] {
        &self.caveats
    }

    /// The credential's own id, `cid_n`.
    pub fn id(&self) -> ChainId {
        // chain_ids always holds cid_0.
        self.chain_ids.last().copied().unwrap_or(ChainId([0; 16]))
    }

    /// The limits left after every caveat.
    pub fn effective(&self) -> Effective {
        Effective::from_verified(self)
    }
}

impl Credential {
    /// Mints a root credential from `root_key`: identifier `0x01` ‖ `nonce` (fresh random
    /// bytes on every mint), then `caveats` appended in order.
    pub fn mint(root_key: &[u8; 32], nonce: [u8; 16], caveats: &[Caveat]) -> Credential {
        let mut identifier = Vec::with_capacity(17);
        identifier.push(ID_VERSION);
        identifier.extend_from_slice(&nonce);
        let mut c = Credential {
            location: Some(wire::LOCATION.to_vec()),
            tag: sig_0(root_key, &identifier),
            identifier,
            caveats: Vec::new(),
        };
        for cav in caveats {
            c = c.attenuate(cav);
        }
        c
    }

    /// Appends `caveat`, offline, without any key: the result can only be narrower.
    pub fn attenuate(&self, caveat: &Caveat) -> Credential {
        let mut c = self.clone();
        c.tag = hmac(&self.tag, caveat.to_string().as_bytes());
        c.caveats.push(caveat.clone());
        c
    }

    /// The caveats, in chain order.
    pub fn caveats(&self) -> &[Caveat] {
        &self.caveats
    }

    /// This credential's id, `cid_n` (the hash of its tag): computable offline, so an
    /// offline-derived credential can still be named and revoked.
    pub fn id(&self) -> ChainId {
        ChainId::of(&self.tag)
    }

    /// Checks the signature chain against `root_key` (the tag compared in constant time).
    pub fn verify(&self, root_key: &[u8; 32]) -> Result<Verified, CredentialError> {
        let mut sig = sig_0(root_key, &self.identifier);
        let mut chain_ids = Vec::with_capacity(self.caveats.len() + 1);
        chain_ids.push(ChainId::of(&sig));
        for c in &self.caveats {
            sig = hmac(&sig, c.to_string().as_bytes());
            chain_ids.push(ChainId::of(&sig));
        }
        if bool::from(sig.ct_eq(&self.tag)) {
            Ok(Verified {
                chain_ids,
                caveats: self.caveats.clone(),
            })
        } else {
            Err(CredentialError::BadSignature)
        }
    }

    /// The V2 binary form.
    pub fn to_bytes(&self) -> Vec<u8> {
        wire::encode(&wire::Raw {
            location: self.location.clone(),
            identifier: self.identifier.clone(),
            caveats: self
                .caveats
                .iter()
                .map(|c| c.to_string().into_bytes())
                .collect(),
            tag: self.tag,
        })
    }

    /// Decodes the V2 binary form, strictly: every caveat must parse canonically.
    pub fn from_bytes(bytes: &[u8]) -> Result<Credential, CredentialError> {
        let raw = wire::decode(bytes)?;
        if raw.identifier.len() != 17 || raw.identifier[0] != ID_VERSION {
            return Err(CredentialError::Identifier);
        }
        let caveats = raw
            .caveats
            .iter()
            .map(|c| {
                let s = std::str::from_utf8(c).map_err(|_| CaveatError("not UTF-8"))?;
                Caveat::parse(s)
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Credential {
            location: raw.location,
            identifier: raw.identifier,
            caveats,
            tag: raw.tag,
        })
    }

    /// The bearer text, `fth1_` + base64url (no padding). A secret: never log it.
    /// (Not `Display`, so that `{}` in a log line cannot print it.)
    pub fn encode(&self) -> String {
        format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(self.to_bytes()))
    }
}

impl FromStr for Credential {
    type Err = CredentialError;

    fn from_str(s: &str) -> Result<Credential, CredentialError> {
        let body = s.strip_prefix(PREFIX).ok_or(CredentialError::Prefix)?;
        if s.len() > MAX_TEXT {
            return Err(CredentialError::TooLarge);
        }
        let bytes = URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| CredentialError::Base64)?;
        // The decoder tolerates nonzero trailing bits: insist on the canonical text.
        if URL_SAFE_NO_PAD.encode(&bytes) != body {
            return Err(CredentialError::Base64);
        }
        Credential::from_bytes(&bytes)
    }
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credential")
            .field("id", &self.id())
            .field("caveats", &self.caveats.len())
            .finish()
    }
}

#[cfg(test)]
mod tests;
