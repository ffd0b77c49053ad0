//! A webhook receiver for failover-group hooks: a plain HTTP/1.1 server on 127.0.0.1 that records the token of
//! every call and answers 503 until told to accept (200).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

/// One call the receiver got: its token, and whether it was acknowledged (200) or refused (503).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Call {
    /// The token in the body.
    pub token: i64,
    /// Whether it was answered 200.
    pub accepted: bool,
}

/// A webhook receiver on 127.0.0.1 that answers 503 until told to accept, recording every call.
pub struct Receiver {
    addr: SocketAddr,
    calls: Arc<Mutex<Vec<Call>>>,
    accepting: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Receiver {
    /// A receiver that refuses until [`Receiver::accept`].
    pub fn start() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the receiver");
        let addr = listener.local_addr().unwrap();
        let (calls, accepting, stop) =
            (Arc::default(), Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(false)));
        let thread = thread::spawn({
            let (calls, accepting, stop) = (Arc::clone(&calls), Arc::clone(&accepting), Arc::clone(&stop));
            move || {
                for conn in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    if let Ok(conn) = conn {
                        serve(conn, &calls, &accepting);
                    }
                }
            }
        });
        Receiver { addr, calls, accepting, stop, thread: Some(thread) }
    }

    /// The hook URL.
    pub fn url(&self) -> String {
        format!("http://{}/failover", self.addr)
    }

    /// Every call so far.
    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }

    /// Answers 200 from now on (or 503 again with `false`).
    pub fn accept(&self, yes: bool) {
        self.accepting.store(yes, Ordering::SeqCst);
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Reads one request (head and Content-Length body), records its token and answers.
fn serve(conn: TcpStream, calls: &Mutex<Vec<Call>>, accepting: &AtomicBool) {
    conn.set_read_timeout(Some(Duration::from_secs(2))).ok();
    let mut reader = BufReader::new(conn);
    let mut length = 0usize;
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        if line == "\r\n" {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0u8; length];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    let Some(token) = serde_json::from_slice::<serde_json::Value>(&body).ok().and_then(|v| v["token"].as_i64()) else {
        return;
    };
    let accepted = accepting.load(Ordering::SeqCst);
    calls.lock().unwrap().push(Call { token, accepted });
    let status = if accepted { "200 OK" } else { "503 Service Unavailable" };
    let mut conn = reader.into_inner();
    let _ = conn.write_all(format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").as_bytes());
}
