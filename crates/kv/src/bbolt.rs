//! A writer of bbolt database files, the format of etcd's backend and so of the snapshots `etcdctl snapshot
//! save` downloads and `etcdctl snapshot status` / `restore` read.
//!
//! The file is written front to back into any seekable writer the caller provides (a file, so a large store
//! never sits in memory), and only the first three pages are written again at the end. It is built fresh in one
//! pass, so it needs none of bbolt's machinery for change: every page is reachable, nothing is free, and each
//! B+tree is built bottom-up from keys pushed in order. Leaves are packed full (bbolt splits nodes at half a
//! page, but reading accepts any fill), and an element too big for one page gets a page with overflow pages, as
//! bbolt itself writes it. Layout: pages 0 and 1 are the two meta pages, page 2 the (empty) freelist, then each
//! bucket's leaves followed by its branch levels, and last the root bucket's leaf naming the buckets. Integers
//! are little-endian, as bbolt writes them on the machines etcd supports. The format facts (page and element
//! headers, flags, the meta layout and its FNV-1a checksum) follow bbolt's documented on-disk structures.

use std::io::{Seek, SeekFrom, Write};

/// bbolt's default page size on Linux (the OS page size), recorded in the meta pages.
pub(crate) const PAGE_SIZE: usize = 4096;
/// Page header: id (u64), flags (u16), element count (u16), overflow page count (u32).
const PAGE_HEADER: usize = 16;
/// Leaf elements (flags, pos, key size, value size: 4 × u32) and branch elements (pos, key size: u32;
/// child page id: u64) are both 16 bytes.
const ELEMENT: usize = 16;

const BRANCH_PAGE: u16 = 0x01;
const LEAF_PAGE: u16 = 0x02;
const META_PAGE: u16 = 0x04;
const FREELIST_PAGE: u16 = 0x10;
/// Marks a leaf element whose value is a nested bucket's header.
const BUCKET_LEAF: u32 = 0x01;

const MAGIC: u32 = 0xED0C_DAED;
const VERSION: u32 = 2;
const FREELIST_PAGE_ID: u64 = 2;
const FIRST_DATA_PAGE_ID: u64 = 3;
/// bbolt's limits on one key and one value.
const MAX_KEY_SIZE: usize = 32_768;
const MAX_VALUE_SIZE: usize = (1 << 31) - 2;

/// Why a key could not be added or the file written.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BoltError {
    /// The writer failed.
    #[error("bbolt: writing the file: {0}")]
    Io(#[from] std::io::Error),
    /// Keys of a bucket must be pushed in strictly increasing byte order.
    #[error("bbolt: keys out of order in bucket {0:?}")]
    OutOfOrder(String),
    /// bbolt refuses empty keys and keys or values over its limits.
    #[error("bbolt: a key or value of bucket {0:?} is empty or too large")]
    BadSize(String),
    /// Two buckets of the same name.
    #[error("bbolt: bucket {0:?} written twice")]
    DuplicateBucket(String),
}

/// A bbolt file being written into `W`: add buckets with [`BoltFile::bucket`], then complete it with
/// [`BoltFile::finish`].
pub(crate) struct BoltFile<W> {
    out: W,
    /// Pages written so far, the reserved first three included.
    pages: u64,
    /// Finished buckets: name and root page.
    buckets: Vec<(Vec<u8>, u64)>,
    /// The page being built, reused.
    page: Vec<u8>,
}

impl<W: Write + Seek> BoltFile<W> {
    /// Starts the file at `out`'s current end (which should be its start).
    pub(crate) fn new(mut out: W) -> Result<Self, BoltError> {
        // The meta and freelist pages are written last, once the root and the page count are known.
        out.write_all(&[0; FIRST_DATA_PAGE_ID as usize * PAGE_SIZE])?;
        Ok(BoltFile { out, pages: FIRST_DATA_PAGE_ID, buckets: Vec::new(), page: Vec::new() })
    }

    /// Starts a top-level bucket; its keys go in with [`Bucket::push`] and it is added by [`Bucket::finish`].
    pub(crate) fn bucket(&mut self, name: &[u8]) -> Bucket<'_, W> {
        Bucket {
            file: self,
            name: name.to_vec(),
            leaf: Vec::new(),
            leaf_size: PAGE_HEADER,
            children: Vec::new(),
            last_written: None,
        }
    }

    /// Writes the root bucket listing every bucket, then the freelist and both meta pages over the reserved
    /// first pages; returns the writer (flushed) and the file's length.
    pub(crate) fn finish(mut self) -> Result<(W, u64), BoltError> {
        let mut buckets = std::mem::take(&mut self.buckets);
        buckets.sort();
        if let Some(w) = buckets.windows(2).find(|w| w[0].0 == w[1].0) {
            return Err(BoltError::DuplicateBucket(String::from_utf8_lossy(&w[0].0).into_owned()));
        }
        let headers: Vec<[u8; 16]> = buckets.iter().map(|(_, root)| bucket_header(*root)).collect();
        let elements: Vec<(u32, &[u8], &[u8])> =
            buckets.iter().zip(&headers).map(|((name, _), h)| (BUCKET_LEAF, name.as_slice(), h.as_slice())).collect();
        let root = self.write_leaf(&elements)?;
        let page_count = self.pages;
        let mut first = vec![0u8; FIRST_DATA_PAGE_ID as usize * PAGE_SIZE];
        for (id, txid) in [(0u64, 0u64), (1, 1)] {
            write_meta(&mut first, id, root, page_count, txid);
        }
        write_header(&mut first, FREELIST_PAGE_ID, FREELIST_PAGE, 0, 0);
        self.out.seek(SeekFrom::Start(0))?;
        self.out.write_all(&first)?;
        self.out.seek(SeekFrom::End(0))?;
        self.out.flush()?;
        Ok((self.out, page_count * PAGE_SIZE as u64))
    }

    /// Appends one page (plus overflow pages if the content needs them) and returns its id.
    fn write_page(&mut self, flags: u16, count: usize, body: impl FnOnce(&mut Vec<u8>)) -> Result<u64, BoltError> {
        let id = self.pages;
        let mut page = std::mem::take(&mut self.page);
        page.clear();
        page.resize(PAGE_HEADER, 0);
        body(&mut page);
        let pages = page.len().div_ceil(PAGE_SIZE);
        page.resize(pages * PAGE_SIZE, 0);
        let overflow = u32::try_from(pages - 1).unwrap_or(u32::MAX);
        let count = u16::try_from(count).unwrap_or(u16::MAX);
        put_header(&mut page[..PAGE_HEADER], id, flags, count, overflow);
        self.out.write_all(&page)?;
        self.pages += pages as u64;
        self.page = page;
        Ok(id)
    }

    /// Writes a leaf page of `(flags, key, value)` elements.
    fn write_leaf(&mut self, elements: &[(u32, &[u8], &[u8])]) -> Result<u64, BoltError> {
        self.write_page(LEAF_PAGE, elements.len(), |out| {
            // `pos` is the distance from an element's header to its key.
            let mut data = ELEMENT * elements.len();
            for (i, (flags, key, value)) in elements.iter().enumerate() {
                put_u32(out, *flags);
                put_u32(out, to_u32(data - ELEMENT * i));
                put_u32(out, to_u32(key.len()));
                put_u32(out, to_u32(value.len()));
                data += key.len() + value.len();
            }
            for (_, key, value) in elements {
                out.extend_from_slice(key);
                out.extend_from_slice(value);
            }
        })
    }

    /// Writes a branch page pointing at `children` (each child's first key and page id).
    fn write_branch(&mut self, children: &[(Vec<u8>, u64)]) -> Result<u64, BoltError> {
        self.write_page(BRANCH_PAGE, children.len(), |out| {
            let mut data = ELEMENT * children.len();
            for (i, (key, page)) in children.iter().enumerate() {
                put_u32(out, to_u32(data - ELEMENT * i));
                put_u32(out, to_u32(key.len()));
                out.extend_from_slice(&page.to_le_bytes());
                data += key.len();
            }
            for (key, _) in children {
                out.extend_from_slice(key);
            }
        })
    }
}

/// One top-level bucket being written.
pub(crate) struct Bucket<'a, W> {
    file: &'a mut BoltFile<W>,
    name: Vec<u8>,
    /// Elements of the leaf being filled.
    leaf: Vec<(Vec<u8>, Vec<u8>)>,
    /// Bytes that leaf would take on its page.
    leaf_size: usize,
    /// Every written leaf: its first key and page id.
    children: Vec<(Vec<u8>, u64)>,
    /// The last key of the last written leaf.
    last_written: Option<Vec<u8>>,
}

impl<W: Write + Seek> Bucket<'_, W> {
    /// Adds `key` = `value`; keys must come in strictly increasing byte order.
    pub(crate) fn push(&mut self, key: &[u8], value: &[u8]) -> Result<(), BoltError> {
        if key.is_empty() || key.len() > MAX_KEY_SIZE || value.len() > MAX_VALUE_SIZE {
            return Err(BoltError::BadSize(self.name()));
        }
        let last = self.leaf.last().map(|(k, _)| k).or(self.last_written.as_ref());
        if let Some(last) = last
            && key <= last.as_slice()
        {
            return Err(BoltError::OutOfOrder(self.name()));
        }
        let size = ELEMENT + key.len() + value.len();
        if !self.leaf.is_empty() && self.leaf_size + size > PAGE_SIZE {
            self.flush_leaf()?;
        }
        self.leaf.push((key.to_vec(), value.to_vec()));
        self.leaf_size += size;
        Ok(())
    }

    /// Writes what is left, the branch levels above the leaves, and adds the bucket to the file.
    pub(crate) fn finish(mut self) -> Result<(), BoltError> {
        if !self.leaf.is_empty() || self.children.is_empty() {
            self.flush_leaf()?;
        }
        let mut level = std::mem::take(&mut self.children);
        while level.len() > 1 {
            level = self.branch_level(&level)?;
        }
        let root = level[0].1;
        self.file.buckets.push((std::mem::take(&mut self.name), root));
        Ok(())
    }

    fn flush_leaf(&mut self) -> Result<(), BoltError> {
        let leaf = std::mem::take(&mut self.leaf);
        let elements: Vec<(u32, &[u8], &[u8])> = leaf.iter().map(|(k, v)| (0, k.as_slice(), v.as_slice())).collect();
        let page = self.file.write_leaf(&elements)?;
        self.last_written = leaf.last().map(|(k, _)| k.clone());
        let first = leaf.into_iter().next().map(|(k, _)| k).unwrap_or_default();
        self.children.push((first, page));
        self.leaf_size = PAGE_HEADER;
        Ok(())
    }

    /// Packs `level` into branch pages; returns the level above.
    fn branch_level(&mut self, level: &[(Vec<u8>, u64)]) -> Result<Vec<(Vec<u8>, u64)>, BoltError> {
        let mut above = Vec::new();
        let mut start = 0;
        while start < level.len() {
            let mut end = start;
            let mut size = PAGE_HEADER;
            // At least two children per page, so every level is smaller than the one below.
            while end < level.len() && (end - start < 2 || size + ELEMENT + level[end].0.len() <= PAGE_SIZE) {
                size += ELEMENT + level[end].0.len();
                end += 1;
            }
            let page = self.file.write_branch(&level[start..end])?;
            above.push((level[start].0.clone(), page));
            start = end;
        }
        Ok(above)
    }

    fn name(&self) -> String {
        String::from_utf8_lossy(&self.name).into_owned()
    }
}

/// A nested bucket's header as its parent stores it: root page id, then the sequence (unused, 0).
fn bucket_header(root: u64) -> [u8; 16] {
    let mut h = [0u8; 16];
    h[..8].copy_from_slice(&root.to_le_bytes());
    h
}

/// Writes page `id`'s header into `out`, which holds the file's first pages.
fn write_header(out: &mut [u8], id: u64, flags: u16, count: u16, overflow: u32) {
    let at = usize::try_from(id).unwrap_or(usize::MAX) * PAGE_SIZE;
    put_header(&mut out[at..at + PAGE_HEADER], id, flags, count, overflow);
}

fn put_header(h: &mut [u8], id: u64, flags: u16, count: u16, overflow: u32) {
    h[..8].copy_from_slice(&id.to_le_bytes());
    h[8..10].copy_from_slice(&flags.to_le_bytes());
    h[10..12].copy_from_slice(&count.to_le_bytes());
    h[12..16].copy_from_slice(&overflow.to_le_bytes());
}

/// Meta page `id`: magic, version, page size, flags, the root bucket (root page, sequence), the freelist
/// page, the page count (bbolt's high-water mark), the transaction id, then the FNV-1a hash of all that.
fn write_meta(out: &mut [u8], id: u64, root: u64, page_count: u64, txid: u64) {
    write_header(out, id, META_PAGE, 0, 0);
    let mut meta = Vec::with_capacity(64);
    put_u32(&mut meta, MAGIC);
    put_u32(&mut meta, VERSION);
    put_u32(&mut meta, to_u32(PAGE_SIZE));
    put_u32(&mut meta, 0);
    for v in [root, 0, FREELIST_PAGE_ID, page_count, txid] {
        meta.extend_from_slice(&v.to_le_bytes());
    }
    let checksum = fnv1a64(&meta);
    meta.extend_from_slice(&checksum.to_le_bytes());
    let at = usize::try_from(id).unwrap_or(usize::MAX) * PAGE_SIZE + PAGE_HEADER;
    out[at..at + meta.len()].copy_from_slice(&meta);
}

fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

/// Sizes inside one element are bounded by the key and value limits checked in `push`.
fn to_u32(v: usize) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}

#[cfg(test)]
pub(crate) mod read_back;
#[cfg(test)]
mod tests;
