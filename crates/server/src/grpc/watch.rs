//! The etcd `Watch` service: one bidirectional stream carries many watches. Requests are handled in arrival
//! order; responses (created/canceled/events/progress) share one bounded channel per stream, fed by the
//! [`WatchHub`](crate::watch_hub::WatchHub).

use std::sync::Arc;

use meridian_proto::etcdserverpb::watch_server::Watch;
use meridian_proto::etcdserverpb::{WatchRequest, WatchResponse, watch_request::RequestUnion};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::codegen::BoxStream;
use tonic::{Request, Response, Status, Streaming};

use crate::member::Member;

/// Responses buffered per stream before its watchers fall back to catch-up from history.
const STREAM_BUFFER: usize = 256;

/// The Watch service of one member.
pub struct WatchService {
    member: Arc<Member>,
}

impl WatchService {
    /// Serves watches on `member`.
    pub fn new(member: Arc<Member>) -> Self {
        WatchService { member }
    }
}

#[tonic::async_trait]
impl Watch for WatchService {
    async fn watch(
        &self,
        request: Request<Streaming<WatchRequest>>,
    ) -> Result<Response<BoxStream<WatchResponse>>, Status> {
        let mut inbound = request.into_inner();
        let (tx, rx) = mpsc::channel(STREAM_BUFFER);
        let member = self.member.clone();
        tokio::spawn(async move {
            let hub = member.hub().clone();
            let stream = hub.open_stream();
            while let Ok(Some(msg)) = inbound.message().await {
                let Some(req) = msg.request_union else { continue };
                let reply = match req {
                    RequestUnion::CreateRequest(create) => match hub.create(stream, &create, tx.clone()) {
                        Ok(id) => {
                            let created = WatchResponse {
                                header: Some(member.current_header()),
                                watch_id: id,
                                created: true,
                                ..Default::default()
                            };
                            if tx.send(Ok(created)).await.is_err() {
                                break;
                            }
                            hub.announce(stream, id);
                            continue;
                        }
                        Err(e) => WatchResponse {
                            header: Some(member.current_header()),
                            watch_id: -1,
                            created: true,
                            canceled: true,
                            cancel_reason: e.to_string(),
                            ..Default::default()
                        },
                    },
                    RequestUnion::CancelRequest(cancel) => {
                        if !hub.cancel(stream, cancel.watch_id) {
                            continue;
                        }
                        WatchResponse {
                            header: Some(member.current_header()),
                            watch_id: cancel.watch_id,
                            canceled: true,
                            ..Default::default()
                        }
                    }
                    RequestUnion::ProgressRequest(_) => {
                        let rev = hub.progress_revision(stream);
                        // Not tied to one watch: etcd marks it with watch id -1.
                        WatchResponse { header: Some(member.header(rev)), watch_id: -1, ..Default::default() }
                    }
                };
                if tx.send(Ok(reply)).await.is_err() {
                    break;
                }
            }
            hub.close_stream(stream);
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}
