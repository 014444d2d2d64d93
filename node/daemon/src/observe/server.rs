//! The Prometheus endpoint: `GET /metrics` answered with what `render` returns, anything else
//! with 404. Unauthenticated: keep it on loopback or behind a firewall.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::tasks::{OnFailure, Tasks};

/// How long a scraper may take to send its request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// Bind `addr` and answer scrapes until shutdown; returns the bound address.
pub(crate) async fn serve(
    addr: SocketAddr,
    tasks: &Tasks,
    render: Arc<dyn Fn() -> String + Send + Sync>,
) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr).await?;
    crate::listen::serve(
        tasks,
        listener,
        ("metrics server", OnFailure::Warn),
        "metrics request",
        move |stream, _| Some(answer(stream, render.clone())),
    )
}

async fn answer(mut stream: TcpStream, render: Arc<dyn Fn() -> String + Send + Sync>) {
    let mut request = [0u8; 1024];
    let read = tokio::time::timeout(REQUEST_TIMEOUT, stream.read(&mut request)).await;
    let Ok(Ok(len)) = read else { return };
    let head = String::from_utf8_lossy(&request[..len]);
    let response = if head.starts_with("GET /metrics ") {
        let body = render();
        format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
    } else {
        "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".into()
    };
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}
