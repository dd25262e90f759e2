//! WatchEvents: the agency's visitation events after a sequence number, the backlog and then new
//! ones as they commit, from the platform's outbox (`landsby_platform::outbox`), until the client
//! goes or the server shuts down.

use super::{Rpc, VisitationApi};
use landsby_platform::outbox::check_after;
use landsby_proto::visitation as pb;
use std::pin::Pin;
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

/// The stream WatchEvents answers with.
pub type EventStream = Pin<Box<dyn Stream<Item = Result<pb::WatchEventsResponse, Status>> + Send>>;

impl VisitationApi {
    pub(super) async fn handle_watch_events(
        &self,
        request: Request<pb::WatchEventsRequest>,
    ) -> Result<Response<EventStream>, Status> {
        let (caller, call) = self.begin(&request, Rpc::WatchEvents).await?;
        let after = request.get_ref().after_sequence;
        self.auditor.read(call, check_after(after)).await?;
        let stream = self.feed.watch_messages(
            caller.agency.as_str().to_owned(),
            after,
            self.shutdown.clone(),
            |mut event: pb::VisitationEvent, sequence| {
                event.sequence = sequence;
                pb::WatchEventsResponse { event: Some(event) }
            },
        );
        Ok(Response::new(Box::pin(stream)))
    }
}
