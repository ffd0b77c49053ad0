//! The page journal against an in-memory file that loses unsynced writes on a crash, keeping any
//! subset of them, as a disk with background writeback would.

use std::sync::Arc;

use parking_lot::Mutex as PlMutex;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};

use super::*;

const T: TableDefinition<u64, &[u8]> = TableDefinition::new("t");

/// One file: what readers see, what survived the last sync, and the writes since.
#[derive(Default)]
struct FileImage {
    current: Vec<u8>,
    durable: Vec<u8>,
    /// Writes since the last sync, in order (`None` data = a length change).
    unsynced: Vec<(u64, Option<Vec<u8>>)>,
    syncs: u64,
    /// Every write call so far.
    writes: u64,
    /// Bumped by a crash: handles from before it are dead, as the process that held them.
    generation: u64,
}

/// A handle on one file, from one "process" (generation).
#[derive(Clone, Default)]
struct MemFile {
    image: Arc<PlMutex<FileImage>>,
    generation: u64,
}

impl fmt::Debug for MemFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MemFile")
    }
}

impl MemFile {
    /// A new handle, for a process started after the last crash.
    fn reopen(&self) -> MemFile {
        MemFile { image: self.image.clone(), generation: self.image.lock().generation }
    }

    /// The image, if this handle's process is still alive.
    fn live(&self) -> io::Result<parking_lot::MutexGuard<'_, FileImage>> {
        let f = self.image.lock();
        if f.generation != self.generation {
            return Err(io::Error::other("the process holding this handle crashed"));
        }
        Ok(f)
    }

    fn syncs(&self) -> u64 {
        self.image.lock().syncs
    }

    fn len(&self) -> usize {
        self.image.lock().current.len()
    }

    /// A crash: each unsynced write survives when `keep` says so, in whole or as a prefix.
    fn crash(&self, rng: &mut StdRng, keep_chance: f64) {
        let mut f = self.image.lock();
        f.generation += 1;
        let mut image = f.durable.clone();
        for (offset, data) in std::mem::take(&mut f.unsynced) {
            let offset = offset as usize;
            match data {
                None => image.resize(offset, 0),
                Some(data) if rng.random_bool(keep_chance) => {
                    let torn = if rng.random_bool(0.3) { rng.random_range(0..=data.len()) } else { data.len() };
                    if image.len() < offset + torn {
                        image.resize(offset + torn, 0);
                    }
                    image[offset..offset + torn].copy_from_slice(&data[..torn]);
                }
                Some(_) => {}
            }
        }
        f.current = image.clone();
        f.durable = image;
    }

    /// Flips one durable byte (and the current one) at `offset`.
    fn corrupt(&self, offset: usize) {
        let mut f = self.image.lock();
        f.durable[offset] ^= 0xff;
        f.current[offset] ^= 0xff;
    }
}

impl StorageBackend for MemFile {
    fn len(&self) -> Result<u64, io::Error> {
        Ok(self.live()?.current.len() as u64)
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), io::Error> {
        let f = self.live()?;
        let src = f.current.get(offset as usize..offset as usize + out.len()).ok_or(io::ErrorKind::UnexpectedEof)?;
        out.copy_from_slice(src);
        Ok(())
    }

    fn set_len(&self, len: u64) -> Result<(), io::Error> {
        let mut f = self.live()?;
        f.current.resize(len as usize, 0);
        f.unsynced.push((len, None));
        Ok(())
    }

    fn sync_data(&self) -> Result<(), io::Error> {
        let mut f = self.live()?;
        f.durable = f.current.clone();
        f.unsynced.clear();
        f.syncs += 1;
        Ok(())
    }

    fn write(&self, offset: u64, data: &[u8]) -> Result<(), io::Error> {
        let mut f = self.live()?;
        let end = offset as usize + data.len();
        if f.current.len() < end {
            f.current.resize(end, 0);
        }
        f.current[offset as usize..end].copy_from_slice(data);
        f.unsynced.push((offset, Some(data.to_vec())));
        f.writes += 1;
        Ok(())
    }
}

struct Files {
    main: MemFile,
    journal: MemFile,
}

impl Files {
    fn new() -> Files {
        Files { main: MemFile::default(), journal: MemFile::default() }
    }

    fn open(&self, budget: u64) -> (Database, Recovery) {
        let (backend, recovery) =
            JournaledBackend::open(Box::new(self.main.reopen()), Box::new(self.journal.reopen()), budget, no_hook())
                .unwrap();
        (Database::builder().create_with_backend(backend).unwrap(), recovery)
    }

    fn crash(&self, rng: &mut StdRng, keep_chance: f64) {
        self.main.crash(rng, keep_chance);
        self.journal.crash(rng, keep_chance);
    }
}

fn no_hook() -> Arc<CommitHook> {
    Arc::new(CommitHook::default())
}

/// Offsets of the current epoch's records, in order.
fn record_offsets(journal: &MemFile) -> Vec<u64> {
    let journal = journal.reopen();
    let epoch = read_header(&journal).unwrap().unwrap();
    let mut offsets = Vec::new();
    let mut at = HEADER_BYTES;
    loop {
        let mut head = [0u8; RECORD_HEAD_BYTES];
        journal.read(at, &mut head).unwrap();
        if u32::from_le_bytes(le(&head[..4])) != RECORD_MAGIC || u64::from_le_bytes(le(&head[8..16])) != epoch {
            return offsets;
        }
        offsets.push(at);
        at += (RECORD_HEAD_BYTES + u32::from_le_bytes(le(&head[4..8])) as usize) as u64;
    }
}

fn put(db: &Database, key: u64, durability: Durability) {
    let mut txn = db.begin_write().unwrap();
    txn.set_durability(durability).unwrap();
    {
        let mut t = txn.open_table(T).unwrap();
        // Big enough values that the table spans several pages.
        t.insert(key, vec![key as u8; 300].as_slice()).unwrap();
    }
    txn.commit().unwrap();
}

/// One durable commit per key, in order.
fn put_all(db: &Database, keys: impl IntoIterator<Item = u64>) {
    for key in keys {
        put(db, key, Durability::Immediate);
    }
}

fn keys(db: &Database) -> Vec<u64> {
    let txn = db.begin_read().unwrap();
    let Ok(t) = txn.open_table(T) else { return Vec::new() };
    t.iter()
        .unwrap()
        .map(|r| {
            let (k, v) = r.unwrap();
            assert_eq!(v.value(), vec![k.value() as u8; 300].as_slice(), "value of key {}", k.value());
            k.value()
        })
        .collect()
}

#[test]
fn a_commit_syncs_the_journal_only() {
    let files = Files::new();
    let (db, _) = files.open(DEFAULT_JOURNAL_BUDGET);
    put(&db, 0, Durability::Immediate);
    let (main_syncs, journal_syncs) = (files.main.syncs(), files.journal.syncs());
    put_all(&db, 1..=20);
    assert_eq!(files.main.syncs(), main_syncs, "a commit must not sync the database file");
    assert_eq!(files.journal.syncs(), journal_syncs + 20, "one journal sync per commit");
}

#[test]
fn every_synced_commit_survives_a_crash_that_loses_the_unsynced_database_file() {
    let files = Files::new();
    let (db, _) = files.open(DEFAULT_JOURNAL_BUDGET);
    put_all(&db, 0..50);
    // Nothing written to the database file since opening was synced; all of it is lost.
    files.crash(&mut StdRng::seed_from_u64(1), 0.0);
    drop(db);
    let (db, recovery) = files.open(DEFAULT_JOURNAL_BUDGET);
    assert!(recovery.records >= 50, "replayed {} records", recovery.records);
    assert_eq!(keys(&db), (0..50).collect::<Vec<_>>());
}

#[test]
fn a_commit_in_flight_at_a_crash_is_all_or_nothing_whatever_subset_of_writes_landed() {
    for seed in 0..40 {
        let mut rng = StdRng::seed_from_u64(seed);
        let files = Files::new();
        let (db, _) = files.open(DEFAULT_JOURNAL_BUDGET);
        put_all(&db, 0..30);
        // Written to the database file but never synced: no journal record covers it.
        put(&db, 30, Durability::None);
        files.crash(&mut rng, 0.5);
        drop(db);
        let (db, _) = files.open(DEFAULT_JOURNAL_BUDGET);
        let found = keys(&db);
        assert_eq!(found[..30], (0..30).collect::<Vec<_>>()[..], "seed {seed}: a synced commit was lost");
        assert!(found.len() <= 31, "seed {seed}: {found:?}");
        // The database takes writes again and keeps them.
        put(&db, 40, Durability::Immediate);
        files.crash(&mut rng, 0.5);
        drop(db);
        let (db, _) = files.open(DEFAULT_JOURNAL_BUDGET);
        assert!(keys(&db).contains(&40), "seed {seed}");
    }
}

#[test]
fn checkpoints_bound_the_journal_and_old_records_are_never_replayed() {
    let budget = 64 << 10;
    for seed in 0..10 {
        let mut rng = StdRng::seed_from_u64(seed);
        let files = Files::new();
        let (db, _) = files.open(budget);
        let main_syncs = files.main.syncs();
        put_all(&db, 0..300);
        assert!(files.main.syncs() > main_syncs + 3, "checkpoints must sync the database file");
        let most = 2 * budget + PREALLOCATE_SLACK;
        assert!(files.journal.len() as u64 <= most, "journal grew to {}", files.journal.len());
        files.crash(&mut rng, 0.5);
        drop(db);
        let (db, _) = files.open(budget);
        assert_eq!(keys(&db), (0..300).collect::<Vec<_>>(), "seed {seed}");
    }
}

#[test]
fn a_damaged_record_ends_replay_there() {
    let files = Files::new();
    let (db, _) = files.open(DEFAULT_JOURNAL_BUDGET);
    let before = record_offsets(&files.journal).len();
    put(&db, 1, Durability::Immediate);
    put(&db, 2, Durability::Immediate);
    put(&db, 3, Durability::Immediate);
    files.crash(&mut StdRng::seed_from_u64(7), 0.0);
    drop(db);
    // A byte inside the second commit's record.
    let second = record_offsets(&files.journal)[before + 1];
    files.journal.corrupt(second as usize + RECORD_HEAD_BYTES + 10);
    let (db, recovery) = files.open(DEFAULT_JOURNAL_BUDGET);
    assert_eq!(keys(&db), vec![1], "replay stops at the damaged record");
    assert!(recovery.records >= 1);
}

#[test]
fn a_torn_header_write_falls_back_to_the_previous_epoch_whose_records_replay_harmlessly() {
    let files = Files::new();
    let (db, _) = files.open(DEFAULT_JOURNAL_BUDGET);
    put_all(&db, 0..20);
    files.crash(&mut StdRng::seed_from_u64(2), 0.0);
    drop(db);
    let first = read_header(&files.journal.reopen()).unwrap().unwrap();
    // Reopening replays, syncs the database file and names the next epoch in the other slot; the
    // process dies right there (before redb writes anything).
    let (backend, _) = JournaledBackend::open(
        Box::new(files.main.reopen()),
        Box::new(files.journal.reopen()),
        DEFAULT_JOURNAL_BUDGET,
        no_hook(),
    )
    .unwrap();
    drop(backend);
    let next = read_header(&files.journal.reopen()).unwrap().unwrap();
    assert_eq!(next, first + 1);
    // That header write was torn: the first epoch, whose records are still there, is current again.
    files.journal.corrupt(SLOT_OFFSETS[(next % 2) as usize] as usize + 6);
    assert_eq!(read_header(&files.journal.reopen()).unwrap(), Some(first));
    let (db, recovery) = files.open(DEFAULT_JOURNAL_BUDGET);
    assert!(recovery.records >= 20, "the old records replay again, onto a file that already holds them");
    assert_eq!(keys(&db), (0..20).collect::<Vec<_>>());
}

#[test]
fn a_clean_close_leaves_everything_in_the_database_file() {
    let files = Files::new();
    let (db, _) = files.open(DEFAULT_JOURNAL_BUDGET);
    put_all(&db, 0..10);
    drop(db);
    files.crash(&mut StdRng::seed_from_u64(5), 0.0);
    // Without the journal at all.
    let plain = Database::builder().create_with_backend(files.main.reopen()).unwrap();
    assert_eq!(keys(&plain), (0..10).collect::<Vec<_>>());
}

#[test]
fn a_database_written_before_the_journal_existed_opens_with_its_data() {
    let files = Files::new();
    let plain = Database::builder().create_with_backend(files.main.reopen()).unwrap();
    put_all(&plain, 0..5);
    drop(plain);
    let (db, recovery) = files.open(DEFAULT_JOURNAL_BUDGET);
    assert_eq!(recovery.records, 0);
    assert_eq!(keys(&db), (0..5).collect::<Vec<_>>());
    put(&db, 5, Durability::Immediate);
    files.crash(&mut StdRng::seed_from_u64(6), 0.0);
    drop(db);
    let (db, _) = files.open(DEFAULT_JOURNAL_BUDGET);
    assert_eq!(keys(&db), (0..6).collect::<Vec<_>>());
}

#[test]
fn a_journal_without_a_header_starts_empty() {
    let files = Files::new();
    files.journal.write(16 << 20, b"left over from something else").unwrap();
    files.journal.sync_data().unwrap();
    let (db, recovery) = files.open(DEFAULT_JOURNAL_BUDGET);
    assert_eq!(recovery.records, 0);
    assert_eq!(files.journal.len() as u64, DEFAULT_JOURNAL_BUDGET + PREALLOCATE_SLACK, "left-over bytes are dropped");
    put(&db, 1, Durability::Immediate);
    assert_eq!(keys(&db), vec![1]);
}

impl MemFile {
    /// What a crash right now would leave: the synced bytes only.
    fn durable(&self) -> Vec<u8> {
        self.image.lock().durable.clone()
    }

    /// A file holding `bytes`, all synced.
    fn with(bytes: Vec<u8>) -> MemFile {
        let image = FileImage { current: bytes.clone(), durable: bytes, ..FileImage::default() };
        MemFile { image: Arc::new(PlMutex::new(image)), generation: 0 }
    }

    fn unsynced_writes(&self) -> usize {
        self.image.lock().unsynced.len()
    }

    fn writes(&self) -> u64 {
        self.image.lock().writes
    }
}

/// At a commit hook: what a crash would leave of each file, and the database file's page writes.
struct AtHook {
    main: Vec<u8>,
    journal: Vec<u8>,
    page_writes: usize,
}

#[test]
fn a_commit_is_durable_when_its_hook_runs_and_its_pages_wait_for_the_checkpoint() {
    let files = Files::new();
    let hook = no_hook();
    let (backend, _) = JournaledBackend::open(
        Box::new(files.main.reopen()),
        Box::new(files.journal.reopen()),
        DEFAULT_JOURNAL_BUDGET,
        hook.clone(),
    )
    .unwrap();
    let db = Database::builder().create_with_backend(backend).unwrap();
    for key in 0..10 {
        let seen: Arc<PlMutex<Option<AtHook>>> = Arc::default();
        let (main, journal, at_hook) = (files.main.clone(), files.journal.clone(), seen.clone());
        let writes_before = files.main.unsynced_writes();
        hook.arm(Box::new(move |res| {
            assert!(res.is_ok());
            *at_hook.lock() =
                Some(AtHook { main: main.durable(), journal: journal.durable(), page_writes: main.unsynced_writes() });
        }));
        put(&db, key, Durability::Immediate);
        assert!(hook.disarm().is_none(), "commit {key}: the hook did not run");
        let AtHook { main, journal, page_writes } = seen.lock().take().unwrap();
        assert_eq!(page_writes, writes_before, "commit {key}: pages reached the database file before the sync");
        assert_eq!(files.main.unsynced_writes(), writes_before, "commit {key}: pages reached the database file");
        // A crash right when the hook ran keeps the commit.
        let crashed = Files { main: MemFile::with(main), journal: MemFile::with(journal) };
        let (recovered, _) = crashed.open(DEFAULT_JOURNAL_BUDGET);
        assert_eq!(keys(&recovered), (0..=key).collect::<Vec<_>>(), "commit {key}");
    }
}

#[test]
fn a_sync_that_holds_no_commit_leaves_the_hook_armed() {
    let files = Files::new();
    let hook = no_hook();
    let (backend, _) =
        JournaledBackend::open(Box::new(files.main.reopen()), Box::new(files.journal.reopen()), 1 << 20, hook.clone())
            .unwrap();
    backend.set_len(3 * 4096).unwrap();
    let ran = Arc::new(PlMutex::new(0));
    let count = ran.clone();
    hook.arm(Box::new(move |_| *count.lock() += 1));
    // What redb does when it grows the file: pages, a length, a sync; no header.
    backend.write(4096, &[7; 4096]).unwrap();
    backend.sync_data().unwrap();
    assert_eq!(*ran.lock(), 0, "a sync without redb's header ran the hook");
    backend.write(DB_HEADER_OFFSET, &[1; 320]).unwrap();
    backend.sync_data().unwrap();
    assert_eq!(*ran.lock(), 1, "the sync of a header write is a commit");
}

#[test]
fn reads_see_writes_that_have_not_reached_the_database_file() {
    let files = Files::new();
    let (backend, _) =
        JournaledBackend::open(Box::new(files.main.reopen()), Box::new(files.journal.reopen()), 1 << 20, no_hook())
            .unwrap();
    backend.set_len(100).unwrap();
    backend.write(10, b"abcd").unwrap();
    backend.write(12, b"XY").unwrap();
    // Past the end of the file, leaving a gap that reads as zeros.
    backend.write(104, b"tail").unwrap();
    assert_eq!(files.main.len(), 100, "nothing reaches the database file before the sync");
    assert_eq!(backend.len().unwrap(), 108);
    let mut out = [0xffu8; 8];
    backend.read(9, &mut out).unwrap();
    assert_eq!(&out, b"\0abXY\0\0\0", "the later write of the same bytes wins");
    let mut out = [0xffu8; 10];
    backend.read(98, &mut out).unwrap();
    assert_eq!(&out, b"\0\0\0\0\0\0tail");
    let mut past = [0u8; 2];
    assert_eq!(backend.read(107, &mut past).unwrap_err().kind(), io::ErrorKind::UnexpectedEof);
    backend.sync_data().unwrap();
    assert_eq!(files.main.len(), 100, "a sync writes the journal only; the pages wait for the checkpoint");
    let mut out = [0xffu8; 8];
    backend.read(9, &mut out).unwrap();
    assert_eq!(&out, b"\0abXY\0\0\0", "reads see synced pages that are not in the database file yet");
    // Truncating drops what lies past the new end, so it cannot come back at the checkpoint.
    backend.set_len(106).unwrap();
    assert_eq!(backend.len().unwrap(), 106);
    backend.sync_data().unwrap();
    backend.close().unwrap();
    let mut out = [0u8; 8];
    files.main.reopen().read(9, &mut out).unwrap();
    assert_eq!(&out, b"\0abXY\0\0\0", "the checkpoint writes the pages to the database file");
    let mut out = [0xffu8; 6];
    files.main.reopen().read(100, &mut out).unwrap();
    assert_eq!(&out, b"\0\0\0\0ta", "bytes cut off by the truncation came back");
}

#[test]
fn a_checkpoint_writes_each_page_once_however_often_commits_rewrote_it() {
    let files = Files::new();
    let budget = 2 << 20;
    let (db, _) = files.open(budget);
    let (writes, syncs) = (files.main.writes(), files.main.syncs());
    let mut commits = 0;
    while files.main.syncs() == syncs {
        put(&db, commits, Durability::Immediate);
        commits += 1;
        assert!(commits < 10_000, "no checkpoint after {commits} commits");
    }
    let page_writes = files.main.writes() - writes;
    // Every commit rewrites redb's header and the same few pages: written once per commit, they
    // would be several writes per commit; once per checkpoint, a handful in all.
    assert!(commits > 20, "{commits} commits filled the journal");
    assert!(page_writes < commits, "{page_writes} page writes for {commits} commits");
    drop(db);
    let (db, _) = files.open(budget);
    assert_eq!(keys(&db), (0..commits).collect::<Vec<_>>());
}
