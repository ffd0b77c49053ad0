//! The answer to a request over the receive limit, in the words etcd's clients know. tonic refuses such a
//! message with `OutOfRange` ("Error, decoded message length too large: found N bytes, the limit is: M bytes");
//! etcd, on grpc-go, answers `ResourceExhausted` with "grpc: received message larger than max (N vs. M)". A
//! response layer rewrites the first into the second; every other response passes unchanged.

use tonic::codegen::http;

/// Rewrites tonic's oversized-message status in `res` into grpc-go's.
pub fn as_grpc_go<B>(mut res: http::Response<B>) -> http::Response<B> {
    let Some(status) = tonic::Status::from_header_map(res.headers()) else { return res };
    if status.code() != tonic::Code::OutOfRange {
        return res;
    }
    let Some((found, limit)) = sizes(status.message()) else { return res };
    let etcd =
        tonic::Status::resource_exhausted(format!("grpc: received message larger than max ({found} vs. {limit})"));
    if etcd.add_header(res.headers_mut()).is_err() {
        tracing::warn!("could not rewrite an oversized-message status");
    }
    res
}

/// The sizes in tonic's message, if `message` is that one.
fn sizes(message: &str) -> Option<(u64, u64)> {
    let rest = message.strip_prefix("Error, decoded message length too large: found ")?;
    let (found, rest) = rest.split_once(" bytes, the limit is: ")?;
    let limit = rest.strip_suffix(" bytes")?;
    Some((found.parse().ok()?, limit.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: &tonic::Status) -> http::Response<()> {
        let mut res = http::Response::new(());
        status.add_header(res.headers_mut()).unwrap();
        res
    }

    #[test]
    fn tonics_oversize_status_becomes_grpc_gos() {
        let tonic_says = tonic::Status::out_of_range(
            "Error, decoded message length too large: found 2097160 bytes, the limit is: 2097152 bytes",
        );
        let out = tonic::Status::from_header_map(as_grpc_go(response(&tonic_says)).headers()).unwrap();
        assert_eq!(out.code(), tonic::Code::ResourceExhausted);
        assert_eq!(out.message(), "grpc: received message larger than max (2097160 vs. 2097152)");
    }

    #[test]
    fn other_statuses_pass_unchanged() {
        for status in [
            tonic::Status::out_of_range("etcdserver: mvcc: required revision is a future revision"),
            tonic::Status::invalid_argument("etcdserver: key is not provided"),
        ] {
            let out = tonic::Status::from_header_map(as_grpc_go(response(&status)).headers()).unwrap();
            assert_eq!((out.code(), out.message()), (status.code(), status.message()));
        }
        assert!(as_grpc_go(http::Response::new(())).headers().is_empty(), "a response without a status");
    }
}
