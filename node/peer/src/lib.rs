//! Farthing's peer wire protocol: how two nodes that share channels talk.
//!
//! - [`message`]: the protocol's messages (`Hello`, `Pay`, `Ack`, `Sync`, close and
//!   withdraw co-signing, …);
//! - [`frame`]: their binary frames (`u32` length | version | type | payload), with a size
//!   limit checked before anything is allocated, and a strict, never-panicking decoder;
//! - [`conn`]: a framed connection over any tokio stream, split into a reading and a
//!   writing half, with batched sends;
//! - [`mod@handshake`]: a Noise handshake, then each side proves it holds the key of the
//!   address it claims by signing the session's handshake hash under a domain-separated
//!   digest;
//! - [`cipher`]: the encryption of everything after the handshake (ChaCha20-Poly1305, one
//!   key per direction, rotated every 1000 messages);
//! - [`addr`]: peer addresses as `0xADDRESS@host:port`.
//!
//! This crate holds no node logic and no state: it never decides whether a proof is valid,
//! never persists anything, and its only signature is the handshake's. It must never sign
//! anything else with the node's key, nor panic on bytes from the network.

pub mod addr;
pub mod cipher;
pub mod conn;
pub mod frame;
pub mod handshake;
pub mod message;

pub use addr::{PeerAddr, PeerAddrError};
pub use cipher::CipherState;
pub use conn::{FrameReader, FrameWriter, FramedConnection, LinkError};
pub use frame::{DecodeError, MAX_FRAME, decode, encode, encode_into};
pub use handshake::{HandshakeError, handshake};
pub use message::{
    Memo, Message, MessageKind, PROTOCOL_VERSION, Payments, RawSignature, Reason, SignedBalance,
    TooLong,
};
