//! Who may call the node (R1, R3): the admin bearer token, kept in `rpc.token` in the data dir
//! (mode 0600), or an agent's credential (`fth1_…`, issue 15), checked on every HTTP request
//! and every WebSocket upgrade before jsonrpsee sees the request. A refused request gets HTTP
//! 401 and reaches no method; an accepted one carries its [`Principal`] in its extensions.
//!
//! No token is ever logged: the middleware's `Debug` hides it, refusals log only why, and the
//! header is removed from the request once checked.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::future::Future;
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use alloy_primitives::hex;
use http::header::{AUTHORIZATION, CONNECTION, CONTENT_TYPE, WWW_AUTHENTICATE};
use http::{HeaderMap, HeaderValue, StatusCode};
use jsonrpsee::core::BoxError;
use jsonrpsee::server::{HttpBody, HttpRequest, HttpResponse};
use subtle::ConstantTimeEq;
use tower::{Layer, Service};

use crate::principal::{Authority, Denied, Principal};
use crate::{Error, Result};

/// The token file's name inside the data dir.
pub const TOKEN_FILE: &str = "rpc.token";

/// Random bytes in a new token (hex-encoded: 64 characters).
const TOKEN_BYTES: usize = 32;

/// Where the token lives: `data_dir/rpc.token`.
pub fn token_path(data_dir: &Path) -> PathBuf {
    data_dir.join(TOKEN_FILE)
}

/// The node's RPC token: read from `data_dir/rpc.token`, or, on first start, made from
/// 32 random bytes and written there (hex, mode 0600, synced). A token file that group or
/// others can read is refused (the error says to `chmod 600` it), as is one that does not
/// hold a 64-character hex token.
pub fn ensure_token(data_dir: &Path) -> Result<String> {
    ensure_secret(&token_path(data_dir))
}

/// The secret in the file at `path` (a file in a data dir, like `rpc.token`): read, or made
/// from 32 random bytes and written there on first use, with the same rules as
/// [`ensure_token`]. The node's credential root key (`cred.key`) is kept this way.
pub fn ensure_secret(path: &Path) -> Result<String> {
    let path = path.to_path_buf();
    let data_dir = path.parent().unwrap_or(Path::new("."));
    let io_error = |source| Error::TokenIo {
        path: path.clone(),
        source,
    };
    let mut file = match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
    {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return read_secret(&path),
        Err(e) => return Err(io_error(e)),
    };
    let mut bytes = [0u8; TOKEN_BYTES];
    let written = getrandom::fill(&mut bytes)
        .map_err(|e| io::Error::other(format!("no randomness from the OS: {e}")))
        .map(|()| hex::encode(bytes))
        .and_then(|token| {
            file.write_all(format!("{token}\n").as_bytes())?;
            file.sync_all()?;
            // The new name must survive a crash too.
            File::open(data_dir)?.sync_all()?;
            Ok(token)
        });
    match written {
        Ok(token) => Ok(token),
        Err(e) => {
            // A half-written file would be refused as malformed on the next start.
            let _ = fs::remove_file(&path);
            Err(io_error(e))
        }
    }
}

/// Read the token from `data_dir/rpc.token` (what the CLI does). Refuses a file that group or
/// others can read, and one that does not hold a 64-character hex token.
pub fn read_token(data_dir: &Path) -> Result<String> {
    read_secret(&token_path(data_dir))
}

/// The bearer token in a credential file (`farthing --credential-file`): an agent's credential
/// (`fth1_…`, as `farthing credential create --out` writes it) or a node's admin token (64
/// hex). Refused, saying what to do: a file that group or others can read, and one that holds
/// anything else. A trailing newline is ignored. The error never shows the file's content.
pub fn read_credential_file(path: &Path) -> Result<String> {
    let problem = |problem: String| Error::CredentialFile {
        path: path.to_path_buf(),
        problem,
    };
    let mut file = File::open(path).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => problem(
            "no such file: give the file `farthing credential create --out` (or `derive --out`) wrote".into(),
        ),
        _ => problem(format!("cannot read it: {e}")),
    })?;
    let metadata = file
        .metadata()
        .map_err(|e| problem(format!("cannot read it: {e}")))?;
    let mode = metadata.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(problem(format!(
            "group or others can read it (mode {mode:o}): run `chmod 600 {}` and try again",
            path.display()
        )));
    }
    let mut text = String::new();
    io::Read::read_to_string(&mut file, &mut text)
        .map_err(|_| problem("it is not text: it must hold one credential (fth1_…)".into()))?;
    let token = text.trim_end_matches(['\n', '\r']);
    let hex_token = token.len() == 2 * TOKEN_BYTES && token.bytes().all(|b| b.is_ascii_hexdigit());
    let credential = token.starts_with(farthing_credential::PREFIX)
        && token.len() > farthing_credential::PREFIX.len()
        && token.bytes().all(|b| b.is_ascii_graphic());
    if !hex_token && !credential {
        return Err(problem(
            "it does not hold a credential (fth1_…) or an RPC token (64 hex) on one line: write the token `farthing credential create` printed there".into(),
        ));
    }
    Ok(token.to_owned())
}

/// The secret in the file at `path`, checked like [`read_token`]'s.
fn read_secret(path: &Path) -> Result<String> {
    let path = path.to_path_buf();
    let io_error = |source| Error::TokenIo {
        path: path.clone(),
        source,
    };
    let mut file = match File::open(&path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(Error::TokenMissing { path }),
        Err(e) => return Err(io_error(e)),
    };
    let metadata = file.metadata().map_err(io_error)?;
    let mode = metadata.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(Error::TokenInsecure { path, mode });
    }
    let mut text = String::new();
    io::Read::read_to_string(&mut file, &mut text).map_err(io_error)?;
    let token = text.trim_end_matches(['\n', '\r']);
    if token.len() != 2 * TOKEN_BYTES || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Error::TokenMalformed { path });
    }
    Ok(token.to_owned())
}

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Refusal {
    /// No `Authorization` header.
    Missing,
    /// Not exactly one `Authorization: Bearer <token>` header.
    Malformed,
    /// A bearer token, but neither the node's nor a credential.
    Wrong,
    /// A credential (`fth1_…`), refused.
    Credential(Denied),
}

impl Refusal {
    /// The response body: what was wrong and what to do.
    fn message(&self) -> String {
        match self {
            Self::Missing => {
                "missing Authorization header: send `Authorization: Bearer <token>` with the token from rpc.token in the node's data dir, or an agent credential (fth1_…)\n".into()
            }
            Self::Malformed => {
                "malformed Authorization header: send exactly one `Authorization: Bearer <token>` with the token from rpc.token in the node's data dir, or an agent credential (fth1_…)\n".into()
            }
            Self::Wrong => {
                "wrong token: use the token from rpc.token in the node's data dir (it changes only if that file is deleted), or an agent credential (fth1_…)\n".into()
            }
            Self::Credential(denied) => format!("credential refused: {denied}\n"),
        }
    }

    /// RFC 6750's challenge for the `WWW-Authenticate` header.
    fn challenge(&self) -> &'static str {
        match self {
            Self::Missing => "Bearer realm=\"farthing\"",
            Self::Malformed => "Bearer realm=\"farthing\", error=\"invalid_request\"",
            Self::Wrong | Self::Credential(_) => {
                "Bearer realm=\"farthing\", error=\"invalid_token\""
            }
        }
    }

    /// The 401 response.
    fn response(&self) -> HttpResponse {
        let mut response = HttpResponse::new(HttpBody::from(self.message()));
        *response.status_mut() = StatusCode::UNAUTHORIZED;
        let headers = response.headers_mut();
        headers.insert(WWW_AUTHENTICATE, HeaderValue::from_static(self.challenge()));
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        // hyper closes the connection after the 401: an unauthenticated client cannot hold
        // a socket open with keep-alive.
        headers.insert(CONNECTION, HeaderValue::from_static("close"));
        response
    }
}

/// Accept exactly one `Authorization: Bearer <token>` header (scheme case-insensitive): the
/// admin token `expected` (compared in constant time), or a credential `authority` admits.
fn check(
    headers: &HeaderMap,
    expected: &[u8],
    authority: Option<&dyn Authority>,
) -> Result<Principal, Refusal> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let value = values.next().ok_or(Refusal::Missing)?;
    if values.next().is_some() {
        return Err(Refusal::Malformed);
    }
    let value = value.as_bytes();
    let space = value
        .iter()
        .position(|&b| b == b' ')
        .ok_or(Refusal::Malformed)?;
    let (scheme, token) = (&value[..space], value[space..].trim_ascii());
    if !scheme.eq_ignore_ascii_case(b"Bearer") || token.is_empty() {
        return Err(Refusal::Malformed);
    }
    if bool::from(token.ct_eq(expected)) {
        return Ok(Principal::Admin);
    }
    match (authority, std::str::from_utf8(token)) {
        (Some(authority), Ok(text)) if text.starts_with(farthing_credential::PREFIX) => authority
            .admit(text)
            .map(Principal::Agent)
            .map_err(Refusal::Credential),
        _ => Err(Refusal::Wrong),
    }
}

/// The tower layer that puts [`Auth`] in front of jsonrpsee's HTTP service.
#[derive(Clone)]
pub(crate) struct AuthLayer {
    expected: Arc<[u8]>,
    authority: Option<Arc<dyn Authority>>,
}

impl AuthLayer {
    /// Accept requests that carry `token` (as [`Principal::Admin`]), or a credential
    /// `authority` admits.
    pub(crate) fn new(token: &str, authority: Option<Arc<dyn Authority>>) -> Self {
        Self {
            expected: Arc::from(token.as_bytes()),
            authority,
        }
    }
}

impl fmt::Debug for AuthLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthLayer").finish_non_exhaustive()
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = Auth<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Auth {
            inner,
            expected: Arc::clone(&self.expected),
            authority: self.authority.clone(),
        }
    }
}

/// Passes a request on only if it carries the node's bearer token; answers 401 otherwise.
#[derive(Clone)]
pub(crate) struct Auth<S> {
    inner: S,
    expected: Arc<[u8]>,
    authority: Option<Arc<dyn Authority>>,
}

impl<S> fmt::Debug for Auth<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Auth").finish_non_exhaustive()
    }
}

impl<S, B> Service<HttpRequest<B>> for Auth<S>
where
    S: Service<HttpRequest<B>, Response = HttpResponse>,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
{
    type Response = HttpResponse;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, mut request: HttpRequest<B>) -> Self::Future {
        match check(request.headers(), &self.expected, self.authority.as_deref()) {
            Ok(principal) => {
                // Checked: nothing past this point needs the token, and jsonrpsee logs whole
                // requests at trace level. It must never reach a log.
                request.headers_mut().remove(AUTHORIZATION);
                request.extensions_mut().insert(principal);
                let response = self.inner.call(request);
                Box::pin(async move { response.await.map_err(Into::into) })
            }
            Err(refusal) => {
                let reason = match &refusal {
                    Refusal::Credential(denied) => denied.to_string(),
                    other => format!("{other:?}"),
                };
                tracing::debug!(%reason, uri = %request.uri(), "RPC request refused: 401");
                Box::pin(std::future::ready(Ok(refusal.response())))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

    fn headers(values: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for value in values {
            map.append(AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    /// The service behind the check: it records the headers it was handed.
    #[derive(Clone, Default)]
    struct Seen(Arc<std::sync::Mutex<Option<HeaderMap>>>);

    impl Service<HttpRequest<()>> for Seen {
        type Response = HttpResponse;
        type Error = BoxError;
        type Future = std::future::Ready<Result<HttpResponse, BoxError>>;

        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, request: HttpRequest<()>) -> Self::Future {
            *self.0.lock().unwrap() = Some(request.headers().clone());
            std::future::ready(Ok(HttpResponse::new(HttpBody::from("ok"))))
        }
    }

    #[tokio::test]
    async fn the_token_goes_no_further_than_the_check() {
        let seen = Seen::default();
        let mut auth = AuthLayer::new(TOKEN, None).layer(seen.clone());
        let mut request = HttpRequest::new(());
        request.headers_mut().insert(
            AUTHORIZATION,
            HeaderValue::from_str(&format!("Bearer {TOKEN}")).unwrap(),
        );
        request
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        let response = auth.call(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let headers = seen.0.lock().unwrap().take().unwrap();
        assert!(headers.get(AUTHORIZATION).is_none(), "{headers:?}");
        assert!(headers.get(CONTENT_TYPE).is_some());
    }

    #[test]
    fn accepts_only_one_bearer_header_with_the_token() {
        let expected = TOKEN.as_bytes();
        let check = |values: &[&str]| check(&headers(values), expected, None).map(|_| ());
        assert_eq!(check(&[&format!("Bearer {TOKEN}")]), Ok(()));
        assert_eq!(check(&[&format!("bearer  {TOKEN}")]), Ok(()));
        assert_eq!(check(&[]), Err(Refusal::Missing));
        for malformed in [
            TOKEN.to_owned(),
            format!("Basic {TOKEN}"),
            "Bearer".to_owned(),
            "Bearer ".to_owned(),
            format!("Bearer{TOKEN}"),
        ] {
            assert_eq!(check(&[&malformed]), Err(Refusal::Malformed), "{malformed}");
        }
        let twice = format!("Bearer {TOKEN}");
        assert_eq!(check(&[&twice, &twice]), Err(Refusal::Malformed));
        assert_eq!(check(&[&format!("Bearer {TOKEN}0")]), Err(Refusal::Wrong));
        assert_eq!(check(&["Bearer 0011"]), Err(Refusal::Wrong));
        assert_eq!(
            check(&[&format!("Bearer {}", TOKEN.to_uppercase())]),
            Err(Refusal::Wrong)
        );
    }

    #[test]
    fn debug_output_hides_the_token() {
        let layer = AuthLayer::new(TOKEN, None);
        assert!(!format!("{layer:?}").contains("0011"));
        let service = layer.layer(());
        assert!(!format!("{service:?}").contains("0011"));
    }

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn ensure_token_creates_a_private_file_then_reuses_it() {
        let dir = tempfile::tempdir().unwrap();
        let token = ensure_token(dir.path()).unwrap();
        assert_eq!(token.len(), 64);
        assert!(token.bytes().all(|b| b.is_ascii_hexdigit()));
        let path = token_path(dir.path());
        assert_eq!(mode(&path), 0o600);
        assert_eq!(ensure_token(dir.path()).unwrap(), token);
        assert_eq!(read_token(dir.path()).unwrap(), token);
        // Another data dir, another token.
        let other = tempfile::tempdir().unwrap();
        assert_ne!(ensure_token(other.path()).unwrap(), token);
    }

    #[test]
    fn refuses_a_token_file_others_can_read() {
        let dir = tempfile::tempdir().unwrap();
        ensure_token(dir.path()).unwrap();
        let path = token_path(dir.path());
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        for result in [ensure_token(dir.path()), read_token(dir.path())] {
            let error = result.unwrap_err();
            assert!(matches!(error, Error::TokenInsecure { mode: 0o644, .. }));
            let message = error.to_string();
            assert!(message.contains("chmod 600"), "{message}");
            assert!(message.contains(&path.display().to_string()), "{message}");
            assert!(message.contains("644"), "{message}");
        }
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
        assert!(matches!(
            read_token(dir.path()),
            Err(Error::TokenInsecure { .. })
        ));
        // After the advice is followed, the same token is used again.
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        assert!(ensure_token(dir.path()).is_ok());
    }

    #[test]
    fn a_credential_file_holds_one_private_token() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.cred");
        let write = |content: &str, mode: u32| {
            fs::write(&path, content).unwrap();
            fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
        };
        let secret = "fth1_AgEDZnRoAhEBc2VjcmV0";
        write(&format!("{secret}\n"), 0o600);
        assert_eq!(read_credential_file(&path).unwrap(), secret);
        write(&format!("{TOKEN}\r\n"), 0o400);
        assert_eq!(read_credential_file(&path).unwrap(), TOKEN);
        write(secret, 0o640);
        let message = read_credential_file(&path).unwrap_err().to_string();
        assert!(
            message.contains("mode 640") && message.contains("chmod 600"),
            "{message}"
        );
        for bad in [
            "",
            "fth1_",
            "fth1_a b\n",
            "hello\n",
            &format!("{secret}\n{secret}\n"),
        ] {
            write(bad, 0o600);
            let message = read_credential_file(&path).unwrap_err().to_string();
            assert!(
                message.contains("does not hold a credential"),
                "{bad:?}: {message}"
            );
            assert!(!message.contains("AgEDZnRo"), "{message}");
        }
        let missing = dir.path().join("nope.cred");
        let message = read_credential_file(&missing).unwrap_err().to_string();
        assert!(
            message.contains("nope.cred") && message.contains("--out"),
            "{message}"
        );
    }

    #[test]
    fn refuses_a_malformed_token_file_and_a_missing_one() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            read_token(dir.path()),
            Err(Error::TokenMissing { .. })
        ));
        let path = token_path(dir.path());
        for content in ["", "short\n", &format!("{TOKEN} extra\n"), &"zz".repeat(32)] {
            let mut file = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&path)
                .unwrap();
            file.write_all(content.as_bytes()).unwrap();
            let error = ensure_token(dir.path()).unwrap_err();
            assert!(matches!(error, Error::TokenMalformed { .. }), "{content:?}");
            assert!(error.to_string().contains("delete"), "{error}");
        }
    }
}
