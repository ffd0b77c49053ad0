//! The writer's files, read back and checked by `read_back`.

use std::io::Cursor;

use super::read_back::{Items, read};
use super::*;

fn write(buckets: &[(&[u8], Items)]) -> Vec<u8> {
    let mut file = BoltFile::new(Cursor::new(Vec::new())).unwrap();
    for (name, items) in buckets {
        let mut b = file.bucket(name);
        for (k, v) in items {
            b.push(k, v).unwrap();
        }
        b.finish().unwrap();
    }
    let (out, len) = file.finish().unwrap();
    let bytes = out.into_inner();
    assert_eq!(bytes.len() as u64, len, "the length finish reports");
    bytes
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
    let refused = |r: Result<(), BoltError>, want: &str| {
        let e = r.unwrap_err();
        assert_eq!(e.to_string(), want);
    };
    let mut file = BoltFile::new(Cursor::new(Vec::new())).unwrap();
    let mut b = file.bucket(b"key");
    b.push(b"b", b"1").unwrap();
    refused(b.push(b"a", b"1"), "bbolt: keys out of order in bucket \"key\"");
    refused(b.push(b"b", b"2"), "bbolt: keys out of order in bucket \"key\"");
    refused(b.push(b"", b"1"), "bbolt: a key or value of bucket \"key\" is empty or too large");
    // Order holds across leaf boundaries too.
    for i in 0..1000u32 {
        b.push(format!("c{i:06}").as_bytes(), &[0; 100]).unwrap();
    }
    refused(b.push(b"c000001", b"1"), "bbolt: keys out of order in bucket \"key\"");
    b.finish().unwrap();
    file.bucket(b"key").finish().unwrap();
    assert!(matches!(file.finish(), Err(BoltError::DuplicateBucket(name)) if name == "key"));
}

/// A writer that fails after `room` bytes, like a full disk.
struct FullAfter {
    inner: Cursor<Vec<u8>>,
    room: usize,
}

impl std::io::Write for FullAfter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.inner.get_ref().len() + buf.len() > self.room {
            return Err(std::io::Error::other("disk full"));
        }
        self.inner.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl std::io::Seek for FullAfter {
    fn seek(&mut self, pos: std::io::SeekFrom) -> std::io::Result<u64> {
        self.inner.seek(pos)
    }
}

#[test]
fn a_failing_writer_is_an_error_not_a_short_file() {
    let mut file = BoltFile::new(FullAfter { inner: Cursor::new(Vec::new()), room: 8 * PAGE_SIZE }).unwrap();
    let mut b = file.bucket(b"key");
    let pushed: Result<Vec<()>, BoltError> = numbered(1000, 100).iter().map(|(k, v)| b.push(k, v)).collect();
    assert!(matches!(pushed, Err(BoltError::Io(e)) if e.to_string() == "disk full"));
}
