//! Authentication: every call (health and reflection excepted) carries a bearer JWT with `sub`,
//! `agency` (a municipality number) and `roles`. Outside dev mode the token must be signed by one of
//! the issuer's keys (RS256 or ES256: from its OpenID Connect discovery document and key set, see
//! [`crate::jwks`], or from configured key files) and carry the configured issuer and audience, with
//! `exp`, `nbf`, `sub`, `iss` and `aud` present. An ID token is not an access token and is refused.
//! In dev mode a P-256 key generated in the data directory signs and verifies, and `landsby token`
//! mints with it.
//!
//! Authorization (which roles may call which RPC) is each service's table; [`Caller::require`] is the
//! one check they all use.

use crate::config::{Config, ConfigError};
use crate::error::ApiError;
use crate::jwks::JwksSource;
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use landsby_domain::{AgencyId, Role};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// The issuer of dev-mode tokens.
pub const DEV_ISSUER: &str = "landsby-dev";
/// The file in the data directory that holds the dev signing key.
pub const DEV_KEY_FILE: &str = "dev-signing-key.pem";
/// The most teams a token may name.
const MAX_TEAMS: usize = 64;
/// The longest token accepted, in bytes.
const MAX_TOKEN_BYTES: usize = 8 * 1024;
/// The most verified tokens remembered; past this, the expired ones are dropped, and if that is
/// not enough, all of them.
const REMEMBERED_TOKENS: usize = 4096;

/// Who is calling: established from a verified token, put in the request's extensions by the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The token's `sub`: a staff member or a service.
    pub subject: String,
    /// The agency the caller acts for.
    pub agency: AgencyId,
    /// The roles the token grants that landsby knows; unknown roles are ignored.
    pub roles: Vec<Role>,
    /// The teams the caller belongs to (the `teams` claim): a team lead works the cases of these.
    pub teams: Vec<String>,
}

impl Caller {
    /// Whether the caller has one of `allowed`.
    pub fn has_any(&self, allowed: &[Role]) -> bool {
        self.roles.iter().any(|r| allowed.contains(r))
    }

    /// The caller as need to know sees them.
    pub fn viewer(&self) -> landsby_domain::access::Viewer<'_> {
        landsby_domain::access::Viewer {
            subject: &self.subject,
            roles: &self.roles,
            teams: &self.teams,
        }
    }

    /// PERMISSION_DENIED unless the caller has one of `allowed`.
    pub fn require(&self, allowed: &[Role]) -> Result<(), ApiError> {
        if self.has_any(allowed) {
            Ok(())
        } else {
            let names: Vec<&str> = allowed.iter().map(|r| r.as_str()).collect();
            Err(ApiError::PermissionDenied {
                reason: format!("this call needs one of the roles: {}", names.join(", ")),
            })
        }
    }
}

/// The claims of a landsby access token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// Subject.
    pub sub: String,
    /// The agency's municipality number.
    pub agency: String,
    /// Role names.
    pub roles: Vec<String>,
    /// The teams the subject belongs to (optional; see `docs/security.md`, need to know).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub teams: Vec<String>,
    /// Issuer.
    pub iss: String,
    /// Audience: one, or several (as some identity providers send it).
    pub aud: Audience,
    /// Expiry, seconds since the epoch.
    pub exp: u64,
    /// Issued at, seconds since the epoch (optional).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
    /// Not before, seconds since the epoch. Required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
    /// What marks an ID token (OpenID Connect Core: `nonce`, `at_hash`, `c_hash`; Keycloak's `typ`
    /// "ID"; Cognito's `token_use` "id"). Never set by landsby.
    #[serde(default, flatten)]
    pub id_token_marks: IdTokenMarks,
}

/// The claims that tell an ID token from an access token.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct IdTokenMarks {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    nonce: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    at_hash: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    c_hash: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    typ: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    token_use: Option<serde_json::Value>,
}

impl IdTokenMarks {
    /// Whether the token is an ID token.
    fn is_id_token(&self) -> bool {
        let says = |v: &Option<serde_json::Value>, word: &str| {
            v.as_ref()
                .and_then(|v| v.as_str())
                .is_some_and(|s| s.eq_ignore_ascii_case(word))
        };
        self.nonce.is_some()
            || self.at_hash.is_some()
            || self.c_hash.is_some()
            || says(&self.typ, "ID")
            || says(&self.token_use, "id")
    }
}

impl Claims {
    /// Claims for a token valid for `ttl` from now.
    pub fn new(
        subject: &str,
        agency: &str,
        roles: &[Role],
        issuer: &str,
        audience: &str,
        ttl: Duration,
    ) -> Self {
        let now = jsonwebtoken::get_current_timestamp();
        Self {
            sub: subject.to_owned(),
            agency: agency.to_owned(),
            roles: roles.iter().map(|r| r.as_str().to_owned()).collect(),
            teams: Vec::new(),
            iss: issuer.to_owned(),
            aud: Audience::One(audience.to_owned()),
            exp: now + ttl.as_secs(),
            iat: Some(now),
            nbf: Some(now),
            id_token_marks: IdTokenMarks::default(),
        }
    }
}

/// The `aud` claim: a string or an array of strings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    /// One audience.
    One(String),
    /// Several audiences.
    Many(Vec<String>),
}

/// A key that signs tokens (dev mode and tests).
pub struct SigningKey {
    key: EncodingKey,
    algorithm: Algorithm,
    kid: Option<String>,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey({:?}, <redacted>)", self.algorithm)
    }
}

impl SigningKey {
    /// A key from a PKCS#8 PEM private key: P-256 signs ES256, RSA signs RS256.
    pub fn from_pem(pem: &[u8], kid: Option<String>) -> Result<Self, String> {
        if let Ok(key) = EncodingKey::from_ec_pem(pem) {
            return Ok(Self {
                key,
                algorithm: Algorithm::ES256,
                kid,
            });
        }
        EncodingKey::from_rsa_pem(pem)
            .map(|key| Self {
                key,
                algorithm: Algorithm::RS256,
                kid,
            })
            .map_err(|_| "not a PKCS#8 P-256 or RSA private key".to_owned())
    }

    /// Signs `claims`.
    pub fn sign(&self, claims: &Claims) -> Result<String, String> {
        let mut header = Header::new(self.algorithm);
        header.kid.clone_from(&self.kid);
        jsonwebtoken::encode(&header, claims, &self.key).map_err(|e| e.to_string())
    }
}

/// A newly generated P-256 key pair, PEM-encoded: the private key (PKCS#8) and the public key (SPKI).
pub fn generate_p256_pem() -> Result<(String, String), String> {
    let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)
        .map_err(|_| "key generation failed".to_owned())?;
    let private = pair
        .to_pkcs8v1()
        .map_err(|_| "key export failed".to_owned())?;
    let public = pair
        .public_key()
        .as_der()
        .map_err(|_| "key export failed".to_owned())?;
    Ok((
        pem::encode(&pem::Pem::new("PRIVATE KEY", private.as_ref().to_vec())),
        pem::encode(&pem::Pem::new("PUBLIC KEY", public.as_ref().to_vec())),
    ))
}

/// The dev signing key of a data directory: read it, or create it the first time.
pub fn dev_signing_key(data_dir: &Path) -> Result<(SigningKey, DecodingKey), ConfigError> {
    let invalid = |problem: String| ConfigError::Invalid {
        setting: "data_dir",
        problem,
    };
    let path = data_dir.join(DEV_KEY_FILE);
    let pem = match std::fs::read(&path) {
        Ok(pem) => pem,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => create_dev_key(&path)
            .map_err(|e| invalid(format!("cannot create {}: {e}", path.display())))?,
        Err(e) => return Err(invalid(format!("cannot read {}: {e}", path.display()))),
    };
    let parsed = pem::parse(&pem).map_err(|_| invalid(format!("{} is not PEM", path.display())))?;
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, parsed.contents())
        .map_err(|_| invalid(format!("{} is not a P-256 PKCS#8 key", path.display())))?;
    let decoding = DecodingKey::from_ec_der(pair.public_key().as_ref());
    let signing = SigningKey::from_pem(&pem, Some("landsby-dev".into())).map_err(invalid)?;
    Ok((signing, decoding))
}

/// Writes a new key where no file is; if another process wins the race, its key is used. The key
/// is written whole to a file of this process's own and then linked into place (which fails if the
/// name is taken), so another process never reads a half-written key.
fn create_dev_key(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Write;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let (private, _) = generate_p256_pem().map_err(std::io::Error::other)?;
    let thread = format!("{:?}", std::thread::current().id());
    let thread: String = thread.chars().filter(char::is_ascii_digit).collect();
    let staged = path.with_extension(format!("new.{}.{thread}", std::process::id()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let written = options.open(&staged).and_then(|mut file| {
        file.write_all(private.as_bytes())?;
        file.sync_all()
    });
    let linked = written.and_then(|()| std::fs::hard_link(&staged, path));
    let _ = std::fs::remove_file(&staged);
    match linked {
        Ok(()) => Ok(private.into_bytes()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => std::fs::read(path),
        Err(e) => Err(e),
    }
}

/// Where the keys that verify tokens come from.
enum Keys {
    /// Configured key files, or the dev key.
    Fixed(Vec<(DecodingKey, Algorithm)>),
    /// The issuer's key set, by key id.
    Issuer(Arc<JwksSource>),
}

/// A token verified before: the caller it proves, until when, and the key that signed it.
struct Verified {
    caller: Caller,
    /// The token's `exp` plus the leeway, seconds since the epoch: it is refused after this.
    until: u64,
    /// The issuer's key id, checked again on every use: a key the issuer withdrew takes its tokens
    /// with it.
    kid: Option<String>,
}

/// Verifies tokens. A token that verified is remembered, by its SHA-256, for its lifetime: a
/// platform calls with the same token many times, and checking a P-256 signature costs more than
/// the rest of a read (docs/performance.md). Refusals are not remembered.
pub struct Verifier {
    keys: Keys,
    issuer: String,
    audience: String,
    leeway: Duration,
    verified: std::sync::Mutex<HashMap<[u8; 32], Verified>>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let keys = match &self.keys {
            Keys::Fixed(keys) => format!("{} fixed", keys.len()),
            Keys::Issuer(source) => format!("{source:?}"),
        };
        f.debug_struct("Verifier")
            .field("keys", &keys)
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .finish()
    }
}

impl Verifier {
    /// A verifier for tokens from `issuer` for `audience`, signed by one of `keys`.
    pub fn new(
        keys: Vec<(DecodingKey, Algorithm)>,
        issuer: &str,
        audience: &str,
        leeway: Duration,
    ) -> Self {
        Self {
            keys: Keys::Fixed(keys),
            issuer: issuer.into(),
            audience: audience.into(),
            leeway,
            verified: std::sync::Mutex::default(),
        }
    }

    /// A verifier for tokens from `issuer` for `audience`, signed by one of the issuer's keys.
    pub fn with_issuer_keys(
        source: Arc<JwksSource>,
        issuer: &str,
        audience: &str,
        leeway: Duration,
    ) -> Self {
        Self {
            keys: Keys::Issuer(source),
            issuer: issuer.into(),
            audience: audience.into(),
            leeway,
            verified: std::sync::Mutex::default(),
        }
    }

    /// The verifier the configuration asks for: the dev key in dev mode, else the key files.
    pub fn from_config(config: &Config) -> Result<Self, ConfigError> {
        if config.dev_mode {
            let (_, key) = dev_signing_key(&config.data_dir)?;
            return Ok(Self::new(
                vec![(key, Algorithm::ES256)],
                DEV_ISSUER,
                &config.auth.audience,
                config.auth.leeway,
            ));
        }
        let invalid = |setting, problem: &str| ConfigError::Invalid {
            setting,
            problem: problem.into(),
        };
        if config.auth.issuer.trim().is_empty() {
            return Err(invalid(
                "auth.issuer",
                "required outside dev mode (set LANDSBY_AUTH__ISSUER, or LANDSBY_DEV_MODE=true on a laptop)",
            ));
        }
        let discovery = config.auth.discovery_url.trim();
        if !discovery.is_empty() {
            let source = JwksSource::new(
                discovery,
                &config.auth.issuer,
                config.auth.jwks_refetch_min,
                config.auth.jwks_refresh,
            )
            .map_err(|problem| ConfigError::Invalid {
                setting: "auth.discovery_url",
                problem,
            })?;
            return Ok(Self::with_issuer_keys(
                Arc::new(source),
                &config.auth.issuer,
                &config.auth.audience,
                config.auth.leeway,
            ));
        }
        if config.auth.public_key_files.is_empty() {
            return Err(invalid(
                "auth.discovery_url",
                "required outside dev mode, or auth.public_key_files (set LANDSBY_AUTH__DISCOVERY_URL=https://…/.well-known/openid-configuration)",
            ));
        }
        let keys = config
            .auth
            .public_key_files
            .iter()
            .map(load_public_key)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self::new(
            keys,
            &config.auth.issuer,
            &config.auth.audience,
            config.auth.leeway,
        ))
    }

    /// The caller a token proves, or why not.
    pub async fn verify(&self, token: &str) -> Result<Caller, ApiError> {
        let unauthenticated = |reason| ApiError::Unauthenticated { reason };
        if token.len() > MAX_TOKEN_BYTES {
            return Err(unauthenticated("the token is too long"));
        }
        let digest = token_digest(token);
        if let Some(caller) = self.remembered(&digest).await {
            return Ok(caller);
        }
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| unauthenticated("the token is not a JWT"))?;
        if !matches!(header.alg, Algorithm::ES256 | Algorithm::RS256) {
            return Err(unauthenticated(
                "the token's algorithm is not accepted (RS256, ES256)",
            ));
        }
        // An access token is typed JWT or at+jwt (RFC 9068), or not typed.
        if header.typ.as_deref().is_some_and(|t| {
            !["jwt", "at+jwt", "application/at+jwt"]
                .iter()
                .any(|ok| t.eq_ignore_ascii_case(ok))
        }) {
            return Err(unauthenticated("the token is not an access token"));
        }
        let candidates: Vec<(DecodingKey, Algorithm)> = match &self.keys {
            Keys::Fixed(keys) => keys
                .iter()
                .filter(|(_, alg)| *alg == header.alg)
                .cloned()
                .collect(),
            Keys::Issuer(source) => {
                let kid = header
                    .kid
                    .as_deref()
                    .ok_or(unauthenticated("the token names no key (kid)"))?;
                match source.key(kid).await {
                    Some((key, alg)) if alg == header.alg => vec![(key, alg)],
                    Some(_) => {
                        return Err(unauthenticated(
                            "the token's algorithm is not its key's algorithm",
                        ));
                    }
                    None => {
                        return Err(unauthenticated("the token's key (kid) is not the issuer's"));
                    }
                }
            }
        };
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        validation.set_required_spec_claims(&["exp", "nbf", "sub", "iss", "aud"]);
        validation.validate_nbf = true;
        validation.leeway = self.leeway.as_secs();

        let mut last = unauthenticated("no key can verify the token");
        for (key, _) in &candidates {
            match jsonwebtoken::decode::<Claims>(token, key, &validation) {
                Ok(data) => {
                    let until = data.claims.exp.saturating_add(self.leeway.as_secs());
                    let caller = caller_from(data.claims)?;
                    self.remember(digest, caller.clone(), until, header.kid.clone());
                    return Ok(caller);
                }
                Err(e) => {
                    last = unauthenticated(match e.kind() {
                        ErrorKind::InvalidSignature => "no key can verify the token",
                        ErrorKind::ExpiredSignature => "the token has expired",
                        ErrorKind::ImmatureSignature => "the token is not valid yet",
                        ErrorKind::InvalidIssuer => "the token's issuer is not accepted",
                        ErrorKind::InvalidAudience => "the token's audience is not accepted",
                        ErrorKind::MissingRequiredClaim(_) => "the token lacks a required claim",
                        _ => "the token is not valid",
                    });
                    if !matches!(e.kind(), ErrorKind::InvalidSignature) {
                        // The signature was good: the verdict cannot change with another key.
                        break;
                    }
                }
            }
        }
        Err(last)
    }

    /// The caller a token verified before proves, while it is unexpired and (from an issuer's key
    /// set) its key is still the issuer's.
    async fn remembered(&self, digest: &[u8; 32]) -> Option<Caller> {
        let now = jsonwebtoken::get_current_timestamp();
        let (caller, kid) = {
            let mut verified = self.verified.lock().ok()?;
            let hit = verified.get(digest)?;
            if now > hit.until {
                verified.remove(digest);
                return None;
            }
            (hit.caller.clone(), hit.kid.clone())
        };
        if let (Keys::Issuer(source), Some(kid)) = (&self.keys, kid)
            && source.key(&kid).await.is_none()
        {
            if let Ok(mut verified) = self.verified.lock() {
                verified.remove(digest);
            }
            return None;
        }
        Some(caller)
    }

    fn remember(&self, digest: [u8; 32], caller: Caller, until: u64, kid: Option<String>) {
        let Ok(mut verified) = self.verified.lock() else {
            return;
        };
        if verified.len() >= REMEMBERED_TOKENS {
            let now = jsonwebtoken::get_current_timestamp();
            verified.retain(|_, v| v.until >= now);
            if verified.len() >= REMEMBERED_TOKENS {
                verified.clear();
            }
        }
        verified.insert(digest, Verified { caller, until, kid });
    }

    /// The caller proven by the `authorization: Bearer …` header.
    pub async fn authenticate(&self, headers: &http::HeaderMap) -> Result<Caller, ApiError> {
        let value = headers
            .get(http::header::AUTHORIZATION)
            .ok_or(ApiError::Unauthenticated {
                reason: "a bearer token is required",
            })?;
        let value = value.to_str().map_err(|_| ApiError::Unauthenticated {
            reason: "the authorization header is malformed",
        })?;
        let token = value
            .split_once(' ')
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim())
            .ok_or(ApiError::Unauthenticated {
                reason: "the authorization header must be `Bearer <token>`",
            })?;
        self.verify(token).await
    }
}

/// The key a verified token is remembered by: its SHA-256, so that the tokens themselves are not
/// kept.
fn token_digest(token: &str) -> [u8; 32] {
    let mut digest = [0u8; 32];
    digest.copy_from_slice(
        aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes()).as_ref(),
    );
    digest
}

fn caller_from(claims: Claims) -> Result<Caller, ApiError> {
    if claims.id_token_marks.is_id_token() {
        return Err(ApiError::Unauthenticated {
            reason: "an ID token is not an access token",
        });
    }
    let subject = claims.sub.trim();
    if subject.is_empty() || subject.len() > 256 || subject.chars().any(char::is_control) {
        return Err(ApiError::Unauthenticated {
            reason: "the token's subject is empty, too long or has control characters",
        });
    }
    let agency = AgencyId::parse(&claims.agency).ok_or(ApiError::Unauthenticated {
        reason: "the token's agency claim is not a 4-digit municipality number",
    })?;
    let mut roles: Vec<Role> = claims.roles.iter().filter_map(|r| Role::parse(r)).collect();
    roles.sort();
    roles.dedup();
    let well_formed =
        |t: &String| !t.is_empty() && t.len() <= 64 && !t.chars().any(char::is_control);
    if claims.teams.len() > MAX_TEAMS || !claims.teams.iter().all(well_formed) {
        return Err(ApiError::Unauthenticated {
            reason: "the token's teams claim has too many teams, or an empty, long or unprintable one",
        });
    }
    let mut teams = claims.teams;
    teams.sort();
    teams.dedup();
    Ok(Caller {
        subject: subject.to_owned(),
        agency,
        roles,
        teams,
    })
}

fn load_public_key(path: &PathBuf) -> Result<(DecodingKey, Algorithm), ConfigError> {
    let invalid = |problem: String| ConfigError::Invalid {
        setting: "auth.public_key_files",
        problem,
    };
    let pem =
        std::fs::read(path).map_err(|e| invalid(format!("cannot read {}: {e}", path.display())))?;
    if let Ok(key) = DecodingKey::from_ec_pem(&pem) {
        return Ok((key, Algorithm::ES256));
    }
    DecodingKey::from_rsa_pem(&pem)
        .map(|key| (key, Algorithm::RS256))
        .map_err(|_| {
            invalid(format!(
                "{} is not an RSA or P-256 public key in PEM",
                path.display()
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> (SigningKey, Verifier) {
        let (private, public) = generate_p256_pem().unwrap();
        let signing = SigningKey::from_pem(private.as_bytes(), None).unwrap();
        let decoding = DecodingKey::from_ec_pem(public.as_bytes()).unwrap();
        let verifier = Verifier::new(
            vec![(decoding, Algorithm::ES256)],
            "iss",
            "aud",
            Duration::from_secs(0),
        );
        (signing, verifier)
    }

    fn claims() -> Claims {
        Claims::new(
            "cw-1",
            "0301",
            &[Role::Caseworker],
            "iss",
            "aud",
            Duration::from_secs(60),
        )
    }

    #[tokio::test]
    async fn a_good_token_gives_the_caller() {
        let (signing, verifier) = keys();
        let caller = verifier
            .verify(&signing.sign(&claims()).unwrap())
            .await
            .unwrap();
        assert_eq!(caller.subject, "cw-1");
        assert_eq!(caller.agency.as_str(), "0301");
        assert_eq!(caller.roles, vec![Role::Caseworker]);
    }

    #[tokio::test]
    async fn a_remembered_token_is_refused_once_it_expires() {
        let (signing, verifier) = keys();
        let mut short = claims();
        short.exp = jsonwebtoken::get_current_timestamp() + 1;
        let token = signing.sign(&short).unwrap();
        assert!(verifier.verify(&token).await.is_ok());
        assert!(verifier.verify(&token).await.is_ok(), "remembered");
        assert_eq!(verifier.verified.lock().unwrap().len(), 1);
        while jsonwebtoken::get_current_timestamp() <= short.exp {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let err = verifier.verify(&token).await.unwrap_err();
        assert!(err.to_string().contains("expired"), "{err}");
        assert!(verifier.verified.lock().unwrap().is_empty(), "forgotten");
    }

    #[tokio::test]
    async fn refused_tokens_are_not_remembered_and_the_memory_is_bounded() {
        let (signing, verifier) = keys();
        let (other, _) = keys();
        assert!(
            verifier
                .verify(&other.sign(&claims()).unwrap())
                .await
                .is_err()
        );
        assert!(verifier.verified.lock().unwrap().is_empty());
        for _ in 0..REMEMBERED_TOKENS + 3 {
            assert!(
                verifier
                    .verify(&signing.sign(&claims()).unwrap())
                    .await
                    .is_ok()
            );
        }
        assert!(verifier.verified.lock().unwrap().len() <= REMEMBERED_TOKENS);
    }

    #[tokio::test]
    async fn expired_wrong_issuer_wrong_audience_and_foreign_keys_are_refused() {
        let (signing, verifier) = keys();
        let mut expired = claims();
        expired.exp = jsonwebtoken::get_current_timestamp() - 10;
        let mut wrong_iss = claims();
        wrong_iss.iss = "other".into();
        let mut wrong_aud = claims();
        wrong_aud.aud = Audience::One("other".into());
        for (c, why) in [
            (expired, "expired"),
            (wrong_iss, "issuer"),
            (wrong_aud, "audience"),
        ] {
            let err = verifier
                .verify(&signing.sign(&c).unwrap())
                .await
                .unwrap_err();
            assert!(err.to_string().contains(why), "{err}");
        }
        let (other, _) = keys();
        let err = verifier
            .verify(&other.sign(&claims()).unwrap())
            .await
            .unwrap_err();
        assert!(matches!(err, ApiError::Unauthenticated { .. }));
    }

    #[tokio::test]
    async fn an_audience_list_that_names_us_is_accepted_and_iat_is_optional() {
        let (signing, verifier) = keys();
        let mut c = claims();
        c.aud = Audience::Many(vec!["account".into(), "aud".into()]);
        c.iat = None;
        assert!(verifier.verify(&signing.sign(&c).unwrap()).await.is_ok());
        c.aud = Audience::Many(vec!["account".into()]);
        assert!(verifier.verify(&signing.sign(&c).unwrap()).await.is_err());
    }

    #[tokio::test]
    async fn a_subject_with_control_characters_is_refused() {
        let (signing, verifier) = keys();
        let mut c = claims();
        c.sub = "cw\u{0}1".into();
        assert!(verifier.verify(&signing.sign(&c).unwrap()).await.is_err());
    }

    #[tokio::test]
    async fn a_bad_agency_claim_is_refused_and_unknown_roles_are_ignored() {
        let (signing, verifier) = keys();
        let mut c = claims();
        c.agency = "301".into();
        assert!(verifier.verify(&signing.sign(&c).unwrap()).await.is_err());
        let mut c = claims();
        c.roles = vec!["wizard".into(), "team_lead".into()];
        let caller = verifier.verify(&signing.sign(&c).unwrap()).await.unwrap();
        assert_eq!(caller.roles, vec![Role::TeamLead]);
    }

    #[tokio::test]
    async fn an_id_token_or_a_token_without_nbf_is_not_an_access_token() {
        let (signing, verifier) = keys();
        for marks in [
            serde_json::json!({"nonce": "n-0S6_WzA2Mj"}),
            serde_json::json!({"at_hash": "77QmUPtjPfzWtF2AnpK9RQ"}),
            serde_json::json!({"typ": "ID"}),
            serde_json::json!({"token_use": "id"}),
        ] {
            let mut c = serde_json::to_value(claims()).unwrap();
            c.as_object_mut()
                .unwrap()
                .extend(marks.as_object().unwrap().clone());
            let mut header = Header::new(signing.algorithm);
            header.kid.clone_from(&signing.kid);
            let token = jsonwebtoken::encode(&header, &c, &signing.key).unwrap();
            let err = verifier.verify(&token).await.unwrap_err();
            assert!(err.to_string().contains("ID token"), "{marks}: {err}");
        }
        // Typed as something else than an access token.
        let mut header = Header::new(signing.algorithm);
        header.typ = Some("id+jwt".into());
        let token = jsonwebtoken::encode(&header, &claims(), &signing.key).unwrap();
        assert!(verifier.verify(&token).await.is_err());
        header.typ = Some("at+jwt".into());
        let token = jsonwebtoken::encode(&header, &claims(), &signing.key).unwrap();
        assert!(
            verifier.verify(&token).await.is_ok(),
            "RFC 9068 access tokens"
        );
        // nbf is required.
        let mut c = claims();
        c.nbf = None;
        let err = verifier
            .verify(&signing.sign(&c).unwrap())
            .await
            .unwrap_err();
        assert!(err.to_string().contains("required claim"), "{err}");
        let mut c = claims();
        c.nbf = Some(jsonwebtoken::get_current_timestamp() + 3600);
        let err = verifier
            .verify(&signing.sign(&c).unwrap())
            .await
            .unwrap_err();
        assert!(err.to_string().contains("not valid yet"), "{err}");
    }

    #[tokio::test]
    async fn teams_are_read_from_the_token_and_a_bad_teams_claim_is_refused() {
        let (key, verifier) = keys();
        let mut c = claims();
        c.teams = vec!["team-b".into(), "team-a".into(), "team-a".into()];
        let caller = verifier.verify(&key.sign(&c).unwrap()).await.unwrap();
        assert_eq!(caller.teams, ["team-a", "team-b"]);
        assert!(
            verifier
                .verify(&key.sign(&claims()).unwrap())
                .await
                .unwrap()
                .teams
                .is_empty()
        );
        for bad in [
            vec![String::new()],
            vec!["x".repeat(65)],
            vec!["a\nb".into()],
            vec!["t".into(); 65],
        ] {
            let mut c = claims();
            c.teams = bad;
            assert!(verifier.verify(&key.sign(&c).unwrap()).await.is_err());
        }
    }

    #[tokio::test]
    async fn a_tampered_payload_is_refused() {
        let (signing, verifier) = keys();
        let token = signing.sign(&claims()).unwrap();
        let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
        let mut c = claims();
        c.roles = vec!["team_lead".into()];
        parts[1] = base64::Engine::encode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            serde_json::to_vec(&c).unwrap(),
        );
        let err = verifier.verify(&parts.join(".")).await.unwrap_err();
        assert!(err.to_string().contains("no key"), "{err}");
    }

    #[tokio::test]
    async fn hmac_and_unsigned_tokens_are_refused() {
        let (_, verifier) = keys();
        let hs = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims(),
            &EncodingKey::from_secret(b"secret"),
        )
        .unwrap();
        assert!(verifier.verify(&hs).await.is_err());
        assert!(verifier.verify("eyJhbGciOiJub25lIn0.e30.").await.is_err());
        assert!(verifier.verify("").await.is_err());
        // The HS/RS confusion: HMAC keyed with the issuer's public key, which anyone has.
        let (_, public) = generate_p256_pem().unwrap();
        let (signing, verifier) = keys();
        drop(signing);
        let confused = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims(),
            &EncodingKey::from_secret(public.as_bytes()),
        )
        .unwrap();
        let err = verifier.verify(&confused).await.unwrap_err();
        assert!(err.to_string().contains("algorithm"), "{err}");
        // An unsigned token with the claims we would accept.
        let none = format!(
            "{}.{}.",
            base64::Engine::encode(
                &base64::engine::general_purpose::URL_SAFE_NO_PAD,
                r#"{"alg":"none","typ":"JWT"}"#
            ),
            base64::Engine::encode(
                &base64::engine::general_purpose::URL_SAFE_NO_PAD,
                serde_json::to_vec(&claims()).unwrap()
            )
        );
        assert!(verifier.verify(&none).await.is_err());
    }

    #[tokio::test]
    async fn the_header_must_be_a_bearer_token() {
        let (signing, verifier) = keys();
        let token = signing.sign(&claims()).unwrap();
        let mut headers = http::HeaderMap::new();
        assert!(verifier.authenticate(&headers).await.is_err());
        headers.insert("authorization", format!("Basic {token}").parse().unwrap());
        assert!(verifier.authenticate(&headers).await.is_err());
        headers.insert("authorization", format!("bearer {token}").parse().unwrap());
        assert!(verifier.authenticate(&headers).await.is_ok());
    }

    #[tokio::test]
    async fn the_dev_key_is_created_once_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let (signing, decoding) = dev_signing_key(dir.path()).unwrap();
        let (_, again) = dev_signing_key(dir.path()).unwrap();
        let verifier = Verifier::new(
            vec![(again, Algorithm::ES256)],
            "iss",
            "aud",
            Duration::ZERO,
        );
        assert!(
            verifier
                .verify(&signing.sign(&claims()).unwrap())
                .await
                .is_ok()
        );
        drop(decoding);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(DEV_KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "the dev key must be private to its owner");
        }
    }

    #[test]
    fn processes_racing_to_create_the_dev_key_all_read_one_whole_key() {
        for _ in 0..20 {
            let dir = tempfile::tempdir().unwrap();
            let keys: Vec<Vec<u8>> = std::thread::scope(|s| {
                let racers: Vec<_> = (0..8)
                    .map(|_| {
                        s.spawn(|| {
                            dev_signing_key(dir.path()).expect("a whole key");
                            std::fs::read(dir.path().join(DEV_KEY_FILE)).unwrap()
                        })
                    })
                    .collect();
                racers.into_iter().map(|r| r.join().unwrap()).collect()
            });
            assert!(keys.windows(2).all(|w| w[0] == w[1]));
            let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
            assert_eq!(left.len(), 1, "no staged key file is left behind");
        }
    }

    #[tokio::test]
    async fn rs256_tokens_verify_against_an_rsa_public_key_file() {
        use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der, PublicKeyX509Der};
        use aws_lc_rs::rsa::{KeyPair as RsaKeyPair, KeySize};
        let pair = RsaKeyPair::generate(KeySize::Rsa2048).unwrap();
        let private: Pkcs8V1Der<'static> = pair.as_der().unwrap();
        let public: PublicKeyX509Der<'static> = pair.public_key().as_der().unwrap();
        let private = pem::encode(&pem::Pem::new("PRIVATE KEY", private.as_ref().to_vec()));
        let public = pem::encode(&pem::Pem::new("PUBLIC KEY", public.as_ref().to_vec()));
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("rsa.pem");
        std::fs::write(&file, public).unwrap();
        let (key, alg) = load_public_key(&file).unwrap();
        assert_eq!(alg, Algorithm::RS256);
        let verifier = Verifier::new(vec![(key, alg)], "iss", "aud", Duration::ZERO);
        let signing = SigningKey::from_pem(private.as_bytes(), None).unwrap();
        assert_eq!(signing.algorithm, Algorithm::RS256);
        assert_eq!(
            verifier
                .verify(&signing.sign(&claims()).unwrap())
                .await
                .unwrap()
                .subject,
            "cw-1"
        );
        // An ES256 token is not verified by an RSA key, whatever its header says.
        let (ec, _) = keys();
        assert!(verifier.verify(&ec.sign(&claims()).unwrap()).await.is_err());
    }

    #[test]
    fn outside_dev_mode_an_issuer_and_keys_are_required() {
        let config = Config::default();
        let err = Verifier::from_config(&config).expect_err("no issuer");
        assert!(err.to_string().contains("auth.issuer"), "{err}");
        let mut config = Config::default();
        config.auth.issuer = "https://idp".into();
        let err = Verifier::from_config(&config).expect_err("no keys");
        assert!(err.to_string().contains("auth.public_key_files"), "{err}");
    }

    #[test]
    fn a_caller_without_an_allowed_role_is_denied() {
        let caller = Caller {
            subject: "a".into(),
            agency: AgencyId::parse("0301").unwrap(),
            roles: vec![Role::Auditor],
            teams: vec![],
        };
        assert!(caller.require(&[Role::Caseworker, Role::TeamLead]).is_err());
        assert!(caller.require(&[Role::Auditor]).is_ok());
    }
}
