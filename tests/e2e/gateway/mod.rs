//! The HTTP 402 gateway, end to end: bob's node sells through `farthing gateway` in front of a
//! real HTTP API, alice's node buys with `farthing_fetch` (the `farthing` channel scheme), the
//! official x402 and mppx clients pay by EIP-3009 (`exact`, `charge`), and hostile or broken
//! input is refused without losing anyone's money.

mod bad_input;
mod cli;
mod credential;
mod interop;
mod mcp;
mod native;

use std::collections::BTreeMap;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

/// An HTTP answer as the tests read it.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) headers: BTreeMap<String, String>,
    pub(crate) body: String,
}

impl Answer {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }
}

/// A plain HTTP client (no payment logic): requests exactly as given.
pub(crate) struct Raw(Client<HttpConnector, Full<Bytes>>);

impl Raw {
    pub(crate) fn new() -> Self {
        Self(Client::builder(TokioExecutor::new()).build_http())
    }

    pub(crate) async fn get(&self, url: &str, headers: &[(&str, &str)]) -> Answer {
        self.send("GET", url, headers).await
    }

    pub(crate) async fn send(&self, method: &str, url: &str, headers: &[(&str, &str)]) -> Answer {
        let mut request = http::Request::builder().method(method).uri(url);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = self
            .0
            .request(request.body(Full::new(Bytes::new())).unwrap())
            .await
            .unwrap();
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(n, v)| (n.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
            .collect();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        Answer {
            status,
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        }
    }
}
