//! Raw HTTP over TCP, to send exactly the headers a test needs.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// A response: status code, headers (lower-cased names), body.
#[derive(Debug)]
pub(crate) struct Response {
    pub(crate) status: u16,
    pub(crate) head: String,
    pub(crate) body: String,
}

/// The `Authorization` header line for `token`.
pub(crate) fn bearer(token: &str) -> String {
    format!("Authorization: Bearer {token}\r\n")
}

/// POST a JSON body to `/` with these extra header lines.
pub(crate) async fn post(addr: SocketAddr, headers: &str, body: &str) -> Response {
    post_from(addr, IpAddr::from([127, 0, 0, 1]), headers, body).await
}

/// [`post`] from local address `from`.
pub(crate) async fn post_from(
    addr: SocketAddr,
    from: IpAddr,
    headers: &str,
    body: &str,
) -> Response {
    let request = format!(
        "POST / HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n{headers}\r\n{body}",
        body.len()
    );
    open(addr, from, request.as_bytes()).await.0
}

/// A WebSocket upgrade request with these extra header lines.
pub(crate) async fn upgrade(addr: SocketAddr, headers: &str) -> Response {
    let request = format!(
        "GET / HTTP/1.1\r\nHost: {addr}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n{headers}\r\n"
    );
    send(addr, &request).await
}

/// Send `request`, read one response (headers, then `Content-Length` bytes of body).
async fn send(addr: SocketAddr, request: &str) -> Response {
    open(addr, IpAddr::from([127, 0, 0, 1]), request.as_bytes())
        .await
        .0
}

/// A WebSocket upgrade request from local address `from` (any of 127.0.0.0/8: another
/// source to the server), with the bearer token: the response, and the connection, which
/// stays open (a WebSocket if the response is 101) until dropped.
pub(crate) async fn upgrade_from(
    addr: SocketAddr,
    from: IpAddr,
    token: &str,
) -> (Response, TcpStream) {
    let request = format!(
        "GET / HTTP/1.1\r\nHost: {addr}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n{}\r\n",
        bearer(token)
    );
    open(addr, from, request.as_bytes()).await
}

/// A TCP connection to `addr` from local address `from`.
pub(crate) async fn connect_from(addr: SocketAddr, from: IpAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(from, 0)).unwrap();
    socket.connect(addr).await.unwrap()
}

/// Send `request` (any bytes) from `from`, read one response; the connection stays open.
pub(crate) async fn open(addr: SocketAddr, from: IpAddr, request: &[u8]) -> (Response, TcpStream) {
    // A deadline against a hang, not a timing goal: a loaded machine may be slow.
    tokio::time::timeout(Duration::from_secs(60), async {
        let mut stream = connect_from(addr, from).await;
        stream.write_all(request).await.unwrap();
        let mut buf = Vec::new();
        loop {
            if let Some(response) = parse(&buf) {
                return (response, stream);
            }
            let mut chunk = [0u8; 4096];
            let n = stream.read(&mut chunk).await.unwrap();
            assert!(
                n > 0,
                "connection closed mid-response: {:?}",
                String::from_utf8_lossy(&buf)
            );
            buf.extend_from_slice(&chunk[..n]);
        }
    })
    .await
    .expect("no complete HTTP response within 60 s")
}

fn parse(buf: &[u8]) -> Option<Response> {
    let text = std::str::from_utf8(buf).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    let head = head.to_ascii_lowercase();
    let length = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length:"))
        .map_or(0, |n| n.trim().parse::<usize>().unwrap());
    if body.len() < length {
        return None;
    }
    let status = head.split(' ').nth(1)?.parse().ok()?;
    Some(Response {
        status,
        head,
        body: body.to_owned(),
    })
}

/// Whether the server closes `stream` (without sending anything more): a read sees the end
/// of the stream, or a reset. Waits for it, up to a deadline against a hang.
pub(crate) async fn closed_by_server(stream: &mut TcpStream) -> bool {
    // A deadline against a hang, not a timing goal: a loaded machine may be slow.
    let read = tokio::time::timeout(Duration::from_secs(60), async {
        let mut chunk = [0u8; 512];
        stream.read(&mut chunk).await
    })
    .await;
    match read {
        Ok(Ok(0)) => true,
        Ok(Err(e)) => e.kind() == std::io::ErrorKind::ConnectionReset,
        Ok(Ok(_)) | Err(_) => false,
    }
}
