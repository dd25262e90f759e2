//! The fuzz corpus of request messages (`fuzz/corpus/requests`) through the handlers: every input,
//! and three mutants of each, that decodes as the request message its first byte picks is sent, as its bytes, to that RPC of the
//! running process that serves it (the four processes, mutual TLS, a token with every role so that
//! authorization lets it reach the validation), and every answer must be an answer — OK or a refusal
//! with its code, INVALID_ARGUMENT naming the fields — never INTERNAL or UNKNOWN (a panic, a broken
//! invariant), and no process dies.

use landsby_bench::suite::Running;
use landsby_domain::Role;
use landsby_testkit::{AGENCY, Backend, keys};
use prost::bytes::{Buf, BufMut};
use std::collections::BTreeMap;
use std::time::Duration;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::transport::Channel;
use tonic::{Code, Status};

/// A codec that sends and receives messages as their bytes.
#[derive(Debug, Clone, Copy, Default)]
struct Raw;

impl Codec for Raw {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = Raw;
    type Decoder = Raw;

    fn encoder(&mut self) -> Raw {
        Raw
    }

    fn decoder(&mut self) -> Raw {
        Raw
    }
}

impl Encoder for Raw {
    type Item = Vec<u8>;
    type Error = Status;

    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for Raw {
    type Item = Vec<u8>;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, Status> {
        let mut out = vec![0; src.remaining()];
        src.copy_to_slice(&mut out);
        Ok(Some(out))
    }
}

/// Sends `body` to `method` as `token`: how it was answered.
async fn call(channel: &Channel, token: &str, method: &str, body: Vec<u8>) -> Result<(), Status> {
    let mut grpc = tonic::client::Grpc::new(channel.clone());
    grpc.ready()
        .await
        .map_err(|e| Status::from_error(e.into()))?;
    let path = tonic::codegen::http::uri::PathAndQuery::try_from(method)
        .map_err(|_| Status::internal("not a method path"))?;
    let mut req = landsby_testkit::authed(token, body);
    req.set_timeout(Duration::from_secs(10));
    if method.ends_with("/WatchEvents") {
        // A feed: opened (or refused), then its first message or none in half a second.
        let mut stream = grpc.server_streaming(req, path, Raw).await?.into_inner();
        return match tokio::time::timeout(Duration::from_millis(500), stream.message()).await {
            Ok(Err(s)) => Err(s),
            _ => Ok(()),
        };
    }
    grpc.unary(req, path, Raw).await.map(|_| ())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fuzz_corpus_reaches_every_handler_through_grpc_and_is_answered() {
    let _machine = super::MACHINE.read().await;
    let run = Running::start(Backend::Sqlite).await.unwrap();
    // Something to find: a case with its village, its plans and a visit.
    run.seed(2, 2).await;
    let token = keys().token(
        "caseworker-1",
        AGENCY,
        &[
            Role::Caseworker,
            Role::TeamLead,
            Role::AgencyAdmin,
            Role::Auditor,
            Role::Service,
            Role::Portal,
        ],
    );
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/requests");
    let mut corpus: Vec<Vec<u8>> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| std::fs::read(e.ok()?.path()).ok())
        .collect();
    corpus.sort();
    // Each input, and three mutants of it (a byte changed, a byte put in, the end cut off), as a
    // mutating fuzzer would make them; `LANDSBY_HOSTILE_SEED` repeats a run.
    let seed = super::seed("LANDSBY_HOSTILE_SEED");
    eprintln!("hostile input: LANDSBY_HOSTILE_SEED={seed}");
    let mut rng = landsby_bench::load::Rng::new(seed);
    let mut inputs: Vec<(String, Vec<u8>)> = Vec::new();
    for data in &corpus {
        let mut versions = vec![data.clone()];
        if data.len() > 1 {
            let mut changed = data.clone();
            let at = 1 + rng.below(data.len() - 1);
            changed[at] = rng.next_u64() as u8;
            let mut grown = data.clone();
            grown.insert(1 + rng.below(data.len()), rng.next_u64() as u8);
            let mut cut = data.clone();
            cut.truncate(1 + rng.below(data.len() - 1));
            versions.extend([changed, grown, cut]);
        }
        inputs.extend(
            versions
                .iter()
                .filter_map(|v| landsby_proto::fuzz::request_of(v)),
        );
    }
    // And every request message empty, so that every RPC is reached whatever the corpus holds.
    inputs.extend((0..=u8::MAX).filter_map(|pick| landsby_proto::fuzz::request_of(&[pick])));
    assert!(inputs.len() > 1000, "{} inputs that decode", inputs.len());

    // Four callers at once, each through its own share of the inputs.
    let suite = run.suite.clone();
    let mut tasks = Vec::new();
    for share in 0..4 {
        let mine: Vec<(String, Vec<u8>)> = inputs.iter().skip(share).step_by(4).cloned().collect();
        let (suite, token) = (suite.clone(), token.clone());
        tasks.push(tokio::spawn(async move {
            let mut seen: BTreeMap<(String, i32), u32> = BTreeMap::new();
            for (method, body) in mine {
                let channel = match method.split('/').nth(1).unwrap_or_default() {
                    "landsby.visitation.v1.VisitationService" => &suite.visitation,
                    "landsby.notification.v1.NotificationService" => &suite.notification,
                    "landsby.worker.v1.WorkerAdminService" => &suite.worker,
                    _ => &suite.case,
                };
                let code = match call(channel, &token, &method, body).await {
                    Ok(()) => Code::Ok,
                    // Bad input is told which fields are wrong.
                    Err(s) if s.code() == Code::InvalidArgument => {
                        assert!(
                            !landsby_testkit::status::violated_fields(&s).is_empty(),
                            "{method}: INVALID_ARGUMENT without the fields: {s:?}"
                        );
                        Code::InvalidArgument
                    }
                    Err(s) => s.code(),
                };
                *seen.entry((method, code as i32)).or_default() += 1;
            }
            seen
        }));
    }
    let mut seen: BTreeMap<(String, i32), u32> = BTreeMap::new();
    for task in tasks {
        for (key, n) in task.await.unwrap() {
            *seen.entry(key).or_default() += n;
        }
    }
    let mut by_code: BTreeMap<String, u32> = BTreeMap::new();
    for ((_, code), n) in &seen {
        *by_code
            .entry(format!("{:?}", Code::from(*code)))
            .or_default() += n;
    }
    let methods: std::collections::BTreeSet<&String> = seen.keys().map(|(m, _)| m).collect();
    eprintln!(
        "hostile input: {} inputs to {} RPCs, answered {by_code:?}",
        inputs.len(),
        methods.len()
    );
    for ((method, code), n) in &seen {
        let code = Code::from(*code);
        assert!(
            !matches!(
                code,
                Code::Internal | Code::Unknown | Code::DataLoss | Code::Unavailable
            ),
            "{method}: {n} answered {code:?}"
        );
    }
    assert_eq!(methods.len(), 64, "every RPC reached");

    // Every process still serves.
    for channel in [
        &suite.case,
        &suite.visitation,
        &suite.notification,
        &suite.worker,
    ] {
        assert_eq!(
            landsby_testkit::health(channel).await,
            Some(landsby_testkit::ServingStatus::Serving)
        );
    }
}
