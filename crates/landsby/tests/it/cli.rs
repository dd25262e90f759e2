//! The `landsby` command as a user runs it: `landsby up`, then `landsby token`, then a call with the
//! token, then Ctrl-C.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use landsby_proto::case::{self as pb, case_service_client::CaseServiceClient};
use landsby_proto::notification::{
    self as npb, notification_service_client::NotificationServiceClient,
};
use landsby_proto::visitation::{self as vpb, visitation_service_client::VisitationServiceClient};
use landsby_testkit::process::Spawned;
use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

fn landsby() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_landsby"));
    command.env_clear();
    command
}

fn token(data_dir: &std::path::Path, extra: &[&str]) -> std::process::Output {
    landsby()
        .arg("token")
        .arg("--data-dir")
        .arg(data_dir)
        .args(extra)
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_serves_every_service_and_a_dev_token_from_the_same_data_dir_works() {
    let dir = tempfile::tempdir().unwrap();
    let mut command = landsby();
    command
        .arg("up")
        .arg("--data-dir")
        .arg(dir.path())
        .env("LANDSBY_CASE__LISTEN", "127.0.0.1:0")
        .env("LANDSBY_VISITATION__LISTEN", "127.0.0.1:0")
        .env("LANDSBY_NOTIFICATION__LISTEN", "127.0.0.1:0");
    let mut up = Spawned::start(command);
    let addr: SocketAddr = up.wait_for(Duration::from_secs(60), |line| {
        let rest = line.trim().strip_prefix("case")?;
        rest.split_whitespace().next()?.parse().ok()
    });
    let visitation: SocketAddr = up.wait_for(Duration::from_secs(5), |line| {
        let rest = line.trim().strip_prefix("visitation")?;
        rest.split_whitespace().next()?.parse().ok()
    });
    let notification: SocketAddr = up.wait_for(Duration::from_secs(5), |line| {
        let rest = line.trim().strip_prefix("notification")?;
        rest.split_whitespace().next()?.parse().ok()
    });
    let hint = up.wait_for(Duration::from_secs(5), |l| {
        l.starts_with("Get a token:").then(|| l.to_owned())
    });
    assert!(hint.contains("landsby token"), "{hint}");

    let output = token(
        dir.path(),
        &[
            "--role",
            "caseworker",
            "--agency",
            "0301",
            "--subject",
            "kari",
        ],
    );
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8(output.stdout).unwrap();
    let token = stdout.lines().last().unwrap().trim().to_owned();
    assert_eq!(
        token.split('.').count(),
        3,
        "the last line is the token alone: {stdout}"
    );

    let channel = landsby_testkit::plain_channel(addr);
    landsby_testkit::wait_for_health(&channel, landsby_testkit::ServingStatus::Serving).await;
    let mut client = CaseServiceClient::new(channel);
    let list = client
        .list_cases(landsby_testkit::authed(
            &token,
            pb::ListCasesRequest::default(),
        ))
        .await
        .unwrap();
    assert!(list.into_inner().cases.is_empty());
    let err = client
        .list_cases(pb::ListCasesRequest::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unauthenticated);

    // The visitation service reaches the case service where it really listens (port 0 above): a
    // case that does not exist there is NOT_FOUND, not UNAVAILABLE.
    let channel = landsby_testkit::plain_channel(visitation);
    landsby_testkit::wait_for_health(&channel, landsby_testkit::ServingStatus::Serving).await;
    let mut visits = VisitationServiceClient::new(channel);
    let err = visits
        .schedule_visit(landsby_testkit::authed(
            &token,
            vpb::ScheduleVisitRequest {
                request_id: String::new(),
                visit: Some(vpb::Visit {
                    case_id: "0195b7a4-0000-7000-8000-000000000001".into(),
                    parent_id: "0195b7a4-0000-7000-8000-000000000002".into(),
                    local_start: Some(landsby_proto::common::LocalDateTime {
                        date: Some(landsby_proto::common::Date {
                            year: 2027,
                            month: 3,
                            day: 2,
                        }),
                        time: Some(landsby_proto::common::TimeOfDay {
                            hours: 17,
                            minutes: 0,
                        }),
                    }),
                    duration_minutes: 90,
                    ..Default::default()
                }),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::NotFound, "{err:?}");

    // The notification service answers too: a recipient with no preferences gets the defaults.
    let channel = landsby_testkit::plain_channel(notification);
    landsby_testkit::wait_for_health(&channel, landsby_testkit::ServingStatus::Serving).await;
    let mut notify = NotificationServiceClient::new(channel);
    let prefs = notify
        .get_preferences(landsby_testkit::authed(
            &token,
            npb::GetPreferencesRequest {
                recipient_id: "0195b7a4-0000-7000-8000-000000000002".into(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .preferences
        .unwrap();
    assert_eq!(prefs.quiet_from.unwrap().hours, 21);

    up.signal("INT");
    let (status, _) = up
        .wait_exit(Duration::from_secs(30))
        .expect("landsby up stops on Ctrl-C");
    assert!(status.success(), "{status:?}");
    // Dev mode without tls.* speaks plain text (as the channels above did), and says so.
    assert!(
        up.output().iter().any(|l| l.contains("PLAIN TEXT")),
        "no plain-text warning"
    );
    for db in ["case.db", "visitation.db", "notification.db"] {
        assert!(
            dir.path().join(db).exists(),
            "{db} lives in the data directory"
        );
    }
}

#[test]
fn token_refuses_unknown_roles_and_agencies_that_are_not_municipality_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let output = token(dir.path(), &["--role", "wizard"]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("unknown role"));
    let output = token(dir.path(), &["--agency", "oslo"]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("municipality"));
    let output = token(dir.path(), &["--role", "team_lead", "--role", "caseworker"]);
    assert!(output.status.success());
}

#[test]
fn config_table_prints_every_setting() {
    let output = landsby().args(["config", "table"]).output().unwrap();
    assert!(output.status.success());
    assert_eq!(
        String::from_utf8(output.stdout).unwrap(),
        landsby_platform::config::settings_table()
    );
}
