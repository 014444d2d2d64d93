//! Who is calling (issue 15): the node's own admin token, or an agent's credential (an
//! `fth1_` macaroon, see `farthing-credential`). [`crate::auth`] decides it once per HTTP
//! request or WebSocket upgrade and puts a [`Principal`] in the request's extensions, which
//! jsonrpsee hands to every call (for a WebSocket: every call on the connection). The scope
//! check ([`crate::scope`]) and the spending methods read it from there.
//!
//! Verifying a credential needs the node's root key and its revocations: the daemon provides
//! them through [`Authority`]. Neither the token nor any signature of its chain is ever
//! printed: `Debug` shows the credential's id (a hash) only.

use std::fmt;
use std::sync::Arc;

use farthing_credential::{Caveat, ChainId, Credential, CredentialError, Effective, Verified};

/// Who a call comes from.
#[derive(Clone)]
pub enum Principal {
    /// The node's own token (`rpc.token`): every scope, no limit.
    Admin,
    /// An agent's credential, verified.
    Agent(Arc<Agent>),
}

impl Principal {
    /// Request extensions carrying this principal: to call a server's methods directly (as
    /// tests do) the way the auth layer would have.
    pub fn extensions(self) -> http::Extensions {
        let mut extensions = http::Extensions::new();
        extensions.insert(self);
        extensions
    }

    /// The agent, if the caller is one.
    pub fn agent(&self) -> Option<&Arc<Agent>> {
        match self {
            Self::Admin => None,
            Self::Agent(agent) => Some(agent),
        }
    }
}

impl fmt::Debug for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Admin => f.write_str("Admin"),
            Self::Agent(agent) => write!(f, "Agent({})", agent.id()),
        }
    }
}

/// A verified credential and the limits its caveats leave.
pub struct Agent {
    credential: Credential,
    verified: Verified,
    limits: Effective,
}

impl Agent {
    /// The agent holding `credential`, whose chain `verified` checked.
    pub fn new(credential: Credential, verified: Verified) -> Self {
        let limits = verified.effective();
        Self {
            credential,
            verified,
            limits,
        }
    }

    /// The credential's id (its last chain id): safe to log and show.
    pub fn id(&self) -> ChainId {
        self.verified.id()
    }

    /// The chain ids from the root's to the credential's own: revoking any of them revokes it.
    pub fn chain_ids(&self) -> &[ChainId] {
        self.verified.chain_ids()
    }

    /// Its caveats, in chain order.
    pub fn caveats(&self) -> &[Caveat] {
        self.verified.caveats()
    }

    /// What its caveats allow.
    pub fn limits(&self) -> &Effective {
        &self.limits
    }

    /// The credential itself — a secret: only to derive a narrower one from it.
    pub fn credential(&self) -> &Credential {
        &self.credential
    }
}

impl fmt::Debug for Agent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Agent")
            .field("id", &self.id())
            .finish_non_exhaustive()
    }
}

/// Why a credential is refused: HTTP 401 when a request or a WebSocket upgrade presents it,
/// error 1019 on a WebSocket opened while it was still good.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    /// Not a credential of this node, or altered (the token is never echoed).
    #[error("{0}")]
    Invalid(#[from] CredentialError),
    /// Its `exp` caveat has passed.
    #[error("the credential expired at unix {expires} (now {now}): ask its issuer for a new one")]
    Expired {
        /// The earliest `exp` of its chain.
        expires: u64,
        /// The node's clock.
        now: u64,
    },
    /// It, or a credential it was derived from, was revoked.
    #[error("the credential was revoked ({revoked} in its chain): ask its issuer for a new one")]
    Revoked {
        /// The revoked chain id.
        revoked: ChainId,
    },
}

impl Denied {
    /// A stable name for why: `invalid`, `expired`, `revoked`.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Invalid(_) => "invalid",
            Self::Expired { .. } => "expired",
            Self::Revoked { .. } => "revoked",
        }
    }
}

/// The node's side of credential checks: its root key and its revocations.
pub trait Authority: Send + Sync + 'static {
    /// Verify an `fth1_` token: its chain under the node's root key, then revocation and
    /// expiry.
    fn admit(&self, token: &str) -> Result<Arc<Agent>, Denied>;

    /// Whether an agent admitted earlier is still good now (expiry, revocation): checked
    /// again on every call, since a WebSocket outlives both.
    fn recheck(&self, agent: &Agent) -> Result<(), Denied>;

    /// A call of `agent`'s was refused for `reason` (`scope`, `expired`, `revoked`, or a
    /// limit's name): for the node's metrics.
    fn refused(&self, agent: &Agent, reason: &str) {
        let _ = (agent, reason);
    }
}
