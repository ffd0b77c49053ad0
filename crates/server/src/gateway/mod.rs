//! etcd's HTTP/JSON gateway, served on the client port beside gRPC (same listener, same TLS): `POST
//! /v3/<service>/<method>` with a JSON body, answered in grpc-gateway v1's JSON (the conventions are those of the
//! generated pbjson code in `meridian-proto`), plus `/v3beta/*`, `GET /version` and `GET /health`. Programs that
//! do not speak gRPC, Patroni first, use it.
//!
//! The gateway owns no behaviour of its own: every call goes to the same service implementation a gRPC call
//! reaches, with the same credentials (the `Authorization` header is the token, the connection's TLS identity
//! travels in the request's extensions), so permissions, quotas and errors are exactly the gRPC API's. This
//! module holds only the translation: [`body`] reads a request, [`reply`] writes answers and errors, [`stream`]
//! serves the streaming calls as one JSON object per line, [`routes`] maps paths to calls.

mod body;
mod meta;
mod reply;
mod routes;
mod stream;

pub use routes::router;
