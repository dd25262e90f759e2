//! The Kubernetes manifests in deploy/ against the code. Every overlay renders with
//! `kubectl kustomize`; every variable a landsby container is given is a setting the code reads,
//! with a value it accepts, and nothing its part needs is missing (the real `landsby config check`,
//! run with exactly the container's environment); the files those settings name are mounted; each
//! process is told where its database is and where the services it calls are; the probes ask the
//! health port the settings open; the grace period covers the shutdown settings; the Dockerfile
//! ships every binary the manifests run; and the dev overlay's secrets start a real service that
//! answers over mutual TLS. (The schemas are checked by scripts/deploy-check, in CI.)

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use landsby_platform::config::settings;
use landsby_platform::tls::Process;
use serde::Deserialize;
use serde_yaml::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

const OVERLAYS: &[&str] = &["deploy/base", "deploy/overlays/dev", "deploy/overlays/prod"];

/// The documents `kubectl kustomize` renders from `dir`.
fn render(dir: &str) -> Vec<Value> {
    let out = Command::new("kubectl")
        .arg("kustomize")
        .arg(repo().join(dir))
        .output()
        .expect("kubectl (with its built-in kustomize) is on the machine");
    assert!(
        out.status.success(),
        "kubectl kustomize {dir}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    serde_yaml::Deserializer::from_str(&text)
        .map(|doc| Value::deserialize(doc).unwrap())
        .filter(|v| !v.is_null())
        .collect()
}

fn str_of<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    get(v, path)?.as_str()
}

fn get<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(v, |v, key| v.get(*key))
}

fn seq<'a>(v: &'a Value, path: &[&str]) -> Vec<&'a Value> {
    get(v, path)
        .and_then(Value::as_sequence)
        .map(|s| s.iter().collect())
        .unwrap_or_default()
}

/// One landsby container of a workload, with what the test needs of it.
struct Container<'a> {
    workload: String,
    part: &'static str,
    binary: String,
    pod: &'a Value,
    container: &'a Value,
    env: BTreeMap<String, String>,
}

/// The part a container runs, from its command.
fn part_of(command: &[&str]) -> &'static str {
    let binary = command[0].rsplit('/').next().unwrap();
    match (binary, &command[1..]) {
        ("landsby-case", []) => "case",
        ("landsby-visitation", []) => "visitation",
        ("landsby-notification", []) => "notification",
        ("landsby-worker", []) => "worker",
        ("landsby-worker", ["sweep", "--once"]) => "sweep",
        ("landsby", ["migrate"]) => "migrate",
        other => panic!("a container runs {other:?}, which is no part of landsby"),
    }
}

/// A stand-in for a secret's value, of the form the setting takes.
fn stand_in(name: &str) -> String {
    if name.ends_with("__DATABASE_URL") {
        "postgres://landsby@db.example:5432/landsby".into()
    } else {
        "a-secret-value-long-enough-for-any-check-0123456789".into()
    }
}

fn containers(docs: &[Value]) -> Vec<Container<'_>> {
    let config_maps: BTreeMap<&str, &Value> = docs
        .iter()
        .filter(|d| str_of(d, &["kind"]) == Some("ConfigMap"))
        .map(|d| (str_of(d, &["metadata", "name"]).unwrap(), d))
        .collect();
    let mut out = Vec::new();
    for doc in docs {
        let kind = str_of(doc, &["kind"]).unwrap();
        let pod = match kind {
            "Deployment" | "Job" | "StatefulSet" => get(doc, &["spec", "template", "spec"]),
            "CronJob" => get(doc, &["spec", "jobTemplate", "spec", "template", "spec"]),
            _ => None,
        };
        let Some(pod) = pod else { continue };
        let workload = format!("{kind}/{}", str_of(doc, &["metadata", "name"]).unwrap());
        for container in seq(pod, &["containers"]) {
            let command: Vec<&str> = seq(container, &["command"])
                .iter()
                .filter_map(|c| c.as_str())
                .collect();
            if command
                .first()
                .is_none_or(|c| !c.starts_with("/usr/local/bin/landsby"))
            {
                continue; // not ours (the dev overlay's PostgreSQL)
            }
            let mut env = BTreeMap::new();
            for from in seq(container, &["envFrom"]) {
                let name = str_of(from, &["configMapRef", "name"])
                    .unwrap_or_else(|| panic!("{workload}: envFrom other than a ConfigMap"));
                let map = config_maps
                    .get(name)
                    .unwrap_or_else(|| panic!("{workload}: no ConfigMap {name}"));
                for (k, v) in get(map, &["data"]).and_then(Value::as_mapping).unwrap() {
                    env.insert(
                        k.as_str().unwrap().to_owned(),
                        v.as_str().unwrap().to_owned(),
                    );
                }
            }
            for var in seq(container, &["env"]) {
                let name = str_of(var, &["name"]).unwrap().to_owned();
                let value = match (
                    str_of(var, &["value"]),
                    get(var, &["valueFrom", "secretKeyRef"]),
                ) {
                    (Some(v), None) => v.to_owned(),
                    (None, Some(_)) => stand_in(&name),
                    _ => panic!("{workload}: {name} is neither a value nor a secret"),
                };
                env.insert(name, value);
            }
            out.push(Container {
                part: part_of(&command),
                binary: command[0].rsplit('/').next().unwrap().to_owned(),
                workload: workload.clone(),
                pod,
                container,
                env,
            });
        }
    }
    out
}

#[test]
fn every_variable_the_manifests_set_is_a_setting_and_every_part_has_what_it_needs() {
    let known: BTreeSet<String> = settings().into_iter().map(|s| s.env).collect();
    let mut checked = 0;
    for overlay in OVERLAYS {
        let docs = render(overlay);
        let containers = containers(&docs);
        let parts: BTreeSet<&str> = containers.iter().map(|c| c.part).collect();
        assert_eq!(
            parts,
            BTreeSet::from([
                "case",
                "visitation",
                "notification",
                "worker",
                "sweep",
                "migrate"
            ]),
            "{overlay} runs every part"
        );
        for c in &containers {
            let at = format!("{overlay} {}", c.workload);
            for name in c.env.keys() {
                assert!(
                    known.contains(name),
                    "{at} sets {name}, which no setting reads (the README's settings table)"
                );
            }
            // The real binary, given exactly this environment, accepts it.
            let out = Command::new(env!("CARGO_BIN_EXE_landsby"))
                .env_clear()
                .envs(&c.env)
                .args(["config", "check", "--part", c.part])
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            if *overlay == "deploy/base" && c.part != "migrate" && c.part != "sweep" {
                // The base names no identity provider: each overlay must, and a service of the
                // base alone refuses to start for that reason and no other.
                assert!(
                    !out.status.success() && stderr.contains("auth.issuer, auth.discovery_url"),
                    "{at}: {stderr}"
                );
            } else {
                assert!(
                    out.status.success(),
                    "{at}: `landsby config check --part {}` refuses the manifests' settings: {stderr}",
                    c.part,
                );
            }
            // Where its database is, and where the services it calls are.
            let databases: &[&str] = match c.part {
                "migrate" => &["case", "visitation", "notification", "worker"],
                "sweep" => &["worker"],
                part => &[part][..],
            };
            for db in databases {
                let var = format!("LANDSBY_{}__DATABASE_URL", db.to_uppercase());
                assert!(c.env.contains_key(&var), "{at} does not set {var}");
            }
            let process = match c.part {
                "case" => Some(Process::Case),
                "visitation" => Some(Process::Visitation),
                "notification" => Some(Process::Notification),
                "worker" | "sweep" => Some(Process::Worker),
                _ => None,
            };
            for rpc in process.map(Process::calls).unwrap_or_default() {
                let service = rpc
                    .strip_prefix("landsby.")
                    .and_then(|r| r.split('.').next())
                    .unwrap();
                let var = format!("LANDSBY_ENDPOINTS__{}", service.to_uppercase());
                let endpoint = c.env.get(&var);
                assert!(
                    endpoint.is_some_and(|e| e.starts_with("https://")),
                    "{at} calls {rpc} but {var} is {endpoint:?}"
                );
            }
            check_files_are_mounted(&at, c);
            check_hardening(&at, c);
            checked += 1;
        }
        check_probes_and_grace(overlay, &containers);
    }
    assert!(checked >= 18, "{checked} containers checked");
}

/// Every file a setting names is in a mounted volume, and the data directory is writable.
fn check_files_are_mounted(at: &str, c: &Container) {
    let mounts: Vec<(&str, bool)> = seq(c.container, &["volumeMounts"])
        .iter()
        .map(|m| (str_of(m, &["mountPath"]).unwrap(), at_bool(m, "readOnly")))
        .collect();
    let mounted = |file: &str| {
        mounts
            .iter()
            .any(|(dir, _)| Path::new(file).starts_with(dir))
    };
    for (name, value) in &c.env {
        // `landsby migrate` reads its databases and nothing else: the shared settings' certificate
        // paths are not its concern.
        if c.part == "migrate" && name.starts_with("LANDSBY_TLS__") {
            continue;
        }
        let files: Vec<String> = if name.ends_with("_FILES") {
            serde_json::from_str(value).unwrap_or_else(|_| panic!("{at}: {name} is not a list"))
        } else if name.ends_with("_FILE") {
            vec![value.replace("{agency}", "0301")]
        } else {
            continue;
        };
        for file in files.iter().filter(|f| !f.is_empty()) {
            assert!(
                mounted(file),
                "{at}: {name} names {file}, which no volume holds"
            );
        }
    }
    let data_dir = c.env.get("LANDSBY_DATA_DIR").expect("data_dir set");
    assert!(
        mounts.iter().any(|(dir, _)| dir == data_dir),
        "{at}: the data directory {data_dir} is not a volume (the root filesystem is read-only)"
    );
}

fn at_bool(v: &Value, key: &str) -> bool {
    v.get(key).and_then(Value::as_bool).unwrap_or(false)
}

/// Non-root, read-only root filesystem, no capabilities, no privilege escalation, a memory limit.
fn check_hardening(at: &str, c: &Container) {
    let sc = c.container.get("securityContext").expect("securityContext");
    assert!(
        at_bool(sc, "readOnlyRootFilesystem"),
        "{at}: root filesystem writable"
    );
    assert_eq!(
        sc.get("allowPrivilegeEscalation").and_then(Value::as_bool),
        Some(false),
        "{at}"
    );
    assert_eq!(
        seq(sc, &["capabilities", "drop"])
            .first()
            .and_then(|v| v.as_str()),
        Some("ALL"),
        "{at}: capabilities not dropped"
    );
    assert!(
        at_bool(c.pod.get("securityContext").unwrap(), "runAsNonRoot"),
        "{at}: may run as root"
    );
    assert!(
        str_of(c.container, &["resources", "limits", "memory"]).is_some(),
        "{at}: no memory limit"
    );
    assert!(
        str_of(c.container, &["resources", "requests", "cpu"]).is_some(),
        "{at}: no cpu request"
    );
    assert_eq!(
        c.pod
            .get("automountServiceAccountToken")
            .and_then(Value::as_bool),
        Some(false),
        "{at}"
    );
}

/// The services' probes ask the plain-text health port their settings open (readiness: the whole
/// server; liveness: `liveness`), and the pod's grace period covers the shutdown delay and grace.
fn check_probes_and_grace(overlay: &str, containers: &[Container]) {
    for c in containers
        .iter()
        .filter(|c| c.workload.starts_with("Deployment/"))
    {
        let at = format!("{overlay} {}", c.workload);
        let var = format!("LANDSBY_{}__HEALTH_LISTEN", c.part.to_uppercase());
        let listen = c
            .env
            .get(&var)
            .unwrap_or_else(|| panic!("{at}: {var} not set"));
        let port: u64 = listen.rsplit(':').next().unwrap().parse().unwrap();
        for (probe, service) in [
            ("readinessProbe", ""),
            ("livenessProbe", "liveness"),
            ("startupProbe", "liveness"),
        ] {
            let p = c
                .container
                .get(probe)
                .unwrap_or_else(|| panic!("{at}: no {probe}"));
            assert_eq!(
                get(p, &["grpc", "port"]).and_then(Value::as_u64),
                Some(port),
                "{at} {probe}"
            );
            assert_eq!(
                str_of(p, &["grpc", "service"]).unwrap_or(""),
                service,
                "{at} {probe}"
            );
        }
        let duration =
            |name: &str| humantime_serde::re::humantime::parse_duration(&c.env[name]).unwrap();
        let needed =
            duration("LANDSBY_SERVER__SHUTDOWN_DELAY") + duration("LANDSBY_SERVER__SHUTDOWN_GRACE");
        let grace = Duration::from_secs(
            c.pod
                .get("terminationGracePeriodSeconds")
                .and_then(Value::as_u64)
                .unwrap_or(30),
        );
        assert!(
            grace >= needed + Duration::from_secs(2),
            "{at}: terminationGracePeriodSeconds {grace:?} leaves no room after {needed:?}"
        );
    }
}

#[test]
fn the_image_ships_every_binary_the_manifests_run() {
    let dockerfile = std::fs::read_to_string(repo().join("Dockerfile")).unwrap();
    for overlay in OVERLAYS {
        let docs = render(overlay);
        for c in containers(&docs) {
            assert!(
                dockerfile.contains(&format!("target/release/{} ", c.binary))
                    || dockerfile.contains(&format!("target/release/{}\n", c.binary)),
                "{overlay} {} runs {}, which the Dockerfile does not copy",
                c.workload,
                c.binary
            );
        }
    }
    assert!(
        dockerfile.contains("USER 65532"),
        "the image runs as a non-root user"
    );
    assert!(
        dockerfile.contains("distroless"),
        "the runtime image has no shell"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dev_overlays_secrets_start_a_service_that_answers_over_mutual_tls() {
    let dir = tempfile::tempdir().unwrap();
    let pki = dir.path().join("pki");
    let out = Command::new(repo().join("deploy/overlays/dev/make-secrets"))
        .env("OUT", &pki)
        .env("LANDSBY", env!("CARGO_BIN_EXE_landsby"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let made: Vec<Value> =
        serde_yaml::Deserializer::from_str(std::str::from_utf8(&out.stdout).unwrap())
            .map(|d| Value::deserialize(d).unwrap())
            .filter(|v| !v.is_null())
            .collect();
    let made: BTreeSet<String> = made
        .iter()
        .map(|s| str_of(s, &["metadata", "name"]).unwrap().to_owned())
        .collect();
    // Exactly the secrets the dev overlay refers to and does not generate itself.
    let docs = render("deploy/overlays/dev");
    let mut wanted = BTreeSet::new();
    for c in containers(&docs) {
        for v in seq(c.pod, &["volumes"]) {
            if let Some(name) = str_of(v, &["secret", "secretName"]) {
                wanted.insert(name.to_owned());
            }
        }
        for var in seq(c.container, &["env"]) {
            if let Some(name) = str_of(var, &["valueFrom", "secretKeyRef", "name"])
                && !at_bool(
                    get(var, &["valueFrom", "secretKeyRef"]).unwrap(),
                    "optional",
                )
            {
                wanted.insert(name.to_owned());
            }
        }
    }
    let generated: BTreeSet<String> = docs
        .iter()
        .filter(|d| str_of(d, &["kind"]) == Some("Secret"))
        .map(|d| str_of(d, &["metadata", "name"]).unwrap().to_owned())
        .collect();
    let wanted: BTreeSet<String> = wanted
        .into_iter()
        .filter(|w| !generated.contains(w))
        .collect();
    assert_eq!(made, wanted);

    // The case service as the dev overlay runs it: dev mode, the shared dev key in its data
    // directory, its certificate from the dev CA.
    let data = pki.join("data");
    let mut command = landsby_testkit::process::command("landsby-case");
    command
        .env("LANDSBY_DEV_MODE", "true")
        .env("LANDSBY_DATA_DIR", &data)
        .env("LANDSBY_CASE__LISTEN", "127.0.0.1:0")
        .env(
            "LANDSBY_CASE__DATABASE_URL",
            format!("sqlite://{}", dir.path().join("case.db").display()),
        )
        .env("LANDSBY_TLS__CERT_FILE", pki.join("case.crt"))
        .env("LANDSBY_TLS__KEY_FILE", pki.join("case.key"))
        .env("LANDSBY_TLS__CA_FILE", pki.join("ca.crt"))
        .env("LANDSBY_TLS__TRUST_DOMAIN", "landsby.dev")
        .env("LANDSBY_LOG__FORMAT", "json");
    let mut case = landsby_testkit::process::Spawned::start(command);
    let (addr, _) = case.wait_for(Duration::from_secs(30), landsby_testkit::process::listening);
    let read = |name: &str| std::fs::read_to_string(pki.join(name)).unwrap();
    // The worker's certificate and its token from the Secret, as the worker pod would call.
    let tls = tonic::transport::ClientTlsConfig::new()
        .ca_certificate(tonic::transport::Certificate::from_pem(read("ca.crt")))
        .identity(tonic::transport::Identity::from_pem(
            read("worker.crt"),
            read("worker.key"),
        ));
    let channel = tonic::transport::Channel::from_shared(format!("https://{addr}"))
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect_lazy();
    landsby_testkit::wait_for_health(
        &channel,
        tonic_health::pb::health_check_response::ServingStatus::Serving,
    )
    .await;
    let token = std::fs::read_to_string(data.join("0301.jwt")).unwrap();
    let mut client = landsby_proto::case::case_service_client::CaseServiceClient::new(channel);
    let cases = client
        .list_cases(landsby_testkit::authed(
            token.trim(),
            landsby_proto::case::ListCasesRequest::default(),
        ))
        .await
        .unwrap_or_else(|e| panic!("{e:?}\n{}", case.output().join("\n")));
    assert!(cases.into_inner().cases.is_empty());

    // A call its certificate does not allow is refused, and the log line says so with the trace id
    // of the caller's `traceparent`: the JSON logs carry traces.
    let mut request = landsby_testkit::authed(
        token.trim(),
        landsby_proto::case::CreateCaseRequest::default(),
    );
    request.metadata_mut().insert(
        "traceparent",
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
            .parse()
            .unwrap(),
    );
    let refused = client.create_case(request).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::PermissionDenied);
    let line = case.wait_for(Duration::from_secs(10), |line| {
        let v: serde_json::Value = serde_json::from_str(line).ok()?;
        (v["message"] == "refused by the caller's certificate").then_some(v)
    });
    assert_eq!(
        line["span"]["trace_id"], "0af7651916cd43dd8448eb211c80319c",
        "{line}"
    );
}
