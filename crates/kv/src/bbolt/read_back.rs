//! Reads a bbolt file back, following bbolt's format, and checks what bbolt's own consistency check
//! (`tx.Check`, which `etcdctl snapshot status` runs) checks: valid meta pages, page ids where they are
//! claimed, every page below the high-water mark reachable exactly once, and keys in order. For tests; the
//! end-to-end proof is `etcdctl` itself (the `etcd_snapshot` test of the `meridian-cli` crate).

use std::collections::BTreeMap;

use super::*;

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes(b[at..at + 2].try_into().unwrap())
}
fn u32_at(b: &[u8], at: usize) -> usize {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap()) as usize
}
fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

/// A bucket's keys and values in order.
pub(crate) type Items = Vec<(Vec<u8>, Vec<u8>)>;
/// A tree's elements in order, each with its flags.
type Elements = Vec<(u32, Vec<u8>, Vec<u8>)>;

/// What a file holds, bucket by bucket, after every structural check passed.
pub(crate) struct Read {
    pub buckets: BTreeMap<Vec<u8>, Items>,
    /// Height of each bucket's tree (1 = a single leaf).
    pub heights: BTreeMap<Vec<u8>, usize>,
    /// Pages with overflow pages.
    pub overflowing: usize,
}

struct Reader<'a> {
    file: &'a [u8],
    seen: Vec<bool>,
    overflowing: usize,
}

impl Reader<'_> {
    /// Marks page `id` (and its overflow pages) reachable and returns (flags, count, page bytes).
    fn page(&mut self, id: u64) -> (u16, usize, &[u8]) {
        let at = id as usize * PAGE_SIZE;
        assert_eq!(u64_at(self.file, at), id, "page {id} names itself");
        let overflow = u32_at(self.file, at + 12);
        self.overflowing += usize::from(overflow > 0);
        for p in id as usize..=id as usize + overflow {
            assert!(p < self.seen.len(), "page {p} is past the high-water mark");
            assert!(!self.seen[p], "page {p} is referenced twice");
            self.seen[p] = true;
        }
        let bytes = &self.file[at..at + (overflow + 1) * PAGE_SIZE];
        (u16_at(bytes, 8), usize::from(u16_at(bytes, 10)), bytes)
    }

    /// Every (flags, key, value) of the tree at `root`, in order; also the tree's height.
    fn tree(&mut self, root: u64) -> (Elements, usize) {
        let (flags, count, page) = self.page(root);
        let page = page.to_vec();
        let mut out = Vec::new();
        match flags {
            LEAF_PAGE => {
                for i in 0..count {
                    let e = PAGE_HEADER + ELEMENT * i;
                    let (pos, ks, vs) = (u32_at(&page, e + 4), u32_at(&page, e + 8), u32_at(&page, e + 12));
                    let k = page[e + pos..e + pos + ks].to_vec();
                    let v = page[e + pos + ks..e + pos + ks + vs].to_vec();
                    out.push((u32_at(&page, e) as u32, k, v));
                }
                (out, 1)
            }
            BRANCH_PAGE => {
                assert!(count >= 2, "branch page {root} has {count} children");
                let mut height = 0;
                for i in 0..count {
                    let e = PAGE_HEADER + ELEMENT * i;
                    let (pos, ks, child) = (u32_at(&page, e), u32_at(&page, e + 4), u64_at(&page, e + 8));
                    let key = page[e + pos..e + pos + ks].to_vec();
                    let (items, h) = self.tree(child);
                    assert_eq!(items.first().map(|(_, k, _)| k), Some(&key), "branch key is the child's first key");
                    assert!(height == 0 || height == h, "every leaf is at the same depth");
                    height = h;
                    out.extend(items);
                }
                (out, height + 1)
            }
            other => panic!("page {root} has type {other:#x}"),
        }
    }
}

/// Checks `file` and returns its buckets.
pub(crate) fn read(file: &[u8]) -> Read {
    assert_eq!(file.len() % PAGE_SIZE, 0);
    let mut metas = Vec::new();
    for id in 0..2 {
        let m = &file[id * PAGE_SIZE + PAGE_HEADER..id * PAGE_SIZE + PAGE_HEADER + 64];
        assert_eq!(u16_at(file, id * PAGE_SIZE + 8), META_PAGE);
        assert_eq!(u32_at(m, 0) as u32, MAGIC);
        assert_eq!(u32_at(m, 4) as u32, VERSION);
        assert_eq!(u32_at(m, 8), PAGE_SIZE);
        assert_eq!(u64_at(m, 56), fnv1a64(&m[..56]), "meta {id} checksum");
        metas.push((u64_at(m, 16), u64_at(m, 32), u64_at(m, 40)));
    }
    assert_eq!(metas[0], metas[1], "both meta pages describe the same tree");
    let (root, freelist, page_count) = metas[0];
    assert_eq!(page_count as usize * PAGE_SIZE, file.len(), "the high-water mark is the file's page count");
    let mut r = Reader { file, seen: vec![false; page_count as usize], overflowing: 0 };
    r.seen[0] = true;
    r.seen[1] = true;
    let (flags, count, _) = r.page(freelist);
    assert_eq!((flags, count), (FREELIST_PAGE, 0), "an empty freelist");
    let (names, _) = r.tree(root);
    let mut buckets = BTreeMap::new();
    let mut heights = BTreeMap::new();
    for (flags, name, header) in names {
        assert_eq!(flags, BUCKET_LEAF);
        assert_eq!(u64_at(&header, 8), 0, "sequence");
        let (items, height) = r.tree(u64_at(&header, 0));
        assert!(items.iter().all(|(f, _, _)| *f == 0), "no nested buckets");
        let items: Vec<_> = items.into_iter().map(|(_, k, v)| (k, v)).collect();
        assert!(items.windows(2).all(|w| w[0].0 < w[1].0), "keys of {name:?} in strictly increasing order");
        heights.insert(name.clone(), height);
        buckets.insert(name, items);
    }
    assert!(r.seen.iter().all(|s| *s), "every page is reachable (none is free)");
    Read { buckets, heights, overflowing: r.overflowing }
}
