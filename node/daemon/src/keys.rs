//! The node's key: one secp256k1 key signs both its transactions and its balance proofs.
//!
//! Sources, in the config's `key`:
//! - an Ethereum JSON keystore (scrypt/pbkdf2 + AES), password from a file or from the
//!   `FARTHING_KEY_PASSWORD` environment variable;
//! - a raw key file (64 hex digits, optional `0x`), refused unless only its owner can read it;
//! - a devnet account (`--dev`): account N of the public test mnemonic. Devnets only.
//!
//! No error message here ever contains key material or a password.

use std::path::{Path, PathBuf};

use alloy::signers::local::{MnemonicBuilder, PrivateKeySigner, coins_bip39::English};

use crate::config::KeySource;

/// The public test mnemonic every devnet account derives from (`anvil-config/devnet.env`).
pub const DEVNET_MNEMONIC: &str = "test test test test test test test test test test test junk";

/// Chain ids of local devnets (anvil's, Hardhat's): the only chains a public devnet key may
/// run on.
pub const DEVNET_CHAIN_IDS: [u64; 2] = [31337, 1337];

/// How many accounts of the public test mnemonic count as devnet keys.
const DEVNET_ACCOUNTS: u32 = 20;

/// Whether `address` is one of the public test mnemonic's accounts (a key anyone has).
pub fn is_devnet_key(address: alloy::primitives::Address) -> bool {
    (0..DEVNET_ACCOUNTS).any(|index| {
        load_key(&KeySource::DevAccount(index)).is_ok_and(|key| key.address() == address)
    })
}

/// Environment variable holding the keystore password when no password file is configured.
pub const PASSWORD_ENV: &str = "FARTHING_KEY_PASSWORD";

/// Why the key could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// A key, keystore or password file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The raw key file can be read by other users.
    #[error(
        "key file {path} is readable by group or others (mode {mode:o}): run `chmod 600 {path}` \
         and keep it that way"
    )]
    InsecurePermissions {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The raw key file does not hold a key.
    #[error(
        "key file {0} does not hold a secp256k1 private key (64 hex digits, optionally 0x-prefixed)"
    )]
    Malformed(PathBuf),
    /// The keystore could not be decrypted.
    #[error("cannot decrypt keystore {path}: wrong password or not an Ethereum keystore")]
    Keystore {
        /// The keystore file.
        path: PathBuf,
    },
    /// A keystore was configured but no password given.
    #[error(
        "keystore {0} needs a password: set key.password_file or the FARTHING_KEY_PASSWORD environment variable"
    )]
    NoPassword(PathBuf),
    /// The devnet account index cannot be derived.
    #[error("devnet account {0} cannot be derived from the test mnemonic")]
    DevAccount(u32),
}

/// Load the node's key from `source`.
pub fn load_key(source: &KeySource) -> Result<PrivateKeySigner, KeyError> {
    match source {
        KeySource::Keystore {
            path,
            password_file,
        } => {
            let password = match password_file {
                Some(file) => first_line(&read(file)?),
                None => {
                    std::env::var(PASSWORD_ENV).map_err(|_| KeyError::NoPassword(path.clone()))?
                }
            };
            PrivateKeySigner::decrypt_keystore(path, password)
                .map_err(|_| KeyError::Keystore { path: path.clone() })
        }
        KeySource::RawKeyFile(path) => {
            check_owner_only(path)?;
            let text = read(path)?;
            first_line(&text)
                .trim_start_matches("0x")
                .parse::<PrivateKeySigner>()
                .map_err(|_| KeyError::Malformed(path.clone()))
        }
        KeySource::DevAccount(index) => MnemonicBuilder::<English>::default()
            .phrase(DEVNET_MNEMONIC)
            .index(*index)
            .and_then(|b| b.build())
            .map_err(|_| KeyError::DevAccount(*index)),
    }
}

fn read(path: &Path) -> Result<String, KeyError> {
    std::fs::read_to_string(path).map_err(|source| KeyError::Read {
        path: path.to_owned(),
        source,
    })
}

fn first_line(text: &str) -> String {
    text.lines().next().unwrap_or_default().trim().to_owned()
}

#[cfg(unix)]
fn check_owner_only(path: &Path) -> Result<(), KeyError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)
        .map_err(|source| KeyError::Read {
            path: path.to_owned(),
            source,
        })?
        .permissions()
        .mode()
        & 0o777;
    if mode & 0o077 != 0 {
        return Err(KeyError::InsecurePermissions {
            path: path.to_owned(),
            mode,
        });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_owner_only(_path: &Path) -> Result<(), KeyError> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    const KEY: &str = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d";

    #[test]
    fn dev_account_one_is_the_devnet_alice() {
        let key = load_key(&KeySource::DevAccount(1)).unwrap();
        assert_eq!(
            key.address(),
            KEY.parse::<PrivateKeySigner>().unwrap().address()
        );
    }

    #[test]
    fn raw_key_file_must_be_owner_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key.hex");
        std::fs::write(&path, format!("{KEY}\n")).unwrap();

        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = load_key(&KeySource::RawKeyFile(path.clone())).unwrap_err();
        assert!(
            matches!(err, KeyError::InsecurePermissions { mode: 0o644, .. }),
            "{err}"
        );
        assert!(err.to_string().contains("chmod 600"), "{err}");
        assert!(
            !err.to_string().contains(&KEY[2..]),
            "no key material in errors"
        );

        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let key = load_key(&KeySource::RawKeyFile(path.clone())).unwrap();
        assert_eq!(
            key.address(),
            load_key(&KeySource::DevAccount(1)).unwrap().address()
        );

        std::fs::write(&path, "not a key").unwrap();
        let err = load_key(&KeySource::RawKeyFile(path)).unwrap_err();
        assert!(matches!(err, KeyError::Malformed(_)), "{err}");
    }

    #[test]
    fn keystore_round_trip_and_wrong_password() {
        let dir = tempfile::tempdir().unwrap();
        let key: PrivateKeySigner = KEY.parse().unwrap();
        let mut rng = rand::thread_rng();
        PrivateKeySigner::encrypt_keystore(
            dir.path(),
            &mut rng,
            key.to_bytes(),
            "correct horse",
            Some("node.json"),
        )
        .unwrap();
        let path = dir.path().join("node.json");
        let password_file = dir.path().join("password");

        std::fs::write(&password_file, "correct horse\n").unwrap();
        let source = KeySource::Keystore {
            path: path.clone(),
            password_file: Some(password_file.clone()),
        };
        assert_eq!(load_key(&source).unwrap().address(), key.address());

        std::fs::write(&password_file, "sesame-17\n").unwrap();
        let err = load_key(&source).unwrap_err();
        assert!(matches!(err, KeyError::Keystore { .. }), "{err}");
        assert!(!err.to_string().contains("sesame"), "no password in errors");
    }
}
