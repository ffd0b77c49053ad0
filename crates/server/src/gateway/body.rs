//! Reading a gateway request: the body as one JSON message (an empty body is the empty message, as etcd's
//! gateway takes it), or as a sequence of messages for the client-streaming calls; and the gRPC request the
//! service sees, carrying the HTTP request's headers (the auth token) and connection details.

use axum::body::Body;
use axum::extract::Request;
use bytes::{Buf, BytesMut};
use http_body_util::BodyExt;
use serde::de::DeserializeOwned;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;
use tonic::metadata::MetadataMap;

/// How much larger than the gRPC message limit a JSON body may be before it is refused unread: base64 takes 4
/// bytes for 3, and field names and quoting add more. Below this, the decoded message's size is judged, as
/// etcd's gRPC server judges what its gateway passes on.
const JSON_INFLATION: usize = 8;

/// The gRPC request a service sees for `message`, with the headers and connection details of `parts`.
pub fn grpc_request<T>(parts: axum::http::request::Parts, message: T) -> tonic::Request<T> {
    tonic::Request::from_parts(MetadataMap::from_headers(parts.headers), parts.extensions, message)
}

/// Reads `req`'s body (at most `limit` bytes of protobuf, judged on the message it decodes to) as one `T`.
pub async fn one<T>(req: Request, limit: usize) -> Result<tonic::Request<T>, Status>
where
    T: DeserializeOwned + prost::Message + Default,
{
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, limit.saturating_mul(JSON_INFLATION))
        .await
        .map_err(|e| too_large_or_broken(&e, limit))?;
    let message = decode::<T>(&bytes)?;
    let size = message.encoded_len();
    if size > limit {
        return Err(too_large(size, limit));
    }
    Ok(grpc_request(parts, message))
}

/// Reads `body` as a sequence of JSON messages, yielded as each one is complete; a message that does not parse
/// ends the sequence with its error (`Unknown`, as etcd's gateway reports a stream's decoding errors). The
/// sequence ends with the body.
pub fn many<T>(body: Body, limit: usize) -> ReceiverStream<Result<T, Status>>
where
    T: DeserializeOwned + Send + 'static,
{
    let (tx, rx) = mpsc::channel(16);
    tokio::spawn(async move {
        let mut body = body;
        let mut pending = BytesMut::new();
        loop {
            let frame = tokio::select! {
                frame = body.frame() => frame,
                () = tx.closed() => return,
            };
            let Some(frame) = frame else { break };
            let Ok(data) = frame.map_err(|e| tracing::debug!(error = %e, "gateway stream body")) else { return };
            let Ok(data) = data.into_data() else { continue };
            pending.extend_from_slice(&data);
            if pending.len() > limit.saturating_mul(JSON_INFLATION) {
                let _ = tx.send(Err(too_large(pending.len(), limit))).await;
                return;
            }
            if !drain(&mut pending, &tx, false).await {
                return;
            }
        }
        drain(&mut pending, &tx, true).await;
    });
    ReceiverStream::new(rx)
}

/// Sends every complete message at the front of `pending` and removes it; `end` says no more bytes will come,
/// so a partial message left is an error. Whether the sequence goes on.
async fn drain<T: DeserializeOwned>(pending: &mut BytesMut, tx: &mpsc::Sender<Result<T, Status>>, end: bool) -> bool {
    let mut values = serde_json::Deserializer::from_slice(pending).into_iter::<T>();
    let mut out = Vec::new();
    let mut failed = None;
    for value in values.by_ref() {
        match value {
            Ok(v) => out.push(v),
            Err(e) if e.is_eof() && !end => break,
            Err(e) => {
                failed = Some(Status::unknown(e.to_string()));
                break;
            }
        }
    }
    let used = values.byte_offset();
    pending.advance(used);
    for v in out {
        if tx.send(Ok(v)).await.is_err() {
            return false;
        }
    }
    if let Some(status) = failed {
        let _ = tx.send(Err(status)).await;
        return false;
    }
    true
}

/// `bytes` as a `T`: empty (or only white space) is `T`'s default, as in etcd's gateway.
fn decode<T: DeserializeOwned + Default>(bytes: &[u8]) -> Result<T, Status> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(bytes).map_err(|e| invalid(&e))
}

/// A body that does not parse: `InvalidArgument`, as grpc-gateway answers its decoder's errors.
fn invalid(e: &serde_json::Error) -> Status {
    Status::invalid_argument(e.to_string())
}

/// grpc-go's words for a message over the receive limit (etcd's gateway passes the body on to its gRPC server,
/// which refuses it so).
fn too_large(size: usize, limit: usize) -> Status {
    Status::resource_exhausted(format!("grpc: received message larger than max ({size} vs. {limit})"))
}

fn too_large_or_broken(e: &axum::Error, limit: usize) -> Status {
    let length_limited = std::error::Error::source(e).is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
    if length_limited {
        too_large(limit.saturating_mul(JSON_INFLATION) + 1, limit)
    } else {
        Status::invalid_argument(format!("reading the request body: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use meridian_proto::etcdserverpb::{PutRequest, RangeRequest};

    use super::*;

    #[test]
    fn an_empty_body_is_the_empty_message() {
        assert_eq!(decode::<RangeRequest>(b"").unwrap(), RangeRequest::default());
        assert_eq!(decode::<RangeRequest>(b" \n").unwrap(), RangeRequest::default());
    }

    #[test]
    fn fields_are_named_as_in_the_proto_and_bytes_are_base64() {
        let put: PutRequest = decode(br#"{"key":"YQ==","value":"Yg==","lease":"7","prev_kv":true}"#).unwrap();
        assert_eq!((put.key.as_slice(), put.value.as_slice(), put.lease, put.prev_kv), (&b"a"[..], &b"b"[..], 7, true));
        // Numbers are taken for 64-bit fields too, and fields etcd does not know are ignored, as etcd does.
        let put: PutRequest = decode(br#"{"key":"YQ==","lease":7,"bogus":1}"#).unwrap();
        assert_eq!(put.lease, 7);
    }

    #[test]
    fn malformed_bodies_are_invalid_arguments() {
        for body in [&br#"{"key":"#[..], br#"{"key":5}"#, b"[1]", br#"{"lease":"x"}"#] {
            let status = decode::<PutRequest>(body).unwrap_err();
            assert_eq!(status.code(), tonic::Code::InvalidArgument, "{}", String::from_utf8_lossy(body));
        }
    }

    #[tokio::test]
    async fn a_stream_of_messages_is_split_where_each_ends() {
        let body = Body::from(r#"{"key":"YQ=="} {"key":"Yg=="}{"key":"#);
        let got: Vec<Result<RangeRequest, Status>> = tokio_stream::StreamExt::collect(many(body, 1024)).await;
        assert_eq!(got.len(), 3, "two messages, then the truncated one's error");
        assert_eq!(got[0].as_ref().unwrap().key, b"a");
        assert_eq!(got[1].as_ref().unwrap().key, b"b");
        assert_eq!(got[2].as_ref().unwrap_err().code(), tonic::Code::Unknown);
    }
}
