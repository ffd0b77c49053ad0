//! How Consul's KV maps onto the etcd keyspace, pure: the Consul key `a/b` is the etcd key `a/b`; a prefix
//! (`?recurse`, `?keys`) is the etcd range of every key starting with it (the empty prefix: every key); an
//! entry shows `CreateIndex`/`ModifyIndex` as the key's create and mod revisions, its value in base64 (`null`
//! when empty), `LockIndex` 0 (no sessions) and `Flags` 0 (flags are not stored); `?keys` lists keys cut after
//! the first `?separator=` past the prefix, as Consul does.

use base64::Engine;
use meridian_proto::mvccpb::KeyValue;
use meridian_types::reserved::prefix_end;
use serde_json::{Value, json};

/// The etcd range (`key`, `range_end`) of the Consul key `key`, or of every key under it when `prefix`.
pub fn range(key: &str, prefix: bool) -> (Vec<u8>, Vec<u8>) {
    match (prefix, key.is_empty()) {
        (false, _) => (key.as_bytes().to_vec(), Vec::new()),
        (true, true) => (vec![0], vec![0]),
        (true, false) => (key.as_bytes().to_vec(), prefix_end(key)),
    }
}

/// One entry of a KV answer.
pub fn entry(kv: &KeyValue) -> Value {
    let value = if kv.value.is_empty() {
        Value::Null
    } else {
        Value::String(base64::engine::general_purpose::STANDARD.encode(&kv.value))
    };
    json!({
        "LockIndex": 0,
        "Key": String::from_utf8_lossy(&kv.key),
        "Flags": 0,
        "Value": value,
        "CreateIndex": kv.create_revision,
        "ModifyIndex": kv.mod_revision,
    })
}

/// The `?keys` listing of `keys` (sorted) under `prefix`: each cut just after the first `separator` following
/// the prefix (no cut when the separator is empty), without repeats.
pub fn keys(keys: &[String], prefix: &str, separator: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for key in keys {
        let Some(rest) = key.strip_prefix(prefix) else { continue };
        let shown = match (separator.is_empty(), rest.find(separator)) {
            (false, Some(at)) => format!("{prefix}{}", &rest[..at + separator.len()]),
            _ => key.clone(),
        };
        if out.last() != Some(&shown) {
            out.push(shown);
        }
    }
    out
}

/// The index of a KV answer: the highest mod revision among its entries, else the store's revision.
pub fn index(kvs: &[KeyValue], store_revision: i64) -> u64 {
    let revision = kvs.iter().map(|kv| kv.mod_revision).max().unwrap_or(store_revision);
    revision.max(1) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(key: &str, value: &[u8], create: i64, modified: i64) -> KeyValue {
        KeyValue {
            key: key.as_bytes().to_vec(),
            value: value.to_vec(),
            create_revision: create,
            mod_revision: modified,
            version: 2,
            ..Default::default()
        }
    }

    #[test]
    fn keys_and_prefixes_map_onto_etcd_ranges() {
        assert_eq!(range("a/b", false), (b"a/b".to_vec(), Vec::new()));
        assert_eq!(range("a/", true), (b"a/".to_vec(), b"a0".to_vec()));
        assert_eq!(range("", true), (vec![0], vec![0]), "the empty prefix is every key");
    }

    #[test]
    fn entries_show_revisions_and_base64_values() {
        let e = entry(&kv("app/x", b"hello", 5, 9));
        assert_eq!(e["Key"], "app/x");
        assert_eq!(e["Value"], "aGVsbG8=");
        assert_eq!((e["CreateIndex"].as_i64(), e["ModifyIndex"].as_i64()), (Some(5), Some(9)));
        assert_eq!((e["LockIndex"].as_i64(), e["Flags"].as_i64()), (Some(0), Some(0)));
        assert!(entry(&kv("k", b"", 1, 1))["Value"].is_null());
        assert_eq!(index(&[kv("a", b"", 3, 7), kv("b", b"", 2, 4)], 20), 7);
        assert_eq!(index(&[], 20), 20);
        assert_eq!(index(&[], 0), 1, "never 0");
    }

    #[test]
    fn key_listings_cut_at_the_separator() {
        let all: Vec<String> = ["app/a", "app/b/c", "app/b/d", "app/e/f/g", "other"].map(String::from).to_vec();
        assert_eq!(keys(&all, "app/", "/"), vec!["app/a", "app/b/", "app/e/"]);
        assert_eq!(keys(&all, "app/", ""), vec!["app/a", "app/b/c", "app/b/d", "app/e/f/g"]);
        assert_eq!(keys(&all, "", "/"), vec!["app/", "other"]);
    }
}
