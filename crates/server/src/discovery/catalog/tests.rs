//! The catalog follows puts and deletes of registrations and check records, skips what it already has and
//! what does not decode, and keeps per-service change revisions for blocking queries.

use meridian_registry::check::CheckKind;
use meridian_registry::consul::{AgentContext, parse_register};
use meridian_registry::keys::check_key;
use meridian_registry::{CheckDef, NodeName, Timestamp};
use meridian_types::DcName;

use super::*;

fn agent() -> AgentContext {
    AgentContext {
        node: NodeName::new("m1").unwrap(),
        node_address: "127.0.0.1".into(),
        dc: DcName::from("dc-a"),
        zone: None,
        lease: None,
    }
}

fn registration(id: &str) -> Registration {
    let body = format!(
        r#"{{"Name":"web","ID":"{id}","Address":"10.0.0.1","Port":80,"Check":{{"CheckID":"ttl","TTL":"10s"}}}}"#
    );
    parse_register(body.as_bytes(), &agent()).unwrap()
}

fn put(key: &str, value: Vec<u8>, create: i64, modify: i64) -> Event {
    Event {
        r#type: EventType::Put as i32,
        kv: Some(KeyValue {
            key: key.as_bytes().to_vec(),
            value,
            create_revision: create,
            mod_revision: modify,
            ..Default::default()
        }),
        prev_kv: None,
    }
}

fn delete(key: &str, revision: i64) -> Event {
    Event {
        r#type: EventType::Delete as i32,
        kv: Some(KeyValue { key: key.as_bytes().to_vec(), mod_revision: revision, ..Default::default() }),
        prev_kv: None,
    }
}

fn ttl_def(reg: &Registration) -> &CheckDef {
    let def = &reg.checks[0];
    assert!(matches!(def.kind, CheckKind::Ttl(_)));
    def
}

#[test]
fn registrations_and_check_states_follow_puts_and_deletes() {
    let reg = registration("web-1");
    let r = reg.instance.reference();
    let check = reg.check_ref(&ttl_def(&reg).id);
    let mut catalog = Catalog::load(&[], 4);
    assert_eq!(catalog.index(), 4);
    assert_eq!(catalog.changed(), 0);

    catalog.apply(&[put(&reg.key(), reg.encode(), 5, 5)], 5);
    let stored = catalog.instance(&r).expect("registered");
    assert_eq!(stored.indexes.create, 5);
    // A TTL check starts critical, so the instance is critical before its first report.
    assert_eq!(catalog.health(stored), Status::Critical);

    let passing = CheckRecord { status: Status::Passing, output: "ok".into(), since: Timestamp(1) };
    catalog.apply(&[put(&check_key(&check), passing.encode(), 6, 6)], 6);
    assert_eq!(catalog.health(catalog.instance(&r).unwrap()), Status::Passing);
    assert_eq!(catalog.service_changed(&r.service), 6);
    assert_eq!(catalog.check(&r, &check.check).unwrap().0.output, "ok");

    catalog.apply(&[delete(&reg.key(), 9), delete(&check_key(&check), 9)], 9);
    assert!(catalog.instance(&r).is_none());
    assert!(catalog.checks_of(&r).is_empty());
    assert_eq!(catalog.service_changed(&r.service), 9, "a deregistration wakes the service's blocking queries");
    assert_eq!(catalog.changed(), 9);
    assert!(catalog.services().is_empty());
}

#[test]
fn events_already_reflected_are_skipped() {
    let reg = registration("web-1");
    let loaded = KeyValue {
        key: reg.key().into_bytes(),
        value: reg.encode(),
        create_revision: 3,
        mod_revision: 7,
        ..Default::default()
    };
    let mut catalog = Catalog::load(&[loaded], 8);
    // A delete at revision 6 happened before the load saw the key at 7: replaying it must not remove it.
    catalog.apply(&[delete(&reg.key(), 6)], 8);
    assert!(catalog.instance(&reg.instance.reference()).is_some());
    assert_eq!(catalog.changed(), 7);
}

#[test]
fn undecodable_records_are_left_out_and_counted() {
    let mut catalog = Catalog::load(&[], 1);
    catalog.apply(
        &[
            put("/meridian/services/web/m1/web-1", b"{not json".to_vec(), 2, 2),
            put("/meridian/services/web/m1", b"{}".to_vec(), 3, 3),
            put("/meridian/health/web/m1/web-1/c", b"[]".to_vec(), 4, 4),
        ],
        4,
    );
    assert_eq!(catalog.instances().count(), 0);
    assert_eq!(catalog.undecodable(), 3);
    assert_eq!(catalog.index(), 4);
}

#[test]
fn services_list_the_union_of_tags() {
    let mut a = registration("web-1");
    a.instance.tags = vec!["v1".into(), "blue".into()];
    let mut b = registration("web-2");
    b.instance.tags = vec!["v1".into(), "green".into()];
    let mut catalog = Catalog::load(&[], 1);
    catalog.apply(&[put(&a.key(), a.encode(), 2, 2), put(&b.key(), b.encode(), 3, 3)], 3);
    let services = catalog.services();
    assert_eq!(services.len(), 1);
    assert_eq!(services.values().next().unwrap(), &vec!["v1".to_string(), "blue".into(), "green".into()]);
    assert_eq!(Catalog::answer_index(0), 1);
}
