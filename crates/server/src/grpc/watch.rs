//! The etcd `Watch` service: one bidirectional stream carries many watches. Requests are handled in arrival
//! order; responses (created/canceled/events/progress) share one bounded channel per stream, fed by the
//! [`WatchHub`](crate::watch_hub::WatchHub).

use std::sync::Arc;

use meridian_kv::PermKind;
use meridian_proto::etcdserverpb::watch_server::Watch;
use meridian_proto::etcdserverpb::{WatchCreateRequest, WatchRequest, WatchResponse, watch_request::RequestUnion};
use meridian_types::EtcdError;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::{Stream, StreamExt};
use tonic::codegen::BoxStream;
use tonic::{Request, Response, Status, Streaming};

use crate::auth::CallerSource;
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
        // Credentials are those the stream opened with; each watch is judged when it is created, on the whole
        // range it watches.
        let source = CallerSource::of(&request);
        let inbound = request.into_inner().map_while(Result::ok);
        Ok(Response::new(Box::pin(serve(self.member.clone(), source, inbound))))
    }
}

/// Serves one watch stream for `source`: the requests of `inbound`, in order, answered on the returned stream.
/// The stream's watches end when the answer is dropped (the client went away) or `inbound` ends; the JSON
/// gateway keeps `inbound` open after its request body, as etcd's does.
pub fn serve(
    member: Arc<Member>,
    source: CallerSource,
    inbound: impl Stream<Item = WatchRequest> + Send + 'static,
) -> ReceiverStream<Result<WatchResponse, Status>> {
    let (tx, rx) = mpsc::channel(STREAM_BUFFER);
    tokio::spawn(async move {
        let hub = member.hub().clone();
        let stream = hub.open_stream();
        let mut inbound = std::pin::pin!(inbound);
        loop {
            let msg = tokio::select! {
                msg = inbound.next() => msg,
                () = tx.closed() => None,
            };
            let Some(msg) = msg else { break };
            let Some(req) = msg.request_union else { continue };
            let reply = match req {
                RequestUnion::CreateRequest(create) => {
                    match permitted(&member, &source, &create).and_then(|()| hub.create(stream, &create, tx.clone())) {
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
                            cancel_reason: cancel_reason(&e),
                            ..Default::default()
                        },
                    }
                }
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
    ReceiverStream::new(rx)
}

/// Whether the stream's caller may read everything `create` watches (its whole range, so a watch cannot see
/// keys a range read would be refused).
fn permitted(member: &Member, source: &CallerSource, create: &WatchCreateRequest) -> Result<(), EtcdError> {
    let who = member.caller(source)?;
    member.kv().read().auth().check_range(&who, &create.key, &create.range_end, PermKind::Read)
}

/// The reason a refused watch is cancelled with: etcd puts the whole gRPC error text there for permission
/// errors (what etcdctl prints), its bare message for the others.
fn cancel_reason(e: &EtcdError) -> String {
    match e {
        EtcdError::PermissionDenied => format!("rpc error: code = PermissionDenied desc = {e}"),
        other => other.to_string(),
    }
}
