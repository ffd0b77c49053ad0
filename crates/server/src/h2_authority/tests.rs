use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use loona_hpack::{Decoder, Encoder};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt, ReadBuf};

use super::*;

type Fields = Vec<(Vec<u8>, Vec<u8>)>;

const TYPE_DATA: u8 = 0x0;
const TYPE_SETTINGS: u8 = 0x4;
const TYPE_WINDOW_UPDATE: u8 = 0x8;

fn fields(list: &[(&str, &str)]) -> Fields {
    list.iter().map(|(n, v)| (n.as_bytes().to_vec(), v.as_bytes().to_vec())).collect()
}

/// A gRPC request's header list with the given authority and path.
fn request(authority: &str, path: &str) -> Fields {
    fields(&[
        (":method", "POST"),
        (":scheme", "http"),
        (":path", path),
        (":authority", authority),
        ("content-type", "application/grpc"),
        ("user-agent", "grpc-go/1.26.0"),
        ("te", "trailers"),
    ])
}

fn encode(encoder: &mut Encoder<'static>, list: &Fields) -> Vec<u8> {
    encoder.encode(list.iter().map(|(n, v)| (n.as_slice(), v.as_slice())))
}

fn frame(kind: u8, flags: u8, stream_id: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    push_frame_header(&mut out, payload.len(), kind, flags, stream_id);
    out.extend_from_slice(payload);
    out
}

/// How a test splits a header block into frames.
#[derive(Clone, Copy, Default)]
struct Shape {
    /// Padding length for a PADDED HEADERS frame.
    pad: Option<u8>,
    /// Add a PRIORITY section to the HEADERS frame.
    priority: bool,
    /// Move the fragment after this many bytes into CONTINUATION frames of this size.
    continuation: Option<(usize, usize)>,
    end_stream: bool,
}

const PRIORITY_BYTES: [u8; 5] = [0x80, 0, 0, 0, 15];

fn header_frames(stream_id: u32, fragment: &[u8], shape: Shape) -> Vec<u8> {
    let (first, rest) = match shape.continuation {
        Some((at, _)) => fragment.split_at(at.min(fragment.len())),
        None => (fragment, &[][..]),
    };
    let mut flags = 0;
    let mut payload = Vec::new();
    if let Some(pad) = shape.pad {
        flags |= FLAG_PADDED;
        payload.push(pad);
    }
    if shape.priority {
        flags |= FLAG_PRIORITY;
        payload.extend_from_slice(&PRIORITY_BYTES);
    }
    payload.extend_from_slice(first);
    if let Some(pad) = shape.pad {
        payload.extend(std::iter::repeat_n(0, usize::from(pad)));
    }
    if shape.end_stream {
        flags |= FLAG_END_STREAM;
    }
    if rest.is_empty() {
        flags |= FLAG_END_HEADERS;
    }
    let mut out = frame(TYPE_HEADERS, flags, stream_id, &payload);
    let chunk = shape.continuation.map_or(1, |(_, size)| size.max(1));
    let pieces: Vec<&[u8]> = rest.chunks(chunk).collect();
    for (i, piece) in pieces.iter().enumerate() {
        let flags = if i + 1 == pieces.len() { FLAG_END_HEADERS } else { 0 };
        out.extend(frame(TYPE_CONTINUATION, flags, stream_id, piece));
    }
    out
}

fn preface_and_settings() -> Vec<u8> {
    let mut out = PREFACE.to_vec();
    // SETTINGS: INITIAL_WINDOW_SIZE = 65535, MAX_HEADER_LIST_SIZE = 16384.
    out.extend(frame(TYPE_SETTINGS, 0, 0, &[0, 4, 0, 0, 0xff, 0xff, 0, 6, 0, 0, 0x40, 0]));
    out
}

fn data_frame(stream_id: u32, len: usize) -> Vec<u8> {
    let payload: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
    frame(TYPE_DATA, FLAG_END_STREAM, stream_id, &payload)
}

/// Yields its data in reads of the given sizes (cycled), like a socket delivering odd segments.
struct Chunked {
    data: Vec<u8>,
    pos: usize,
    sizes: Vec<usize>,
    turn: usize,
}

impl AsyncRead for Chunked {
    fn poll_read(self: Pin<&mut Self>, _cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let size = this.sizes[this.turn % this.sizes.len()].max(1);
        this.turn += 1;
        let n = size.min(buf.remaining()).min(this.data.len() - this.pos);
        buf.put_slice(&this.data[this.pos..this.pos + n]);
        this.pos += n;
        Poll::Ready(Ok(()))
    }
}

/// Everything the server would read from `input` through the wrapper, read in `read_size` pieces.
async fn transform(input: &[u8], sizes: &[usize], read_size: usize) -> Vec<u8> {
    let reader = Chunked { data: input.to_vec(), pos: 0, sizes: sizes.to_vec(), turn: 0 };
    let mut fix = AuthorityFix::new(reader);
    let mut out = Vec::new();
    let mut piece = vec![0u8; read_size];
    loop {
        let n = fix.read(&mut piece).await.expect("read");
        if n == 0 {
            return out;
        }
        out.extend_from_slice(&piece[..n]);
    }
}

/// Read patterns that exercise frames split anywhere and many frames per read.
const SPLITS: &[(&[usize], usize)] =
    &[(&[1], 1), (&[1], 4096), (&[2, 3, 5, 7, 11], 3), (&[9], 9), (&[100_000], 100_000), (&[4096], 17)];

#[derive(Debug, PartialEq)]
enum Parsed {
    Headers { stream_id: u32, end_stream: bool, priority: Option<[u8; 5]>, fields: Fields },
    Other { kind: u8, flags: u8, stream_id: u32, payload: Vec<u8> },
}

/// Parses what the server would see, decoding header blocks with a fresh decoder as `h2` does, and checking
/// the framing rules the wrapper must keep.
fn parse(bytes: &[u8]) -> Vec<Parsed> {
    assert_eq!(&bytes[..PREFACE.len()], PREFACE, "preface");
    let mut rest = &bytes[PREFACE.len()..];
    let mut decoder = Decoder::new();
    let mut parsed = Vec::new();
    // Stream id, END_STREAM, priority and fragment of the header block being collected.
    type Open = (u32, bool, Option<[u8; 5]>, Vec<u8>);
    let mut open: Option<Open> = None;
    while !rest.is_empty() {
        let len = usize::from(rest[0]) << 16 | usize::from(rest[1]) << 8 | usize::from(rest[2]);
        let (kind, flags) = (rest[3], rest[4]);
        let stream_id = u32::from_be_bytes([rest[5], rest[6], rest[7], rest[8]]);
        let payload = &rest[9..9 + len];
        rest = &rest[9 + len..];
        match kind {
            TYPE_HEADERS => {
                assert!(open.is_none(), "HEADERS inside an open block");
                assert!(len <= MAX_EMIT_PAYLOAD, "frame of {len} bytes");
                let mut p = payload;
                if flags & FLAG_PADDED != 0 {
                    let pad = usize::from(p[0]);
                    p = &p[1..p.len() - pad];
                }
                let mut priority = None;
                if flags & FLAG_PRIORITY != 0 {
                    priority = Some(p[..5].try_into().unwrap());
                    p = &p[5..];
                }
                open = Some((stream_id, flags & FLAG_END_STREAM != 0, priority, p.to_vec()));
            }
            TYPE_CONTINUATION => {
                assert!(len <= MAX_EMIT_PAYLOAD, "frame of {len} bytes");
                let block = open.as_mut().expect("CONTINUATION without HEADERS");
                assert_eq!(block.0, stream_id);
                block.3.extend_from_slice(payload);
            }
            _ => {
                assert!(open.is_none(), "frame inside an open header block");
                parsed.push(Parsed::Other { kind, flags, stream_id, payload: payload.to_vec() });
            }
        }
        if matches!(kind, TYPE_HEADERS | TYPE_CONTINUATION) && flags & FLAG_END_HEADERS != 0 {
            let (stream_id, end_stream, priority, fragment) = open.take().unwrap();
            let fields = decoder.decode(&fragment).expect("server-side HPACK decode");
            parsed.push(Parsed::Headers { stream_id, end_stream, priority, fields });
        }
    }
    assert!(open.is_none(), "header block left open");
    parsed
}

fn with_authority(mut list: Fields, authority: &str) -> Fields {
    for (name, value) in &mut list {
        if name.as_slice() == b":authority" {
            *value = authority.as_bytes().to_vec();
        }
    }
    list
}

#[test]
fn authority_repair_rules() {
    let cases: &[(&str, Option<&str>)] = &[
        ("http://127.0.0.1:2379", Some("127.0.0.1:2379")),
        ("https://example.com:443/some/path?q=1", Some("example.com:443")),
        ("passthrough:///http://127.0.0.1:2379", Some("127.0.0.1:2379")),
        ("http://[::1]:2379", Some("[::1]:2379")),
        ("127.0.0.1:2379", None),
        ("localhost", None),
        ("http://", None),
        ("/x://y", None),
    ];
    for (input, want) in cases {
        let got = repaired_authority(input.as_bytes());
        assert_eq!(got.as_deref(), want.map(str::as_bytes), "{input}");
    }
}

#[tokio::test]
async fn repairs_authority_across_any_read_split() {
    let mut encoder = Encoder::new();
    let bad = request("http://127.0.0.1:2379", "/etcdserverpb.Maintenance/Status");
    let mut input = preface_and_settings();
    input.extend(frame(TYPE_WINDOW_UPDATE, 0, 0, &[0, 0x0f, 0, 1]));
    input.extend(header_frames(1, &encode(&mut encoder, &bad), Shape::default()));
    input.extend(data_frame(1, 40_000));
    input.extend(frame(TYPE_SETTINGS, 1, 0, &[]));

    let expected = vec![
        Parsed::Other { kind: TYPE_SETTINGS, flags: 0, stream_id: 0, payload: input[33..45].to_vec() },
        Parsed::Other { kind: TYPE_WINDOW_UPDATE, flags: 0, stream_id: 0, payload: vec![0, 0x0f, 0, 1] },
        Parsed::Headers {
            stream_id: 1,
            end_stream: false,
            priority: None,
            fields: with_authority(bad.clone(), "127.0.0.1:2379"),
        },
        Parsed::Other {
            kind: TYPE_DATA,
            flags: FLAG_END_STREAM,
            stream_id: 1,
            payload: data_frame(1, 40_000)[9..].to_vec(),
        },
        Parsed::Other { kind: TYPE_SETTINGS, flags: 1, stream_id: 0, payload: vec![] },
    ];
    for (sizes, read_size) in SPLITS {
        let out = transform(&input, sizes, *read_size).await;
        assert_eq!(parse(&out), expected, "reads of {sizes:?} into {read_size}-byte buffers");
    }
}

#[tokio::test]
async fn repairs_padded_prioritised_block_with_continuations() {
    let mut encoder = Encoder::new();
    let mut bad = request("http://127.0.0.1:2379", "/etcdserverpb.KV/Range");
    // A large field so the re-encoded block itself needs CONTINUATION frames.
    bad.push((b"x-big".to_vec(), vec![b'z'; 40_000]));
    let fragment = encode(&mut encoder, &bad);
    let shape = Shape { pad: Some(7), priority: true, continuation: Some((10, 5_000)), end_stream: true };
    let mut input = preface_and_settings();
    input.extend(header_frames(3, &fragment, shape));
    input.extend(frame(TYPE_WINDOW_UPDATE, 0, 3, &[0, 0, 1, 0]));

    let expected = vec![
        Parsed::Other { kind: TYPE_SETTINGS, flags: 0, stream_id: 0, payload: input[33..45].to_vec() },
        Parsed::Headers {
            stream_id: 3,
            end_stream: true,
            priority: Some(PRIORITY_BYTES),
            fields: with_authority(bad.clone(), "127.0.0.1:2379"),
        },
        Parsed::Other { kind: TYPE_WINDOW_UPDATE, flags: 0, stream_id: 3, payload: vec![0, 0, 1, 0] },
    ];
    for (sizes, read_size) in SPLITS {
        let out = transform(&input, sizes, *read_size).await;
        assert_eq!(parse(&out), expected, "reads of {sizes:?} into {read_size}-byte buffers");
    }
}

#[tokio::test]
async fn valid_authorities_pass_through_byte_for_byte() {
    let mut encoder = Encoder::new();
    let mut input = preface_and_settings();
    for (i, stream_id) in [1u32, 3, 5, 7].into_iter().enumerate() {
        let block = encode(&mut encoder, &request("127.0.0.1:2379", &format!("/etcdserverpb.KV/Range{}", i % 2)));
        let shape = Shape { pad: Some(3), priority: i % 2 == 0, continuation: Some((4, 3)), end_stream: false };
        input.extend(header_frames(stream_id, &block, shape));
        input.extend(data_frame(stream_id, 100 + i));
    }
    for (sizes, read_size) in SPLITS {
        let reader = Chunked { data: input.clone(), pos: 0, sizes: sizes.to_vec(), turn: 0 };
        let mut fix = AuthorityFix::new(reader);
        let mut out = Vec::new();
        let mut piece = vec![0u8; *read_size];
        loop {
            let n = fix.read(&mut piece).await.unwrap();
            if n == 0 {
                break;
            }
            out.extend_from_slice(&piece[..n]);
        }
        assert!(out == input, "output differs for reads of {sizes:?}");
        assert!(!fix.is_rewriting());
    }
}

#[tokio::test]
async fn every_later_block_is_re_encoded_consistently_once_the_first_needed_repair() {
    // The first block needs a repair, so the whole connection is re-encoded; later blocks reference entries
    // of the client's dynamic table, good authorities and bad ones alike.
    let mut encoder = Encoder::new();
    let lists = [
        request("http://127.0.0.1:2379", "/etcdserverpb.KV/Range"),
        request("127.0.0.1:2379", "/etcdserverpb.KV/Put"),
        request("http://127.0.0.1:2379", "/etcdserverpb.Maintenance/Status"),
        request("http://127.0.0.1:2379", "/etcdserverpb.Maintenance/Status"),
        request("127.0.0.1:2379", "/etcdserverpb.KV/Range"),
        request("http://127.0.0.1:2379", "/etcdserverpb.Maintenance/HashKV"),
    ];
    // Large, distinct fields make both dynamic tables overflow and evict, before and after the switch.
    let lists: Vec<Fields> = lists
        .into_iter()
        .enumerate()
        .map(|(i, mut list)| {
            list.push((format!("x-pad-{i}").into_bytes(), vec![b'a' + i as u8; 1500]));
            list
        })
        .collect();
    let mut input = preface_and_settings();
    let mut expected =
        vec![Parsed::Other { kind: TYPE_SETTINGS, flags: 0, stream_id: 0, payload: input[33..45].to_vec() }];
    for (i, list) in lists.iter().enumerate() {
        let stream_id = 2 * i as u32 + 1;
        let shape = Shape { continuation: (i % 2 == 1).then_some((8, 6)), ..Shape::default() };
        input.extend(header_frames(stream_id, &encode(&mut encoder, list), shape));
        input.extend(data_frame(stream_id, 5));
        expected.push(Parsed::Headers {
            stream_id,
            end_stream: false,
            priority: None,
            fields: with_authority(list.clone(), "127.0.0.1:2379"),
        });
        expected.push(Parsed::Other {
            kind: TYPE_DATA,
            flags: FLAG_END_STREAM,
            stream_id,
            payload: data_frame(stream_id, 5)[9..].to_vec(),
        });
    }
    for (sizes, read_size) in SPLITS {
        let out = transform(&input, sizes, *read_size).await;
        assert_eq!(parse(&out), expected, "reads of {sizes:?} into {read_size}-byte buffers");
    }
}

#[tokio::test]
async fn a_connection_whose_first_block_is_valid_is_not_inspected_further() {
    // Clients keep one authority per connection, so after a valid first block the fixer steps aside (keeping
    // HPACK decoding off the hot path); a URL-shaped authority later on reaches h2 unchanged.
    let mut encoder = Encoder::new();
    let mut input = preface_and_settings();
    for (i, authority) in ["127.0.0.1:2379", "http://127.0.0.1:2379"].iter().enumerate() {
        let list = request(authority, "/etcdserverpb.KV/Range");
        input.extend(header_frames(2 * i as u32 + 1, &encode(&mut encoder, &list), Shape::default()));
    }
    for (sizes, read_size) in SPLITS {
        assert!(transform(&input, sizes, *read_size).await == input, "reads of {sizes:?}");
    }
}

#[tokio::test]
async fn malformed_input_passes_through_unchanged() {
    let mut encoder = Encoder::new();
    let cases: Vec<Vec<u8>> = vec![
        // Not HTTP/2 at all.
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        // Padding longer than the payload.
        [preface_and_settings(), frame(TYPE_HEADERS, FLAG_PADDED | FLAG_END_HEADERS, 1, &[9, 1, 2])].concat(),
        // CONTINUATION without HEADERS, then a bad authority that must no longer be touched.
        [
            preface_and_settings(),
            frame(TYPE_CONTINUATION, FLAG_END_HEADERS, 1, &[0x82]),
            header_frames(3, &encode(&mut encoder, &request("http://a:1", "/x")), Shape::default()),
        ]
        .concat(),
        // Garbage HPACK (index 0).
        [preface_and_settings(), frame(TYPE_HEADERS, FLAG_END_HEADERS, 1, &[0x80])].concat(),
        // A DATA frame interrupting an unfinished header block.
        [preface_and_settings(), frame(TYPE_HEADERS, 0, 1, &[0x82]), data_frame(1, 3)].concat(),
        // A header block over the buffering limit.
        [preface_and_settings(), frame(TYPE_HEADERS, 0, 1, &vec![0u8; MAX_HEADER_BLOCK_BYTES + 1])].concat(),
        // Cut off in the middle of a header frame.
        [preface_and_settings(), frame(TYPE_HEADERS, FLAG_END_HEADERS, 1, &[0x82, 0x86, 0x84])[..11].to_vec()].concat(),
    ];
    for (n, input) in cases.iter().enumerate() {
        for (sizes, read_size) in SPLITS {
            let out = transform(input, sizes, *read_size).await;
            assert!(out == *input, "case {n}: output differs for reads of {sizes:?}");
        }
    }
}

#[tokio::test]
async fn hpack_error_after_a_repair_fails_the_connection() {
    let mut encoder = Encoder::new();
    let mut input = preface_and_settings();
    input.extend(header_frames(1, &encode(&mut encoder, &request("http://a:1", "/x")), Shape::default()));
    input.extend(frame(TYPE_HEADERS, FLAG_END_HEADERS, 3, &[0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]));
    let reader = Chunked { data: input, pos: 0, sizes: vec![7], turn: 0 };
    let mut fix = AuthorityFix::new(reader);
    let mut out = Vec::new();
    let err = fix.read_to_end(&mut out).await.unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    // What came before the failure was delivered and is consistent.
    assert!(matches!(&parse(&out)[1], Parsed::Headers { stream_id: 1, .. }));
}

#[tokio::test]
async fn the_real_h2_server_accepts_repaired_requests() {
    // Without the wrapper `h2` resets streams 1, 5 and 11; with it every request arrives, with a valid
    // authority, and the server's HPACK state follows our re-encoding across dynamic-table evictions.
    let (mut client, server) = tokio::io::duplex(1 << 16);
    let accepted = tokio::spawn(async move {
        let mut conn = h2::server::handshake(AuthorityFix::new(server)).await.expect("handshake");
        let mut seen = Vec::new();
        while let Some(request) = conn.accept().await {
            let (request, mut respond) = request.expect("accept");
            seen.push((request.uri().path().to_owned(), request.uri().authority().map(|a| a.to_string())));
            let _ = respond.send_response(http::Response::new(()), true);
            if seen.len() == 6 {
                break;
            }
        }
        seen
    });

    let mut encoder = Encoder::new();
    let authorities = ["http://127.0.0.1:2379", "127.0.0.1:2379", "http://127.0.0.1:2379", "127.0.0.1:2379"];
    let mut input = preface_and_settings();
    for (i, authority) in authorities.iter().chain(&["127.0.0.1:2379", "https://h:9/p"]).enumerate() {
        let mut list = request(authority, &format!("/svc/m{i}"));
        // Large, distinct fields make the dynamic tables on both sides of the wrapper evict entries.
        list.push((format!("x-pad-{i}").into_bytes(), vec![b'a' + i as u8; 1500]));
        let shape = Shape { end_stream: true, continuation: (i == 3).then_some((5, 4)), ..Shape::default() };
        input.extend(header_frames(2 * i as u32 + 1, &encode(&mut encoder, &list), shape));
    }
    client.write_all(&input).await.unwrap();
    // Drain the server's frames so it never blocks on a full pipe.
    let (mut read_half, _write_half) = tokio::io::split(client);
    let drain = tokio::spawn(async move {
        let mut sink = vec![0u8; 4096];
        while read_half.read(&mut sink).await.is_ok_and(|n| n > 0) {}
    });
    let seen = tokio::time::timeout(Duration::from_secs(10), accepted).await.expect("h2 saw every request").unwrap();
    drain.abort();
    let want: Vec<(String, Option<String>)> = (0..6)
        .map(|i| (format!("/svc/m{i}"), Some(if i == 5 { "h:9" } else { "127.0.0.1:2379" }.to_owned())))
        .collect();
    assert_eq!(seen, want);
}

/// Runs etcdctl 3.4 (whose `endpoint` commands send `:authority: http://…`) and returns stdout on success.
fn etcdctl(endpoint: &str, args: &[&str]) -> Result<String, String> {
    let output = std::process::Command::new("/usr/bin/etcdctl")
        .env("ETCDCTL_API", "3")
        .env_remove("http_proxy")
        .env_remove("https_proxy")
        .env_remove("HTTP_PROXY")
        .env_remove("HTTPS_PROXY")
        .env_remove("ALL_PROXY")
        .env_remove("all_proxy")
        .args(["--endpoints", endpoint, "--dial-timeout=2s", "--command-timeout=5s"])
        .args(args)
        .output()
        .map_err(|e| format!("spawn etcdctl: {e}"))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(format!(
            "etcdctl {args:?}: {}\nstdout: {}\nstderr: {}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcdctl_endpoint_commands_work_against_a_real_member() {
    let dir = tempfile::tempdir().unwrap();
    let config = crate::ServerConfig {
        listen_client: "http://127.0.0.1:0".into(),
        listen_peer: "http://127.0.0.1:0".into(),
        data_dir: dir.path().join("data"),
        ..Default::default()
    };
    let server = crate::start(config).await.expect("start member");
    let endpoint = format!("http://{}", server.client_addr);
    let id = server.member.id().0;

    // Poll until the member has elected itself and etcdctl gets a full answer.
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        let ep = endpoint.clone();
        let result =
            tokio::task::spawn_blocking(move || etcdctl(&ep, &["endpoint", "status", "-w", "json"])).await.unwrap();
        let last_error = match result {
            Ok(stdout) => {
                let json: serde_json::Value = serde_json::from_str(&stdout).expect("etcdctl JSON");
                if json[0]["Status"]["leader"].as_u64().unwrap_or(0) != 0 {
                    break json;
                }
                format!("no leader yet: {stdout}")
            }
            Err(e) => e,
        };
        assert!(Instant::now() < deadline, "etcdctl endpoint status never succeeded: {last_error}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(status[0]["Endpoint"], endpoint.as_str());
    assert_eq!(status[0]["Status"]["header"]["member_id"].as_u64(), Some(id), "{status}");
    assert_eq!(status[0]["Status"]["leader"].as_u64(), Some(id), "{status}");

    let ep = endpoint.clone();
    let health =
        tokio::task::spawn_blocking(move || etcdctl(&ep, &["endpoint", "health", "-w", "json"])).await.unwrap();
    let health: serde_json::Value = serde_json::from_str(&health.expect("etcdctl endpoint health")).unwrap();
    assert_eq!(health[0]["endpoint"], endpoint.as_str(), "{health}");
    assert_eq!(health[0]["health"], true, "{health}");

    let ep = endpoint.clone();
    let hashkv =
        tokio::task::spawn_blocking(move || etcdctl(&ep, &["endpoint", "hashkv", "-w", "json"])).await.unwrap();
    let hashkv: serde_json::Value = serde_json::from_str(&hashkv.expect("etcdctl endpoint hashkv")).unwrap();
    assert_eq!(hashkv[0]["HashKV"]["header"]["member_id"].as_u64(), Some(id), "{hashkv}");

    server.stop().await.unwrap();
}
