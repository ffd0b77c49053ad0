//! Real TLS handshakes over loopback TCP with rustls, configured as the members will be: a client listener
//! requiring client certificates from `ca.crt`, and a peer listener trusting only `peer-ca.crt`.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread;
use std::time::Duration;

use rustls::pki_types::ServerName;
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, ClientConnection, ServerConfig, ServerConnection, StreamOwned};

use super::*;
use crate::certs::pem::PemPair;

/// Bounds every read and write, so a handshake that stalls fails the test instead of hanging it.
const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// What the server side saw: the client certificate's common name, or the error that ended the handshake.
type ServerSide = Result<String, String>;

/// Serves one connection on 127.0.0.1 with `identity`, requiring a client certificate from `client_ca`; then
/// connects as a client trusting `server_ca` and presenting `client`, sends a ping and reads the pong.
/// Returns (client result, server result).
fn handshake(
    identity: &PemPair,
    client_ca: &str,
    server_ca: &str,
    client: &PemPair,
) -> (Result<(), String>, ServerSide) {
    let verifier = WebPkiClientVerifier::builder_with_provider(roots(client_ca), provider()).build().unwrap();
    let server_config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(vec![der(&identity.cert_pem)], key(&identity.key_pem))
        .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = thread::spawn(move || -> ServerSide {
        let (sock, _) = listener.accept().map_err(|e| e.to_string())?;
        sock.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        sock.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
        let mut tls = StreamOwned::new(ServerConnection::new(Arc::new(server_config)).unwrap(), sock);
        let mut ping = [0u8; 4];
        tls.read_exact(&mut ping).map_err(|e| e.to_string())?;
        assert_eq!(&ping, b"ping");
        tls.write_all(b"pong").map_err(|e| e.to_string())?;
        tls.flush().map_err(|e| e.to_string())?;
        let peer = tls.conn.peer_certificates().and_then(|certs| certs.first()).expect("a verified client cert");
        Ok(with_cert_der(peer.as_ref()))
    });

    let client_config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots(server_ca))
        .with_client_auth_cert(vec![der(&client.cert_pem)], key(&client.key_pem))
        .unwrap();
    let client_result = (|| -> Result<(), String> {
        let sock = TcpStream::connect(addr).map_err(|e| e.to_string())?;
        sock.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        sock.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
        let name = ServerName::try_from("127.0.0.1").unwrap();
        let conn = ClientConnection::new(Arc::new(client_config), name).map_err(|e| e.to_string())?;
        let mut tls = StreamOwned::new(conn, sock);
        tls.write_all(b"ping").map_err(|e| e.to_string())?;
        let mut pong = [0u8; 4];
        tls.read_exact(&mut pong).map_err(|e| e.to_string())?;
        if &pong != b"pong" {
            return Err(format!("unexpected reply {pong:?}"));
        }
        Ok(())
    })();
    (client_result, server.join().unwrap())
}

fn with_cert_der(der: &[u8]) -> String {
    let (_, cert) = X509Certificate::from_der(der).unwrap();
    common_name(&cert)
}

#[test]
fn a_member_server_certificate_serves_a_client_presenting_root() {
    let b = bundle();
    let ca = &b.client_ca.pems.cert_pem;
    let (client, server) = handshake(&b.members[0].server, ca, ca, &b.clients[0].pems);
    assert_eq!(client, Ok(()));
    assert_eq!(server, Ok("root".to_owned()), "the server sees the client's common name");
}

#[test]
fn a_peer_listener_refuses_a_client_certificate_at_the_handshake() {
    let b = bundle();
    let peer_ca = &b.peer_ca.pems.cert_pem;
    let a1 = &b.members[0].peer;

    // The peer link as it should work: a1 answers on 127.0.0.1, b1 dials with its peer certificate.
    let (client, server) = handshake(a1, peer_ca, peer_ca, &b.members[1].peer);
    assert_eq!(client, Ok(()));
    assert_eq!(server, Ok("b1".to_owned()));

    // A client certificate (signed by ca.crt) at the same listener.
    let (client, server) = handshake(a1, peer_ca, peer_ca, &b.clients[0].pems);
    let server = server.unwrap_err();
    assert!(server.contains("UnknownIssuer") || server.contains("certificate"), "server error: {server}");
    assert!(client.is_err(), "the client must not get through");
}
