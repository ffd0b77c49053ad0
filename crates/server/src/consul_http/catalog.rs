//! `/v1/catalog/*`: the datacenters (from the cluster membership, nearest first), the services with their
//! tags, one service's instances (`?tag=`, `?dc=`) and the nodes (the members, plus any node registrations
//! name). Answers come from this member's catalog, with blocking queries.

use std::collections::BTreeMap;

use axum::extract::{Path, Request, State};
use axum::response::Response;
use meridian_kv::PermKind;
use meridian_registry::ServiceName;
use meridian_registry::consul::catalog_service;
use serde_json::json;

use super::blocking::answer;
use super::reply;
use super::{Api, access};
use crate::discovery::answer::surroundings;
use crate::discovery::live::Watched;

/// `GET /v1/catalog/datacenters`: every datacenter of the membership, this member's first, then by
/// round-trip time (unmeasured last), then by name.
pub async fn datacenters(State(api): State<Api>) -> Response {
    let member = api.member();
    let rtt = surroundings(member).rtt_ms;
    let own = member.config().dc.0.clone();
    let mut dcs: Vec<String> = member.raft().status().members.values().map(|m| m.dc.clone()).collect();
    dcs.push(own.clone());
    dcs.sort();
    dcs.dedup();
    dcs.retain(|d| !d.is_empty());
    dcs.sort_by_key(|d| (*d != own, rtt.get(&meridian_types::DcName(d.clone())).copied().unwrap_or(u64::MAX)));
    reply::json(&dcs)
}

/// `GET /v1/catalog/services`: service name → the union of its instances' tags.
pub async fn services(State(api): State<Api>, req: Request) -> Response {
    answer(&api, req, Watched::Everything, access::catalog, |_, catalog| {
        let out: BTreeMap<String, Vec<String>> =
            catalog.services().into_iter().map(|(name, tags)| (name.to_string(), tags)).collect();
        Ok(reply::json(&out))
    })
    .await
}

/// `GET /v1/catalog/service/<svc>` (`?tag=`, repeatable: every one must be carried; `?dc=`: only that
/// datacenter's instances).
pub async fn service(State(api): State<Api>, Path(name): Path<String>, req: Request) -> Response {
    let service = match ServiceName::new(name.clone()) {
        Ok(s) => s,
        Err(e) => return reply::indexed(reply::bad_request(&e.message()), 1, api.member()),
    };
    let allowed_service = service.clone();
    answer(
        &api,
        req,
        Watched::Service(service.clone()),
        move |m, who| access::service(m, who, &allowed_service, PermKind::Read),
        |call, catalog| {
            let tags = call.params.all("tag");
            let dc = call.params.non_empty("dc");
            let out: Vec<_> = catalog
                .service(&service)
                .filter(|s| s.registration.instance.has_tags(&tags))
                .filter(|s| dc.is_none_or(|dc| s.registration.instance.dc.0 == dc))
                .map(|s| catalog_service(&s.registration.instance, s.indexes))
                .collect();
            Ok(reply::json(&out))
        },
    )
    .await
}

/// `GET /v1/catalog/nodes`: the cluster's members (address from their client URL) and any other node that
/// has registrations, by name.
pub async fn nodes(State(api): State<Api>, req: Request) -> Response {
    let members: Vec<(String, String, String)> = api
        .member()
        .raft()
        .status()
        .members
        .values()
        .map(|m| (m.name.clone(), url_host(&m.client_url), m.dc.clone()))
        .collect();
    answer(&api, req, Watched::Everything, access::catalog, move |_, catalog| {
        let mut nodes: BTreeMap<String, (String, String)> =
            members.into_iter().map(|(name, addr, dc)| (name, (addr, dc))).collect();
        for stored in catalog.instances() {
            let i = &stored.registration.instance;
            nodes.entry(i.node.to_string()).or_insert_with(|| (i.node_address.clone(), i.dc.0.clone()));
        }
        let out: Vec<_> = nodes
            .into_iter()
            .map(|(node, (address, dc))| {
                json!({
                    "ID": "", "Node": node, "Address": address, "Datacenter": dc,
                    "TaggedAddresses": {}, "Meta": {}, "CreateIndex": 1, "ModifyIndex": 1,
                })
            })
            .collect();
        Ok(reply::json(&out))
    })
    .await
}

/// The host of a URL such as `http://10.0.0.1:2379` (the URL itself when it has no scheme or port).
pub fn url_host(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r).trim_end_matches('/');
    match rest.rsplit_once(':') {
        Some((host, _)) => host.trim_start_matches('[').trim_end_matches(']').to_owned(),
        None => rest.to_owned(),
    }
}

/// The `host:port` of a URL such as `https://10.0.0.1:2380`.
pub fn url_authority(url: &str) -> String {
    url.split_once("://").map_or(url, |(_, r)| r).trim_end_matches('/').to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_and_authorities_come_out_of_member_urls() {
        assert_eq!(url_host("http://10.0.0.1:2379"), "10.0.0.1");
        assert_eq!(url_host("https://[::1]:2379/"), "::1");
        assert_eq!(url_host("node-a"), "node-a");
        assert_eq!(url_authority("https://10.0.0.1:2380/"), "10.0.0.1:2380");
        assert_eq!(url_authority("127.0.0.1:2380"), "127.0.0.1:2380");
    }
}
