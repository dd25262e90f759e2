//! What the visitation service reads from the case service: whether a case is open, the county
//! board's floor and conditions in force today, whether the foster home's address is secret, and
//! the village. Read over gRPC on behalf of the caller (its token, its deadline), so the case service
//! applies its own roles and audits the read. Never cached: a rule is checked against the case as it
//! is now.

use landsby_domain::board::VisitationFloor;
use landsby_platform::ApiError;
use landsby_platform::client::{CaseAccess, OnBehalf, downstream};
use landsby_proto::case as cpb;
use landsby_proto::case::case_service_client::CaseServiceClient;
use std::collections::HashMap;
use tonic::transport::Channel;
use uuid::Uuid;

/// A village member, as the visitation rules need it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Member {
    /// A parent (mother, father, other parent) with a right to visitation.
    pub parent_with_rights: bool,
}

/// A case as the visitation rules need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseFacts {
    /// The case is open.
    pub open: bool,
    /// The case's version now.
    pub version: i64,
    /// The foster home's address is secret (protected, or a board decision in force says so).
    pub secret_address: bool,
    /// The floors of the board decision in force today, per parent.
    pub floors: Vec<VisitationFloor>,
    /// The village, by member id.
    pub members: HashMap<Uuid, Member>,
}

impl CaseFacts {
    /// The board's floor for `parent`, if a decision in force names them.
    pub fn floor_for(&self, parent: Uuid) -> Option<&VisitationFloor> {
        self.floors.iter().find(|f| f.parent_id == parent)
    }
}

/// A client of the case service.
#[derive(Debug, Clone)]
pub struct CaseClient {
    inner: CaseServiceClient<Channel>,
    access: CaseAccess,
}

fn unreadable() -> ApiError {
    ApiError::internal("the case service sent a case this service cannot read")
}

impl CaseClient {
    /// A client over `channel`.
    pub fn new(channel: Channel) -> Self {
        Self {
            inner: CaseServiceClient::new(channel.clone()),
            access: CaseAccess::new(channel),
        }
    }

    /// Need to know of a case, asked of the case service.
    pub fn access(&self) -> &CaseAccess {
        &self.access
    }

    /// The case `case_id` as the caller may see it, with its whole village, in one audited read;
    /// NOT_FOUND when it does not exist for the caller's agency or the caller may not open it.
    pub async fn facts(&self, on_behalf: &OnBehalf, case_id: Uuid) -> Result<CaseFacts, ApiError> {
        let mut client = self.inner.clone();
        let answer = client
            .get_case(on_behalf.request(cpb::GetCaseRequest {
                case_id: case_id.to_string(),
                view: cpb::CaseView::WithVillage.into(),
            }))
            .await
            .map_err(|s| downstream(&s, "case", "case"))?
            .into_inner();
        let case = answer.case.ok_or_else(unreadable)?;
        facts_of(&case, &answer.village)
    }

    /// The cases `ids` (up to 200) as [`facts`](Self::facts) reads one, in one call: the worker's
    /// batch read of the case service, on the worker's behalf. A case the agency does not have is
    /// not in the map.
    pub async fn facts_of_cases(
        &self,
        on_behalf: &OnBehalf,
        ids: &[Uuid],
    ) -> Result<HashMap<Uuid, CaseFacts>, ApiError> {
        let mut client = self.inner.clone();
        let snapshots = client
            .batch_get_case_snapshots(on_behalf.request(cpb::BatchGetCaseSnapshotsRequest {
                case_ids: ids.iter().map(Uuid::to_string).collect(),
            }))
            .await
            .map_err(|s| downstream(&s, "case", "case"))?
            .into_inner()
            .snapshots;
        let mut out = HashMap::new();
        for s in snapshots {
            let case = s.case.as_ref().ok_or_else(unreadable)?;
            let id = Uuid::try_parse(&case.id).map_err(|_| unreadable())?;
            out.insert(id, facts_of(case, &s.members)?);
        }
        Ok(out)
    }
}

/// What the visitation rules need of `case` and its village `members`.
fn facts_of(case: &cpb::Case, members: &[cpb::VillageMember]) -> Result<CaseFacts, ApiError> {
    let protected = case
        .placement
        .as_ref()
        .and_then(|p| p.foster_home.as_ref())
        .is_some_and(|f| f.address_protected);
    let decision = case.board_decision.as_ref();
    let floors = decision
        .map(|d| {
            d.floors
                .iter()
                .map(|f| landsby_platform::vocab::floor_from(f).ok_or_else(unreadable))
                .collect::<Result<Vec<_>, _>>()
        })
        .transpose()?
        .unwrap_or_default();
    let mut by_id = HashMap::new();
    for m in members {
        let id = Uuid::try_parse(&m.id).map_err(|_| unreadable())?;
        let parent = matches!(
            m.role(),
            cpb::VillageRole::Mother | cpb::VillageRole::Father | cpb::VillageRole::OtherParent
        );
        by_id.insert(
            id,
            Member {
                parent_with_rights: parent && m.has_visitation_rights,
            },
        );
    }
    Ok(CaseFacts {
        open: case.status() == cpb::CaseStatus::Open,
        version: case.version,
        secret_address: protected || decision.is_some_and(|d| d.secret_address),
        floors,
        members: by_id,
    })
}
