//! Fixtures for the case service's tests: the shared ones from the testkit, and the case server.

pub use landsby_testkit::case::*;
pub use landsby_testkit::status::*;
use landsby_testkit::{Backend, TestServer};

/// Starts the case service on `backend`.
pub async fn server(backend: Backend) -> TestServer {
    TestServer::start(landsby_case::SERVICE, backend).await
}
