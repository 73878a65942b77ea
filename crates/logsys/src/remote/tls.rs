//! RFC 5425: syslog over TLS with rustls (ring provider, TLS 1.2 and 1.3), the
//! receiver's certificate checked against `syslog.remote.ca` and its name against the
//! `syslog.remote` host (a DNS name or an IP address in its subjectAltName).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};

const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// A TLS connection to a receiver.
pub(crate) struct Stream(StreamOwned<ClientConnection, TcpStream>);

/// The client configuration: the CAs of `ca`.
fn config(ca: Option<&Path>) -> Result<Arc<ClientConfig>, String> {
    let ca =
        ca.ok_or("syslog.remote.protocol tls needs syslog.remote.ca (the receiver's CA, PEM)")?;
    let mut roots = RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(ca)
        .map_err(|e| format!("cannot read {}: {e}", ca.display()))?;
    for c in certs {
        let c = c.map_err(|e| format!("{}: {e}", ca.display()))?;
        roots.add(c).map_err(|e| format!("{}: {e}", ca.display()))?;
    }
    if roots.is_empty() {
        return Err(format!("{} holds no certificate", ca.display()));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Does the handshake on a connected socket; a certificate that does not check out is
/// an error saying why.
pub(crate) fn connect(sock: TcpStream, host: &str, ca: Option<&Path>) -> Result<Stream, String> {
    let config = config(ca)?;
    let name = ServerName::try_from(host.to_owned())
        .map_err(|e| format!("\"{host}\" is not a name TLS can check: {e}"))?;
    let conn = ClientConnection::new(config, name).map_err(|e| e.to_string())?;
    let _ = sock.set_read_timeout(Some(HANDSHAKE_TIMEOUT));
    let mut s = StreamOwned::new(conn, sock);
    while s.conn.is_handshaking() {
        s.conn
            .complete_io(&mut s.sock)
            .map_err(|e| format!("TLS handshake with {host} failed: {e}"))?;
    }
    Ok(Stream(s))
}

impl Stream {
    /// Whether the receiver still has the connection open: reads what it sent (TLS
    /// records such as session tickets), without waiting.
    pub(crate) fn alive(&mut self) -> bool {
        let s = &mut self.0;
        if s.sock.set_nonblocking(true).is_err() {
            return false;
        }
        let alive = loop {
            match s.conn.read_tls(&mut s.sock) {
                Ok(0) => break false,
                Ok(_) => {
                    if s.conn.process_new_packets().is_err() {
                        break false;
                    }
                    let mut sink = [0u8; 1024];
                    while matches!(s.conn.reader().read(&mut sink), Ok(n) if n > 0) {}
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break true,
                Err(_) => break false,
            }
        };
        s.sock.set_nonblocking(false).is_ok() && alive
    }
}

impl Write for Stream {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.write(b)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}
