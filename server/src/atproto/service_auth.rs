//! Inbound service auth: a short-lived JWT an account's PDS signs with the account's
//! repo key (`com.atproto.server.getServiceAuth`), bound to our service DID (`aud`) and
//! to one method (`lxm`). Checking it proves who is asking without their password or
//! session ever reaching us. Parsing and signature checks are jacquard's; which key
//! signs comes from the issuer's DID document, resolved by us.

use jacquard_common::service_auth::{self, PublicKey};
use jacquard_common::types::crypto::{self, KeyCodec};

use super::identity::{IdentityResolver, VerificationMethod};
use super::syntax::{self, Did};

/// Longest lifetime accepted for a token (PDSes issue 60 s by default).
const MAX_LIFETIME_SECS: i64 = 3600;
/// How far ahead of our clock a token's issue time may be.
const CLOCK_SKEW_SECS: i64 = 60;

/// Why a token was refused; every message is safe to show to the caller.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ServiceAuthError {
    /// Not a token, or not one for us, or expired.
    #[error("{0}")]
    Invalid(String),
    /// The issuer's identity could not be resolved right now.
    #[error("{0}")]
    Unavailable(String),
}

/// The key of a verification method: a `Multikey` (multicodec-prefixed), or one of the
/// legacy types older PLC directories still serve (the bare SEC1 key, multibase-encoded).
fn public_key(method: &VerificationMethod) -> Option<PublicKey> {
    let multibase = method.public_key_multibase.as_deref()?;
    match method.kind.as_str() {
        "EcdsaSecp256k1VerificationKey2019" => {
            PublicKey::from_k256_bytes(&multibase::decode(multibase).ok()?.1).ok()
        }
        "EcdsaSecp256r1VerificationKey2019" => {
            PublicKey::from_p256_bytes(&multibase::decode(multibase).ok()?.1).ok()
        }
        _ => {
            let key = crypto::PublicKey::decode(multibase).ok()?;
            match key.codec {
                KeyCodec::Secp256k1 => PublicKey::from_k256_bytes(&key.bytes).ok(),
                KeyCodec::P256 => PublicKey::from_p256_bytes(&key.bytes).ok(),
                _ => None,
            }
        }
    }
}

/// Checks `token` for audience `audience` and method `method`; returns the issuer's DID.
pub async fn verify(
    identity: &IdentityResolver,
    token: &str,
    audience: &Did,
    method: &str,
) -> Result<Did, ServiceAuthError> {
    let invalid = |why: &str| ServiceAuthError::Invalid(format!("the service auth token {why}"));
    let parsed = service_auth::parse_jwt(token).map_err(|_| invalid("is not a JWT"))?;
    let claims = parsed.claims();
    if claims.aud.as_str() != audience.as_str() {
        return Err(invalid(&format!("is not for this runner ({audience})")));
    }
    if claims.lxm.as_ref().map(|lxm| lxm.as_str()) != Some(method) {
        return Err(invalid(&format!("is not bound to {method}")));
    }
    check_times(claims.iat, claims.exp, chrono::Utc::now().timestamp()).map_err(invalid)?;
    let issuer = syntax::did(claims.iss.as_str()).map_err(|_| invalid("names no valid DID"))?;
    // A rotated key: the cached document may be stale, so look once more before refusing,
    // but at most once a minute per issuer (anyone can send a bad signature).
    for fresh in [false, true] {
        if fresh && !identity.refresh(&issuer).await {
            break;
        }
        let document = identity.resolve_did(&issuer).await.map_err(|err| {
            ServiceAuthError::Unavailable(format!("cannot resolve {issuer}: {err}"))
        })?;
        let key = document
            .signing_key()
            .and_then(public_key)
            .ok_or_else(|| invalid("comes from an identity without a usable signing key"))?;
        if service_auth::verify_signature(&parsed, &key).is_ok() {
            return Ok(issuer);
        }
    }
    Err(invalid("is not signed by its issuer's key"))
}

/// Whether a token issued at `iat` and expiring at `exp` may be used at `now` (Unix
/// seconds): already issued (give or take the clock skew), not expired, and living at
/// most [`MAX_LIFETIME_SECS`]. Checked before anything is fetched for it.
fn check_times(iat: i64, exp: i64, now: i64) -> Result<(), &'static str> {
    if exp <= now {
        return Err("has expired; ask your PDS for a new one");
    }
    if iat > now.saturating_add(CLOCK_SKEW_SECS) {
        return Err("was issued in the future");
    }
    if exp <= iat {
        return Err("expires before it was issued");
    }
    if exp.saturating_sub(iat) > MAX_LIFETIME_SECS || exp > now.saturating_add(MAX_LIFETIME_SECS) {
        return Err("lives longer than an hour");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_times_are_checked_before_any_lookup() {
        let now = 1_800_000_000;
        assert!(check_times(now - 5, now + 55, now).is_ok());
        assert!(
            check_times(now + 30, now + 90, now).is_ok(),
            "small clock skew"
        );
        for (iat, exp) in [
            (now - 120, now - 60),
            (now + 600, now + 660),
            (now, now),
            (now + 10, now + 5),
            (now - 10, now + 7200),
            (i64::MIN, now + 10),
            (now, i64::MAX),
            (i64::MAX, i64::MAX),
        ] {
            assert!(check_times(iat, exp, now).is_err(), "iat {iat}, exp {exp}");
        }
    }
}
