//! Repairs the HTTP/2 `:authority` that etcdctl 3.4 sends, before the `h2` server sees it.
//!
//! etcdctl 3.4 dials `endpoint status`, `endpoint health` and `endpoint hashkv` with a gRPC target such as
//! `passthrough:///http://127.0.0.1:2379`, and grpc-go then sends the whole endpoint URL as the authority:
//! `:authority: http://127.0.0.1:2379`. Go's gRPC server does not care, but `h2` parses the authority
//! strictly, finds an invalid URI character and resets every such stream with `PROTOCOL_ERROR`; neither `h2`
//! nor hyper nor tonic has a switch to relax that. [`AuthorityFix`] sits between the accepted TCP connection
//! and tonic and rewrites such an authority to the part after `scheme://` (without any path) on the
//! client-to-server direction; the server-to-client direction passes through untouched.
//!
//! Header blocks are HPACK-compressed against a per-connection dynamic table, so the wrapper decodes every
//! header block of the connection, in order, to stay in step with the client's encoder. As long as nothing
//! needed repair, the original bytes are forwarded unchanged (a normal client pays only for the decode).
//! From the first repair on, the server's decoder can no longer follow the client's encoding, so every later
//! header block of that connection is re-encoded with our own encoder. Frames other than HEADERS and
//! CONTINUATION are never buffered or changed.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use loona_hpack::encoder::encode_integer_into;
use loona_hpack::{Decoder, Encoder};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tonic::transport::server::Connected;

/// The fixed bytes every HTTP/2 client sends first (RFC 9113 §3.4).
const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// Length of a frame header: 24-bit length, type, flags, 31-bit stream id.
const FRAME_HEADER_LEN: usize = 9;
const TYPE_HEADERS: u8 = 0x1;
const TYPE_CONTINUATION: u8 = 0x9;
const FLAG_END_STREAM: u8 = 0x1;
const FLAG_END_HEADERS: u8 = 0x4;
const FLAG_PADDED: u8 = 0x8;
const FLAG_PRIORITY: u8 = 0x20;
/// Stream dependency (4 bytes) and weight (1 byte) of a HEADERS frame with the PRIORITY flag.
const PRIORITY_LEN: usize = 5;
/// Largest payload of a frame we emit: the smallest SETTINGS_MAX_FRAME_SIZE a peer may advertise, so it is
/// valid whatever the server advertised.
const MAX_EMIT_PAYLOAD: usize = 16_384;
/// The HPACK dynamic table size the server's decoder allows: the protocol default, because neither tonic nor
/// hyper advertises SETTINGS_HEADER_TABLE_SIZE. Our decoder refuses larger size updates, as `h2` would.
const HPACK_TABLE_SIZE: usize = 4096;
/// HPACK "dynamic table size update" representation: bit pattern `001` and a 5-bit prefix integer.
const HPACK_SIZE_UPDATE: u8 = 0x20;

/// Largest compressed header block (HEADERS plus CONTINUATIONs) the wrapper buffers. A larger one is far
/// beyond the server's header-list limit (16 KiB by default) and is left for `h2` to refuse.
pub const MAX_HEADER_BLOCK_BYTES: usize = 1 << 20;
/// Largest decoded header list the wrapper holds, counted as HPACK does (name + value + 32 per field). It
/// bounds the memory an "HPACK bomb" (many one-byte references to a large table entry) could make us use.
pub const MAX_DECODED_HEADER_BYTES: usize = 1 << 20;

/// A connection stream that repairs URL-shaped `:authority` pseudo-headers sent by the client.
///
/// Reads are transformed as described in the [module documentation](self); writes pass straight through to
/// the inner stream.
pub struct AuthorityFix<S> {
    inner: S,
    fixer: Fixer,
    /// Transformed bytes not yet handed to the reader, from `out_pos` on.
    out: Vec<u8>,
    out_pos: usize,
    /// The inner stream reported end of file.
    eof: bool,
}

impl<S> AuthorityFix<S> {
    /// Wraps a freshly accepted connection; nothing may have been read from it yet.
    pub fn new(inner: S) -> Self {
        AuthorityFix { inner, fixer: Fixer::new(), out: Vec::new(), out_pos: 0, eof: false }
    }

    /// The wrapped stream.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// Whether a `:authority` has been repaired on this connection (so header blocks are re-encoded).
    pub fn is_rewriting(&self) -> bool {
        self.fixer.rewriting
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for AuthorityFix<S> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        loop {
            if this.out_pos < this.out.len() {
                let n = buf.remaining().min(this.out.len() - this.out_pos);
                buf.put_slice(&this.out[this.out_pos..this.out_pos + n]);
                this.out_pos += n;
                if this.out_pos == this.out.len() {
                    this.out.clear();
                    this.out_pos = 0;
                }
                return Poll::Ready(Ok(()));
            }
            if this.fixer.phase == Phase::Failed {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "HTTP/2 header block could not be re-encoded after an :authority repair",
                )));
            }
            if this.eof {
                return Poll::Ready(Ok(()));
            }
            // Read straight into the caller's buffer: bytes the fixer passes through unchanged (frame
            // payloads, or everything once it has given up) stay there without a copy, and only the rest is
            // taken back out and fed to the fixer.
            let before = buf.filled().len();
            ready!(Pin::new(&mut this.inner).poll_read(cx, buf))?;
            let read = buf.filled().len() - before;
            if read == 0 {
                this.eof = true;
                this.fixer.finish(&mut this.out);
                continue;
            }
            let direct = this.fixer.direct_len(read);
            if direct < read {
                this.fixer.feed(&buf.filled()[before + direct..], &mut this.out);
                buf.set_filled(before + direct);
            }
            if direct > 0 {
                return Poll::Ready(Ok(()));
            }
            // Nothing to hand out yet (the fixer holds a partial frame, or its output is in `out`): loop, so a
            // zero-byte return never looks like end of file.
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for AuthorityFix<S> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// tonic's per-request connection info (peer and local address) is that of the wrapped stream.
impl<S: Connected> Connected for AuthorityFix<S> {
    type ConnectInfo = S::ConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.inner.connect_info()
    }
}

/// Where the fixer is in the client's byte stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Inside the client preface; this many bytes of it seen.
    Preface(usize),
    /// At a frame boundary, or collecting a HEADERS/CONTINUATION frame in `pending`.
    Frames,
    /// Inside the payload of a frame that passes unchanged; this many bytes of it remain.
    Forward(usize),
    /// Gave up before any repair: everything from here on passes unchanged, and `h2` judges it itself.
    Passthrough,
    /// Gave up after a repair: the server's HPACK state can no longer be kept consistent, so the connection
    /// must fail rather than let `h2` decode header references against the wrong table.
    Failed,
}

/// A header block being collected from a HEADERS frame and its CONTINUATION frames.
struct HeaderBlock {
    stream_id: u32,
    end_stream: bool,
    priority: Option<[u8; PRIORITY_LEN]>,
    /// The HPACK fragment, without padding and priority fields.
    fragment: Vec<u8>,
    /// The original frames, to forward unchanged when nothing is repaired (empty once rewriting).
    raw: Vec<u8>,
}

/// The synchronous core: turns client bytes into the bytes the server should see.
struct Fixer {
    phase: Phase,
    /// Whether a repair has happened, after which every header block is re-encoded.
    rewriting: bool,
    /// The first header block needed no repair. A client keeps one authority per connection (grpc-go and
    /// tonic both do), so the rest of the connection passes through untouched: this keeps HPACK decoding
    /// (whose Huffman path is slow) off the hot path of every normal client.
    settled: bool,
    /// Unconsumed input: part of a frame header, or a HEADERS/CONTINUATION frame not yet complete.
    pending: Vec<u8>,
    block: Option<HeaderBlock>,
    /// Mirrors the client's encoder.
    decoder: Decoder<'static>,
    /// Feeds the server's decoder once rewriting.
    encoder: Encoder<'static>,
}

impl Fixer {
    fn new() -> Self {
        let mut decoder = Decoder::new();
        decoder.set_max_allowed_table_size(HPACK_TABLE_SIZE);
        Fixer {
            phase: Phase::Preface(0),
            rewriting: false,
            settled: false,
            pending: Vec::new(),
            block: None,
            decoder,
            encoder: Encoder::new(),
        }
    }

    /// How many of the next `n` input bytes pass through unchanged without being fed (and accounts for them).
    fn direct_len(&mut self, n: usize) -> usize {
        // `feed` consumes all input in these phases, so nothing is pending that these bytes could overtake.
        if !self.pending.is_empty() {
            return 0;
        }
        match self.phase {
            Phase::Passthrough => n,
            Phase::Frames if self.settled && self.block.is_none() => {
                self.phase = Phase::Passthrough;
                n
            }
            Phase::Forward(remaining) => {
                let k = remaining.min(n);
                self.phase = if k == remaining { Phase::Frames } else { Phase::Forward(remaining - k) };
                k
            }
            Phase::Preface(_) | Phase::Frames | Phase::Failed => 0,
        }
    }

    /// Consumes client bytes, appending what the server should see to `out`.
    fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) {
        let mut pending = std::mem::take(&mut self.pending);
        pending.extend_from_slice(input);
        let mut pos = 0;
        while let Some(buf) = pending.get(pos..).filter(|b| !b.is_empty()) {
            match self.phase {
                Phase::Failed => pos = pending.len(),
                Phase::Passthrough => {
                    out.extend_from_slice(buf);
                    pos = pending.len();
                }
                Phase::Preface(seen) => {
                    let want = PREFACE.get(seen..).unwrap_or_default();
                    let n = want.len().min(buf.len());
                    if buf.get(..n) != want.get(..n) {
                        // Not HTTP/2 (e.g. an HTTP/1 request): none of our business.
                        self.phase = Phase::Passthrough;
                        continue;
                    }
                    out.extend_from_slice(&buf[..n]);
                    pos += n;
                    self.phase = if seen + n == PREFACE.len() { Phase::Frames } else { Phase::Preface(seen + n) };
                }
                Phase::Forward(remaining) => {
                    let n = remaining.min(buf.len());
                    out.extend_from_slice(&buf[..n]);
                    pos += n;
                    self.phase = if n == remaining { Phase::Frames } else { Phase::Forward(remaining - n) };
                }
                Phase::Frames if self.settled && self.block.is_none() => self.phase = Phase::Passthrough,
                Phase::Frames => match self.frame(buf, out) {
                    Some(n) => pos += n,
                    None => break,
                },
            }
        }
        pending.drain(..pos.min(pending.len()));
        self.pending = pending;
    }

    /// The client closed its side: forward whatever is held back unless that would break HPACK consistency.
    fn finish(&mut self, out: &mut Vec<u8>) {
        if !self.rewriting && self.phase != Phase::Failed {
            if let Some(block) = self.block.take() {
                out.extend_from_slice(&block.raw);
            }
            out.append(&mut self.pending);
        }
        // Once rewriting, a partial frame cut off by the close is dropped: the server sees the close either way.
        self.pending.clear();
        self.block = None;
        if self.phase != Phase::Failed {
            self.phase = Phase::Passthrough;
        }
    }

    /// Handles the frame at the start of `buf`. Returns how many bytes it consumed (zero when it switched to a
    /// phase that consumes them instead), or `None` when more input is needed.
    fn frame(&mut self, buf: &[u8], out: &mut Vec<u8>) -> Option<usize> {
        let header: &[u8; FRAME_HEADER_LEN] = buf.get(..FRAME_HEADER_LEN)?.try_into().ok()?;
        let len = usize::from(header[0]) << 16 | usize::from(header[1]) << 8 | usize::from(header[2]);
        let (kind, flags) = (header[3], header[4]);
        let stream_id = u32::from_be_bytes([header[5], header[6], header[7], header[8]]) & 0x7fff_ffff;

        if kind != TYPE_HEADERS && kind != TYPE_CONTINUATION {
            if self.block.is_some() {
                // Only CONTINUATION may follow an unfinished header block (RFC 9113 §6.10).
                self.give_up(out, "frame interrupts a header block");
                return Some(0);
            }
            out.extend_from_slice(header);
            self.phase = if len == 0 { Phase::Frames } else { Phase::Forward(len) };
            return Some(FRAME_HEADER_LEN);
        }

        let collected = self.block.as_ref().map_or(0, |b| b.fragment.len());
        if collected + len > MAX_HEADER_BLOCK_BYTES {
            self.give_up(out, "header block too large");
            return Some(0);
        }
        let frame = buf.get(..FRAME_HEADER_LEN + len)?;
        let payload = &frame[FRAME_HEADER_LEN..];
        if kind == TYPE_HEADERS {
            let Some(block) = self.start_block(frame, payload, flags, stream_id) else {
                self.give_up(out, "malformed HEADERS frame");
                return Some(0);
            };
            self.block = Some(block);
        } else {
            let Some(block) = self.block.as_mut().filter(|b| b.stream_id == stream_id) else {
                self.give_up(out, "unexpected CONTINUATION frame");
                return Some(0);
            };
            block.fragment.extend_from_slice(payload);
            if !self.rewriting {
                block.raw.extend_from_slice(frame);
            }
        }
        if flags & FLAG_END_HEADERS != 0 {
            self.finish_block(out);
        }
        Some(frame.len())
    }

    /// Parses a complete HEADERS frame, or `None` if it is malformed (let `h2` report that).
    fn start_block(&self, frame: &[u8], payload: &[u8], flags: u8, stream_id: u32) -> Option<HeaderBlock> {
        if self.block.is_some() || stream_id == 0 {
            return None;
        }
        let mut start = 0;
        let mut end = payload.len();
        if flags & FLAG_PADDED != 0 {
            let pad = usize::from(*payload.first()?);
            start = 1;
            end = end.checked_sub(pad)?;
        }
        let mut priority = None;
        if flags & FLAG_PRIORITY != 0 {
            priority = Some(payload.get(start..start + PRIORITY_LEN)?.try_into().ok()?);
            start += PRIORITY_LEN;
        }
        Some(HeaderBlock {
            stream_id,
            end_stream: flags & FLAG_END_STREAM != 0,
            priority,
            fragment: payload.get(start..end)?.to_vec(),
            raw: if self.rewriting { Vec::new() } else { frame.to_vec() },
        })
    }

    /// Decodes the completed block and forwards it: unchanged, or repaired and re-encoded.
    fn finish_block(&mut self, out: &mut Vec<u8>) {
        let Some(block) = self.block.take() else {
            return;
        };
        let mut headers: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        let mut decoded_size = 0usize;
        let decoded = self.decoder.decode_with_cb(&block.fragment, |name, value| {
            // Keep decoding past the limit (the table must stay in step), but stop holding on to fields.
            decoded_size = decoded_size.saturating_add(name.len() + value.len() + 32);
            if decoded_size <= MAX_DECODED_HEADER_BYTES {
                headers.push((name.into_owned(), value.into_owned()));
            }
        });
        if let Err(e) = decoded {
            self.block = Some(block);
            self.give_up(out, &format!("HPACK decoding failed: {e}"));
            return;
        }
        if decoded_size > MAX_DECODED_HEADER_BYTES {
            self.block = Some(block);
            self.give_up(out, "decoded header list too large");
            return;
        }

        let mut repaired = false;
        for (name, value) in &mut headers {
            if name.as_slice() == b":authority"
                && let Some(fixed) = repaired_authority(value)
            {
                tracing::debug!(
                    from = %String::from_utf8_lossy(value),
                    to = %String::from_utf8_lossy(&fixed),
                    "repairing a URL-shaped HTTP/2 :authority"
                );
                *value = fixed;
                repaired = true;
            }
        }
        if !self.rewriting && !repaired {
            out.extend_from_slice(&block.raw);
            self.settled = true;
            return;
        }

        let mut hpack = Vec::new();
        if !self.rewriting {
            // The server's decoder still holds entries from the blocks it saw unchanged; our fresh encoder
            // knows none of them. FIFO eviction would keep the newest indices aligned anyway, but emptying the
            // server's table (size update to 0, then back to the default) makes both sides start from the same
            // empty state instead of relying on that. Writing to a Vec cannot fail.
            let _ = encode_integer_into(0, 5, HPACK_SIZE_UPDATE, &mut hpack);
            let _ = encode_integer_into(HPACK_TABLE_SIZE, 5, HPACK_SIZE_UPDATE, &mut hpack);
            self.rewriting = true;
        }
        let fields = headers.iter().map(|(n, v)| (n.as_slice(), v.as_slice()));
        if self.encoder.encode_into(fields, &mut hpack).is_err() {
            self.give_up(out, "HPACK encoding failed");
            return;
        }
        emit_header_frames(&block, &hpack, out);
    }

    /// Stops transforming: before any repair everything (including a held-back block) passes unchanged from
    /// here on; after one, the connection fails.
    fn give_up(&mut self, out: &mut Vec<u8>, why: &str) {
        if self.rewriting {
            tracing::warn!(why, "closing an HTTP/2 connection whose :authority was repaired");
            self.block = None;
            self.phase = Phase::Failed;
        } else {
            tracing::debug!(why, "no longer inspecting HTTP/2 header blocks on this connection");
            if let Some(block) = self.block.take() {
                out.extend_from_slice(&block.raw);
            }
            self.phase = Phase::Passthrough;
        }
    }
}

/// Writes `hpack` as a HEADERS frame plus as many CONTINUATION frames as needed, none over
/// [`MAX_EMIT_PAYLOAD`], keeping the block's stream, END_STREAM and priority (padding is dropped).
fn emit_header_frames(block: &HeaderBlock, hpack: &[u8], out: &mut Vec<u8>) {
    let priority_len = if block.priority.is_some() { PRIORITY_LEN } else { 0 };
    let (first, mut rest) = hpack.split_at(hpack.len().min(MAX_EMIT_PAYLOAD - priority_len));
    let mut flags = 0;
    if block.end_stream {
        flags |= FLAG_END_STREAM;
    }
    if block.priority.is_some() {
        flags |= FLAG_PRIORITY;
    }
    if rest.is_empty() {
        flags |= FLAG_END_HEADERS;
    }
    push_frame_header(out, priority_len + first.len(), TYPE_HEADERS, flags, block.stream_id);
    if let Some(priority) = &block.priority {
        out.extend_from_slice(priority);
    }
    out.extend_from_slice(first);
    while !rest.is_empty() {
        let (chunk, tail) = rest.split_at(rest.len().min(MAX_EMIT_PAYLOAD));
        rest = tail;
        let flags = if rest.is_empty() { FLAG_END_HEADERS } else { 0 };
        push_frame_header(out, chunk.len(), TYPE_CONTINUATION, flags, block.stream_id);
        out.extend_from_slice(chunk);
    }
}

fn push_frame_header(out: &mut Vec<u8>, len: usize, kind: u8, flags: u8, stream_id: u32) {
    // `len` never exceeds MAX_EMIT_PAYLOAD, so the 24-bit field holds it.
    let len = (len as u32).to_be_bytes();
    out.extend_from_slice(&[len[1], len[2], len[3], kind, flags]);
    out.extend_from_slice(&stream_id.to_be_bytes());
}

/// The authority inside a URL-shaped `:authority` value, or `None` if it needs no repair (or has nothing left
/// to repair it to, in which case `h2` refuses it as before).
///
/// `http://127.0.0.1:2379` and `passthrough:///http://127.0.0.1:2379/x` both become `127.0.0.1:2379`.
fn repaired_authority(value: &[u8]) -> Option<Vec<u8>> {
    let mut rest = value;
    let mut changed = false;
    while let Some(at) = rest.windows(3).position(|w| w == b"://") {
        let scheme = &rest[..at];
        let scheme_like = scheme.first().is_some_and(u8::is_ascii_alphabetic)
            && scheme.iter().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
        if !scheme_like {
            break;
        }
        rest = &rest[at + 3..];
        // gRPC targets such as `passthrough:///endpoint` have an empty authority part.
        while let Some(tail) = rest.strip_prefix(b"/") {
            rest = tail;
        }
        changed = true;
    }
    if !changed {
        return None;
    }
    let end = rest.iter().position(|b| matches!(b, b'/' | b'?' | b'#')).unwrap_or(rest.len());
    let authority = &rest[..end];
    (!authority.is_empty()).then(|| authority.to_vec())
}

#[cfg(test)]
mod tests;
