//! Prometheus's HTTP service discovery (`http_sd_configs`): `GET /v1/sd/prometheus` lists every passing or
//! warning instance (of one service with `?service=`) as a target group of its own, labelled with its
//! service, datacenter, zone, node and tags (`,a,b,`, as Prometheus's Consul discovery joins them).

use axum::extract::{Request, State};
use axum::response::Response;
use meridian_kv::PermKind;
use meridian_registry::{Instance, ServiceName, Status};
use serde_json::{Value, json};

use super::reply::{self, done};
use super::{Api, access, begin};

/// `host:port`, bracketing an IPv6 address.
pub fn target(address: &str, port: u16) -> String {
    if address.contains(':') { format!("[{address}]:{port}") } else { format!("{address}:{port}") }
}

/// Tags as one label value: `,a,b,` (empty tags: `,,`, as Prometheus's Consul discovery does).
pub fn tags_label(tags: &[String]) -> String {
    format!(",{},", tags.join(","))
}

/// The target group of one instance.
pub fn group(i: &Instance) -> Value {
    json!({
        "targets": [target(&i.address, i.port)],
        "labels": {
            "__meta_meridian_service": i.service.as_str(),
            "__meta_meridian_service_id": i.id.as_str(),
            "__meta_meridian_dc": i.dc.0,
            "__meta_meridian_zone": i.zone.as_ref().map_or("", |z| z.0.as_str()),
            "__meta_meridian_node": i.node.as_str(),
            "__meta_meridian_tags": tags_label(&i.tags),
        },
    })
}

/// `GET /v1/sd/prometheus` (`?service=`).
pub async fn targets(State(api): State<Api>, req: Request) -> Response {
    done(
        async {
            let call = begin(&api, req).await?;
            let only = match call.params.non_empty("service") {
                Some(name) => Some(ServiceName::new(name).map_err(|e| reply::bad_request(&e.message()))?),
                None => None,
            };
            match &only {
                Some(s) => access::service(api.member(), &call.who, s, PermKind::Read)?,
                None => access::catalog(api.member(), &call.who)?,
            }
            let catalog = api.live().read();
            let groups: Vec<Value> = catalog
                .instances()
                .filter(|s| only.as_ref().is_none_or(|o| s.registration.instance.service == *o))
                .filter(|s| catalog.health(s) != Status::Critical)
                .map(|s| group(&s.registration.instance))
                .collect();
            Ok(reply::json(&groups))
        }
        .await,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_and_tags_are_written_as_prometheus_reads_them() {
        assert_eq!(target("10.0.0.5", 8080), "10.0.0.5:8080");
        assert_eq!(target("::1", 80), "[::1]:80");
        assert_eq!(target("web.example", 443), "web.example:443");
        assert_eq!(tags_label(&["a".into(), "b".into()]), ",a,b,");
        assert_eq!(tags_label(&[]), ",,");
    }
}
