//! Signing keys from an OpenID Connect issuer: its discovery document (`auth.discovery_url`) names
//! its `jwks_uri`, whose key set is fetched and cached by key id (`kid`).
//!
//! - A token naming a `kid` not in the cache sets off one fetch, unless one was tried within
//!   `auth.jwks_refetch_min` (so a stream of tokens with made-up kids cannot hammer the issuer).
//! - The cache is renewed in the background once it is older than `auth.jwks_refresh`.
//! - While the issuer is down, the cached keys keep working; a failed fetch changes nothing.
//! - Only RS256 (RSA) and ES256 (P-256) signature keys are taken; keys for encryption or of other
//!   kinds are skipped, and a discovery document naming another issuer is refused.

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// How long one fetch (discovery document, then key set) may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// The largest discovery document or key set read.
const MAX_DOCUMENT_BYTES: usize = 256 * 1024;

type KeyMap = HashMap<String, (DecodingKey, Algorithm)>;

/// The issuer's keys, cached.
pub struct JwksSource {
    discovery_url: String,
    issuer: String,
    client: reqwest::Client,
    keys: RwLock<Arc<KeyMap>>,
    fetched_at: RwLock<Option<Instant>>,
    /// Held while fetching; remembers when a fetch was last tried.
    last_try: tokio::sync::Mutex<Option<Instant>>,
    refetch_min: Duration,
    refresh: Duration,
}

impl std::fmt::Debug for JwksSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwksSource")
            .field("discovery_url", &self.discovery_url)
            .field("keys", &self.cached().len())
            .finish_non_exhaustive()
    }
}

impl JwksSource {
    /// Keys of `issuer`, found through its discovery document at `discovery_url`. Nothing is
    /// fetched until a token needs a key.
    pub fn new(
        discovery_url: &str,
        issuer: &str,
        refetch_min: Duration,
        refresh: Duration,
    ) -> Result<Self, String> {
        crate::client::install_crypto();
        let client = reqwest::Client::builder()
            .timeout(FETCH_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|_| "the HTTP client for the issuer could not be built".to_owned())?;
        Ok(Self {
            discovery_url: discovery_url.to_owned(),
            issuer: issuer.to_owned(),
            client,
            keys: RwLock::new(Arc::new(HashMap::new())),
            fetched_at: RwLock::new(None),
            last_try: tokio::sync::Mutex::new(None),
            refetch_min,
            refresh,
        })
    }

    fn cached(&self) -> Arc<KeyMap> {
        self.keys.read().map(|k| Arc::clone(&k)).unwrap_or_default()
    }

    /// The key with this id: from the cache, else after one fetch (rate-limited). A cache older
    /// than the refresh interval is renewed in the background.
    pub async fn key(self: &Arc<Self>, kid: &str) -> Option<(DecodingKey, Algorithm)> {
        let stale = self
            .fetched_at
            .read()
            .ok()
            .and_then(|t| *t)
            .is_some_and(|t| t.elapsed() >= self.refresh);
        if stale {
            let source = Arc::clone(self);
            tokio::spawn(async move { source.refetch().await });
        }
        if let Some(key) = self.cached().get(kid) {
            return Some(key.clone());
        }
        self.refetch().await;
        self.cached().get(kid).cloned()
    }

    /// Fetches the key set again, unless a fetch was tried within `refetch_min` (then the caller
    /// waits for that one and uses what it found). A failed fetch keeps the cached keys.
    pub async fn refetch(&self) {
        let mut last = self.last_try.lock().await;
        if last.is_some_and(|t| t.elapsed() < self.refetch_min) {
            return;
        }
        *last = Some(Instant::now());
        match self.fetch().await {
            Ok(keys) => {
                tracing::info!(keys = keys.len(), "the issuer's signing keys were fetched");
                if let Ok(mut k) = self.keys.write() {
                    *k = Arc::new(keys);
                }
                if let Ok(mut t) = self.fetched_at.write() {
                    *t = Some(Instant::now());
                }
            }
            Err(problem) => {
                tracing::warn!(%problem, "the issuer's signing keys could not be fetched; the cached keys stay in use");
            }
        }
    }

    async fn get_json(&self, url: &str) -> Result<serde_json::Value, String> {
        let response = self
            .client
            .get(url)
            .header("accept", "application/json")
            .send()
            .await
            .map_err(|e| {
                if e.is_timeout() {
                    "the issuer did not answer in time".to_owned()
                } else {
                    "the issuer could not be reached".to_owned()
                }
            })?;
        if !response.status().is_success() {
            return Err(format!(
                "the issuer answered HTTP {}",
                response.status().as_u16()
            ));
        }
        let body = response
            .bytes()
            .await
            .map_err(|_| "the issuer's answer could not be read".to_owned())?;
        if body.len() > MAX_DOCUMENT_BYTES {
            return Err("the issuer's answer is too large".to_owned());
        }
        serde_json::from_slice(&body).map_err(|_| "the issuer's answer is not JSON".to_owned())
    }

    async fn fetch(&self) -> Result<KeyMap, String> {
        let discovery = self.get_json(&self.discovery_url).await?;
        if discovery.get("issuer").and_then(|i| i.as_str()) != Some(self.issuer.as_str()) {
            return Err("the discovery document names another issuer than auth.issuer".to_owned());
        }
        let jwks_uri = discovery
            .get("jwks_uri")
            .and_then(|u| u.as_str())
            .ok_or("the discovery document has no jwks_uri")?
            .to_owned();
        let set = self.get_json(&jwks_uri).await?;
        Ok(parse_key_set(&set))
    }
}

/// The usable keys of a JWK set by `kid`: RS256 and ES256 signature keys with a key id; others
/// (and keys that do not parse) are skipped, so one odd key does not hide the rest.
pub fn parse_key_set(set: &serde_json::Value) -> KeyMap {
    let mut keys = HashMap::new();
    let Some(list) = set.get("keys").and_then(|k| k.as_array()) else {
        return keys;
    };
    for raw in list {
        let Ok(jwk) = serde_json::from_value::<Jwk>(raw.clone()) else {
            continue;
        };
        let Some(kid) = jwk.common.key_id.clone() else {
            continue;
        };
        if matches!(jwk.common.public_key_use, Some(ref u) if *u != PublicKeyUse::Signature) {
            continue;
        }
        let algorithm = match (&jwk.algorithm, jwk.common.key_algorithm) {
            (AlgorithmParameters::RSA(_), None | Some(KeyAlgorithm::RS256)) => Algorithm::RS256,
            (AlgorithmParameters::EllipticCurve(ec), None | Some(KeyAlgorithm::ES256))
                if ec.curve == EllipticCurve::P256 =>
            {
                Algorithm::ES256
            }
            _ => continue,
        };
        if let Ok(key) = DecodingKey::from_jwk(&jwk) {
            keys.insert(kid, (key, algorithm));
        }
    }
    keys
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{Claims, SigningKey, Verifier};
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
    use base64::Engine;
    use landsby_domain::Role;
    use std::sync::Mutex;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const ISSUER: &str = "https://login.example.no/realms/kommune";

    /// A P-256 key with its id: the signing key and its public JWK.
    fn key(kid: &str) -> (SigningKey, serde_json::Value) {
        let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
        let point = pair.public_key().as_ref().to_vec();
        let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
        let jwk = serde_json::json!({
            "kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": kid,
            "x": b64(&point[1..33]), "y": b64(&point[33..65]),
        });
        let private = pem::encode(&pem::Pem::new(
            "PRIVATE KEY",
            pair.to_pkcs8v1().unwrap().as_ref().to_vec(),
        ));
        (
            SigningKey::from_pem(private.as_bytes(), Some(kid.into())).unwrap(),
            jwk,
        )
    }

    fn token(key: &SigningKey) -> String {
        let claims = Claims::new(
            "cw-1",
            "0301",
            &[Role::Caseworker],
            ISSUER,
            "landsby",
            Duration::from_secs(300),
        );
        key.sign(&claims).unwrap()
    }

    struct State {
        keys: Vec<serde_json::Value>,
        up: bool,
        issuer: String,
        key_fetches: usize,
    }

    /// An OpenID Connect issuer on loopback: a discovery document and a key set, over plain HTTP.
    struct Issuer {
        base: String,
        state: Arc<Mutex<State>>,
    }

    impl Issuer {
        async fn start(keys: Vec<serde_json::Value>) -> Self {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let base = format!("http://{}", listener.local_addr().unwrap());
            let state = Arc::new(Mutex::new(State {
                keys,
                up: true,
                issuer: ISSUER.into(),
                key_fetches: 0,
            }));
            let shared = Arc::clone(&state);
            let jwks_uri = format!("{base}/keys");
            tokio::spawn(async move {
                loop {
                    let Ok((mut conn, _)) = listener.accept().await else {
                        return;
                    };
                    let state = Arc::clone(&shared);
                    let jwks_uri = jwks_uri.clone();
                    tokio::spawn(async move {
                        let mut request = Vec::new();
                        let mut buf = [0u8; 1024];
                        while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                            match conn.read(&mut buf).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => request.extend_from_slice(&buf[..n]),
                            }
                        }
                        let line = String::from_utf8_lossy(&request);
                        let path = line.split_whitespace().nth(1).unwrap_or("").to_owned();
                        let (status, body) = {
                            let mut s = state.lock().unwrap();
                            if !s.up {
                                ("503 Service Unavailable", String::new())
                            } else if path == "/.well-known/openid-configuration" {
                                let doc =
                                    serde_json::json!({"issuer": s.issuer, "jwks_uri": jwks_uri});
                                ("200 OK", doc.to_string())
                            } else if path == "/keys" {
                                s.key_fetches += 1;
                                ("200 OK", serde_json::json!({"keys": s.keys}).to_string())
                            } else {
                                ("404 Not Found", String::new())
                            }
                        };
                        let response = format!(
                            "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                            body.len()
                        );
                        let _ = conn.write_all(response.as_bytes()).await;
                    });
                }
            });
            Self { base, state }
        }

        fn verifier(&self, refetch_min: Duration) -> Verifier {
            let source = JwksSource::new(
                &format!("{}/.well-known/openid-configuration", self.base),
                ISSUER,
                refetch_min,
                Duration::from_secs(3600),
            )
            .unwrap();
            Verifier::with_issuer_keys(Arc::new(source), ISSUER, "landsby", Duration::ZERO)
        }

        fn set(&self, f: impl FnOnce(&mut State)) {
            f(&mut self.state.lock().unwrap());
        }

        fn key_fetches(&self) -> usize {
            self.state.lock().unwrap().key_fetches
        }
    }

    #[tokio::test]
    async fn a_rotated_key_is_fetched_once_when_a_token_names_it() {
        let (a, jwk_a) = key("a");
        let (b, jwk_b) = key("b");
        let issuer = Issuer::start(vec![jwk_a]).await;
        let verifier = issuer.verifier(Duration::from_millis(1));
        let remembered = token(&a);
        assert_eq!(verifier.verify(&remembered).await.unwrap().subject, "cw-1");
        assert_eq!(issuer.key_fetches(), 1, "fetched on first use");
        assert!(verifier.verify(&token(&a)).await.is_ok());
        assert!(verifier.verify(&remembered).await.is_ok());
        assert_eq!(issuer.key_fetches(), 1, "then cached");
        // The issuer rotates: b is new, a is retired.
        issuer.set(|s| s.keys = vec![jwk_b]);
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert!(verifier.verify(&token(&b)).await.is_ok());
        assert_eq!(issuer.key_fetches(), 2);
        let err = verifier.verify(&token(&a)).await.unwrap_err();
        assert!(err.to_string().contains("kid"), "{err}");
        // A token verified while its key was the issuer's goes with the key.
        let err = verifier.verify(&remembered).await.unwrap_err();
        assert!(err.to_string().contains("kid"), "{err}");
    }

    #[tokio::test]
    async fn unknown_key_ids_fetch_at_most_once_per_interval() {
        let (a, jwk_a) = key("a");
        let (stranger, _) = key("made-up");
        let issuer = Issuer::start(vec![jwk_a]).await;
        let verifier = issuer.verifier(Duration::from_secs(60));
        assert!(verifier.verify(&token(&a)).await.is_ok());
        for _ in 0..10 {
            let err = verifier.verify(&token(&stranger)).await.unwrap_err();
            assert!(matches!(err, crate::ApiError::Unauthenticated { .. }));
        }
        assert_eq!(issuer.key_fetches(), 1, "no fetch within the interval");
    }

    #[tokio::test]
    async fn cached_keys_keep_working_while_the_issuer_is_down() {
        let (a, jwk_a) = key("a");
        let (b, _) = key("b");
        let issuer = Issuer::start(vec![jwk_a]).await;
        let verifier = issuer.verifier(Duration::from_millis(1));
        assert!(verifier.verify(&token(&a)).await.is_ok());
        issuer.set(|s| s.up = false);
        tokio::time::sleep(Duration::from_millis(5)).await;
        // An unknown kid tries the issuer, which fails; the cache is kept.
        assert!(verifier.verify(&token(&b)).await.is_err());
        assert!(verifier.verify(&token(&a)).await.is_ok());
        // Down from the start: nothing verifies, nothing panics.
        let cold = Issuer::start(vec![]).await;
        cold.set(|s| s.up = false);
        let verifier = cold.verifier(Duration::from_millis(1));
        assert!(verifier.verify(&token(&a)).await.is_err());
    }

    #[tokio::test]
    async fn a_discovery_document_of_another_issuer_gives_no_keys() {
        let (a, jwk_a) = key("a");
        let issuer = Issuer::start(vec![jwk_a]).await;
        issuer.set(|s| s.issuer = "https://evil.example".into());
        let verifier = issuer.verifier(Duration::from_millis(1));
        assert!(verifier.verify(&token(&a)).await.is_err());
        assert_eq!(issuer.key_fetches(), 0);
    }

    #[tokio::test]
    async fn a_token_without_a_kid_or_with_another_algorithm_than_its_key_is_refused() {
        let (a, jwk_a) = key("a");
        let issuer = Issuer::start(vec![jwk_a.clone()]).await;
        let verifier = issuer.verifier(Duration::from_millis(1));
        let (no_kid, _) = key("x");
        let unnamed = {
            let claims = Claims::new(
                "cw-1",
                "0301",
                &[],
                ISSUER,
                "landsby",
                Duration::from_secs(60),
            );
            let mut header = jsonwebtoken::Header::new(Algorithm::ES256);
            header.kid = None;
            let _ = &no_kid;
            let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
            let pem = pem::encode(&pem::Pem::new(
                "PRIVATE KEY",
                pair.to_pkcs8v1().unwrap().as_ref().to_vec(),
            ));
            let key = jsonwebtoken::EncodingKey::from_ec_pem(pem.as_bytes()).unwrap();
            jsonwebtoken::encode(&header, &claims, &key).unwrap()
        };
        let err = verifier.verify(&unnamed).await.unwrap_err();
        assert!(err.to_string().contains("kid"), "{err}");
        // The EC key's id on an RS256 token.
        let forged = {
            let good = token(&a);
            let mut parts = good.split('.');
            let header = serde_json::json!({"alg": "RS256", "typ": "JWT", "kid": "a"});
            let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(header.to_string());
            let _ = parts.next();
            format!("{b64}.{}.{}", parts.next().unwrap(), parts.next().unwrap())
        };
        let err = verifier.verify(&forged).await.unwrap_err();
        assert!(matches!(err, crate::ApiError::Unauthenticated { .. }));
    }

    #[test]
    fn only_rs256_and_es256_signature_keys_with_an_id_are_taken() {
        let (_, good) = key("good");
        let mut enc = good.clone();
        enc["use"] = "enc".into();
        enc["kid"] = "enc".into();
        let mut no_kid = good.clone();
        no_kid.as_object_mut().unwrap().remove("kid");
        let mut p384 = good.clone();
        p384["crv"] = "P-384".into();
        p384["kid"] = "p384".into();
        let hmac = serde_json::json!({"kty": "oct", "kid": "hs", "k": "c2VjcmV0"});
        let junk = serde_json::json!({"kty": "EC", "kid": "junk"});
        let set = serde_json::json!({"keys": [good, enc, no_kid, p384, hmac, junk]});
        let keys = parse_key_set(&set);
        let mut ids: Vec<&String> = keys.keys().collect();
        ids.sort();
        assert_eq!(ids, ["good"]);
        assert!(parse_key_set(&serde_json::json!({"nokeys": 1})).is_empty());
    }
}
