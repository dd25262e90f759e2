//! For the fuzz targets (`fuzz/`) and the replay of their corpus in the tests: bytes decoded as one
//! of landsby's request messages, chosen by the first byte. Decoding must never panic, and what
//! decodes must encode and decode again to the same message.

/// Decodes `data[1..]` as the request message `data[0]` picks; panics if a decoded message does
/// not survive encoding and decoding again.
pub fn decode_any_request(data: &[u8]) {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    macro_rules! requests {
        ($($t:ty),* $(,)?) => {{
            let decoders: &[fn(&[u8])] = &[$(|b| {
                if let Ok(m) = <$t as prost::Message>::decode(b) {
                    let again = prost::Message::encode_to_vec(&m);
                    match <$t as prost::Message>::decode(again.as_slice()) {
                        Ok(back) => assert_eq!(back, m, "{} changed in a round trip", stringify!($t)),
                        Err(e) => panic!("{} does not decode after encoding: {e}", stringify!($t)),
                    }
                }
            }),*];
            decoders[usize::from(pick) % decoders.len()](body);
        }};
    }
    requests!(
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
    );
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
}
