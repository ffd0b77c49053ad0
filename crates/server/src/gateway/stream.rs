//! The streaming calls over HTTP/1.1: the answer is chunked, one JSON object per line. A client-streaming call
//! (watch, lease keep-alive) reads its requests from the body as they arrive; a server-streaming one (snapshot,
//! observe) takes one request. A watch stays open after the body ends, as etcd's gateway keeps it; a keep-alive
//! ends with its body. An error ends the stream with a line in the stream's error shape.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use meridian_proto::etcdserverpb::{LeaseKeepAliveRequest, WatchRequest};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::{Stream, StreamExt};
use tonic::Status;

use super::body::{self, grpc_request};
use super::reply;
use crate::access;
use crate::auth::CallerSource;
use crate::member::Member;

/// Lines of a streamed answer buffered before the writer waits for the client.
const LINES_BUFFERED: usize = 64;

/// `POST /v3/watch`.
pub async fn watch(member: Arc<Member>, req: Request, limit: usize) -> Response {
    let (parts, body) = req.into_parts();
    let source = CallerSource::of(&grpc_request(parts, ()));
    relay::<WatchRequest, _, _>(body, limit, true, move |inbound| crate::grpc::watch::serve(member, source, inbound))
        .await
}

/// `POST /v3/lease/keepalive`.
pub async fn keep_alive(member: Arc<Member>, req: Request, limit: usize) -> Response {
    let (parts, body) = req.into_parts();
    if let Err(status) = access::user(&member, &grpc_request(parts, ())) {
        return reply::error(&status);
    }
    relay::<LeaseKeepAliveRequest, _, _>(body, limit, false, move |inbound| {
        crate::grpc::lease::keep_alive_stream(member, inbound.map(|req| req.id))
    })
    .await
}

/// A server-streaming call's answer: `answers` as lines, or `status` as the error answer if it failed at once.
pub fn lines<T, S>(answers: Result<tonic::Response<S>, Status>) -> Response
where
    T: Serialize + Send + 'static,
    S: Stream<Item = Result<T, Status>> + Send + 'static,
{
    let answers = match answers {
        Ok(answers) => answers.into_inner(),
        Err(status) => return reply::error(&status),
    };
    let (out, rx) = mpsc::channel(LINES_BUFFERED);
    tokio::spawn(async move {
        let mut answers = std::pin::pin!(answers);
        loop {
            let answer = tokio::select! {
                answer = answers.next() => answer,
                () = out.closed() => return,
            };
            let (line, last) = match answer {
                Some(Ok(message)) => (reply::stream_result(&message), false),
                Some(Err(status)) => (reply::stream_error(&status), true),
                None => return,
            };
            if out.send(Bytes::from(line)).await.is_err() || last {
                return;
            }
        }
    });
    streamed(rx)
}

/// A client-streaming call: the requests read from `body` go to the stream `serve` answers, whose answers go
/// back as lines. `keep_open`: the call goes on after the body ends (a watch). A first request that does not
/// parse is answered as a unary error, before the stream starts, as etcd's gateway does.
async fn relay<Req, Resp, S>(
    body: Body,
    limit: usize,
    keep_open: bool,
    serve: impl FnOnce(ReceiverStream<Req>) -> S,
) -> Response
where
    Req: DeserializeOwned + Send + 'static,
    Resp: Serialize + Send + 'static,
    S: Stream<Item = Result<Resp, Status>> + Send + 'static,
{
    let mut requests = body::many::<Req>(body, limit);
    let first = match requests.next().await {
        Some(Ok(first)) => Some(first),
        Some(Err(status)) => return reply::error(&status),
        None => None,
    };
    let (req_tx, req_rx) = mpsc::channel(16);
    if let Some(first) = first {
        // Room for it: the channel is new.
        let _ = req_tx.try_send(first);
    }
    let answers = serve(ReceiverStream::new(req_rx));
    let (out, rx) = mpsc::channel(LINES_BUFFERED);
    tokio::spawn(async move {
        let mut answers = std::pin::pin!(answers);
        let mut req_tx = Some(req_tx);
        let mut reading = true;
        loop {
            let line = tokio::select! {
                request = requests.next(), if reading => match request {
                    Some(Ok(request)) => {
                        let Some(tx) = &req_tx else { continue };
                        if tx.send(request).await.is_err() {
                            return;
                        }
                        continue;
                    }
                    Some(Err(status)) => reply::stream_error(&status),
                    None => {
                        reading = false;
                        if !keep_open {
                            req_tx = None;
                        }
                        continue;
                    }
                },
                answer = answers.next() => match answer {
                    Some(Ok(message)) => {
                        if out.send(Bytes::from(reply::stream_result(&message))).await.is_err() {
                            return;
                        }
                        continue;
                    }
                    Some(Err(status)) => reply::stream_error(&status),
                    None => return,
                },
                () = out.closed() => return,
            };
            // An error line ends the stream.
            let _ = out.send(Bytes::from(line)).await;
            return;
        }
    });
    streamed(rx)
}

fn streamed(lines: mpsc::Receiver<Bytes>) -> Response {
    let body = Body::from_stream(ReceiverStream::new(lines).map(Ok::<_, std::convert::Infallible>));
    let mut res = (StatusCode::OK, body).into_response();
    res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    res
}
