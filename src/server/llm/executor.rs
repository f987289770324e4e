//! The one place that does HTTP for every provider.
//!
//! Adapters describe a request as an [`HttpRequest`]; the executor sends it with the
//! shared `reqwest::Client`, maps transport failures to [`LlmError`]s and classifies
//! non-2xx answers with the adapter's body extractor *before* any body or stream is
//! handed back. Streams are wrapped with an idle timeout; dropping a stream drops the
//! upstream response (and so closes the connection).

use crate::server::outbound::{guarded_client_builder, AddressPolicy, OutboundRefusal};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE};
use reqwest::Method;
use secrecy::{ExposeSecret, SecretString};

use super::error::{classify, ErrorDetail, ErrorKind, LlmError};
use super::ProviderId;

/// The largest whole (non-streamed) answer, or error body, read from a provider: far
/// above any real answer, it keeps a hostile or broken upstream from filling memory.
pub const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;

/// Extracts codes and a message from a provider's (parsed) error body.
pub type DetailExtractor = fn(&serde_json::Value) -> Option<ErrorDetail>;

/// A byte stream whose items are already mapped to [`LlmError`].
pub type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes, LlmError>> + Send>>;

/// A provider request as an adapter describes it: no I/O, fully testable offline.
#[derive(Debug, Clone)]
pub struct HttpRequest {
    /// GET or POST.
    pub method: Method,
    /// Full URL; never contains a key.
    pub url: String,
    /// Headers; the key header is marked sensitive so Debug prints `Sensitive`.
    pub headers: HeaderMap,
    /// JSON body for POST requests.
    pub body: Option<serde_json::Value>,
}

impl HttpRequest {
    /// A POST with a JSON body.
    pub fn post(url: String, body: serde_json::Value) -> Self {
        Self {
            method: Method::POST,
            url,
            headers: HeaderMap::new(),
            body: Some(body),
        }
    }

    /// A GET without a body.
    pub fn get(url: String) -> Self {
        Self {
            method: Method::GET,
            url,
            headers: HeaderMap::new(),
            body: None,
        }
    }

    /// Adds a plain header (static name and value).
    pub fn header(mut self, name: &'static str, value: &'static str) -> Self {
        self.headers.insert(
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        );
        self
    }

    /// Adds the key header, `prefix` + key, marked sensitive; does nothing without a key.
    pub fn secret_header(
        mut self,
        name: &'static str,
        prefix: &str,
        key: Option<&SecretString>,
    ) -> Self {
        if let Some(key) = key {
            // NOTE: a key with bytes invalid in a header is dropped, and the provider answers 401.
            if let Ok(mut value) =
                HeaderValue::from_str(&format!("{prefix}{}", key.expose_secret()))
            {
                value.set_sensitive(true);
                self.headers.insert(HeaderName::from_static(name), value);
            }
        }
        self
    }
}

/// Timeouts the executor applies to every request.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// Time allowed to connect.
    pub connect: Duration,
    /// Time allowed for a whole non-streamed request, and for stream headers.
    pub request: Duration,
    /// Longest silence allowed between two stream chunks.
    pub idle: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(10),
            request: Duration::from_secs(300),
            idle: Duration::from_secs(60),
        }
    }
}

/// Shared HTTP executor: one `reqwest::Client` (connection pool) for all adapters.
#[derive(Debug, Clone)]
pub struct Executor {
    client: reqwest::Client,
    timeouts: Timeouts,
    /// Set for URLs a user supplied: the policy their requests must pass; a
    /// failure then says only its status and class, never the body or URL.
    guard: Option<Arc<AddressPolicy>>,
}

impl Executor {
    /// Builds the executor and its client; fails only if TLS cannot initialise.
    pub fn new(timeouts: Timeouts) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .connect_timeout(timeouts.connect)
            .user_agent(concat!("cover/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            client,
            timeouts,
            guard: None,
        })
    }

    /// The executor for URLs a user supplied: the guarded client of
    /// [`crate::server::outbound`] (public addresses or the allow-list only,
    /// no redirects), and failures reported without the upstream's words.
    pub fn guarded(timeouts: Timeouts, policy: Arc<AddressPolicy>) -> Result<Self, reqwest::Error> {
        let client = guarded_client_builder(policy.clone(), timeouts.connect).build()?;
        Ok(Self {
            client,
            timeouts,
            guard: Some(policy),
        })
    }

    /// The timeouts in force.
    pub fn timeouts(&self) -> Timeouts {
        self.timeouts
    }

    async fn send_checked(
        &self,
        provider: ProviderId,
        req: HttpRequest,
        extract: DetailExtractor,
    ) -> Result<reqwest::Response, LlmError> {
        if let Some(policy) = &self.guard {
            if let Err(refusal) = policy.check_url(&req.url) {
                return Err(LlmError::new(
                    provider,
                    ErrorKind::InvalidRequest,
                    refusal.to_string(),
                ));
            }
        }
        let mut builder = self
            .client
            .request(req.method, &req.url)
            .headers(req.headers);
        if let Some(body) = &req.body {
            builder = builder.json(body);
        }
        let send = builder.send();
        let response = match tokio::time::timeout(self.timeouts.request, send).await {
            Ok(Ok(response)) => response,
            Ok(Err(err)) => return Err(self.transport_error(provider, &err)),
            Err(_) => {
                return Err(LlmError::new(
                    provider,
                    ErrorKind::Transient,
                    "timed out waiting for response headers",
                ))
            }
        };
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let headers = response.headers().clone();
        let body = read_body(provider, response, self.timeouts.request).await?;
        let text = String::from_utf8_lossy(&body);
        let detail = parse_detail(&text, extract).unwrap_or_else(|| ErrorDetail {
            codes: Vec::new(),
            message: text.chars().take(500).collect(),
            retry_delay: None,
        });
        let mut err = classify(
            provider,
            Some(status.as_u16()),
            Some(&headers),
            detail,
            &text,
        );
        if self.guard.is_some() {
            // A server a user named could be anything: its words never go back.
            err.message = format!("{provider} answered HTTP {}", status.as_u16());
            err.raw_body = None;
        }
        // Only the provider, status, class and message: never headers, so never a key.
        tracing::debug!(%provider, status = status.as_u16(), class = err.kind_name(), message = %err.message, "provider error");
        Err(err)
    }

    /// Sends a request and returns the whole body of a 2xx answer; errors are classified.
    pub async fn send(
        &self,
        provider: ProviderId,
        req: HttpRequest,
        extract: DetailExtractor,
    ) -> Result<Bytes, LlmError> {
        let whole = async {
            let response = self.send_checked(provider, req, extract).await?;
            read_body(provider, response, self.timeouts.request).await
        };
        match tokio::time::timeout(self.timeouts.request, whole).await {
            Ok(result) => result,
            Err(_) => Err(LlmError::new(
                provider,
                ErrorKind::Transient,
                format!("timed out after {} ms", self.timeouts.request.as_millis()),
            )),
        }
    }

    /// Sends a streaming request; returns the body stream only after the status was checked.
    ///
    /// A 200 answer with a JSON content type (a proxy or server reporting an error instead
    /// of streaming) is read and classified as an error too.
    pub async fn stream(
        &self,
        provider: ProviderId,
        req: HttpRequest,
        extract: DetailExtractor,
    ) -> Result<ByteStream, LlmError> {
        let response = self.send_checked(provider, req, extract).await?;
        let is_json = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"));
        if is_json {
            let body = read_body(provider, response, self.timeouts.request).await?;
            let text = String::from_utf8_lossy(&body);
            let detail = parse_detail(&text, extract).ok_or_else(|| {
                LlmError::malformed(provider, "stream", "JSON body instead of a stream", &text)
            })?;
            return Err(classify(provider, None, None, detail, &text));
        }
        let idle = self.timeouts.idle;
        let body = response
            .bytes_stream()
            .map(move |item| item.map_err(|err| transport_error(provider, &err)));
        Ok(with_idle_timeout(provider, body, idle))
    }
}

fn parse_detail(body: &str, extract: DetailExtractor) -> Option<ErrorDetail> {
    serde_json::from_str(body).ok().as_ref().and_then(extract)
}

/// Ends a byte stream with a `Transient` error when no chunk arrives for `idle`.
pub fn with_idle_timeout<S>(provider: ProviderId, inner: S, idle: Duration) -> ByteStream
where
    S: Stream<Item = Result<Bytes, LlmError>> + Send + 'static,
{
    let inner = Box::pin(inner);
    Box::pin(futures::stream::unfold(
        Some(inner),
        move |state| async move {
            let mut inner = state?;
            match tokio::time::timeout(idle, inner.next()).await {
                Ok(Some(item)) => Some((item, Some(inner))),
                Ok(None) => None,
                Err(_) => Some((
                    Err(LlmError::new(
                        provider,
                        ErrorKind::Transient,
                        format!("stream stalled: no data for {} ms", idle.as_millis()),
                    )),
                    None,
                )),
            }
        },
    ))
}

/// Reads a whole response body, chunk by chunk, refusing it as soon as it passes
/// [`MAX_BODY_BYTES`] (or declares a longer length): nothing more is read then.
async fn read_body(
    provider: ProviderId,
    mut response: reqwest::Response,
    limit: Duration,
) -> Result<Bytes, LlmError> {
    let too_large = || {
        LlmError::malformed(
            provider,
            "response",
            format!("the body is larger than {MAX_BODY_BYTES} bytes"),
            "",
        )
    };
    let read = async {
        if response
            .content_length()
            .is_some_and(|length| length > MAX_BODY_BYTES as u64)
        {
            return Err(too_large());
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|err| transport_error(provider, &err))?
        {
            if body.len() + chunk.len() > MAX_BODY_BYTES {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Bytes::from(body))
    };
    match tokio::time::timeout(limit, read).await {
        Ok(result) => result,
        Err(_) => Err(LlmError::new(
            provider,
            ErrorKind::Transient,
            "timed out reading the response body",
        )),
    }
}

impl Executor {
    /// A transport failure as an error: for a guarded executor only what
    /// happened (and whether the guard refused the address), never the URL or
    /// the underlying errors' text.
    fn transport_error(&self, provider: ProviderId, err: &reqwest::Error) -> LlmError {
        if self.guard.is_none() {
            return transport_error(provider, err);
        }
        let mut source: Option<&dyn std::error::Error> = Some(err);
        while let Some(e) = source {
            if let Some(refusal) = e.downcast_ref::<OutboundRefusal>() {
                return LlmError::new(provider, ErrorKind::InvalidRequest, refusal.to_string());
            }
            source = e.source();
        }
        LlmError::new(provider, ErrorKind::Transient, failure_kind(err))
    }
}

/// What kind of transport failure `err` is, in words.
fn failure_kind(err: &reqwest::Error) -> &'static str {
    if err.is_connect() {
        "connection failed"
    } else if err.is_timeout() {
        "timed out"
    } else if err.is_body() || err.is_decode() {
        "connection lost while reading"
    } else {
        "request failed"
    }
}

/// Maps a reqwest failure to a transient error; reqwest's text has the URL but never a header.
fn transport_error(provider: ProviderId, err: &reqwest::Error) -> LlmError {
    let what = failure_kind(err);
    let mut source: Option<&dyn std::error::Error> = Some(err);
    let mut chain = Vec::new();
    while let Some(e) = source {
        chain.push(e.to_string());
        source = e.source();
    }
    LlmError::new(
        provider,
        ErrorKind::Transient,
        format!("{what}: {}", chain.join(": ")),
    )
}
