//! Secrets: values sealed to this runner's X25519 public key (libsodium sealed boxes:
//! X25519-XSalsa20-Poly1305), stored as `dev.atrun.secret` records on the bundle
//! author's PDS, opened when a bundle runs and handed to it as environment variables.
//!
//! Only this runner can open a value sealed to its key; records are public, values are
//! not. A value that does not open (garbled, or sealed to another key) is an error that
//! names the variable and never shows the value.

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use crypto_box::aead::OsRng;
use crypto_box::{PublicKey, SecretKey};
use serde::{Deserialize, Serialize};

use crate::secret::Secret;

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

    /// Opens the sealed value of variable `name`.
    pub fn open(&self, name: &str, ciphertext: &[u8]) -> Result<Secret, SecretError> {
        let unopenable = || SecretError::Unopenable {
            name: name.to_string(),
        };
        let bytes = self.secret.unseal(ciphertext).map_err(|_| unopenable())?;
        String::from_utf8(bytes)
            .map(Secret::new)
            .map_err(|_| unopenable())
    }
}

/// Seals `value` to the runner whose public key is `public_base64`.
pub fn seal(public_base64: &str, value: &str) -> Result<Vec<u8>, SecretError> {
    let bytes = STANDARD
        .decode(public_base64.trim())
        .map_err(|err| SecretError::PublicKey(err.to_string()))?;
    let public =
        PublicKey::from_slice(&bytes).map_err(|_| SecretError::PublicKey("not 32 bytes".into()))?;
    public
        .seal(&mut OsRng, value.as_bytes())
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

        let sealed = seal(key.public_base64(), "s3cr3t value").expect("seal");
        assert_eq!(
            key.open("API_KEY", &sealed).expect("open").expose(),
            "s3cr3t value"
        );

        let other_home = tempfile::tempdir().expect("tempdir");
        let (other, _) = RunnerKey::load_or_create(other_home.path()).expect("other");
        let err = other.open("API_KEY", &sealed).expect_err("wrong key");
        assert!(err.to_string().contains("API_KEY") && !err.to_string().contains("s3cr3t"));
        let mut garbled = sealed.clone();
        garbled[40] ^= 1;
        assert!(key.open("API_KEY", &garbled).is_err());
        assert!(!format!("{key:?}").contains(&STANDARD.encode(key.secret.to_bytes())));
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
