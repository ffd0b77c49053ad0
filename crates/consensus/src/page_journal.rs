//! A write-ahead page journal under redb, used for the Raft log database.
//!
//! redb commits by writing every page it changed in place and then syncing the file. Appending
//! one Raft entry changes eight or nine pages spread over the file, and on the virtio disks we run
//! on every extra scattered page adds about 12 µs to the `fdatasync`: a one-entry commit spent
//! ~150 µs syncing, where one sequential write of the same bytes syncs in ~100 µs. This backend
//! turns each commit into that one sequential write. Every write redb makes is recorded; `sync_data`
//! appends what was recorded to the journal file as one checksummed record and syncs only the
//! journal. The pages wait in memory (`overlay`) until a checkpoint, once the journal has grown
//! past its budget: then the last image of each page is written into the database file, the file
//! is synced, and the journal starts over. redb rewrites the same few pages in almost every commit,
//! so this writes each of them once per checkpoint instead of once per commit.
//!
//! Opening replays the journal's valid records, in order, onto the database file, syncs it and
//! starts a new journal, all before redb reads the file. Replay is safe because the database file
//! is only ever synced at a checkpoint taken right after a record, when it holds exactly what the
//! records describe: replaying them in order onto an older copy, or onto that same copy, ends at
//! the state of the last synced record. Writes made after that record (a commit in flight at the
//! crash) may or may not be in the file, which is the crash redb survives on a plain file.
//!
//! A commit is durable once its record is synced, and a [`CommitHook`] armed by the caller runs
//! right then: the Raft log's writer answers openraft there, without waiting for redb's bookkeeping
//! after the sync. Until the pages reach the database file, reads are patched from the overlay.
//!
//! Records from before a checkpoint must never be replayed, since they would put back old page
//! images. Each record carries the journal's epoch; the journal header names the current epoch and
//! a checkpoint bumps it, after syncing the database file. The header has two slots, written
//! alternately, so a torn header write leaves the previous epoch readable (and replaying its
//! records onto the synced file is then harmless, as above).

use std::fmt;
use std::io;
use std::ops::Bound;

use std::sync::Arc;

use parking_lot::{Mutex, RwLock, RwLockUpgradableReadGuard};
use redb::{BackendError, StorageBackend};

use self::overlay::Overlay;

mod overlay;

/// Journal bytes after which a sync checkpoints (syncs the database file and starts over).
pub const DEFAULT_JOURNAL_BUDGET: u64 = 8 << 20;
/// Zeroed beyond the budget, so that the record crossing it rarely grows the file.
const PREALLOCATE_SLACK: u64 = 1 << 20;

/// Bytes reserved at the start of the journal for the two header slots.
const HEADER_BYTES: u64 = 4096;
/// Size of one header slot: magic, epoch, checksum.
const SLOT_BYTES: usize = 20;
/// Offset of header slot `epoch % 2`.
const SLOT_OFFSETS: [u64; 2] = [0, 512];
const HEADER_MAGIC: u32 = 0x4d4a_4844; // "MJHD"
const RECORD_MAGIC: u32 = 0x4d4a_5243; // "MJRC"
/// magic u32, body length u32, epoch u64, sequence u64, checksum u32.
const RECORD_HEAD_BYTES: usize = 28;

const OP_WRITE: u8 = 1;
const OP_SET_LEN: u8 = 2;

/// Where redb's header lives: a commit's record always holds a write here, a file-growing sync's
/// record never does.
const DB_HEADER_OFFSET: u64 = 0;

/// Runs once the commit it was armed for is durable, with that commit's outcome.
pub type DurableCallback = Box<dyn FnOnce(io::Result<()>) + Send>;

/// A one-shot callback for the next commit (see the module comment). The journal runs it, with
/// `Ok`, as soon as a synced record holds a write of redb's header, which redb makes at the end of
/// every durable commit; a sync that only makes a grown file length durable does not count.
#[derive(Default)]
pub struct CommitHook {
    armed: Mutex<Option<DurableCallback>>,
}

impl CommitHook {
    /// Arms `callback` for the next commit.
    pub fn arm(&self, callback: DurableCallback) {
        *self.armed.lock() = Some(callback);
    }

    /// Takes the callback back if the journal has not run it.
    pub fn disarm(&self) -> Option<DurableCallback> {
        self.armed.lock().take()
    }
}

/// Where the journal stands.
struct State {
    /// The next record: room for its head, then the writes and length changes since the last
    /// sync (its body). Built in place so a sync writes it without copying the body again.
    pending: Vec<u8>,
    /// Everything written since the last checkpoint, synced or not: the database file gets it at
    /// the next checkpoint (or a clean close).
    overlay: Overlay,
    /// `pending` holds a write of redb's header, so syncing it makes a commit durable.
    holds_commit: bool,
    epoch: u64,
    /// Sequence number of the next record within the epoch.
    seq: u64,
    /// Journal offset of the next record.
    end: u64,
}

/// A redb storage backend that journals every commit; see the module comment.
pub struct JournaledBackend {
    main: Box<dyn StorageBackend>,
    journal: Box<dyn StorageBackend>,
    budget: u64,
    /// Written by redb's one writer; read by any reader, which must see the unwritten pages.
    state: RwLock<State>,
    hook: Arc<CommitHook>,
}

impl fmt::Debug for JournaledBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.state.read();
        f.debug_struct("JournaledBackend").field("epoch", &state.epoch).field("end", &state.end).finish()
    }
}

/// What opening found in the journal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recovery {
    /// Records replayed onto the database file.
    pub records: u64,
}

impl JournaledBackend {
    /// Replays `journal` onto `main`, syncs `main` and starts a new journal epoch. `budget` is the
    /// journal size that triggers a checkpoint; `hook` is where callers arm commit callbacks. The
    /// caller must hold both files exclusively.
    pub fn open(
        main: Box<dyn StorageBackend>,
        journal: Box<dyn StorageBackend>,
        budget: u64,
        hook: Arc<CommitHook>,
    ) -> io::Result<(JournaledBackend, Recovery)> {
        let epoch = read_header(&*journal)?;
        let records = match epoch {
            Some(epoch) => replay(&*main, &*journal, epoch)?,
            None => 0,
        };
        main.sync_data()?;
        if epoch.is_none() {
            // No readable header: drop whatever else the file holds, so no stale record can ever
            // pass for one of the new epoch.
            journal.set_len(0)?;
        }
        preallocate(&*journal, budget + PREALLOCATE_SLACK)?;
        let next = epoch.map_or(1, |e| e + 1);
        write_header(&*journal, next)?;
        let state = State {
            pending: vec![0; RECORD_HEAD_BYTES],
            overlay: Overlay::default(),
            holds_commit: false,
            epoch: next,
            seq: 0,
            end: HEADER_BYTES,
        };
        Ok((JournaledBackend { main, journal, budget, state: RwLock::new(state), hook }, Recovery { records }))
    }

    /// Writes the overlay into the database file (unsynced), in offset order.
    fn write_pages(&self, state: &State) -> io::Result<()> {
        for (offset, data) in state.overlay.iter() {
            self.main.write(offset, data)?;
        }
        Ok(())
    }

    /// Writes the pages into the database file, syncs it and starts a new epoch at the start of
    /// the journal. Called with nothing pending, so the file then holds exactly what the journal
    /// describes. The overlay is forgotten only once the file is synced: after a failure here the
    /// journal's records must stay the ones that count, and a later checkpoint (a clean close's,
    /// say) writes every page again.
    fn checkpoint(&self, state: &mut State) -> io::Result<()> {
        debug_assert!(!state.has_writes());
        self.write_pages(state)?;
        self.main.sync_data()?;
        state.overlay.clear();
        write_header(&*self.journal, state.epoch + 1)?;
        state.epoch += 1;
        state.seq = 0;
        state.end = HEADER_BYTES;
        Ok(())
    }
}

impl StorageBackend for JournaledBackend {
    fn len(&self) -> Result<u64, io::Error> {
        let state = self.state.read();
        Ok(state.extent(self.main.len()?))
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), io::Error> {
        let state = self.state.read();
        let end = offset + out.len() as u64;
        let written = self.main.len()?;
        if end > state.extent(written) {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "page journal: read past the end of the file"));
        }
        // A pending write past the file's end leaves a gap, which a plain file would read as zeros.
        let from_file = end.min(written).saturating_sub(offset) as usize;
        self.main.read(offset, &mut out[..from_file])?;
        out[from_file..].fill(0);
        state.overlay.patch(offset, out);
        Ok(())
    }

    fn set_len(&self, len: u64) -> Result<(), io::Error> {
        let mut state = self.state.write();
        // Bytes cut off now must not come back when the overlay reaches the file.
        state.overlay.truncate(len);
        self.main.set_len(len)?;
        state.pending.push(OP_SET_LEN);
        state.pending.extend_from_slice(&len.to_le_bytes());
        Ok(())
    }

    fn write(&self, offset: u64, data: &[u8]) -> Result<(), io::Error> {
        let mut state = self.state.write();
        let len = u32::try_from(data.len()).map_err(|_| io::Error::other("page journal: write over 4 GiB"))?;
        state.pending.push(OP_WRITE);
        state.pending.extend_from_slice(&offset.to_le_bytes());
        state.pending.extend_from_slice(&len.to_le_bytes());
        state.pending.extend_from_slice(data);
        state.overlay.write(offset, data);
        state.holds_commit |= offset == DB_HEADER_OFFSET;
        Ok(())
    }

    fn sync_data(&self) -> Result<(), io::Error> {
        // Readers go on during the journal's sync; only redb's writer calls the mutating methods.
        let state = self.state.upgradable_read();
        // Everything written so far is already in a synced record.
        if !state.has_writes() {
            return Ok(());
        }
        let mut state = RwLockUpgradableReadGuard::upgrade(state);
        let (epoch, seq) = (state.epoch, state.seq);
        fill_record_head(&mut state.pending, epoch, seq)?;
        let state = parking_lot::RwLockWriteGuard::downgrade_to_upgradable(state);
        self.journal.write(state.end, &state.pending)?;
        self.journal.sync_data()?;
        if state.holds_commit
            && let Some(callback) = self.hook.disarm()
        {
            callback(Ok(()));
        }
        let mut state = RwLockUpgradableReadGuard::upgrade(state);
        state.end += state.pending.len() as u64;
        state.seq += 1;
        state.holds_commit = false;
        state.pending.truncate(RECORD_HEAD_BYTES);
        if state.end >= self.budget {
            self.checkpoint(&mut state)?;
        }
        Ok(())
    }

    /// Checkpoints first, so that after a clean shutdown the database file alone holds everything
    /// (for tools and older builds that do not know the journal). Writes never synced reach the
    /// database file as they would on a plain file, and then no checkpoint is taken.
    fn close(&self) -> Result<(), io::Error> {
        let checkpoint = {
            let mut state = self.state.write();
            if state.has_writes() { self.write_pages(&state) } else { self.checkpoint(&mut state) }
        };
        let main = self.main.close();
        let journal = self.journal.close();
        checkpoint.and(main).and(journal)
    }

    fn try_lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
        self.main.try_lock_range(start, end)
    }

    fn try_lock_shared_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
        self.main.try_lock_shared_range(start, end)
    }

    fn lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.main.lock_range(start, end)
    }

    fn lock_shared_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.main.lock_shared_range(start, end)
    }

    fn unlock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.main.unlock_range(start, end)
    }

    fn query_lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
        self.main.query_lock_range(start, end)
    }
}

impl State {
    /// The file's length as readers see it: `written` (the database file's), or further where a
    /// pending write reaches past it.
    fn extent(&self, written: u64) -> u64 {
        self.overlay.end().map_or(written, |end| end.max(written))
    }

    /// Whether anything was written since the last synced record.
    fn has_writes(&self) -> bool {
        self.pending.len() > RECORD_HEAD_BYTES
    }
}

/// Fills the head reserved at the start of `record` for its body: magic, length, epoch, sequence
/// and the checksum of all of them and the body.
fn fill_record_head(record: &mut [u8], epoch: u64, seq: u64) -> io::Result<()> {
    let (head, body) = record.split_at_mut(RECORD_HEAD_BYTES);
    let len = u32::try_from(body.len()).map_err(|_| io::Error::other("page journal: record over 4 GiB"))?;
    head[..4].copy_from_slice(&RECORD_MAGIC.to_le_bytes());
    head[4..8].copy_from_slice(&len.to_le_bytes());
    head[8..16].copy_from_slice(&epoch.to_le_bytes());
    head[16..24].copy_from_slice(&seq.to_le_bytes());
    let mut crc = crc32fast::Hasher::new();
    crc.update(&head[..24]);
    crc.update(body);
    head[24..28].copy_from_slice(&crc.finalize().to_le_bytes());
    Ok(())
}

/// The current epoch: the valid header slot with the higher epoch, `None` for a new journal.
fn read_header(journal: &dyn StorageBackend) -> io::Result<Option<u64>> {
    let len = journal.len()?;
    let mut best = None;
    for offset in SLOT_OFFSETS {
        if offset + SLOT_BYTES as u64 > len {
            continue;
        }
        let mut slot = [0u8; SLOT_BYTES];
        journal.read(offset, &mut slot)?;
        let (body, sum) = slot.split_at(16);
        if u32::from_le_bytes(le(&body[..4])) != HEADER_MAGIC
            || crc32fast::hash(body) != u32::from_le_bytes(le(&sum[..4]))
        {
            continue;
        }
        let epoch = u64::from_le_bytes(le(&body[4..12]));
        best = best.max(Some(epoch));
    }
    Ok(best)
}

/// Writes zeros from the end of `journal` up to `target` bytes (not synced here). A sync after a
/// write that grows a file, or fills a hole or a merely reserved (`fallocate`d) block, also commits
/// file-system metadata: on ext4 that made each journal sync ~170 µs instead of ~107 µs.
fn preallocate(journal: &dyn StorageBackend, target: u64) -> io::Result<()> {
    let zeros = vec![0u8; 1 << 20];
    let mut at = journal.len()?;
    while at < target {
        let n = (target - at).min(zeros.len() as u64);
        journal.write(at, &zeros[..n as usize])?;
        at += n;
    }
    Ok(())
}

/// Durably names `epoch` the current one, in its slot.
fn write_header(journal: &dyn StorageBackend, epoch: u64) -> io::Result<()> {
    let mut slot = Vec::with_capacity(SLOT_BYTES);
    slot.extend_from_slice(&HEADER_MAGIC.to_le_bytes());
    slot.extend_from_slice(&epoch.to_le_bytes());
    slot.extend_from_slice(&[0u8; 4]);
    let sum = crc32fast::hash(&slot);
    slot.extend_from_slice(&sum.to_le_bytes());
    if journal.len()? < HEADER_BYTES {
        journal.set_len(HEADER_BYTES)?;
    }
    journal.write(SLOT_OFFSETS[(epoch % 2) as usize], &slot)?;
    journal.sync_data()
}

/// Applies the records of `epoch`, in order, onto `main`; stops at the first record that is
/// missing, torn, of another epoch or out of sequence. Returns how many were applied.
fn replay(main: &dyn StorageBackend, journal: &dyn StorageBackend, epoch: u64) -> io::Result<u64> {
    let len = journal.len()?;
    let mut offset = HEADER_BYTES;
    let mut seq = 0;
    loop {
        if offset + RECORD_HEAD_BYTES as u64 > len {
            return Ok(seq);
        }
        let mut head = [0u8; RECORD_HEAD_BYTES];
        journal.read(offset, &mut head)?;
        let body_len = u32::from_le_bytes(le(&head[4..8])) as u64;
        if u32::from_le_bytes(le(&head[..4])) != RECORD_MAGIC
            || u64::from_le_bytes(le(&head[8..16])) != epoch
            || u64::from_le_bytes(le(&head[16..24])) != seq
            || offset + RECORD_HEAD_BYTES as u64 + body_len > len
        {
            return Ok(seq);
        }
        let mut body = vec![0u8; body_len as usize];
        journal.read(offset + RECORD_HEAD_BYTES as u64, &mut body)?;
        let mut crc = crc32fast::Hasher::new();
        crc.update(&head[..24]);
        crc.update(&body);
        if crc.finalize() != u32::from_le_bytes(le(&head[24..28])) {
            return Ok(seq);
        }
        apply_body(main, &body)?;
        seq += 1;
        offset += RECORD_HEAD_BYTES as u64 + body_len;
    }
}

/// Applies one record body. The checksum passed, so a malformed body is a bug or tampering.
fn apply_body(main: &dyn StorageBackend, mut body: &[u8]) -> io::Result<()> {
    let malformed = || io::Error::new(io::ErrorKind::InvalidData, "page journal: malformed record");
    while let Some((&op, rest)) = body.split_first() {
        match op {
            OP_WRITE if rest.len() >= 12 => {
                let offset = u64::from_le_bytes(le(&rest[..8]));
                let len = u32::from_le_bytes(le(&rest[8..12])) as usize;
                let data = rest.get(12..12 + len).ok_or_else(malformed)?;
                main.write(offset, data)?;
                body = &rest[12 + len..];
            }
            OP_SET_LEN if rest.len() >= 8 => {
                main.set_len(u64::from_le_bytes(le(&rest[..8])))?;
                body = &rest[8..];
            }
            _ => return Err(malformed()),
        }
    }
    Ok(())
}

/// A fixed-size little-endian field; callers slice exactly `N` bytes.
fn le<const N: usize>(bytes: &[u8]) -> [u8; N] {
    let mut out = [0u8; N];
    out.copy_from_slice(bytes);
    out
}

#[cfg(test)]
mod tests;
