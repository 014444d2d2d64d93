//! The credential methods' entries of the table (issue 15), kept apart from the rest.

use super::Method;
use super::table::{Field, call, opt, req};

/// `farthing_createCredential`.
pub(super) const CREATE: Method = call(
    "createCredential",
    "Admin: a credential for an agent, limited by the parameters given (amounts in token units); derived from the caller's if the caller is an agent. The token is shown this once.",
    &[
        opt("label", "string", "a name for listings"),
        opt(
            "scopes",
            "[string]",
            "read, pay, fetch, channel, sell, admin",
        ),
        opt("max_payment", "amount", "the largest single payment"),
        opt("budget_hour", "amount", "payments over any rolling hour"),
        opt("budget_day", "amount", "payments over any rolling day"),
        opt("budget_total", "amount", "payments over its life"),
        opt(
            "deposit_day",
            "amount",
            "channel deposits over any rolling day",
        ),
        opt("deposit_total", "amount", "channel deposits over its life"),
        opt(
            "peers",
            "[address]",
            "the partners it may pay or open channels with",
        ),
        opt(
            "origins",
            "[string]",
            "the origins (https://host[:port]) a fetch may pay",
        ),
        opt(
            "expires_in_secs",
            "integer",
            "it stops working this many seconds from now",
        ),
    ],
    "CreatedCredential",
    &[1004, 1005, 1017],
);

/// `farthing_listCredentials`.
pub(super) const LIST: Method = call(
    "listCredentials",
    "Admin: the credentials this node issued, with what each spent and whether it is revoked.",
    &[],
    "[CredentialView]",
    &[1017],
);

/// `farthing_showCredential`.
pub(super) const SHOW: Method = call(
    "showCredential",
    "Admin: one credential, by id (issued here) or by token (any of this node's, also derived offline).",
    &[
        opt("id", "string", "cid_… of a credential this node issued"),
        opt("token", "string", "the credential itself (fth1_…)"),
    ],
    "CredentialView",
    &[1005, 1017],
);

/// `farthing_revokeCredential`.
pub(super) const REVOKE: Method = call(
    "revokeCredential",
    "Admin: revoke chain id id: that credential and everything derived from it are refused from now on.",
    &[req(
        "id",
        "string",
        "cid_… (farthing_listCredentials, or farthing credential id)",
    )],
    "Revoked",
    &[1005, 1017],
);

/// `farthing_whoami`.
pub(super) const WHOAMI: Method = call(
    "whoami",
    "The caller's own credential: its limits and what is left of its budgets.",
    &[],
    "CredentialView",
    &[],
);

/// The result types.
pub(super) const SCHEMAS: [(&str, &[Field]); 4] = [
    (
        "CreatedCredential",
        &[
            ("token", "string", true),
            ("credential", "CredentialView", true),
        ],
    ),
    (
        "CredentialView",
        &[
            ("id", "string?", true),
            ("admin", "boolean", true),
            ("label", "string", false),
            ("parent", "string", false),
            ("created", "integer", false),
            ("caveats", "[string]", true),
            ("scopes", "[string]?", true),
            ("expires", "integer?", true),
            ("max_payment", "amount?", true),
            ("peers", "[address]?", true),
            ("origins", "[string]?", true),
            ("budgets", "[BudgetView]", true),
            ("revoked", "boolean", true),
        ],
    ),
    (
        "BudgetView",
        &[
            ("kind", "string", true),
            ("period", "string", true),
            ("limit", "amount", true),
            ("spent", "amount", true),
            ("remaining", "amount", true),
            ("counted_under", "string", true),
        ],
    ),
    (
        "Revoked",
        &[("id", "string", true), ("revoked_at", "integer", true)],
    ),
];
