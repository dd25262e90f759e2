//! Authentication: every call (health and reflection excepted) carries a bearer JWT with `sub`,
//! `agency` (a municipality number) and `roles`. Outside dev mode the token must be signed by one of
//! the configured keys (RS256 or ES256) and carry the configured issuer and audience; in dev mode a
//! P-256 key generated in the data directory signs and verifies, and `landsby token` mints with it.
//!
//! Authorization (which roles may call which RPC) is each service's table; [`Caller::require`] is the
//! one check they all use.

use crate::config::{Config, ConfigError};
use crate::error::ApiError;
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use landsby_domain::{AgencyId, Role};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The issuer of dev-mode tokens.
pub const DEV_ISSUER: &str = "landsby-dev";
/// The file in the data directory that holds the dev signing key.
pub const DEV_KEY_FILE: &str = "dev-signing-key.pem";
/// The longest token accepted, in bytes.
const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// Who is calling: established from a verified token, put in the request's extensions by the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The token's `sub`: a staff member or a service.
    pub subject: String,
    /// The agency the caller acts for.
    pub agency: AgencyId,
    /// The roles the token grants that landsby knows; unknown roles are ignored.
    pub roles: Vec<Role>,
}

impl Caller {
    /// Whether the caller has one of `allowed`.
    pub fn has_any(&self, allowed: &[Role]) -> bool {
        self.roles.iter().any(|r| allowed.contains(r))
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
    /// Issuer.
    pub iss: String,
    /// Audience: one, or several (as some identity providers send it).
    pub aud: Audience,
    /// Expiry, seconds since the epoch.
    pub exp: u64,
    /// Issued at, seconds since the epoch (optional).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
    /// Not before, seconds since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
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
            iss: issuer.to_owned(),
            aud: Audience::One(audience.to_owned()),
            exp: now + ttl.as_secs(),
            iat: Some(now),
            nbf: None,
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

/// Writes a new key where no file is; if another process wins the race, its key is used.
fn create_dev_key(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Write;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let (private, _) = generate_p256_pem().map_err(std::io::Error::other)?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    match options.open(path) {
        Ok(mut file) => {
            file.write_all(private.as_bytes())?;
            file.sync_all()?;
            Ok(private.into_bytes())
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => std::fs::read(path),
        Err(e) => Err(e),
    }
}

/// Verifies tokens.
pub struct Verifier {
    keys: Vec<(DecodingKey, Algorithm)>,
    issuer: String,
    audience: String,
    leeway: Duration,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("keys", &self.keys.len())
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
            keys,
            issuer: issuer.into(),
            audience: audience.into(),
            leeway,
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
        if config.auth.public_key_files.is_empty() {
            return Err(invalid(
                "auth.public_key_files",
                "required outside dev mode (set LANDSBY_AUTH__PUBLIC_KEY_FILES=[\"/path/key.pem\"])",
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
    pub fn verify(&self, token: &str) -> Result<Caller, ApiError> {
        let unauthenticated = |reason| ApiError::Unauthenticated { reason };
        if token.len() > MAX_TOKEN_BYTES {
            return Err(unauthenticated("the token is too long"));
        }
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| unauthenticated("the token is not a JWT"))?;
        if !matches!(header.alg, Algorithm::ES256 | Algorithm::RS256) {
            return Err(unauthenticated(
                "the token's algorithm is not accepted (RS256, ES256)",
            ));
        }
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        validation.set_required_spec_claims(&["exp", "sub", "iss", "aud"]);
        validation.validate_nbf = true;
        validation.leeway = self.leeway.as_secs();

        let mut last = unauthenticated("no key can verify the token");
        for (key, _) in self.keys.iter().filter(|(_, alg)| *alg == header.alg) {
            match jsonwebtoken::decode::<Claims>(token, key, &validation) {
                Ok(data) => return caller_from(data.claims),
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

    /// The caller proven by the `authorization: Bearer …` header.
    pub fn authenticate(&self, headers: &http::HeaderMap) -> Result<Caller, ApiError> {
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
        self.verify(token)
    }
}

fn caller_from(claims: Claims) -> Result<Caller, ApiError> {
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
    Ok(Caller {
        subject: subject.to_owned(),
        agency,
        roles,
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

    #[test]
    fn a_good_token_gives_the_caller() {
        let (signing, verifier) = keys();
        let caller = verifier.verify(&signing.sign(&claims()).unwrap()).unwrap();
        assert_eq!(caller.subject, "cw-1");
        assert_eq!(caller.agency.as_str(), "0301");
        assert_eq!(caller.roles, vec![Role::Caseworker]);
    }

    #[test]
    fn expired_wrong_issuer_wrong_audience_and_foreign_keys_are_refused() {
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
            let err = verifier.verify(&signing.sign(&c).unwrap()).unwrap_err();
            assert!(err.to_string().contains(why), "{err}");
        }
        let (other, _) = keys();
        let err = verifier
            .verify(&other.sign(&claims()).unwrap())
            .unwrap_err();
        assert!(matches!(err, ApiError::Unauthenticated { .. }));
    }

    #[test]
    fn an_audience_list_that_names_us_is_accepted_and_iat_is_optional() {
        let (signing, verifier) = keys();
        let mut c = claims();
        c.aud = Audience::Many(vec!["account".into(), "aud".into()]);
        c.iat = None;
        assert!(verifier.verify(&signing.sign(&c).unwrap()).is_ok());
        c.aud = Audience::Many(vec!["account".into()]);
        assert!(verifier.verify(&signing.sign(&c).unwrap()).is_err());
    }

    #[test]
    fn a_subject_with_control_characters_is_refused() {
        let (signing, verifier) = keys();
        let mut c = claims();
        c.sub = "cw\u{0}1".into();
        assert!(verifier.verify(&signing.sign(&c).unwrap()).is_err());
    }

    #[test]
    fn a_bad_agency_claim_is_refused_and_unknown_roles_are_ignored() {
        let (signing, verifier) = keys();
        let mut c = claims();
        c.agency = "301".into();
        assert!(verifier.verify(&signing.sign(&c).unwrap()).is_err());
        let mut c = claims();
        c.roles = vec!["wizard".into(), "team_lead".into()];
        let caller = verifier.verify(&signing.sign(&c).unwrap()).unwrap();
        assert_eq!(caller.roles, vec![Role::TeamLead]);
    }

    #[test]
    fn hmac_and_unsigned_tokens_are_refused() {
        let (_, verifier) = keys();
        let hs = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims(),
            &EncodingKey::from_secret(b"secret"),
        )
        .unwrap();
        assert!(verifier.verify(&hs).is_err());
        assert!(verifier.verify("eyJhbGciOiJub25lIn0.e30.").is_err());
        assert!(verifier.verify("").is_err());
    }

    #[test]
    fn the_header_must_be_a_bearer_token() {
        let (signing, verifier) = keys();
        let token = signing.sign(&claims()).unwrap();
        let mut headers = http::HeaderMap::new();
        assert!(verifier.authenticate(&headers).is_err());
        headers.insert("authorization", format!("Basic {token}").parse().unwrap());
        assert!(verifier.authenticate(&headers).is_err());
        headers.insert("authorization", format!("bearer {token}").parse().unwrap());
        assert!(verifier.authenticate(&headers).is_ok());
    }

    #[test]
    fn the_dev_key_is_created_once_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let (signing, decoding) = dev_signing_key(dir.path()).unwrap();
        let (_, again) = dev_signing_key(dir.path()).unwrap();
        let verifier = Verifier::new(
            vec![(again, Algorithm::ES256)],
            "iss",
            "aud",
            Duration::ZERO,
        );
        assert!(verifier.verify(&signing.sign(&claims()).unwrap()).is_ok());
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
    fn rs256_tokens_verify_against_an_rsa_public_key_file() {
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
                .unwrap()
                .subject,
            "cw-1"
        );
        // An ES256 token is not verified by an RSA key, whatever its header says.
        let (ec, _) = keys();
        assert!(verifier.verify(&ec.sign(&claims()).unwrap()).is_err());
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
        };
        assert!(caller.require(&[Role::Caseworker, Role::TeamLead]).is_err());
        assert!(caller.require(&[Role::Auditor]).is_ok());
    }
}
