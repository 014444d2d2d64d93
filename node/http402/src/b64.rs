//! The two base64 alphabets the standards use, strictly: x402 headers are standard base64
//! with padding (the reference SDK refuses anything else); MPP's are base64url without
//! padding. Decoding is bounded by the caller (headers are size-checked first).

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};

/// Standard base64 with padding.
pub fn encode(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// Standard base64 with padding, or `None`.
pub fn decode(text: &str) -> Option<Vec<u8>> {
    STANDARD.decode(text.trim()).ok()
}

/// base64url without padding.
pub fn url_encode(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// base64url without padding (trailing `=` tolerated), or `None`.
pub fn url_decode(text: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD
        .decode(text.trim().trim_end_matches('='))
        .ok()
}
