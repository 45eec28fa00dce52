//! Secrets: values sealed to this runner's X25519 public key (libsodium sealed boxes:
//! X25519-XSalsa20-Poly1305), stored as `dev.atrun.secret` records on the bundle
//! author's PDS, opened when a bundle runs and handed to it as environment variables.
//!
//! Only this runner can open a value sealed to its key; records are public, values are
//! not. Because records are public, a ciphertext can be copied into someone else's
//! repository: a sealed box of the bare value would then open there just as well, and
//! hand one author's secret to another's bundle. So what is sealed is the value *bound
//! to where it belongs* ([`Binding`]): the owner's DID, the bundle, the variable and the
//! runner key, in [`SEALED_PREFIX`] followed by JSON. The runner opens a ciphertext only
//! for the repository, bundle and variable it was sealed for; a copy elsewhere is
//! refused. Nobody but the owner can make a new binding for a value they cannot read.
//!
//! A value that does not open (garbled, sealed to another key, bound elsewhere, or in the
//! old unbound format) is an error that names the variable and never shows the value.

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use crypto_box::aead::OsRng;
use crypto_box::{PublicKey, SecretKey};
use serde::{Deserialize, Serialize};

use crate::atproto::syntax::Did;
use crate::secret::Secret;

/// What a sealed plaintext starts with: the format's name and version, then JSON of
/// [`Sealed`]. Values sealed before binding existed are the bare value.
pub const SEALED_PREFIX: &str = "dev.atrun.secret/2\n";

/// Where a secret belongs: sealed into the ciphertext, compared where it is found.
#[derive(Debug, Clone, Copy)]
pub struct Binding<'a> {
    /// The DID of the repository the record lives in.
    pub owner: &'a Did,
    /// The bundle the secret is for.
    pub bundle: &'a str,
    /// The variable's name.
    pub name: &'a str,
}

/// The sealed plaintext (after [`SEALED_PREFIX`]).
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Sealed {
    owner: String,
    bundle: String,
    name: String,
    runner_key: String,
    value: Secret,
}

/// The file in `ATRUN_HOME` holding the runner's key pair.
pub const KEY_FILE: &str = "runner-key.json";

/// Why a key or a secret could not be used.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The key file could not be read or written.
    #[error("runner key file {path}: {reason}")]
    KeyFile {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// A public key is not 32 bytes of base64.
    #[error("invalid runner public key: {0}")]
    PublicKey(String),
    /// A secret did not open.
    #[error(
        "secret {name} could not be opened: it is garbled or was sealed to another runner's key; set it again with `at-run secrets set`"
    )]
    Unopenable {
        /// The variable's name.
        name: String,
    },
    /// A secret opened, but was sealed for another repository, bundle, variable or runner
    /// (a record copied from elsewhere).
    #[error(
        "secret {name} was sealed for another account, bundle or variable and cannot be used here; its owner must set it with `at-run secrets set`"
    )]
    Misbound {
        /// The variable's name.
        name: String,
    },
    /// A secret in the format before binding: it could be anyone's.
    #[error(
        "secret {name} was set by an older at-run in a format that does not bind it to its bundle; set it again with `at-run secrets set`"
    )]
    OldFormat {
        /// The variable's name.
        name: String,
    },
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct KeyFile {
    public_key: String,
    secret_key: String,
}

/// This runner's key pair.
pub struct RunnerKey {
    secret: SecretKey,
    public: String,
}

impl std::fmt::Debug for RunnerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunnerKey")
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}

impl RunnerKey {
    /// Reads the key pair from `home`, creating it (mode 0600) if there is none.
    /// Returns the key and whether it was created.
    pub fn load_or_create(home: &Path) -> Result<(Self, bool), SecretError> {
        let path = home.join(KEY_FILE);
        let fail = |reason: String| SecretError::KeyFile {
            path: path.display().to_string(),
            reason,
        };
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let file: KeyFile =
                    serde_json::from_str(&text).map_err(|err| fail(err.to_string()))?;
                let bytes = STANDARD
                    .decode(file.secret_key)
                    .map_err(|err| fail(err.to_string()))?;
                let secret = SecretKey::from_slice(&bytes)
                    .map_err(|_| fail("the secret key is not 32 bytes".into()))?;
                Ok((Self::from_secret(secret), false))
            }
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                let key = Self::from_secret(SecretKey::generate(&mut OsRng));
                let file = KeyFile {
                    public_key: key.public.clone(),
                    secret_key: STANDARD.encode(key.secret.to_bytes()),
                };
                let json =
                    serde_json::to_string_pretty(&file).map_err(|err| fail(err.to_string()))?;
                crate::fsutil::write_private(&path, json.as_bytes())
                    .map_err(|err| fail(err.to_string()))?;
                Ok((key, true))
            }
            Err(err) => Err(fail(err.to_string())),
        }
    }

    fn from_secret(secret: SecretKey) -> Self {
        let public = STANDARD.encode(secret.public_key().as_bytes());
        Self { secret, public }
    }

    /// The public key, base64 (what authors seal to).
    pub fn public_base64(&self) -> &str {
        &self.public
    }

    /// Opens a ciphertext found in a record at `found`: its value, if it was sealed to
    /// this runner for exactly that owner, bundle and variable.
    pub fn open(&self, found: Binding<'_>, ciphertext: &[u8]) -> Result<Secret, SecretError> {
        let name = || found.name.to_string();
        let plaintext = self
            .secret
            .unseal(ciphertext)
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .map(Secret::new)
            .ok_or_else(|| SecretError::Unopenable { name: name() })?;
        let Some(json) = plaintext.expose().strip_prefix(SEALED_PREFIX) else {
            return Err(SecretError::OldFormat { name: name() });
        };
        let sealed: Sealed =
            serde_json::from_str(json).map_err(|_| SecretError::Unopenable { name: name() })?;
        let bound_here = sealed.owner == found.owner.as_str()
            && sealed.bundle == found.bundle
            && sealed.name == found.name
            && sealed.runner_key == self.public;
        if !bound_here {
            return Err(SecretError::Misbound { name: name() });
        }
        Ok(sealed.value)
    }
}

/// Seals `value`, bound to `binding`, to the runner whose public key is `public_base64`.
pub fn seal(
    public_base64: &str,
    binding: Binding<'_>,
    value: &str,
) -> Result<Vec<u8>, SecretError> {
    let runner_key = public_base64.trim();
    let bytes = STANDARD
        .decode(runner_key)
        .map_err(|err| SecretError::PublicKey(err.to_string()))?;
    let public =
        PublicKey::from_slice(&bytes).map_err(|_| SecretError::PublicKey("not 32 bytes".into()))?;
    let sealed = Sealed {
        owner: binding.owner.to_string(),
        bundle: binding.bundle.to_string(),
        name: binding.name.to_string(),
        runner_key: runner_key.to_string(),
        value: Secret::new(value.to_string()),
    };
    let json = serde_json::to_string(&sealed)
        .map_err(|_| SecretError::PublicKey("sealing failed".into()))?;
    let plaintext = Secret::new(format!("{SEALED_PREFIX}{json}"));
    public
        .seal(&mut OsRng, plaintext.expose().as_bytes())
        .map_err(|_| SecretError::PublicKey("sealing failed".into()))
}

/// The record key of a secret: one record per bundle, variable and runner, so setting a
/// secret again replaces it.
pub fn record_key(bundle: &str, name: &str, runner_public_base64: &str) -> String {
    let runner = &super::short_digest(runner_public_base64.as_bytes())[..12];
    format!("{bundle}.{name}.{runner}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_with_the_right_key() {
        let home = tempfile::tempdir().expect("tempdir");
        let (key, created) = RunnerKey::load_or_create(home.path()).expect("create");
        assert!(created);
        let (again, created) = RunnerKey::load_or_create(home.path()).expect("load");
        assert!(!created);
        assert_eq!(again.public_base64(), key.public_base64());
        assert_eq!(key.public_base64().len(), 44);

        let owner = crate::atproto::syntax::did("did:plc:alice").expect("did");
        let here = Binding {
            owner: &owner,
            bundle: "my-api",
            name: "API_KEY",
        };
        let sealed = seal(key.public_base64(), here, "s3cr3t value").expect("seal");
        assert_eq!(
            key.open(here, &sealed).expect("open").expose(),
            "s3cr3t value"
        );

        let other_home = tempfile::tempdir().expect("tempdir");
        let (other, _) = RunnerKey::load_or_create(other_home.path()).expect("other");
        let err = other.open(here, &sealed).expect_err("wrong key");
        assert!(err.to_string().contains("API_KEY") && !err.to_string().contains("s3cr3t"));
        let mut garbled = sealed.clone();
        garbled[40] ^= 1;
        assert!(key.open(here, &garbled).is_err());
        assert!(!format!("{key:?}").contains(&STANDARD.encode(key.secret.to_bytes())));
    }

    #[test]
    fn a_copied_ciphertext_opens_nowhere_but_where_it_was_sealed_for() {
        let home = tempfile::tempdir().expect("tempdir");
        let (key, _) = RunnerKey::load_or_create(home.path()).expect("key");
        let (alice, mallory) = (
            crate::atproto::syntax::did("did:plc:alice").expect("did"),
            crate::atproto::syntax::did("did:plc:mallory").expect("did"),
        );
        let here = Binding {
            owner: &alice,
            bundle: "my-api",
            name: "API_KEY",
        };
        let sealed = seal(key.public_base64(), here, "alice's key").expect("seal");
        for elsewhere in [
            Binding {
                owner: &mallory,
                ..here
            },
            Binding {
                bundle: "other-bundle",
                ..here
            },
            Binding {
                name: "OTHER_NAME",
                ..here
            },
        ] {
            let err = key.open(elsewhere, &sealed).expect_err("copied elsewhere");
            assert!(matches!(err, SecretError::Misbound { .. }), "{err}");
            assert!(!err.to_string().contains("alice's key"));
        }
    }

    #[test]
    fn unbound_values_of_the_old_format_are_refused_with_advice() {
        let home = tempfile::tempdir().expect("tempdir");
        let (key, _) = RunnerKey::load_or_create(home.path()).expect("key");
        let public = PublicKey::from_slice(&STANDARD.decode(key.public_base64()).expect("b64"))
            .expect("public key");
        let bare = public.seal(&mut OsRng, b"bare value").expect("seal");
        let owner = crate::atproto::syntax::did("did:plc:alice").expect("did");
        let err = key
            .open(
                Binding {
                    owner: &owner,
                    bundle: "my-api",
                    name: "API_KEY",
                },
                &bare,
            )
            .expect_err("old format");
        assert!(matches!(err, SecretError::OldFormat { .. }), "{err}");
        assert!(err.to_string().contains("at-run secrets set"), "{err}");
        assert!(!err.to_string().contains("bare value"));
    }

    #[test]
    fn record_keys_are_stable_and_valid() {
        let k = record_key(
            "my-api",
            "API_KEY",
            "q83vEjRWeJq83vEjRWeJq83vEjRWeJq83vEjRWeJq80=",
        );
        assert_eq!(
            k,
            record_key(
                "my-api",
                "API_KEY",
                "q83vEjRWeJq83vEjRWeJq83vEjRWeJq83vEjRWeJq80="
            )
        );
        assert!(crate::atproto::syntax::rkey(&k).is_ok(), "{k}");
    }
}
