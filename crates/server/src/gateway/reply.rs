//! Writing gateway answers as etcd's gateway does: a message as JSON with status 200; an error as the HTTP
//! status grpc-gateway maps its gRPC code to, with `{"error","message","code"}`; and, inside a stream, each
//! message as `{"result":…}` and an error as `{"error":{"grpc_code","http_code","message","http_status"}}`, one
//! per line.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tonic::{Code, Status};

/// grpc-gateway's error body, its fields in its order.
#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    message: &'a str,
    code: i32,
}

/// An error line of a stream.
#[derive(Serialize)]
struct StreamErrorLine<'a> {
    error: StreamError<'a>,
}

#[derive(Serialize)]
struct StreamError<'a> {
    grpc_code: i32,
    http_code: u16,
    message: &'a str,
    http_status: &'a str,
}

/// `message` as a 200 answer.
pub fn ok<T: Serialize>(message: &T) -> Response {
    match serde_json::to_vec(message) {
        Ok(body) => json_response(StatusCode::OK, body),
        Err(e) => error(&Status::internal(format!("encoding the answer: {e}"))),
    }
}

/// `status` as grpc-gateway's error answer.
pub fn error(status: &Status) -> Response {
    let body = ErrorBody { error: status.message(), message: status.message(), code: status.code() as i32 };
    let bytes = serde_json::to_vec(&body).unwrap_or_default();
    json_response(http_status(status.code()), bytes)
}

/// One line of a streamed answer: `{"result":message}`.
pub fn stream_result<T: Serialize>(message: &T) -> Vec<u8> {
    let mut line = b"{\"result\":".to_vec();
    match serde_json::to_writer(&mut line, message) {
        Ok(()) => {
            line.extend_from_slice(b"}\n");
            line
        }
        Err(e) => stream_error(&Status::internal(format!("encoding the answer: {e}"))),
    }
}

/// One line of a streamed answer that ends it with `status`.
pub fn stream_error(status: &Status) -> Vec<u8> {
    let http = http_status(status.code());
    let line = StreamErrorLine {
        error: StreamError {
            grpc_code: status.code() as i32,
            http_code: http.as_u16(),
            message: status.message(),
            http_status: http.canonical_reason().unwrap_or_default(),
        },
    };
    let mut bytes = serde_json::to_vec(&line).unwrap_or_default();
    bytes.push(b'\n');
    bytes
}

/// The HTTP status grpc-gateway v1 answers a gRPC `code` with.
pub fn http_status(code: Code) -> StatusCode {
    match code {
        Code::Ok => StatusCode::OK,
        Code::Cancelled => StatusCode::REQUEST_TIMEOUT,
        Code::InvalidArgument | Code::OutOfRange => StatusCode::BAD_REQUEST,
        Code::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
        Code::NotFound => StatusCode::NOT_FOUND,
        Code::AlreadyExists | Code::Aborted => StatusCode::CONFLICT,
        Code::PermissionDenied => StatusCode::FORBIDDEN,
        Code::Unauthenticated => StatusCode::UNAUTHORIZED,
        Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        Code::FailedPrecondition => StatusCode::PRECONDITION_FAILED,
        Code::Unimplemented => StatusCode::NOT_IMPLEMENTED,
        Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Code::Unknown | Code::Internal | Code::DataLoss => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

fn json_response(status: StatusCode, body: Vec<u8>) -> Response {
    let mut res = (status, body).into_response();
    res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_carry_etcds_code_and_message_twice() {
        let res = error(&Status::not_found("etcdserver: requested lease not found"));
        assert_eq!(res.status(), StatusCode::NOT_FOUND);
        let res = error(&Status::failed_precondition("etcdserver: authentication is not enabled"));
        assert_eq!(res.status(), StatusCode::PRECONDITION_FAILED);
    }

    #[test]
    fn stream_errors_have_the_stream_shape() {
        let line = stream_error(&Status::invalid_argument("etcdserver: no valid range"));
        let v: serde_json::Value = serde_json::from_slice(&line).unwrap();
        assert_eq!(v["error"]["grpc_code"], 3);
        assert_eq!(v["error"]["http_code"], 400);
        assert_eq!(v["error"]["http_status"], "Bad Request");
        assert_eq!(v["error"]["message"], "etcdserver: no valid range");
        assert!(line.ends_with(b"\n"));
    }
}
