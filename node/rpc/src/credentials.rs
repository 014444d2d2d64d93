//! The types of the credential methods (issue 15): `farthing_createCredential`,
//! `farthing_listCredentials`, `farthing_showCredential`, `farthing_revokeCredential` (admin)
//! and `farthing_whoami` (any caller). Amounts are token units, like everywhere in the API;
//! the caveats inside a credential hold base units.

use std::fmt;

use alloy_primitives::Address;
use serde::{Deserialize, Serialize};

/// What a new credential may do: every field narrows; one left out does not limit.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CredentialSpec {
    /// A name for listings (printable ASCII, at most 64 characters).
    pub label: Option<String>,
    /// The scopes: `read`, `pay`, `fetch`, `channel`, `sell`, `admin`.
    pub scopes: Option<Vec<String>>,
    /// The largest single payment, token units.
    pub max_payment: Option<String>,
    /// Payments (and paid fetches) over any rolling hour, token units.
    pub budget_hour: Option<String>,
    /// Payments over any rolling day (24 h), token units.
    pub budget_day: Option<String>,
    /// Payments over the credential's life, token units.
    pub budget_total: Option<String>,
    /// Channel deposits (opens and top-ups) over any rolling day, token units.
    pub deposit_day: Option<String>,
    /// Channel deposits over the credential's life, token units.
    pub deposit_total: Option<String>,
    /// The partners it may pay or open channels with.
    pub peers: Option<Vec<Address>>,
    /// The origins (`https://host[:port]`) whose 402s a fetch may pay.
    pub origins: Option<Vec<String>>,
    /// It stops working this many seconds from now.
    pub expires_in_secs: Option<u64>,
}

/// `farthing_createCredential`'s answer. The token is shown this once: the node keeps only
/// its id. `Debug` hides it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatedCredential {
    /// The credential (`fth1_…`): a secret, to hand to the agent.
    pub token: String,
    /// What it allows.
    pub credential: CredentialView,
}

impl fmt::Debug for CreatedCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CreatedCredential")
            .field("credential", &self.credential)
            .finish_non_exhaustive()
    }
}

/// One budget of a credential and what is spent of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BudgetView {
    /// `pay` (payments and paid fetches) or `deposit` (channel opens and top-ups).
    pub kind: String,
    /// `hour`, `day` (rolling) or `total`.
    pub period: String,
    /// The cap, token units.
    pub limit: String,
    /// Spent within the period, token units.
    pub spent: String,
    /// What can still be spent now, token units.
    pub remaining: String,
    /// The chain id it is counted under (shared with every credential derived from it).
    pub counted_under: String,
}

/// A credential as the node sees it: never the token, only its id and caveats.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CredentialView {
    /// Its id (`cid_…`, the hash of its tag); `null` for the admin token.
    pub id: Option<String>,
    /// The admin token: every scope, no limit.
    #[serde(default)]
    pub admin: bool,
    /// Its label, if it was given one here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// The credential it was derived from on this node, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    /// When the node issued it (Unix seconds), if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<u64>,
    /// Its caveats, in chain order (base units).
    pub caveats: Vec<String>,
    /// The scopes it allows (`null`: all).
    pub scopes: Option<Vec<String>>,
    /// When it stops working (Unix seconds), if it does.
    pub expires: Option<u64>,
    /// The largest single payment, token units, if limited.
    pub max_payment: Option<String>,
    /// The partners it may pay, if limited.
    pub peers: Option<Vec<Address>>,
    /// The origins a fetch may pay, if limited.
    pub origins: Option<Vec<String>>,
    /// Its budgets (its own and its ancestors'), with what is spent.
    pub budgets: Vec<BudgetView>,
    /// Whether it (or a credential it derives from) is revoked.
    pub revoked: bool,
}

/// `farthing_revokeCredential`'s answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revoked {
    /// The chain id revoked: that credential and everything derived from it.
    pub id: String,
    /// When (Unix seconds): the first revocation's time if it was revoked before.
    pub revoked_at: u64,
}
