//! The local listeners: each upstream's port on the loopback (127.0.0.1 and ::1),
//! each accepted connection carried over mTLS to the mesh gateway with the
//! upstream's SNI name. Two threads a connection, one a direction; a direction
//! that ends is passed on as a half-close (TLS `close_notify`, TCP shutdown).

use crate::log;
use crate::state::Shared;
use rustls::ClientConnection;
use serde_json::json;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Bytes read from a socket at a time, and what rustls may hold unsent: a bulk
/// transfer then goes out as eight full TLS records per write.
const BUF: usize = 128 * 1024;

/// Binds every upstream's port; an error names the port.
pub fn bind(shared: &Arc<Shared>) -> Result<Vec<(u16, TcpListener)>, String> {
    let mut out = Vec::new();
    for up in &shared.settings.upstreams {
        let v4 = TcpListener::bind(("127.0.0.1", up.port))
            .map_err(|e| format!("cannot listen on 127.0.0.1:{}: {e}", up.port))?;
        out.push((up.port, v4));
        // localhost may resolve to ::1 first; a sandbox without IPv6 is fine.
        if let Ok(v6) = TcpListener::bind(("::1", up.port)) {
            out.push((up.port, v6));
        }
    }
    Ok(out)
}

/// Accepts on every listener, each in its own thread.
pub fn serve(shared: &Arc<Shared>, listeners: Vec<(u16, TcpListener)>) {
    for (port, listener) in listeners {
        let shared = shared.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                match conn {
                    Ok(conn) => {
                        let shared = shared.clone();
                        std::thread::spawn(move || handle(&shared, port, conn));
                    }
                    Err(e) => log::warn(
                        "accept failed",
                        &[("port", json!(port)), ("error", json!(e.to_string()))],
                    ),
                }
            }
        });
    }
}

fn gateway_addrs(shared: &Shared) -> io::Result<Vec<SocketAddr>> {
    let s = &shared.settings;
    Ok((s.mesh_gateway_host.as_str(), s.mesh_gateway_port)
        .to_socket_addrs()?
        .collect())
}

fn handle(shared: &Arc<Shared>, port: u16, client: TcpStream) {
    let started = Instant::now();
    shared.check_due();
    let timeout = Duration::from_millis(shared.settings.proxy_timeout_ms);
    let Some(material) = shared.material(timeout) else {
        log::warn(
            "connection refused: no extension data yet",
            &[("port", json!(port))],
        );
        return;
    };
    let target = match material.targets.get(&port) {
        Some(Ok(t)) => t,
        Some(Err(e)) => {
            log::warn(
                "connection refused",
                &[("port", json!(port)), ("error", json!(e))],
            );
            return;
        }
        None => return,
    };
    let tls = match dial(shared, target, timeout) {
        Ok(t) => t,
        Err(e) => {
            log::warn(
                "connection to the mesh gateway failed",
                &[
                    ("port", json!(port)),
                    ("sni", json!(target.dial.sni)),
                    ("error", json!(e.to_string())),
                ],
            );
            return;
        }
    };
    if log::tracing() {
        log::info(
            "connection open",
            &[
                ("port", json!(port)),
                ("sni", json!(target.dial.sni)),
                ("setupUs", json!(started.elapsed().as_micros() as u64)),
            ],
        );
    }
    if let Err(e) = pump(client, tls) {
        log::debug(
            "connection ended",
            &[("port", json!(port)), ("error", json!(e.to_string()))],
        );
    }
}

fn dial(
    shared: &Shared,
    target: &crate::mesh::Target,
    timeout: Duration,
) -> io::Result<(ClientConnection, TcpStream)> {
    let mut last = io::Error::new(
        io::ErrorKind::NotFound,
        "the mesh gateway's name has no address",
    );
    let mut tcp = None;
    for addr in gateway_addrs(shared)? {
        match TcpStream::connect_timeout(&addr, timeout) {
            Ok(s) => {
                tcp = Some(s);
                break;
            }
            Err(e) => last = e,
        }
    }
    let mut tcp = tcp.ok_or(last)?;
    tcp.set_nodelay(true)?;
    tcp.set_read_timeout(Some(timeout))?;
    tcp.set_write_timeout(Some(timeout))?;
    let mut conn = ClientConnection::new(target.config.clone(), target.server_name.clone())
        .map_err(|e| io::Error::other(e.to_string()))?;
    conn.set_buffer_limit(Some(BUF));
    while conn.is_handshaking() {
        conn.complete_io(&mut tcp)?;
    }
    tcp.set_read_timeout(None)?;
    tcp.set_write_timeout(None)?;
    Ok((conn, tcp))
}

struct Tls {
    conn: Mutex<ClientConnection>,
    /// Writes to the gateway, taken while `conn` is still held so that records
    /// leave in the order they were made.
    out: Mutex<TcpStream>,
}

impl Tls {
    /// Encrypts what rustls has pending and writes it.
    fn flush_locked(
        &self,
        mut conn: std::sync::MutexGuard<'_, ClientConnection>,
    ) -> io::Result<()> {
        let mut bytes = Vec::new();
        while conn.wants_write() {
            conn.write_tls(&mut bytes)?;
        }
        if bytes.is_empty() {
            return Ok(());
        }
        let mut out = self.out.lock().unwrap_or_else(PoisonError::into_inner);
        drop(conn);
        out.write_all(&bytes)
    }
}

fn pump(client: TcpStream, (conn, tcp): (ClientConnection, TcpStream)) -> io::Result<()> {
    client.set_nodelay(true)?;
    let tls = Arc::new(Tls {
        conn: Mutex::new(conn),
        out: Mutex::new(tcp.try_clone()?),
    });
    // Gateway → function.
    let down = {
        let tls = tls.clone();
        let mut from = tcp.try_clone()?;
        let mut to = client.try_clone()?;
        std::thread::spawn(move || -> io::Result<()> {
            let r = gateway_to_function(&tls, &mut from, &mut to);
            if r.is_err() {
                // The mesh side failed (a TLS alert such as a refused certificate, a
                // reset): the function's connection closes at once, rather than
                // waiting for a reply that cannot come.
                let _ = to.shutdown(Shutdown::Both);
            }
            r
        })
    };
    // Function → gateway.
    let mut from = client;
    let mut buf = vec![0u8; BUF];
    let up: io::Result<()> = loop {
        let n = match from.read(&mut buf) {
            Ok(n) => n,
            Err(e) => break Err(e),
        };
        let mut conn = tls.conn.lock().unwrap_or_else(PoisonError::into_inner);
        if n == 0 {
            conn.send_close_notify();
            let r = tls.flush_locked(conn);
            let _ = tcp.shutdown(Shutdown::Write);
            break r;
        }
        let mut data = buf.get(..n).unwrap_or_default();
        let mut result = Ok(());
        while !data.is_empty() {
            match conn.writer().write(data) {
                Ok(0) | Err(_) => {
                    // rustls' buffer is full: send what it holds, then go on.
                    result = tls.flush_locked(conn);
                    conn = tls.conn.lock().unwrap_or_else(PoisonError::into_inner);
                    if result.is_err() {
                        break;
                    }
                }
                Ok(k) => data = data.get(k..).unwrap_or_default(),
            }
        }
        if result.is_ok() {
            result = tls.flush_locked(conn);
        }
        if let Err(e) = result {
            break Err(e);
        }
    };
    let down = down
        .join()
        .unwrap_or_else(|_| Err(io::Error::other("reader thread failed")));
    let _ = tcp.shutdown(Shutdown::Both);
    let _ = from.shutdown(Shutdown::Both);
    up.and(down)
}

/// Decrypts what the gateway sends and writes it to the function, until the
/// gateway closes (passed on as a half-close) or fails.
fn gateway_to_function(tls: &Tls, from: &mut TcpStream, to: &mut TcpStream) -> io::Result<()> {
    let mut buf = vec![0u8; BUF];
    let mut plain = vec![0u8; BUF];
    loop {
        let n = from.read(&mut buf)?;
        let mut closed = n == 0;
        let mut received = Vec::new();
        {
            let mut conn = tls.conn.lock().unwrap_or_else(PoisonError::into_inner);
            let mut slice = buf.get(..n).unwrap_or_default();
            while !slice.is_empty() {
                conn.read_tls(&mut slice)?;
                let state = conn
                    .process_new_packets()
                    .map_err(|e| io::Error::other(e.to_string()))?;
                if state.plaintext_bytes_to_read() > 0 {
                    loop {
                        match conn.reader().read(&mut plain) {
                            Ok(0) => break,
                            Ok(k) => received.extend_from_slice(plain.get(..k).unwrap_or_default()),
                            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                            Err(e) => return Err(e),
                        }
                    }
                }
                closed |= state.peer_has_closed();
            }
            if conn.wants_write() {
                tls.flush_locked(conn)?;
            }
        }
        if !received.is_empty() {
            to.write_all(&received)?;
        }
        if closed {
            let _ = to.shutdown(Shutdown::Write);
            return Ok(());
        }
    }
}
