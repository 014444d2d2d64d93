//! `farthing credential`: agents' credentials (issue 15). An operator creates one with the
//! scopes and budgets an agent may use (`create`, on the node); its holder narrows it further
//! for a sub-agent without the node (`derive`, offline: a credential can only gain caveats);
//! `list`, `show` and `revoke` manage them. Client commands run under one with the global
//! `--credential-file` (or `FARTHING_CREDENTIAL_FILE`, which holds the file's path, never the
//! token) instead of the node's `rpc.token`.
//!
//! A token is a secret: it is written once, to `--out` with mode 0600 or to stdout, and never
//! to stderr or a log. Everything else (ids, limits, what is spent) is safe to print.

use std::fs::Permissions;
use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use alloy::primitives::Address;
use eyre::{Result, WrapErr as _, eyre};
use farthing_core::format_amount;
use farthing_credential::{Caveat, Credential, Effective};
use farthing_rpc::{CredentialSpec, FarthingApiClient, SpecError};
use serde::Serialize;

/// `farthing credential`'s subcommands.
mod render;

pub(crate) use render::time;
use render::{budget_name, kind_name, limit_lines, summary, table};

#[derive(Debug, clap::Subcommand)]
pub(crate) enum CredentialCommand {
    /// Create a credential for an agent (with the node's rpc.token, or an admin-scoped
    /// credential, from which the new one is derived): the scopes and limits given, each left
    /// out does not limit. The token is shown this once: written to --out (mode 0600) or
    /// printed on stdout (the summary then goes to stderr); the node keeps only its id.
    Create {
        #[command(flatten)]
        limits: Limits,
        /// Write the token to this file (mode 0600), not stdout.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Replace --out if it exists.
        #[arg(long)]
        force: bool,
    },
    /// The credentials this node issued: id, label, scopes, budgets with what is spent,
    /// expiry, revoked (not those derived offline: `show --token-file` shows one).
    List,
    /// One credential, with its budgets and what is spent of them: ID (cid_…) of one the node
    /// issued, or --token-file (any, also one derived offline; needs the admin token); with
    /// neither, the one this command runs with (--credential-file), as the node sees it.
    Show {
        /// Its id (cid_…).
        id: Option<String>,
        /// A file holding the credential (mode 0600).
        #[arg(long, conflicts_with = "id")]
        token_file: Option<PathBuf>,
    },
    /// Revoke ID (cid_…): that credential and every credential derived from it, also offline,
    /// are refused from now on (HTTP 401).
    Revoke {
        /// The id to revoke (cid_…, as `create`, `derive` or `list` show it).
        id: String,
    },
    /// Derive a narrower credential from the one in --from, offline (no node is asked): a
    /// random nonce, then the limits given. It can never allow more than its parent: both
    /// sets of limits hold, and its spends count against the parent's budgets too.
    Derive {
        /// The credential to derive from (a file, mode 0600).
        #[arg(long)]
        from: PathBuf,
        #[command(flatten)]
        limits: Limits,
        /// The token's decimals, to turn token units into the base units the credential
        /// holds (USDC: 6; `farthing info` names the token).
        #[arg(long, default_value_t = 6)]
        decimals: u8,
        /// Write the new credential to this file (mode 0600).
        #[arg(long)]
        out: PathBuf,
        /// Replace --out if it exists.
        #[arg(long)]
        force: bool,
    },
}

/// What a new credential allows; amounts in token units. A flag left out does not limit.
#[derive(Debug, Clone, Default, clap::Args)]
pub(crate) struct Limits {
    /// A name for listings (printable ASCII, at most 64 characters).
    #[arg(long)]
    label: Option<String>,
    /// The scopes, comma-separated: read, pay, fetch, channel, sell, admin.
    #[arg(long = "scope", value_delimiter = ',')]
    scopes: Option<Vec<String>>,
    /// The largest single payment, token units.
    #[arg(long)]
    max: Option<String>,
    /// Payments (and paid fetches) over any rolling hour, token units.
    #[arg(long)]
    hour: Option<String>,
    /// Payments over any rolling day (24 h), token units.
    #[arg(long)]
    day: Option<String>,
    /// Payments over the credential's life, token units.
    #[arg(long)]
    total: Option<String>,
    /// Channel deposits (opens and top-ups) over any rolling day, token units.
    #[arg(long)]
    deposit_day: Option<String>,
    /// Channel deposits over the credential's life, token units.
    #[arg(long)]
    deposit_total: Option<String>,
    /// A partner it may pay or open channels with (0xADDRESS); repeatable.
    #[arg(long = "peer")]
    peers: Vec<Address>,
    /// An origin (https://host[:port]) whose 402s a fetch may pay; repeatable.
    #[arg(long = "origin")]
    origins: Vec<String>,
    /// When it stops working, from now: 30m, 1h, 2d, or seconds.
    #[arg(long, value_parser = parse_duration)]
    expires: Option<u64>,
}

impl Limits {
    /// The limits as the node's `farthing_createCredential` takes them.
    fn spec(&self) -> CredentialSpec {
        CredentialSpec {
            label: self.label.clone(),
            scopes: self.scopes.clone(),
            max_payment: self.max.clone(),
            budget_hour: self.hour.clone(),
            budget_day: self.day.clone(),
            budget_total: self.total.clone(),
            deposit_day: self.deposit_day.clone(),
            deposit_total: self.deposit_total.clone(),
            peers: (!self.peers.is_empty()).then(|| self.peers.clone()),
            origins: (!self.origins.is_empty()).then(|| self.origins.clone()),
            expires_in_secs: self.expires,
        }
    }
}

/// `30m`, `1h`, `2d`, `90s` or plain seconds, as seconds (not zero).
fn parse_duration(text: &str) -> Result<u64, String> {
    let (digits, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => text.split_at(i),
        None => (text, "s"),
    };
    let scale = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        _ => 0,
    };
    match digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(scale))
    {
        Some(0) => Err("give a positive duration such as 30m, 1h, 2d or 3600".into()),
        Some(secs) => Ok(secs),
        None => Err(format!(
            "{text:?} is not a duration: give 30m, 1h, 2d or a number of seconds"
        )),
    }
}

/// The bearer token a client command sends: the credential in `credential_file` if one is
/// given (the global --credential-file), else the node's own token from `data_dir`.
pub(crate) fn bearer(credential_file: Option<&Path>, data_dir: &Path) -> Result<String> {
    Ok(match credential_file {
        Some(path) => farthing_rpc::read_credential_file(path)?,
        None => farthing_rpc::read_token(data_dir)?,
    })
}

/// Run `command`: against the node at `node_url` (as `bearer` says), or offline (`derive`).
pub(crate) async fn run(
    command: CredentialCommand,
    node_url: &str,
    bearer: impl FnOnce() -> Result<String>,
    json: bool,
) -> Result<()> {
    if let CredentialCommand::Derive {
        from,
        limits,
        decimals,
        out,
        force,
    } = command
    {
        return derive(&from, &limits, decimals, &out, force, json);
    }
    let client = farthing_rpc::connect_http(node_url, &bearer()?)?;
    match command {
        CredentialCommand::Create { limits, out, force } => {
            if let Some(out) = &out {
                check_out(out, force)?;
            }
            let spec = limits.spec();
            let created = client
                .create_credential(
                    spec.label,
                    spec.scopes,
                    spec.max_payment,
                    spec.budget_hour,
                    spec.budget_day,
                    spec.budget_total,
                    spec.deposit_day,
                    spec.deposit_total,
                    spec.peers,
                    spec.origins,
                    spec.expires_in_secs,
                )
                .await?;
            let view = &created.credential;
            let id = view.id.as_deref().unwrap_or("?");
            let Some(out) = out else {
                // The token alone on stdout (`> agent.cred`, a pipe); the rest on stderr.
                if json {
                    println!("{}", serde_json::to_string_pretty(&created)?);
                } else {
                    println!("{}", created.token);
                    eprintln!("{}", summary(view));
                }
                return Ok(());
            };
            write_secret(&out, &created.token, force).wrap_err_with(|| {
                format!(
                    "credential {id} was created but not saved: revoke it (`farthing credential revoke {id}`) and create another"
                )
            })?;
            crate::output(
                json,
                &serde_json::json!({ "file": out, "credential": view }),
                || {
                    format!(
                        "{}\nwritten to {} (mode 0600): run an agent with `farthing --credential-file {} …`",
                        summary(view),
                        out.display(),
                        out.display()
                    )
                },
            )
        }
        CredentialCommand::List => {
            let list = client.list_credentials().await?;
            crate::output(json, &list, || table(&list))
        }
        CredentialCommand::Show { id, token_file } => {
            let view = match (id, token_file) {
                (None, None) => client.whoami().await?,
                (id, token_file) => {
                    let token = token_file
                        .as_deref()
                        .map(farthing_rpc::read_credential_file)
                        .transpose()?;
                    client.show_credential(id, token).await?
                }
            };
            crate::output(json, &view, || summary(&view))
        }
        CredentialCommand::Revoke { id } => {
            let revoked = client.revoke_credential(id).await?;
            crate::output(json, &revoked, || {
                format!(
                    "revoked {} and every credential derived from it, at {}",
                    revoked.id,
                    time(revoked.revoked_at)
                )
            })
        }
        CredentialCommand::Derive { .. } => crate::unreachable_command(),
    }
}

/// `farthing credential derive`'s answer: the new credential's id and what it allows (no
/// token: that is in the file).
#[derive(Debug, Serialize)]
struct Derived {
    /// The new credential's id, to revoke it by.
    id: String,
    /// The id of the credential it was derived from.
    parent: String,
    /// Where it was written.
    file: PathBuf,
    /// Its caveats, in chain order (base units), the parent's first.
    caveats: Vec<String>,
    /// The scopes it allows (`null`: all).
    scopes: Option<Vec<&'static str>>,
    /// When it stops working (Unix seconds), if it does.
    expires: Option<u64>,
    /// The largest single payment, token units, if limited.
    max_payment: Option<String>,
    /// The partners it may pay, if limited.
    peers: Option<Vec<Address>>,
    /// The origins a fetch may pay, if limited.
    origins: Option<Vec<String>>,
    /// Its budgets: its own, then its ancestors' (which its spends count against too).
    budgets: Vec<DerivedBudget>,
}

/// A budget of a derived credential.
#[derive(Debug, Serialize)]
struct DerivedBudget {
    /// `pay` or `deposit`.
    kind: &'static str,
    /// `hour`, `day` or `total`.
    period: &'static str,
    /// The cap, token units.
    limit: String,
    /// Whether derive added it (else an ancestor's, shared with its other descendants).
    own: bool,
}

/// `farthing credential derive`, offline.
fn derive(
    from: &Path,
    limits: &Limits,
    decimals: u8,
    out: &Path,
    force: bool,
    json: bool,
) -> Result<()> {
    check_out(out, force)?;
    let text = farthing_rpc::read_credential_file(from)?;
    if !text.starts_with(farthing_credential::PREFIX) {
        return Err(eyre!(
            "{} holds a node's admin token (rpc.token), not a credential: derive narrows a credential (fth1_…); make one with `farthing credential create`",
            from.display()
        ));
    }
    let parent: Credential = text.parse().map_err(|e| {
        eyre!(
            "{}: {e}: it must hold a credential as `farthing credential create` wrote it",
            from.display()
        )
    })?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    // A random nonce first: two children derived with the same limits would otherwise be
    // one credential (one id, one budget, revoked together).
    let mut nonce = [0u8; 8];
    getrandom::fill(&mut nonce).map_err(|e| eyre!("no randomness from the OS: {e}"))?;
    let mut added = vec![Caveat::Nonce(alloy::hex::encode(nonce))];
    added.extend(caveats_of(&limits.spec(), decimals, now)?);
    let child = added
        .iter()
        .fold(parent.clone(), |c, caveat| c.attenuate(caveat));
    // A credential the node could not read back is not written (too many or too long caveats).
    let token = child.encode();
    token.parse::<Credential>().map_err(|e| {
        eyre!(
            "these limits make a credential the node cannot read ({e}): give fewer peers or origins"
        )
    })?;
    write_secret(out, &token, force)?;

    let before = Effective::from_chain(parent.caveats(), &[]);
    let after = Effective::from_chain(child.caveats(), &[]);
    let amount = |v: u128| format_amount(v, decimals);
    let derived = Derived {
        id: child.id().to_string(),
        parent: parent.id().to_string(),
        file: out.to_path_buf(),
        caveats: child.caveats().iter().map(ToString::to_string).collect(),
        scopes: after
            .scopes
            .as_ref()
            .map(|s| s.iter().map(|s| s.as_str()).collect()),
        expires: after.expires,
        max_payment: after.max.map(amount),
        peers: after
            .peers
            .as_ref()
            .map(|p| p.iter().map(|a| Address::from(*a)).collect()),
        origins: after
            .origins
            .as_ref()
            .map(|o| o.iter().map(ToString::to_string).collect()),
        budgets: after
            .budgets
            .iter()
            .map(|b| DerivedBudget {
                kind: kind_name(b.kind),
                period: b.period.as_str(),
                limit: amount(b.limit),
                own: b.step > parent.caveats().len(),
            })
            .collect(),
    };
    // What the parent keeps narrower than asked: the flags cannot widen it.
    for note in narrower(&before, &added, decimals) {
        eprintln!("note: {note}");
    }
    crate::output(json, &derived, || {
        let mut text = format!(
            "derived {} from {} (offline), written to {} (mode 0600); revoke it with `farthing credential revoke {}`",
            derived.id,
            derived.parent,
            out.display(),
            derived.id
        );
        text.push_str(&limit_lines(
            derived.scopes.as_ref().map(|s| s.join(", ")),
            derived.max_payment.as_deref(),
            derived.expires,
            derived.peers.as_deref(),
            derived.origins.as_deref(),
        ));
        for b in &derived.budgets {
            text.push_str(&format!(
                "\n{} {}: {}{}",
                budget_name(b.kind),
                b.period,
                b.limit,
                if b.own {
                    " (its own)"
                } else {
                    " (an ancestor's, shared with the credentials derived from it)"
                }
            ));
        }
        text
    })
}

/// Where the caveats `added` ask for more than the parent (`before`) allows, in words: the
/// parent's limits still hold, so the flag changed nothing there.
fn narrower(before: &Effective, added: &[Caveat], decimals: u8) -> Vec<String> {
    let mut notes = Vec::new();
    for caveat in added {
        match caveat {
            Caveat::Scope(asked) => {
                let lost: Vec<&str> = asked
                    .iter()
                    .filter(|s| before.scopes.as_ref().is_some_and(|had| !had.contains(s)))
                    .map(|s| s.as_str())
                    .collect();
                if !lost.is_empty() {
                    notes.push(format!(
                        "the parent does not have scope {}: neither does the new credential",
                        lost.join(", ")
                    ));
                }
            }
            Caveat::Max(asked) => {
                if let Some(had) = before.max.filter(|had| had < asked) {
                    notes.push(format!(
                        "the parent's max per payment, {}, is below --max and still holds",
                        format_amount(had, decimals)
                    ));
                }
            }
            Caveat::Exp(asked) => {
                if let Some(had) = before.expires.filter(|had| had < asked) {
                    notes.push(format!(
                        "the parent expires earlier, at {}, and so does the new credential",
                        time(had)
                    ));
                }
            }
            _ => {}
        }
    }
    notes
}

/// The caveats of `spec`, as the node's `farthing_createCredential` makes them, an error
/// naming the flag.
fn caveats_of(spec: &CredentialSpec, decimals: u8, now: u64) -> Result<Vec<Caveat>> {
    spec.caveats(decimals, now).map_err(|e| match e {
        SpecError::Amount { field, problem } => {
            let flag = match field {
                "max_payment" => "max",
                "budget_hour" => "hour",
                "budget_day" => "day",
                "budget_total" => "total",
                "deposit_day" => "deposit-day",
                "deposit_total" => "deposit-total",
                other => other,
            };
            eyre!("--{flag}: {problem}")
        }
        SpecError::Invalid(message) => eyre!("{message}"),
    })
}

/// Refuse to go on when `out` exists (without `force`) or its directory does not: checked
/// before a credential is made, so that none is made only to be lost.
fn check_out(out: &Path, force: bool) -> Result<()> {
    if !force && std::fs::symlink_metadata(out).is_ok() {
        return Err(eyre!(
            "{} exists: choose another --out, or add --force to replace it",
            out.display()
        ));
    }
    let dir = parent_dir(out);
    if !dir.is_dir() {
        return Err(eyre!(
            "cannot write {}: the directory {} does not exist",
            out.display(),
            dir.display()
        ));
    }
    Ok(())
}

/// The directory `path` is in.
fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

/// Write `token` and a newline to `path` with mode 0600, synced: written in full under a
/// temporary name in the same directory first, then moved into place (replacing a file there
/// only with `force`), so that nobody ever reads half a token or a token others can read.
fn write_secret(path: &Path, token: &str, force: bool) -> Result<()> {
    let dir = parent_dir(path);
    let fail = |e: std::io::Error| eyre!("cannot write {}: {e}", path.display());
    let mut file = tempfile::Builder::new()
        .prefix(".farthing-credential")
        .permissions(Permissions::from_mode(0o600))
        .tempfile_in(dir)
        .map_err(fail)?;
    file.write_all(format!("{token}\n").as_bytes())
        .and_then(|()| file.as_file().sync_all())
        .map_err(fail)?;
    let placed = if force {
        file.persist(path)
    } else {
        file.persist_noclobber(path)
    };
    placed.map_err(|e| fail(e.error))?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(fail)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use farthing_credential::Scope;

    use super::*;

    #[test]
    fn durations_read_as_seconds() {
        assert_eq!(parse_duration("90"), Ok(90));
        assert_eq!(parse_duration("30m"), Ok(1_800));
        assert_eq!(parse_duration("1h"), Ok(3_600));
        assert_eq!(parse_duration("2d"), Ok(172_800));
        for bad in ["0", "0h", "", "h", "1w", "-1", "1.5h"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn limits_become_the_nodes_caveats_and_errors_name_the_flag() {
        // The conversion itself is the node's (farthing_rpc::CredentialSpec::caveats, tested
        // there); the CLI maps its flags onto it.
        let limits = Limits {
            max: Some("0.5".into()),
            day: Some("1".into()),
            ..Limits::default()
        };
        let caveats: Vec<String> = caveats_of(&limits.spec(), 6, 1_000)
            .unwrap()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(caveats, ["max<=500000", "budget.day<=1000000"]);
        let bad = |limits: Limits| caveats_of(&limits.spec(), 6, 0).unwrap_err().to_string();
        let e = bad(Limits {
            day: Some("0".into()),
            ..Limits::default()
        });
        assert!(e.contains("--day: ") && e.contains("zero"), "{e}");
        let e = bad(Limits {
            max: Some("0.0000001".into()),
            ..Limits::default()
        });
        assert!(e.starts_with("--max: "), "{e}");
        let e = bad(Limits {
            scopes: Some(vec!["spend".into()]),
            ..Limits::default()
        });
        assert!(e.contains("read, pay, fetch"), "{e}");
    }

    #[test]
    fn a_secret_is_written_private_and_never_over_a_file_unless_forced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.cred");
        write_secret(&path, "fth1_one", false).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "fth1_one\n");
        assert!(
            check_out(&path, false)
                .unwrap_err()
                .to_string()
                .contains("--force")
        );
        assert!(write_secret(&path, "fth1_two", false).is_err());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "fth1_one\n");
        check_out(&path, true).unwrap();
        write_secret(&path, "fth1_two", true).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "fth1_two\n");
        let nowhere = dir.path().join("no/such/dir/x.cred");
        assert!(
            check_out(&nowhere, false)
                .unwrap_err()
                .to_string()
                .contains("does not exist")
        );
        // Nothing left behind under a temporary name.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn derive_notes_what_the_parent_keeps_narrower() {
        let parent = [
            Caveat::Scope(vec![Scope::Pay]),
            Caveat::Max(500_000),
            Caveat::Exp(1_000),
        ];
        let before = Effective::from_chain(&parent, &[]);
        let notes = narrower(
            &before,
            &[
                Caveat::Scope(vec![Scope::Pay, Scope::Channel]),
                Caveat::Max(1_000_000),
                Caveat::Exp(2_000),
            ],
            6,
        );
        assert_eq!(notes.len(), 3, "{notes:?}");
        assert!(notes[0].contains("scope channel"), "{notes:?}");
        assert!(notes[1].contains("0.5"), "{notes:?}");
        assert!(notes[2].contains("1970-01-01T00:16:40Z"), "{notes:?}");
        // Narrower or equal asks need no note.
        let same = [
            Caveat::Max(500_000),
            Caveat::Exp(900),
            Caveat::Scope(vec![Scope::Pay]),
        ];
        assert!(narrower(&before, &same, 6).is_empty());
    }

    #[test]
    fn times_read_as_rfc_3339_and_unix() {
        assert_eq!(time(0), "1970-01-01T00:00:00Z (unix 0)");
        assert_eq!(
            time(1_796_637_600),
            "2026-12-07T10:00:00Z (unix 1796637600)"
        );
    }
}
