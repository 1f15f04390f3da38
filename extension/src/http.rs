//! A small HTTP/1.1 client for the two services the extension calls: the Lambda
//! Extensions API (plain HTTP on the sandbox's loopback) and Parameter Store (HTTPS,
//! or plain HTTP to a local endpoint in tests). One request a connection.

use std::io::{self, BufRead, BufReader, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// A parsed `http://` or `https://` URL (no user info, no fragment).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    /// Whether it is `https`.
    pub tls: bool,
    /// Host name or address (IPv6 without brackets).
    pub host: String,
    /// Port (default 80 or 443).
    pub port: u16,
    /// Path and query, starting with `/`.
    pub path: String,
}

impl Url {
    /// Parses `scheme://host[:port][/path]`.
    pub fn parse(text: &str) -> Option<Url> {
        let (tls, rest) = if let Some(r) = text.strip_prefix("https://") {
            (true, r)
        } else {
            (false, text.strip_prefix("http://")?)
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => rest.split_at(i),
            None => (rest, "/"),
        };
        let default = if tls { 443 } else { 80 };
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (h, p) = v6.split_once(']')?;
            (
                h,
                p.strip_prefix(':')
                    .map(str::parse)
                    .unwrap_or(Ok(default))
                    .ok()?,
            )
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h, p.parse().ok()?),
                None => (authority, default),
            }
        };
        if host.is_empty() || authority.contains('@') {
            return None;
        }
        Some(Url {
            tls,
            host: host.to_owned(),
            port,
            path: path.to_owned(),
        })
    }

    /// `host[:port]` as the `Host` header writes it.
    pub fn authority(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.port == if self.tls { 443 } else { 80 } {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }
}

/// A response.
#[derive(Debug)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// Headers, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Response {
    /// The first header of that (lower-case) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

fn web_pki_config() -> io::Result<Arc<rustls::ClientConfig>> {
    static CONFIG: OnceLock<Option<Arc<rustls::ClientConfig>>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let roots = rustls::RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            };
            rustls::ClientConfig::builder_with_provider(crate::mesh::provider())
                .with_safe_default_protocol_versions()
                .ok()
                .map(|b| Arc::new(b.with_root_certificates(roots).with_no_client_auth()))
        })
        .clone()
        .ok_or_else(|| io::Error::other("no TLS configuration"))
}

fn connect(url: &Url, timeout: Option<Duration>) -> io::Result<TcpStream> {
    let mut last = io::Error::new(io::ErrorKind::NotFound, "no address");
    for addr in (url.host.as_str(), url.port).to_socket_addrs()? {
        let stream = match timeout {
            Some(t) => TcpStream::connect_timeout(&addr, t),
            None => TcpStream::connect(addr),
        };
        match stream {
            Ok(s) => {
                s.set_read_timeout(timeout)?;
                s.set_write_timeout(timeout)?;
                s.set_nodelay(true)?;
                return Ok(s);
            }
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// Sends one request and reads the whole response. `timeout` bounds the connect and
/// each read and write (`None`: wait as long as it takes, for `/event/next`).
pub fn request(
    method: &str,
    url: &Url,
    headers: &[(String, String)],
    body: &[u8],
    timeout: Option<Duration>,
) -> io::Result<Response> {
    let tcp = connect(url, timeout)?;
    let mut head = format!(
        "{method} {} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: {}\r\n",
        url.path,
        url.authority(),
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    if url.tls {
        let name = rustls::pki_types::ServerName::try_from(url.host.clone())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let conn = rustls::ClientConnection::new(web_pki_config()?, name)
            .map_err(|e| io::Error::other(e.to_string()))?;
        let mut stream = rustls::StreamOwned::new(conn, tcp);
        stream.write_all(head.as_bytes())?;
        stream.write_all(body)?;
        stream.flush()?;
        read_response(BufReader::new(stream))
    } else {
        let mut tcp = tcp;
        let mut out = head.into_bytes();
        out.extend_from_slice(body);
        tcp.write_all(&out)?;
        read_response(BufReader::new(tcp))
    }
}

fn bad(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_owned())
}

fn read_response(mut r: impl BufRead) -> io::Result<Response> {
    let mut line = String::new();
    r.read_line(&mut line)?;
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("not an HTTP response"))?;
    let mut headers = Vec::new();
    loop {
        line.clear();
        if r.read_line(&mut line)? == 0 {
            return Err(bad("headers cut short"));
        }
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
        }
    }
    let mut resp = Response {
        status,
        headers,
        body: Vec::new(),
    };
    let chunked = resp
        .header("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"));
    if chunked {
        loop {
            line.clear();
            r.read_line(&mut line)?;
            let size_text = line.trim().split(';').next().unwrap_or_default();
            let size = usize::from_str_radix(size_text, 16).map_err(|_| bad("bad chunk size"))?;
            if size == 0 {
                break;
            }
            let start = resp.body.len();
            resp.body.resize(start + size, 0);
            r.read_exact(resp.body.get_mut(start..).unwrap_or_default())?;
            line.clear();
            r.read_line(&mut line)?;
        }
    } else if let Some(len) = resp
        .header("content-length")
        .and_then(|v| v.parse::<usize>().ok())
    {
        resp.body.resize(len, 0);
        r.read_exact(&mut resp.body)?;
    } else if status != 204 && status != 304 {
        match r.read_to_end(&mut resp.body) {
            Ok(_) => {}
            // A TLS peer that closes without close_notify after a complete body.
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {}
            Err(e) => return Err(e),
        }
    }
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let u = Url::parse("https://ssm.us-east-1.amazonaws.com").unwrap();
        assert_eq!(
            (u.tls, u.host.as_str(), u.port, u.path.as_str()),
            (true, "ssm.us-east-1.amazonaws.com", 443, "/")
        );
        assert_eq!(u.authority(), "ssm.us-east-1.amazonaws.com");
        let u = Url::parse("http://127.0.0.1:5000/x?y=1").unwrap();
        assert_eq!(
            (u.tls, u.port, u.path.as_str(), u.authority()),
            (false, 5000, "/x?y=1", "127.0.0.1:5000".to_owned())
        );
        let u = Url::parse("http://[::1]:9001").unwrap();
        assert_eq!(
            (u.host.as_str(), u.authority()),
            ("::1", "[::1]:9001".to_owned())
        );
        assert!(Url::parse("ftp://x").is_none());
        assert!(Url::parse("http://user@x").is_none());
    }

    #[test]
    fn responses() {
        let r = read_response(&b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-A: b\r\n\r\nhi"[..])
            .unwrap();
        assert_eq!(
            (r.status, r.body.as_slice(), r.header("x-a")),
            (200, &b"hi"[..], Some("b"))
        );
        let r = read_response(&b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n3;x\r\n!!!\r\n0\r\n\r\n"[..]).unwrap();
        assert_eq!(r.body, b"hi!!!");
        let r = read_response(&b"HTTP/1.0 500 X\r\n\r\nrest"[..]).unwrap();
        assert_eq!((r.status, r.body.as_slice()), (500, &b"rest"[..]));
        assert!(read_response(&b"garbage"[..]).is_err());
    }
}
