//! A certificate authority for tests: every process and client of a test gets a certificate from it,
//! so every test runs over mutual TLS as production does. Certificates are ECDSA P-256, valid for
//! `localhost` and `127.0.0.1`, for both server and client authentication, with the SPIFFE ID of
//! their identity in [`TRUST_DOMAIN`]. Made once per test process, in a temporary directory.

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

/// The trust domain of the tests' identities.
pub const TRUST_DOMAIN: &str = "landsby.test";

/// The identity the tests' own clients present: an agency platform.
pub const TEST_PLATFORM: &str = "platform/tests";

/// A certificate and its key, PEM.
#[derive(Clone)]
pub struct Credentials {
    /// The certificate.
    pub cert_pem: String,
    /// Its private key.
    pub key_pem: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials").finish_non_exhaustive()
    }
}

/// How a certificate from [`Pki::issue`] differs from a good one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Validity {
    /// Valid now.
    Current,
    /// Expired last year.
    Expired,
}

/// The tests' certificate authority and the files of the identities made so far.
pub struct Pki {
    dir: tempfile::TempDir,
    ca_pem: String,
    issuer: Issuer<'static, KeyPair>,
    files: Mutex<HashMap<String, (PathBuf, PathBuf)>>,
}

/// The one authority of this test process.
pub fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(|| Pki::new("landsby test CA"))
}

/// Another authority, which no landsby process trusts.
pub fn foreign_pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(|| Pki::new("foreign CA"))
}

impl Pki {
    fn new(name: &str) -> Self {
        let key = KeyPair::generate().expect("CA key");
        let mut params = CertificateParams::default();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca = params.self_signed(&key).expect("CA certificate");
        let dir = tempfile::tempdir().expect("temporary directory");
        let ca_pem = ca.pem();
        std::fs::write(dir.path().join("ca.pem"), &ca_pem).expect("write CA");
        Self {
            dir,
            ca_pem,
            issuer: Issuer::new(params, key),
            files: Mutex::new(HashMap::new()),
        }
    }

    /// The CA certificate file (`tls.ca_file`).
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// The CA certificate, PEM.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// A certificate for `spiffe://<TRUST_DOMAIN>/<path>` (or no SPIFFE ID at all when `path` is
    /// `None`; or a whole URI when `path` starts with `spiffe://`).
    pub fn issue(&self, path: Option<&str>, validity: Validity) -> Credentials {
        let key = KeyPair::generate().expect("key");
        let mut params =
            CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
                .expect("names");
        params
            .distinguished_name
            .push(DnType::CommonName, path.unwrap_or("no identity"));
        if let Some(path) = path {
            let uri = if path.starts_with("spiffe://") {
                path.to_owned()
            } else {
                format!("spiffe://{TRUST_DOMAIN}/{path}")
            };
            params
                .subject_alt_names
                .push(SanType::URI(uri.try_into().expect("URI")));
        }
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        if validity == Validity::Expired {
            params.not_before = rcgen::date_time_ymd(2024, 1, 1);
            params.not_after = rcgen::date_time_ymd(2025, 1, 1);
        }
        let cert = params.signed_by(&key, &self.issuer).expect("certificate");
        Credentials {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }

    /// The certificate and key files of the identity `path` (`landsby/case`, `platform/tests`),
    /// made on first use.
    pub fn files(&self, path: &str) -> (PathBuf, PathBuf) {
        let mut files = self.files.lock().expect("pki files");
        files
            .entry(path.to_owned())
            .or_insert_with(|| {
                let credentials = self.issue(Some(path), Validity::Current);
                let stem = path.replace('/', "-");
                let cert = self.dir.path().join(format!("{stem}.pem"));
                let key = self.dir.path().join(format!("{stem}-key.pem"));
                std::fs::write(&cert, credentials.cert_pem).expect("write certificate");
                std::fs::write(&key, credentials.key_pem).expect("write key");
                (cert, key)
            })
            .clone()
    }
}

/// Sets `tls.*` of `config` to the identity `path` of the tests' authority.
pub fn configure(config: &mut landsby_platform::Config, path: &str) {
    let (cert, key) = pki().files(path);
    config.tls.cert_file = cert;
    config.tls.key_file = key;
    config.tls.ca_file = pki().ca_file();
    config.tls.trust_domain = TRUST_DOMAIN.into();
}

/// The environment that gives a process the identity `path` (`landsby/worker`).
pub fn tls_env(path: &str) -> [(&'static str, String); 4] {
    let (cert, key) = pki().files(path);
    [
        ("LANDSBY_TLS__CERT_FILE", cert.display().to_string()),
        ("LANDSBY_TLS__KEY_FILE", key.display().to_string()),
        (
            "LANDSBY_TLS__CA_FILE",
            pki().ca_file().display().to_string(),
        ),
        ("LANDSBY_TLS__TRUST_DOMAIN", TRUST_DOMAIN.to_owned()),
    ]
}

/// A lazily connecting channel to `https://<addr>` that trusts the tests' authority and shows
/// `credentials` (none: no client certificate).
pub fn tls_channel(addr: SocketAddr, credentials: Option<&Credentials>) -> Channel {
    let mut tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(pki().ca_pem()));
    if let Some(c) = credentials {
        tls = tls.identity(Identity::from_pem(&c.cert_pem, &c.key_pem));
    }
    Channel::from_shared(format!("https://{addr}"))
        .expect("uri")
        .tls_config(tls)
        .expect("tls")
        .connect_lazy()
}

/// The credentials of the tests' own clients ([`TEST_PLATFORM`]).
pub fn test_platform() -> &'static Credentials {
    static CREDENTIALS: OnceLock<Credentials> = OnceLock::new();
    CREDENTIALS.get_or_init(|| pki().issue(Some(TEST_PLATFORM), Validity::Current))
}
