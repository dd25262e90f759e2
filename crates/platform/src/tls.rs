//! Mutual TLS between landsby's processes and with the platforms that call them (rustls on
//! aws-lc-rs, through tonic).
//!
//! Every process has one certificate (`tls.cert_file`), signed by a CA in `tls.ca_file`: it serves
//! it to its callers and shows it to the services it calls. A server accepts a connection only from a
//! caller whose certificate chains to `tls.ca_file`, is valid now and is meant for client
//! authentication; the handshake fails otherwise (no certificate, a foreign CA, an expired one).
//!
//! Who the caller is comes from its certificate, as a SPIFFE ID in the subjectAltName:
//! `spiffe://<tls.trust_domain>/landsby/<process>` is one of landsby's own processes ([`Process`]),
//! any other path of the trust domain is an agency's platform. Landsby's processes may call only the
//! RPCs they need ([`Process::calls`]); a platform's calls are limited by its callers' tokens as
//! before. A certificate without exactly one SPIFFE ID of the trust domain, or with an unknown
//! process under `landsby/`, is UNAUTHENTICATED. Outside dev mode TLS is required; in dev mode a
//! server without `tls.*` speaks plain text and says so at start.

use crate::config::{Config, ConfigError};
use crate::error::ApiError;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::fmt;
use std::path::Path;
use std::time::Duration;
use tonic::transport::{Certificate, ClientTlsConfig, Identity, ServerTlsConfig};

/// One of landsby's own processes, as its certificate names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Process {
    /// `landsby/case`.
    Case,
    /// `landsby/visitation`.
    Visitation,
    /// `landsby/notification`.
    Notification,
    /// `landsby/worker`.
    Worker,
}

impl Process {
    /// Every process.
    pub const ALL: [Process; 4] = [
        Process::Case,
        Process::Visitation,
        Process::Notification,
        Process::Worker,
    ];

    /// Its name in a SPIFFE ID: `spiffe://<domain>/landsby/<name>`.
    pub fn name(self) -> &'static str {
        match self {
            Process::Case => "case",
            Process::Visitation => "visitation",
            Process::Notification => "notification",
            Process::Worker => "worker",
        }
    }

    /// The RPCs (full methods, as audit rows record them) this process calls, and so the only ones
    /// its certificate may call. The case service calls no one.
    pub fn calls(self) -> &'static [&'static str] {
        match self {
            Process::Worker => &[
                "landsby.case.v1.CaseService/ListCases",
                "landsby.case.v1.CaseService/BatchGetCaseSnapshots",
                "landsby.case.v1.CaseService/BatchSyncDueReviews",
                "landsby.case.v1.CaseService/BatchSyncVisitFacts",
                "landsby.case.v1.CaseService/WatchEvents",
                "landsby.visitation.v1.VisitationService/BatchGetCaseVisitation",
                "landsby.visitation.v1.VisitationService/BatchApplyComputedScopes",
                "landsby.visitation.v1.VisitationService/ListScopeVersions",
                "landsby.visitation.v1.VisitationService/GetVisit",
                "landsby.visitation.v1.VisitationService/WatchEvents",
                "landsby.notification.v1.NotificationService/SendNotification",
                "landsby.notification.v1.NotificationService/BatchSendNotifications",
                "landsby.notification.v1.NotificationService/PurgeNotifications",
            ],
            // On behalf of its caller: need to know, and what its rules read of the case (of many
            // cases at once for the worker's computed scopes).
            Process::Visitation => &[
                "landsby.case.v1.CaseService/GetCase",
                "landsby.case.v1.CaseService/BatchGetCaseSnapshots",
            ],
            // Need to know of a case, on its caller's behalf.
            Process::Notification => &["landsby.case.v1.CaseService/GetCase"],
            Process::Case => &[],
        }
    }
}

/// Who is at the other end of a connection, by its certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Peer {
    /// One of landsby's own processes.
    Process(Process),
    /// An agency's platform: the path of its SPIFFE ID (`oslo/fagsystem`).
    Platform(String),
}

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Peer::Process(p) => write!(f, "landsby/{}", p.name()),
            Peer::Platform(path) => f.write_str(path),
        }
    }
}

impl Peer {
    /// Whether this peer may call `method` (`/package.Service/Method`, as the HTTP/2 path has it).
    pub fn may_call(&self, method: &str) -> bool {
        match self {
            Peer::Platform(_) => true,
            Peer::Process(p) => {
                let method = method.strip_prefix('/').unwrap_or(method);
                p.calls().contains(&method)
            }
        }
    }
}

/// The peer a certificate (DER) names in `trust_domain`; `None` when it names none, more than one,
/// or an unknown process.
pub fn identify(cert: &[u8], trust_domain: &str) -> Option<Peer> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert).ok()?;
    let names = parsed.subject_alternative_name().ok()??;
    let mut spiffe = names.value.general_names.iter().filter_map(|n| match n {
        x509_parser::extensions::GeneralName::URI(uri) => uri.strip_prefix("spiffe://"),
        _ => None,
    });
    // A SPIFFE certificate carries exactly one SPIFFE ID.
    let id = spiffe.next()?;
    if spiffe.next().is_some() {
        return None;
    }
    let (domain, path) = id.split_once('/')?;
    if domain != trust_domain || !valid_path(path) {
        return None;
    }
    match path.strip_prefix("landsby/") {
        Some(name) => Process::ALL
            .into_iter()
            .find(|p| p.name() == name)
            .map(Peer::Process),
        None if path == "landsby" => None,
        None => Some(Peer::Platform(path.to_owned())),
    }
}

/// A SPIFFE ID path: segments of letters, digits, `.`, `-` and `_`, none empty, `.` or `..`.
fn valid_path(path: &str) -> bool {
    !path.is_empty()
        && path.len() <= 2048
        && path.split('/').all(|segment| {
            !segment.is_empty()
                && segment != "."
                && segment != ".."
                && segment
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || ".-_".contains(c))
        })
}

/// The peer a certificate named, if it may call `method`; the refusal otherwise.
fn permit(peer: Option<Peer>, method: &str) -> Result<Peer, ApiError> {
    let Some(peer) = peer else {
        return Err(ApiError::Unauthenticated {
            reason: "the client certificate names no identity of this trust domain",
        });
    };
    if !peer.may_call(method) {
        return Err(ApiError::PermissionDenied {
            reason: format!("the certificate of {peer} may not call this RPC"),
        });
    }
    Ok(peer)
}

/// The identities of the client certificates a server has seen: a certificate is parsed once, not
/// on every call made over its connection. What a certificate names depends on its bytes alone (its
/// validity was checked in the handshake), so the bytes are the key; a full table is emptied rather
/// than let grow.
#[derive(Debug)]
pub struct Identities {
    trust_domain: String,
    known: std::sync::Mutex<std::collections::HashMap<Vec<u8>, Option<Peer>>>,
}

impl Identities {
    /// The most certificates remembered at once.
    const MOST: usize = 1024;

    pub fn new(trust_domain: &str) -> Self {
        Self {
            trust_domain: trust_domain.to_owned(),
            known: std::sync::Mutex::default(),
        }
    }

    /// Whether a call from `peer_certs` (the TLS connection's, when it has any) to `method` may go
    /// on: the peer it comes from, or the refusal. Only on a TLS server.
    pub fn admit(
        &self,
        peer_certs: Option<&[CertificateDer<'static>]>,
        method: &str,
    ) -> Result<Peer, ApiError> {
        let peer = peer_certs
            .and_then(|certs| certs.first())
            .and_then(|cert| self.identify(cert));
        permit(peer, method)
    }

    fn identify(&self, cert: &[u8]) -> Option<Peer> {
        let mut known = self
            .known
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(peer) = known.get(cert) {
            return peer.clone();
        }
        let peer = identify(cert, &self.trust_domain);
        if known.len() >= Self::MOST {
            known.clear();
        }
        known.insert(cert.to_vec(), peer.clone());
        peer
    }
}

/// This process's TLS material, read once at start.
#[derive(Debug, Clone)]
pub struct Tls {
    identity: Identity,
    ca: Certificate,
    trust_domain: String,
    handshake_timeout: Duration,
}

impl Tls {
    /// From `tls.*`: `None` in dev mode without them (plain text), an error outside dev mode
    /// without them, or when a file cannot be read, holds no certificate or key, or this
    /// process's own certificate names no identity of the trust domain.
    pub fn from_config(config: &Config) -> Result<Option<Self>, ConfigError> {
        let t = &config.tls;
        if !t.is_on() {
            if config.dev_mode {
                return Ok(None);
            }
            return Err(ConfigError::Invalid {
                setting: "tls.cert_file",
                problem: "mutual TLS is required outside dev mode: set tls.cert_file, \
                          tls.key_file and tls.ca_file"
                    .into(),
            });
        }
        let cert = read("tls.cert_file", &t.cert_file)?;
        let key = read("tls.key_file", &t.key_file)?;
        let ca = read("tls.ca_file", &t.ca_file)?;
        let invalid = |setting, problem: &str| ConfigError::Invalid {
            setting,
            problem: problem.into(),
        };
        let own: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert)
            .collect::<Result<_, _>>()
            .map_err(|_| invalid("tls.cert_file", "is not a PEM certificate chain"))?;
        let Some(leaf) = own.first() else {
            return Err(invalid("tls.cert_file", "holds no certificate"));
        };
        if identify(leaf, &t.trust_domain).is_none() {
            return Err(invalid(
                "tls.cert_file",
                "names no identity of tls.trust_domain (a URI subjectAltName \
                 spiffe://<trust_domain>/landsby/<process>)",
            ));
        }
        PrivateKeyDer::from_pem_slice(&key)
            .map_err(|_| invalid("tls.key_file", "holds no PEM private key"))?;
        let roots = CertificateDer::pem_slice_iter(&ca)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| invalid("tls.ca_file", "is not a list of PEM certificates"))?;
        if roots.is_empty() {
            return Err(invalid("tls.ca_file", "holds no certificate"));
        }
        Ok(Some(Self {
            identity: Identity::from_pem(cert, key),
            ca: Certificate::from_pem(ca),
            trust_domain: t.trust_domain.clone(),
            handshake_timeout: t.handshake_timeout,
        }))
    }

    /// The trust domain whose identities are recognised.
    pub fn trust_domain(&self) -> &str {
        &self.trust_domain
    }

    /// The server side: this certificate, and a required client certificate chaining to the CA.
    pub fn server(&self) -> ServerTlsConfig {
        ServerTlsConfig::new()
            .identity(self.identity.clone())
            .client_ca_root(self.ca.clone())
            .timeout(self.handshake_timeout)
    }

    /// The client side: the server's certificate must chain to the CA; this certificate is shown.
    pub fn client(&self) -> ClientTlsConfig {
        ClientTlsConfig::new()
            .ca_certificate(self.ca.clone())
            .identity(self.identity.clone())
            .timeout(self.handshake_timeout)
    }
}

fn read(setting: &'static str, path: &Path) -> Result<Vec<u8>, ConfigError> {
    std::fs::read(path).map_err(|e| ConfigError::Invalid {
        setting,
        problem: format!("{}: {}", path.display(), e.kind()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert(uris: &[&str]) -> Vec<u8> {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        for uri in uris {
            params
                .subject_alt_names
                .push(rcgen::SanType::URI((*uri).try_into().unwrap()));
        }
        params.self_signed(&key).unwrap().der().to_vec()
    }

    #[test]
    fn processes_and_platforms_are_told_apart_by_their_spiffe_id() {
        let td = "landsby.test";
        for p in Process::ALL {
            let c = cert(&[&format!("spiffe://{td}/landsby/{}", p.name())]);
            assert_eq!(identify(&c, td), Some(Peer::Process(p)));
        }
        let c = cert(&["spiffe://landsby.test/oslo/fagsystem"]);
        assert_eq!(
            identify(&c, td),
            Some(Peer::Platform("oslo/fagsystem".into()))
        );
        // Another trust domain, none, two, an unknown process, malformed paths.
        for uris in [
            &["spiffe://other/landsby/worker"][..],
            &[],
            &["https://landsby.test/landsby/worker"],
            &["spiffe://landsby.test/a", "spiffe://landsby.test/b"],
            &["spiffe://landsby.test/landsby/admin"],
            &["spiffe://landsby.test/landsby"],
            &["spiffe://landsby.test/"],
            &["spiffe://landsby.test/a//b"],
            &["spiffe://landsby.test/a/../landsby/worker"],
            &["spiffe://landsby.test"],
        ] {
            assert_eq!(identify(&cert(uris), td), None, "{uris:?}");
        }
        assert_eq!(identify(b"not a certificate", td), None);
    }

    #[test]
    fn each_process_may_call_only_what_it_needs_and_those_rpcs_exist() {
        let worker = Peer::Process(Process::Worker);
        assert!(worker.may_call("/landsby.case.v1.CaseService/BatchSyncDueReviews"));
        assert!(!worker.may_call("/landsby.case.v1.CaseService/CreateCase"));
        assert!(!worker.may_call("/landsby.audit.v1.AuditService/ListAuditEvents"));
        let visitation = Peer::Process(Process::Visitation);
        assert!(visitation.may_call("/landsby.case.v1.CaseService/GetCase"));
        assert!(!visitation.may_call("/landsby.case.v1.CaseService/UpdateCase"));
        assert!(!Peer::Process(Process::Case).may_call("/landsby.case.v1.CaseService/GetCase"));
        let notification = Peer::Process(Process::Notification);
        assert!(notification.may_call("/landsby.case.v1.CaseService/GetCase"));
        assert!(!notification.may_call("/landsby.case.v1.CaseService/ListCases"));
        assert!(Peer::Platform("x".into()).may_call("/landsby.case.v1.CaseService/CreateCase"));
        for p in Process::ALL {
            for method in p.calls() {
                let (service, name) = method.split_once('/').unwrap();
                assert!(
                    crate::authz::contract_methods(service)
                        .iter()
                        .any(|m| m == name),
                    "{method} is not in the contract"
                );
            }
        }
    }

    #[test]
    fn tls_is_required_outside_dev_mode_and_its_files_are_checked_at_start() {
        let mut config = Config::default();
        let err = Tls::from_config(&config).unwrap_err().to_string();
        assert!(err.contains("required outside dev mode"), "{err}");
        config.dev_mode = true;
        assert!(Tls::from_config(&config).unwrap().is_none());

        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, text: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            path
        };
        let key = rcgen::KeyPair::generate().unwrap();
        let pem_of = |uris: &[&str]| {
            let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
            for uri in uris {
                params
                    .subject_alt_names
                    .push(rcgen::SanType::URI((*uri).try_into().unwrap()));
            }
            params.self_signed(&key).unwrap().pem()
        };
        let good = pem_of(&["spiffe://landsby/landsby/case"]);
        config.tls.cert_file = write("cert.pem", &good);
        config.tls.key_file = write("key.pem", &key.serialize_pem());
        config.tls.ca_file = write("ca.pem", &good);
        let tls = Tls::from_config(&config).unwrap().unwrap();
        assert_eq!(tls.trust_domain(), "landsby");

        for (file, text, setting) in [
            ("cert.pem", pem_of(&[]), "tls.cert_file"),
            ("cert.pem", "garbage".to_owned(), "tls.cert_file"),
            ("key.pem", "garbage".to_owned(), "tls.key_file"),
            ("ca.pem", String::new(), "tls.ca_file"),
        ] {
            let saved = std::fs::read(dir.path().join(file)).unwrap();
            write(file, &text);
            let err = Tls::from_config(&config).unwrap_err();
            assert!(
                matches!(err, ConfigError::Invalid { setting: s, .. } if s == setting),
                "{file}: {err}"
            );
            std::fs::write(dir.path().join(file), saved).unwrap();
        }
        // Not the key's contents in any message.
        config.tls.key_file = dir.path().join("missing.pem");
        let err = Tls::from_config(&config).unwrap_err().to_string();
        assert!(
            err.contains("tls.key_file") && err.contains("not found"),
            "{err}"
        );
    }

    #[test]
    fn a_call_without_an_identity_is_unauthenticated_and_a_wrong_one_denied() {
        let known = Identities::new("landsby.test");
        let admit =
            |certs: Option<&[CertificateDer<'static>]>, method: &str| known.admit(certs, method);
        let foreign = CertificateDer::from(cert(&["spiffe://elsewhere/landsby/worker"]));
        assert!(matches!(
            admit(Some(&[foreign]), "/landsby.case.v1.CaseService/GetCase"),
            Err(ApiError::Unauthenticated { .. })
        ));
        assert!(matches!(
            admit(None, "/landsby.case.v1.CaseService/GetCase"),
            Err(ApiError::Unauthenticated { .. })
        ));
        let worker = CertificateDer::from(cert(&["spiffe://landsby.test/landsby/worker"]));
        assert!(matches!(
            admit(
                Some(std::slice::from_ref(&worker)),
                "/landsby.case.v1.CaseService/CreateCase"
            ),
            Err(ApiError::PermissionDenied { .. })
        ));
        assert_eq!(
            admit(Some(&[worker]), "/landsby.case.v1.CaseService/ListCases").ok(),
            Some(Peer::Process(Process::Worker))
        );
    }

    #[test]
    fn a_remembered_identity_is_the_one_its_certificate_names() {
        let known = Identities::new("landsby.test");
        let worker = CertificateDer::from(cert(&["spiffe://landsby.test/landsby/worker"]));
        let platform = CertificateDer::from(cert(&["spiffe://landsby.test/oslo/fagsystem"]));
        let foreign = CertificateDer::from(cert(&["spiffe://elsewhere/oslo/fagsystem"]));
        let get = "/landsby.case.v1.CaseService/GetCase";
        for _ in 0..2 {
            assert!(matches!(
                known.admit(Some(std::slice::from_ref(&worker)), get),
                Err(ApiError::PermissionDenied { .. })
            ));
            assert_eq!(
                known.admit(Some(std::slice::from_ref(&platform)), get).ok(),
                Some(Peer::Platform("oslo/fagsystem".into()))
            );
            assert!(matches!(
                known.admit(Some(std::slice::from_ref(&foreign)), get),
                Err(ApiError::Unauthenticated { .. })
            ));
        }
        // Past the most it remembers, it starts again and still answers the same.
        for i in 0..Identities::MOST + 1 {
            let other =
                CertificateDer::from(cert(&[&format!("spiffe://landsby.test/agency/p{i}")]));
            assert!(known.admit(Some(&[other]), get).is_ok());
        }
        assert!(known.known.lock().unwrap().len() <= Identities::MOST);
        assert_eq!(
            known.admit(Some(&[platform]), get).ok(),
            Some(Peer::Platform("oslo/fagsystem".into()))
        );
    }
}
