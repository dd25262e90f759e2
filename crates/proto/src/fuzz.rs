//! For the fuzz targets (`fuzz/`) and the replay of their corpus in the tests: bytes decoded as one
//! of landsby's request messages, chosen by the first byte. Decoding must never panic, and what
//! decodes must encode and decode again to the same message.

/// Calls `$then!` with every request message of the five services, in a fixed order (the first
/// byte of a fuzz input picks one of them).
macro_rules! each_request {
    ($then:ident) => {
        $then!(
            crate::audit::ListAuditEventsRequest,
            crate::audit::ListCaseAccessRequest,
            crate::case::AddCareTaskRequest,
            crate::case::AddFollowUpGoalRequest,
            crate::case::AddVillageMemberRequest,
            crate::case::ApproveDecisionRequest,
            crate::case::BatchGetCaseSnapshotsRequest,
            crate::case::BatchSyncDueReviewsRequest,
            crate::case::BatchSyncVisitFactsRequest,
            crate::case::BreakGlassRequest,
            crate::case::CloseCaseRequest,
            crate::case::CompleteReviewRequest,
            crate::case::CreateCaseRequest,
            crate::case::GetCaseRequest,
            crate::case::GetReadinessRequest,
            crate::case::ListBoardDecisionsRequest,
            crate::case::ListCareTasksRequest,
            crate::case::ListCasesRequest,
            crate::case::ListFamilyGroupConferencesRequest,
            crate::case::ListFollowUpGoalsRequest,
            crate::case::ListReviewsRequest,
            crate::case::ListVillageMembersRequest,
            crate::case::MoveCareTaskRequest,
            crate::case::RecordBoardDecisionRequest,
            crate::case::RecordConferenceOutcomeRequest,
            crate::case::ReduceFollowUpVisitsRequest,
            crate::case::RejectDecisionRequest,
            crate::case::RemoveVillageMemberRequest,
            crate::case::ScheduleFamilyGroupConferenceRequest,
            crate::case::ScheduleReviewRequest,
            crate::case::UpdateCaseRequest,
            crate::case::UpdateFollowUpGoalRequest,
            crate::case::UpdateVillageMemberRequest,
            crate::case::WaiveFamilyGroupConferenceRequest,
            crate::case::WatchEventsRequest,
            crate::notification::BatchSendNotificationsRequest,
            crate::notification::GetNotificationRequest,
            crate::notification::GetPreferencesRequest,
            crate::notification::ListInboxRequest,
            crate::notification::ListNotificationsRequest,
            crate::notification::MarkInboxReadRequest,
            crate::notification::PurgeNotificationsRequest,
            crate::notification::SendNotificationRequest,
            crate::notification::SetPreferencesRequest,
            crate::visitation::AdjustVisitationPlanRequest,
            crate::visitation::BatchApplyComputedScopesRequest,
            crate::visitation::BatchGetCaseVisitationRequest,
            crate::visitation::CancelVisitRequest,
            crate::visitation::CompleteVisitRequest,
            crate::visitation::ConfirmVisitRequest,
            crate::visitation::GetVisitRequest,
            crate::visitation::GetVisitationPlanRequest,
            crate::visitation::ListScopeVersionsRequest,
            crate::visitation::ListVisitationPlansRequest,
            crate::visitation::ListVisitsRequest,
            crate::visitation::ProposeScheduleRequest,
            crate::visitation::RecordNoShowRequest,
            crate::visitation::ScheduleVisitRequest,
            crate::visitation::UpdateVisitRequest,
            crate::visitation::WatchEventsRequest,
            crate::worker::GetSweepStatusRequest,
            crate::worker::ListJobsRequest,
            crate::worker::RetryJobRequest,
            crate::worker::TriggerSweepRequest,
        )
    };
}

/// Decodes `data[1..]` as the request message `data[0]` picks; panics if a decoded message does
/// not survive encoding and decoding again.
pub fn decode_any_request(data: &[u8]) {
    let _ = request_of(data);
}

/// The request message `data[0]` picks, decoded from `data[1..]` as a server's codec decodes it:
/// its gRPC method (`/landsby.case.v1.CaseService/GetCase`) and its encoding; `None` when the bytes
/// do not decode as that message. Panics if a decoded message does not survive encoding and
/// decoding again.
pub fn request_of(data: &[u8]) -> Option<(String, Vec<u8>)> {
    let (&pick, body) = data.split_first()?;
    macro_rules! decoders {
        ($($t:ty),* $(,)?) => {{
            let decoders: &[fn(&[u8]) -> Option<(&'static str, Vec<u8>)>] = &[$(|b| {
                let m = <$t as prost::Message>::decode(b).ok()?;
                let again = prost::Message::encode_to_vec(&m);
                match <$t as prost::Message>::decode(again.as_slice()) {
                    Ok(back) => assert_eq!(back, m, "{} changed in a round trip", stringify!($t)),
                    Err(e) => panic!("{} does not decode after encoding: {e}", stringify!($t)),
                }
                Some((stringify!($t), again))
            }),*];
            decoders[usize::from(pick) % decoders.len()](body)
        }};
    }
    let (name, encoded) = each_request!(decoders)?;
    Some((method(name)?, encoded))
}

/// `crate::case::GetCaseRequest` as its gRPC method, `/landsby.case.v1.CaseService/GetCase`.
fn method(type_path: &str) -> Option<String> {
    let path: String = type_path.chars().filter(|c| !c.is_whitespace()).collect();
    let mut parts = path.rsplit("::");
    let rpc = parts.next()?.strip_suffix("Request")?;
    let service = match parts.next()? {
        "audit" => "landsby.audit.v1.AuditService",
        "case" => "landsby.case.v1.CaseService",
        "notification" => "landsby.notification.v1.NotificationService",
        "visitation" => "landsby.visitation.v1.VisitationService",
        "worker" => "landsby.worker.v1.WorkerAdminService",
        _ => return None,
    };
    Some(format!("/{service}/{rpc}"))
}

#[cfg(test)]
mod tests {
    /// Every input in the fuzz corpus (`fuzz/corpus/requests`), replayed on every test run.
    #[test]
    fn the_fuzz_corpus_of_request_messages_replays_without_a_panic() {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/requests");
        let mut n = 0;
        for entry in std::fs::read_dir(&dir).expect("the corpus") {
            super::decode_any_request(
                &std::fs::read(entry.expect("an entry").path()).expect("a file"),
            );
            n += 1;
        }
        assert!(n > 0, "an empty corpus in {}", dir.display());
    }

    /// Each pick names a different RPC that the contracts have, and every request message with no
    /// fields set decodes as itself; together, every request message of the contracts is reached.
    #[test]
    fn every_pick_is_an_rpc_of_the_contracts_and_every_rpc_has_a_pick() {
        use prost::Message;
        let set = prost_types::FileDescriptorSet::decode(crate::FILE_DESCRIPTOR_SET).unwrap();
        let mut rpcs = std::collections::BTreeSet::new();
        for file in set
            .file
            .iter()
            .filter(|f| f.package().starts_with("landsby."))
        {
            for service in &file.service {
                for method in &service.method {
                    rpcs.insert(format!(
                        "/{}.{}/{}",
                        file.package(),
                        service.name(),
                        method.name()
                    ));
                }
            }
        }
        let mut picked = std::collections::BTreeSet::new();
        for pick in 0..=u8::MAX {
            let (method, encoded) = super::request_of(&[pick]).unwrap();
            assert!(encoded.is_empty());
            assert!(
                rpcs.contains(&method),
                "{method} is not an RPC of the contracts"
            );
            picked.insert(method);
        }
        assert_eq!(picked, rpcs, "the picks and the contracts' RPCs");
    }
}
