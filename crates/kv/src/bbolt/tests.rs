//! The writer's files, read back and checked by `read_back`.

use super::read_back::{Items, read};
use super::*;

fn write(buckets: &[(&[u8], Items)]) -> Vec<u8> {
    let mut file = BoltFile::new();
    for (name, items) in buckets {
        let mut b = file.bucket(name);
        for (k, v) in items {
            b.push(k, v).unwrap();
        }
        b.finish();
    }
    file.finish().unwrap()
}

fn numbered(n: usize, value_len: usize) -> Items {
    (0..n).map(|i| (format!("key-{i:08}").into_bytes(), vec![b'a' + (i % 26) as u8; value_len])).collect()
}

#[test]
fn small_buckets_read_back_as_written() {
    let key = numbered(5, 10);
    let meta = vec![(b"finishedCompactRev".to_vec(), vec![1; 17])];
    let file = write(&[(b"meta", meta.clone()), (b"key", key.clone()), (b"lease", Vec::new())]);
    assert_eq!(file.len(), 7 * PAGE_SIZE, "two meta pages, the freelist, three bucket leaves and the root leaf");
    let read = read(&file);
    let names: Vec<_> = read.buckets.keys().cloned().collect();
    assert_eq!(names, vec![b"key".to_vec(), b"lease".to_vec(), b"meta".to_vec()], "sorted by name");
    assert_eq!(read.buckets[&b"key".to_vec()], key);
    assert_eq!(read.buckets[&b"meta".to_vec()], meta);
    assert!(read.buckets[&b"lease".to_vec()].is_empty(), "an empty bucket is an empty leaf");
}

#[test]
fn many_keys_build_a_multi_level_tree() {
    // ~300 bytes per element: ~13 per leaf, ~7700 leaves, more than one branch page can point at.
    let key = numbered(100_000, 280);
    let read = read(&write(&[(b"key", key.clone())]));
    assert_eq!(read.heights[&b"key".to_vec()], 3, "leaves, one branch level, a root branch");
    assert_eq!(read.buckets[&b"key".to_vec()], key);
}

#[test]
fn a_value_bigger_than_a_page_gets_overflow_pages() {
    let mut key = numbered(3, 10);
    key[1].1 = vec![7; 3 * PAGE_SIZE + 5];
    let read = read(&write(&[(b"key", key.clone())]));
    assert_eq!(read.overflowing, 1);
    assert_eq!(read.buckets[&b"key".to_vec()], key);
}

#[test]
fn keys_out_of_order_empty_or_duplicate_buckets_are_refused() {
    let mut file = BoltFile::new();
    let mut b = file.bucket(b"key");
    b.push(b"b", b"1").unwrap();
    assert_eq!(b.push(b"a", b"1"), Err(BoltError::OutOfOrder("key".into())));
    assert_eq!(b.push(b"b", b"2"), Err(BoltError::OutOfOrder("key".into())));
    assert_eq!(b.push(b"", b"1"), Err(BoltError::BadSize("key".into())));
    // Order holds across leaf boundaries too.
    for i in 0..1000u32 {
        b.push(format!("c{i:06}").as_bytes(), &[0; 100]).unwrap();
    }
    assert_eq!(b.push(b"c000001", b"1"), Err(BoltError::OutOfOrder("key".into())));
    b.finish();
    file.bucket(b"key").finish();
    assert_eq!(file.finish().err(), Some(BoltError::DuplicateBucket("key".into())));
}
