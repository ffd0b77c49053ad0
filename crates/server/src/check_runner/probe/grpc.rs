//! The gRPC probe: `grpc.health.v1.Health/Check` over a plain HTTP/2 channel to the target, made through the
//! member's network like its peer channels; `SERVING` is passing. TLS targets are not probed yet: they fail with
//! a message saying so.

use std::sync::Arc;

use meridian_proto::grpc_health_v1::HealthCheckRequest;
use meridian_proto::grpc_health_v1::health_client::HealthClient;
use meridian_registry::Outcome;
use meridian_registry::check::{GrpcCheck, GrpcServing};
use tonic::transport::Endpoint;

use crate::net::{Network, lazy_channel};

/// Asks the target's health service about the check's service (or the server as a whole).
pub async fn probe(net: &Arc<dyn Network>, check: &GrpcCheck) -> (Outcome, String) {
    if check.tls {
        return check.judge(Err("gRPC checks over TLS are not supported yet"));
    }
    let endpoint = match Endpoint::from_shared(format!("http://{}", check.target)) {
        Ok(endpoint) => endpoint,
        Err(e) => return check.judge(Err(&e.to_string())),
    };
    let mut client = HealthClient::new(lazy_channel(net, endpoint));
    let request = HealthCheckRequest { service: check.service.clone().unwrap_or_default() };
    match client.check(request).await {
        Ok(answer) => check.judge(Ok(GrpcServing::from_wire(answer.into_inner().status))),
        Err(status) => check.judge(Err(&format!("{}: {}", status.code(), status.message()))),
    }
}
