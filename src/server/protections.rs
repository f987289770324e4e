//! What every response and every unsafe request passes through before a
//! route sees it: cross-site request refusal (CSRF), the security headers,
//! and body limits per route that answer `413` in the API's error shape.

use crate::error::AppError;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// Largest body of most routes (settings, budgets, sign-in, …).
pub const BODY_LIMIT: usize = 256 * 1024;

/// Largest body of a question: its text and up to four 5 MiB images, as
/// base64 (4/3 larger) in JSON.
pub const MESSAGE_BODY_LIMIT: usize = 4 * 5 * 1024 * 1024 * 4 / 3 + 256 * 1024;

/// Largest body of a document upload: the largest document accepted and
/// room for the multipart framing around it.
pub const UPLOAD_BODY_LIMIT: usize = crate::model::knowledge::MAX_DOCUMENT_BYTES + 64 * 1024;

/// The most a request to `path` may carry: a question with its images on
/// the routes that take one (the JSON API's, the chat page's server function
/// and the gateway's completions), a document on the upload routes (the
/// API's and the Knowledge tab's form) and the gateway's embeddings,
/// [`BODY_LIMIT`] everywhere else.
pub fn body_limit(path: &str) -> usize {
    let upload = path.starts_with("/api/projects/") && path.ends_with("/documents")
        || path.starts_with("/projects/") && path.ends_with("/knowledge/upload")
        || path == "/v1/embeddings";
    if upload {
        return UPLOAD_BODY_LIMIT;
    }
    let question = path == "/sfn/chat/send"
        || path == "/v1/chat/completions"
        || path == "/v1/messages"
        || (path.starts_with("/api/projects/") && path.ends_with("/messages"));
    if question {
        MESSAGE_BODY_LIMIT
    } else {
        BODY_LIMIT
    }
}

/// Holds every body to its route's limit: a declared length over it is
/// refused before a byte is read; a body without one is cut at the limit as
/// it is read (server functions read bodies themselves, so an extractor's
/// limit would not reach them).
pub async fn limit_body(request: Request, next: Next) -> Response {
    let limit = body_limit(request.uri().path());
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|length| length > limit) {
        return too_large().into_response();
    }
    let request = request.map(|body| Body::new(http_body_util::Limited::new(body, limit)));
    next.run(request).await
}

/// The answer to a body over its route's limit (here, and from an
/// extractor that read past it).
pub fn too_large() -> AppError {
    AppError::TooLarge {
        message: "the request body is too large for this route".into(),
    }
}

/// Refuses an unsafe request a browser sent from another site, whatever it
/// authenticates with: it passes with `Sec-Fetch-Site: same-origin` or `none`
/// (typed into the address bar), or, from browsers that do not send it, with
/// an `Origin` equal to the site's own. Requests without either header do not
/// come from a browser page (programs with a token, curl) and pass.
pub async fn refuse_cross_site(request: Request, next: Next) -> Response {
    if is_safe(request.method()) || comes_from_this_site(request.headers()) {
        return next.run(request).await;
    }
    AppError::Forbidden {
        message: "cross-site request refused: send it from the Cover site itself".into(),
    }
    .into_response()
}

fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

fn comes_from_this_site(headers: &HeaderMap) -> bool {
    let text = |name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        return matches!(site, "same-origin" | "none");
    }
    match (text(header::ORIGIN), text(header::HOST)) {
        (None, _) => true,
        (Some(origin), Some(host)) => origin
            .split_once("://")
            .is_some_and(|(_, authority)| authority.eq_ignore_ascii_case(host)),
        (Some(_), None) => false,
    }
}

/// The content policy: nothing from elsewhere, and scripts only from this
/// site (plus, on a page, the inline scripts carrying `nonce`); the browser
/// bundle is WebAssembly, hence `'wasm-unsafe-eval'`.
fn content_security_policy(nonce: Option<&str>) -> String {
    let inline_scripts = nonce
        .map(|nonce| format!(" 'nonce-{nonce}'"))
        .unwrap_or_default();
    format!(
        "default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; \
         script-src 'self'{inline_scripts} 'wasm-unsafe-eval'; connect-src 'self'; \
         frame-ancestors 'none'; base-uri 'self'; form-action 'self'; object-src 'none'"
    )
}

/// The nonce of one response's inline scripts, drawn per request by
/// [`apply_content_policy`] and handed to Leptos by [`provide_page_nonce`]:
/// the policy and the scripts it allows come from the same value.
#[derive(Debug, Clone)]
pub struct PageNonce(String);

/// Makes the request's [`PageNonce`] the one Leptos writes on the page's
/// inline scripts (it replaces the nonce Leptos draws itself). Called from
/// the page routes' context.
pub fn provide_page_nonce() {
    let nonce = leptos::prelude::use_context::<axum::http::request::Parts>()
        .and_then(|parts| parts.extensions.get::<PageNonce>().cloned());
    if let Some(PageNonce(nonce)) = nonce {
        leptos::prelude::provide_context(leptos::nonce::Nonce::from_value(nonce));
    }
}

/// Draws the request's nonce, and writes the content policy on the
/// response: an HTML page's allows its inline scripts carrying that nonce,
/// every other answer's allows no inline script.
pub async fn apply_content_policy(mut request: Request, next: Next) -> Response {
    let nonce = leptos::nonce::Nonce::new().to_string();
    request.extensions_mut().insert(PageNonce(nonce.clone()));
    let mut response = next.run(request).await;
    let is_page = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    let policy = content_security_policy(is_page.then_some(nonce.as_str()));
    if let Ok(policy) = HeaderValue::from_str(&policy) {
        response
            .headers_mut()
            .insert(header::CONTENT_SECURITY_POLICY, policy);
    }
    response
}

/// Adds the security headers to every response: no sniffing, no framing, the
/// referrer only to this site, and (over TLS) HSTS; the content policy is
/// [`apply_content_policy`]'s.
pub fn add_security_headers(headers: &mut HeaderMap, over_tls: bool) {
    let set = |headers: &mut HeaderMap, name: &'static str, value: &'static str| {
        headers
            .entry(name)
            .or_insert_with(|| HeaderValue::from_static(value));
    };
    set(headers, "x-content-type-options", "nosniff");
    set(headers, "x-frame-options", "DENY");
    set(headers, "referrer-policy", "same-origin");
    if over_tls {
        set(
            headers,
            "strict-transport-security",
            "max-age=31536000; includeSubDomains",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn a_request_passes_from_this_site_or_from_no_browser_page() {
        assert!(comes_from_this_site(&headers(&[(
            "sec-fetch-site",
            "same-origin"
        )])));
        assert!(comes_from_this_site(&headers(&[(
            "sec-fetch-site",
            "none"
        )])));
        assert!(comes_from_this_site(&headers(&[
            ("origin", "https://cover.example"),
            ("host", "cover.example")
        ])));
        assert!(
            comes_from_this_site(&headers(&[("host", "cover.example")])),
            "curl, SDKs"
        );
        assert!(
            !comes_from_this_site(&headers(&[("sec-fetch-site", "same-site")])),
            "a sibling subdomain"
        );
        assert!(!comes_from_this_site(&headers(&[
            ("sec-fetch-site", "cross-site"),
            ("origin", "https://cover.example"),
            ("host", "cover.example")
        ])));
        assert!(!comes_from_this_site(&headers(&[
            ("origin", "https://evil.example"),
            ("host", "cover.example")
        ])));
        assert!(!comes_from_this_site(&headers(&[
            ("origin", "null"),
            ("host", "cover.example")
        ])));
    }
}
