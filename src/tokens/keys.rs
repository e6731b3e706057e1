//! Signing keys: generation, encryption at rest, the in-memory key ring and JWKS.
//!
//! Keys are read from the database at start-up and by a background refresh (so a rotation
//! on one replica reaches the others); the request path only reads the in-memory ring.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use actix_web::web::Bytes;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use josekit::jwk::Jwk;
use josekit::jws::{ES256, JwsHeader, JwsSigner, JwsVerifier, RS256};
use serde_json::{Map, Value, json};

pub use super::alg::SigningAlg;
use crate::store::keys::{KeyState, StoredKey};
use crate::store::{Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("signing key {kid}: {problem}")]
    Invalid { kid: String, problem: String },
    #[error("signing key {0} is encrypted but no key-encryption key is configured (set LANYARD_KEY_ENCRYPTION_KEY)")]
    NoKeyEncryptionKey(String),
    #[error("signing key {0} cannot be decrypted: wrong LANYARD_KEY_ENCRYPTION_KEY?")]
    Decrypt(String),
    #[error("key generation failed: {0}")]
    Crypto(String),
    #[error("no active {0} signing key")]
    NoActiveKey(SigningAlg),
}

/// Public facts about one key, for the admin page and CLI.
#[derive(Debug, Clone, serde::Serialize)]
pub struct KeySummary {
    pub kid: String,
    pub alg: SigningAlg,
    pub state: &'static str,
    pub created_at: i64,
    pub retired_at: Option<i64>,
}

/// What a one-step rotation did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Rotation {
    pub alg: SigningAlg,
    /// The new key, now signing.
    pub kid: String,
    /// The key it replaced, now retired but still published; `None` if there was none.
    pub retired: Option<String>,
}

struct ActiveSigner {
    kid: String,
    signer: Box<dyn JwsSigner>,
    /// ES256 signs with the EC key directly: going through an EVP signer would look the
    /// algorithm up again for every token (measurable on the client_credentials hot path).
    ec_key: Option<openssl::ec::EcKey<openssl::pkey::Private>>,
}

/// An immutable snapshot of the key set; replaced whole when keys change.
pub struct KeyRing {
    signers: HashMap<SigningAlg, ActiveSigner>,
    verifiers: HashMap<String, Box<dyn JwsVerifier>>,
    jwks: Bytes,
    summaries: Vec<KeySummary>,
}

impl KeyRing {
    /// Signs `claims` with the active key of `alg`, with the given `typ` header.
    pub fn sign(&self, alg: SigningAlg, typ: &str, claims: &impl serde::Serialize) -> Result<String, KeyError> {
        self.sign_as(alg, typ, None, claims)
    }

    /// As [`KeyRing::sign`], with another `kid` in the header than the signing key's when
    /// `kid` is given: only the test lab's defective tokens (an unknown kid) want that.
    pub fn sign_as(
        &self,
        alg: SigningAlg,
        typ: &str,
        kid: Option<&str>,
        claims: &impl serde::Serialize,
    ) -> Result<String, KeyError> {
        let active = self.signers.get(&alg).ok_or(KeyError::NoActiveKey(alg))?;
        let mut header = JwsHeader::new();
        header.set_token_type(typ);
        header.set_key_id(kid.unwrap_or(&active.kid));
        let payload = serde_json::to_vec(claims).map_err(|e| KeyError::Crypto(e.to_string()))?;
        if let Some(ec_key) = &active.ec_key {
            header.set_algorithm(alg.as_str());
            return sign_es256(ec_key, &header, &payload);
        }
        josekit::jws::serialize_compact(&payload, &header, active.signer.as_ref())
            .map_err(|e| KeyError::Crypto(e.to_string()))
    }

    /// Verifies a compact JWS against the published keys, returning header and payload.
    /// Fails for an unknown `kid`, a mismatched or unsupported `alg` (`none` included).
    pub fn verify(&self, token: &str) -> Result<(JwsHeader, Vec<u8>), String> {
        let (payload, header) = josekit::jws::deserialize_compact_with_selector(token, |header| {
            let kid = header.key_id().ok_or_else(|| josekit::JoseError::InvalidJwsFormat(anyhow::anyhow!("no kid")))?;
            let verifier = self
                .verifiers
                .get(kid)
                .ok_or_else(|| josekit::JoseError::InvalidJwsFormat(anyhow::anyhow!("unknown kid")))?;
            if header.algorithm() != Some(verifier.algorithm().name()) {
                return Err(josekit::JoseError::InvalidJwsFormat(anyhow::anyhow!("alg does not match the key")));
            }
            Ok(Some(verifier.as_ref()))
        })
        .map_err(|e| match e {
            josekit::JoseError::InvalidJwsFormat(inner) => inner.to_string(),
            josekit::JoseError::InvalidSignature(_) => "signature does not verify".to_string(),
            other => other.to_string(),
        })?;
        Ok((header, payload))
    }

    /// The JWKS document, serialized once per key change.
    pub fn jwks(&self) -> Bytes {
        self.jwks.clone()
    }

    pub fn summaries(&self) -> &[KeySummary] {
        &self.summaries
    }

    /// The `kid` that currently signs for `alg`.
    pub fn active_kid(&self, alg: SigningAlg) -> Option<&str> {
        self.signers.get(&alg).map(|s| s.kid.as_str())
    }
}

/// Owns the key ring and keeps it in step with the database.
#[derive(Clone)]
pub struct KeyManager {
    store: Store,
    kek: Option<[u8; 32]>,
    ring: Arc<RwLock<Arc<KeyRing>>>,
}

impl KeyManager {
    /// Makes sure an active RS256 and ES256 key exist (generating them on first start;
    /// concurrent replicas converge on one key per alg) and loads the ring.
    pub async fn start(store: Store, kek: Option<[u8; 32]>) -> Result<Self, KeyError> {
        for alg in SigningAlg::ALL {
            if !store.has_active_key(alg.as_str()).await? {
                let key = generate(alg, KeyState::Active, kek.as_ref())?;
                if store.insert_signing_key(&key).await? {
                    tracing::info!(kid = %key.kid, %alg, "generated signing key");
                }
            }
        }
        let ring = build_ring(&store.signing_keys().await?, kek.as_ref())?;
        Ok(Self { store, kek, ring: Arc::new(RwLock::new(Arc::new(ring))) })
    }

    /// The current ring (a cheap `Arc` clone; never blocks on the database).
    pub fn ring(&self) -> Arc<KeyRing> {
        match self.ring.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Re-reads the keys from the database and swaps the ring if they changed.
    pub async fn reload(&self) -> Result<(), KeyError> {
        let stored = self.store.signing_keys().await?;
        let current = self.ring();
        let unchanged = stored.len() == current.summaries.len()
            && stored.iter().zip(&current.summaries).all(|(s, c)| s.kid == c.kid && s.state.as_str() == c.state);
        if unchanged {
            return Ok(());
        }
        let ring = build_ring(&stored, self.kek.as_ref())?;
        match self.ring.write() {
            Ok(mut guard) => *guard = Arc::new(ring),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(ring),
        }
        Ok(())
    }

    /// Adds a `next` key for `alg`: published in JWKS now, signing once activated.
    pub async fn add_next_key(&self, alg: SigningAlg) -> Result<String, KeyError> {
        let key = generate(alg, KeyState::Next, self.kek.as_ref())?;
        self.store.insert_signing_key(&key).await?;
        self.reload().await?;
        Ok(key.kid)
    }

    /// Lets `kid` (a `next` key) sign, retiring the key it replaces.
    pub async fn activate(&self, kid: &str) -> Result<bool, KeyError> {
        let done = self.store.activate_signing_key(kid).await?;
        self.reload().await?;
        Ok(done)
    }

    /// Rotates `alg` in one step: a new key is generated and activated at once, the key it
    /// replaces retired (still published in JWKS, so tokens it signed keep verifying until
    /// they expire). For automation (the CLI, the admin API, certification's rotation
    /// test); the admin page keeps the two-step rotation that gives verifiers time to fetch
    /// the new key before it signs.
    pub async fn rotate(&self, alg: SigningAlg) -> Result<Rotation, KeyError> {
        self.reload().await?;
        let retired = self.ring().active_kid(alg).map(str::to_owned);
        let kid = self.add_next_key(alg).await?;
        if !self.activate(&kid).await? {
            // Only a concurrent rotation retiring our fresh key could get here.
            return Err(KeyError::Invalid { kid, problem: "was retired before it could be activated".into() });
        }
        Ok(Rotation { alg, kid, retired })
    }

    /// Retires a `next` key without it ever signing.
    pub async fn retire(&self, kid: &str) -> Result<bool, KeyError> {
        let done = self.store.retire_signing_key(kid).await?;
        self.reload().await?;
        Ok(done)
    }
}

fn generate(alg: SigningAlg, state: KeyState, kek: Option<&[u8; 32]>) -> Result<StoredKey, KeyError> {
    let crypto = |e: josekit::JoseError| KeyError::Crypto(e.to_string());
    let (private, public) = match alg {
        SigningAlg::RS256 => {
            let pair = RS256.generate_key_pair(2048).map_err(crypto)?;
            (pair.to_jwk_private_key(), pair.to_jwk_public_key())
        }
        SigningAlg::ES256 => {
            let pair = ES256.generate_key_pair().map_err(crypto)?;
            (pair.to_jwk_private_key(), pair.to_jwk_public_key())
        }
    };
    stored_key(alg, state, &private, &public, kek)
}

/// A private key supplied by the operator (a seed file), as PEM or as a JWK.
#[derive(Debug, Clone)]
pub enum KeyMaterial {
    Pem(String),
    Jwk(String),
}

/// Turns operator-supplied key material into a key to store, checking it fits `alg`
/// (RS256: RSA of at least 2048 bits; ES256: P-256).
pub fn import(alg: SigningAlg, material: &KeyMaterial, kek: Option<&[u8; 32]>) -> Result<StoredKey, KeyError> {
    let invalid =
        |e: josekit::JoseError| KeyError::Invalid { kid: format!("imported {alg} key"), problem: e.to_string() };
    let (private, public) = match (alg, material) {
        (SigningAlg::RS256, KeyMaterial::Pem(pem)) => {
            let pair = RS256.key_pair_from_pem(pem.as_bytes()).map_err(invalid)?;
            (pair.to_jwk_private_key(), pair.to_jwk_public_key())
        }
        (SigningAlg::ES256, KeyMaterial::Pem(pem)) => {
            let pair = ES256.key_pair_from_pem(pem.as_bytes()).map_err(invalid)?;
            (pair.to_jwk_private_key(), pair.to_jwk_public_key())
        }
        (SigningAlg::RS256, KeyMaterial::Jwk(jwk)) => {
            let jwk = Jwk::from_bytes(jwk.as_bytes()).map_err(invalid)?;
            let pair = josekit::jwk::alg::rsa::RsaKeyPair::from_jwk(&jwk).map_err(invalid)?;
            (pair.to_jwk_private_key(), pair.to_jwk_public_key())
        }
        (SigningAlg::ES256, KeyMaterial::Jwk(jwk)) => {
            let jwk = Jwk::from_bytes(jwk.as_bytes()).map_err(invalid)?;
            let pair = josekit::jwk::alg::ec::EcKeyPair::from_jwk(&jwk).map_err(invalid)?;
            (pair.to_jwk_private_key(), pair.to_jwk_public_key())
        }
    };
    if alg == SigningAlg::RS256 {
        use base64::Engine;
        let bits = public
            .parameter("n")
            .and_then(Value::as_str)
            .and_then(|n| URL_SAFE_NO_PAD.decode(n).ok())
            .map_or(0, |n| n.len() * 8);
        if bits < 2048 {
            return Err(KeyError::Invalid {
                kid: "imported RS256 key".into(),
                problem: format!("{bits}-bit RSA: at least 2048 bits"),
            });
        }
    }
    stored_key(alg, KeyState::Active, &private, &public, kek)
}

fn stored_key(
    alg: SigningAlg,
    state: KeyState,
    private: &Jwk,
    public: &Jwk,
    kek: Option<&[u8; 32]>,
) -> Result<StoredKey, KeyError> {
    let kid = thumbprint(public).map_err(|p| KeyError::Crypto(p.to_string()))?;
    let public_jwk = publishable(public, &kid, alg).to_string();
    let private_json = Value::Object(private.as_ref().clone()).to_string();
    let private_jwk = match kek {
        Some(kek) => {
            crate::crypto::seal(kek, &kid, private_json.as_bytes()).map_err(|e| KeyError::Crypto(e.to_string()))?
        }
        None => private_json,
    };
    Ok(StoredKey {
        kid,
        alg: alg.as_str().into(),
        state,
        public_jwk,
        private_jwk,
        created_at: crate::clock::real_now(),
        retired_at: None,
    })
}

/// Makes operator-supplied keys the active ones of their algorithms (before
/// [`KeyManager::start`], which then generates only what is still missing). Idempotent:
/// a key already active is left alone.
pub async fn install_fixed(store: &Store, keys: &[StoredKey]) -> Result<(), KeyError> {
    let existing = store.signing_keys().await?;
    for key in keys {
        if existing.iter().any(|k| k.kid == key.kid && k.state == KeyState::Active) {
            continue;
        }
        store.install_active_key(key).await?;
        tracing::info!(kid = %key.kid, alg = %key.alg, "installed signing key from the seed");
    }
    Ok(())
}

/// A compact ES256 JWS (RFC 7515 §7.1; RFC 7518 §3.4: the signature is R || S, 32 bytes each).
fn sign_es256(
    key: &openssl::ec::EcKey<openssl::pkey::Private>,
    header: &JwsHeader,
    payload: &[u8],
) -> Result<String, KeyError> {
    let crypto = |e: openssl::error::ErrorStack| KeyError::Crypto(e.to_string());
    let mut token = URL_SAFE_NO_PAD.encode(header.to_string());
    token.push('.');
    token.push_str(&URL_SAFE_NO_PAD.encode(payload));
    let digest = openssl::sha::sha256(token.as_bytes());
    let signature = openssl::ecdsa::EcdsaSig::sign(&digest, key).map_err(crypto)?;
    let mut raw = signature.r().to_vec_padded(32).map_err(crypto)?;
    raw.extend(signature.s().to_vec_padded(32).map_err(crypto)?);
    token.push('.');
    token.push_str(&URL_SAFE_NO_PAD.encode(raw));
    Ok(token)
}

/// The P-256 private key of an EC JWK (its `d`).
fn ec_private_key(jwk: &Jwk) -> Result<openssl::ec::EcKey<openssl::pkey::Private>, String> {
    use openssl::bn::{BigNum, BigNumContext};
    let member = |name: &str| -> Result<BigNum, String> {
        let text = jwk.parameter(name).and_then(Value::as_str).ok_or(format!("EC key without {name}"))?;
        let bytes = URL_SAFE_NO_PAD.decode(text).map_err(|e| e.to_string())?;
        BigNum::from_slice(&bytes).map_err(|e| e.to_string())
    };
    let group =
        openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1).map_err(|e| e.to_string())?;
    let mut context = BigNumContext::new().map_err(|e| e.to_string())?;
    let mut point = openssl::ec::EcPoint::new(&group).map_err(|e| e.to_string())?;
    // The public point is d·G (a private JWK may or may not repeat x and y).
    let d = member("d")?;
    point.mul_generator2(&group, &d, &mut context).map_err(|e| e.to_string())?;
    let key = openssl::ec::EcKey::from_private_components(&group, &d, &point).map_err(|e| e.to_string())?;
    key.check_key().map_err(|e| e.to_string())?;
    Ok(key)
}

/// The public JWK as published: public members only, plus `kid`, `alg` and `use`.
fn publishable(public: &Jwk, kid: &str, alg: SigningAlg) -> Value {
    let mut members = Map::new();
    for name in ["kty", "crv", "x", "y", "n", "e"] {
        if let Some(v) = public.parameter(name) {
            members.insert(name.into(), v.clone());
        }
    }
    members.insert("kid".into(), json!(kid));
    members.insert("alg".into(), json!(alg.as_str()));
    members.insert("use".into(), json!("sig"));
    Value::Object(members)
}

/// RFC 7638 JWK thumbprint (SHA-256, base64url): the required members in lexicographic order.
pub fn thumbprint(public: &Jwk) -> Result<String, &'static str> {
    let member = |name: &str| public.parameter(name).and_then(Value::as_str).ok_or("missing JWK member");
    let canonical = match public.key_type() {
        "RSA" => format!(r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#, member("e")?, member("n")?),
        "EC" => format!(r#"{{"crv":"{}","kty":"EC","x":"{}","y":"{}"}}"#, member("crv")?, member("x")?, member("y")?),
        _ => return Err("unsupported key type"),
    };
    Ok(URL_SAFE_NO_PAD.encode(openssl::sha::sha256(canonical.as_bytes())))
}

/// The private JWK as stored: sealed under the KEK (the kid as associated data), or the
/// JSON itself when no KEK is configured.
fn decrypt(kek: Option<&[u8; 32]>, kid: &str, stored: &str) -> Result<Vec<u8>, KeyError> {
    match crate::crypto::open(kek, kid, stored) {
        None => Ok(stored.as_bytes().to_vec()),
        Some(Ok(plaintext)) => Ok(plaintext),
        Some(Err(crate::crypto::SealError::NoKey)) => Err(KeyError::NoKeyEncryptionKey(kid.into())),
        Some(Err(_)) => Err(KeyError::Decrypt(kid.into())),
    }
}

fn build_ring(stored: &[StoredKey], kek: Option<&[u8; 32]>) -> Result<KeyRing, KeyError> {
    let invalid = |kid: &str, problem: String| KeyError::Invalid { kid: kid.into(), problem };
    let mut signers = HashMap::new();
    let mut verifiers: HashMap<String, Box<dyn JwsVerifier>> = HashMap::new();
    let mut published = Vec::new();
    let mut summaries = Vec::new();
    for key in stored {
        let alg: SigningAlg = key.alg.parse().map_err(|e| invalid(&key.kid, e))?;
        let public = Jwk::from_bytes(key.public_jwk.as_bytes()).map_err(|e| invalid(&key.kid, e.to_string()))?;
        let verifier: Box<dyn JwsVerifier> = match alg {
            SigningAlg::RS256 => {
                Box::new(RS256.verifier_from_jwk(&public).map_err(|e| invalid(&key.kid, e.to_string()))?)
            }
            SigningAlg::ES256 => {
                Box::new(ES256.verifier_from_jwk(&public).map_err(|e| invalid(&key.kid, e.to_string()))?)
            }
        };
        if key.state == KeyState::Active {
            let private = Jwk::from_bytes(decrypt(kek, &key.kid, &key.private_jwk)?)
                .map_err(|e| invalid(&key.kid, e.to_string()))?;
            let signer: Box<dyn JwsSigner> = match alg {
                SigningAlg::RS256 => {
                    Box::new(RS256.signer_from_jwk(&private).map_err(|e| invalid(&key.kid, e.to_string()))?)
                }
                SigningAlg::ES256 => {
                    Box::new(ES256.signer_from_jwk(&private).map_err(|e| invalid(&key.kid, e.to_string()))?)
                }
            };
            let ec_key = match alg {
                SigningAlg::ES256 => Some(ec_private_key(&private).map_err(|e| invalid(&key.kid, e))?),
                SigningAlg::RS256 => None,
            };
            signers.insert(alg, ActiveSigner { kid: key.kid.clone(), signer, ec_key });
        }
        published.push(publishable(&public, &key.kid, alg));
        verifiers.insert(key.kid.clone(), verifier);
        summaries.push(KeySummary {
            kid: key.kid.clone(),
            alg,
            state: key.state.as_str(),
            created_at: key.created_at,
            retired_at: key.retired_at,
        });
    }
    let jwks = Bytes::from(json!({ "keys": published }).to_string());
    Ok(KeyRing { signers, verifiers, jwks, summaries })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7638_example_thumbprint() {
        // RFC 7638 §3.1.
        let jwk = Jwk::from_bytes(
            br#"{"kty":"RSA","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw","e":"AQAB","alg":"RS256","kid":"2011-04-29"}"#,
        )
        .unwrap();
        assert_eq!(thumbprint(&jwk).unwrap(), "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
    }

    #[test]
    fn private_keys_are_sealed_under_the_kek_with_their_kid() {
        let kek = [7u8; 32];
        let key = generate(SigningAlg::ES256, KeyState::Active, Some(&kek)).unwrap();
        assert!(key.private_jwk.starts_with(crate::crypto::SEALED_PREFIX));
        assert!(decrypt(Some(&kek), &key.kid, &key.private_jwk).is_ok());
        assert!(matches!(decrypt(Some(&[8u8; 32]), &key.kid, &key.private_jwk), Err(KeyError::Decrypt(_))));
        assert!(matches!(decrypt(None, &key.kid, &key.private_jwk), Err(KeyError::NoKeyEncryptionKey(_))));
        assert!(build_ring(&[key], Some(&kek)).is_ok());
    }

    #[test]
    fn generated_keys_sign_and_verify_and_publish_no_private_members() {
        let stored: Vec<StoredKey> =
            SigningAlg::ALL.iter().map(|alg| generate(*alg, KeyState::Active, None).unwrap()).collect();
        let ring = build_ring(&stored, None).unwrap();
        for alg in SigningAlg::ALL {
            let token = ring.sign(alg, "JWT", &json!({"sub": "x"})).unwrap();
            let (header, payload) = ring.verify(&token).unwrap();
            assert_eq!(header.algorithm(), Some(alg.as_str()));
            assert_eq!(payload, br#"{"sub":"x"}"#);
        }
        let jwks: Value = serde_json::from_slice(&ring.jwks()).unwrap();
        for key in jwks["keys"].as_array().unwrap() {
            for private in ["d", "p", "q", "dp", "dq", "qi"] {
                assert!(key.get(private).is_none(), "{private} published");
            }
        }
    }

    #[test]
    fn unsigned_and_tampered_tokens_are_refused() {
        let stored = vec![generate(SigningAlg::ES256, KeyState::Active, None).unwrap()];
        let ring = build_ring(&stored, None).unwrap();
        let token = ring.sign(SigningAlg::ES256, "JWT", &json!({"sub": "x"})).unwrap();
        let parts: Vec<&str> = token.split('.').collect();
        let forged_payload = URL_SAFE_NO_PAD.encode(br#"{"sub":"y"}"#);
        assert!(ring.verify(&format!("{}.{}.{}", parts[0], forged_payload, parts[2])).is_err());
        let none_header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","kid":"x"}"#);
        assert!(ring.verify(&format!("{none_header}.{}.", parts[1])).is_err());
    }
}
