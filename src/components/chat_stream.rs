//! The browser side of a streamed answer: posts the question to the JSON API
//! with `Accept: text/event-stream` (the session cookie authenticates) and reads
//! the server-sent events as they arrive, so the page can show the answer token
//! by token. Stopping aborts the fetch; the server then stores the partial
//! answer as stopped.

use crate::error::AppError;
use crate::model::chat::{ChatEvent, NewMessage};

/// The URL a question is posted to for a streamed answer.
pub fn messages_url(project_id: &str, conversation_id: &str) -> String {
    format!("/api/projects/{project_id}/conversations/{conversation_id}/messages")
}

/// What the page hears from a running stream.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamUpdate {
    /// One event of the answer.
    Event(Box<ChatEvent>),
    /// The server refused the question (or could not be reached): nothing was
    /// stored and no event follows.
    Refused(AppError),
    /// The stream is over: it ended, was stopped, or broke (`Err`, with why);
    /// the stored conversation has the outcome.
    Finished(Result<(), AppError>),
}

/// Splits a server-sent-event byte stream into [`ChatEvent`]s. Bytes may arrive
/// in any pieces: an event is read once its blank line has arrived.
#[derive(Debug, Default)]
pub struct SseParser {
    pending: Vec<u8>,
}

impl SseParser {
    /// Adds bytes; returns the events they complete. Comments (keep-alives) and
    /// events this page does not know are skipped.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<ChatEvent> {
        self.pending.extend_from_slice(bytes);
        let mut events = Vec::new();
        while let Some((end, next)) = block_end(&self.pending) {
            let block = String::from_utf8_lossy(&self.pending[..end]).into_owned();
            self.pending.drain(..next);
            if let Some(event) = parse_block(&block) {
                events.push(event);
            }
        }
        events
    }
}

/// Where the first event block ends (its blank line) and the next one starts.
fn block_end(bytes: &[u8]) -> Option<(usize, usize)> {
    bytes
        .iter()
        .enumerate()
        .filter(|&(_, &b)| b == b'\n')
        .find_map(|(i, _)| match (bytes.get(i + 1), bytes.get(i + 2)) {
            (Some(b'\n'), _) => Some((i, i + 2)),
            (Some(b'\r'), Some(b'\n')) => Some((i, i + 3)),
            _ => None,
        })
}

/// One event: `event: <name>` and `data: <json>` lines.
fn parse_block(block: &str) -> Option<ChatEvent> {
    let mut name = None;
    let mut data: Vec<&str> = Vec::new();
    for line in block.lines().filter(|l| !l.starts_with(':')) {
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "event" => name = Some(value),
            "data" => data.push(value),
            _ => {}
        }
    }
    if data.is_empty() {
        return None;
    }
    let data: serde_json::Value = serde_json::from_str(&data.join("\n")).ok()?;
    let event = serde_json::json!({ "event": name.unwrap_or("message"), "data": data });
    match serde_json::from_value(event) {
        Ok(event) => Some(event),
        Err(error) => {
            leptos::logging::warn!("skipped an unreadable answer event: {error}");
            None
        }
    }
}

/// The error of a refused question, from the JSON API's error body
/// (`{"error": …, "message": …, "field": …}`), whatever its shape.
pub fn refusal(status: u16, body: &str) -> AppError {
    let body: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
    if let Some(error) = body
        .get("error")
        .and_then(|e| serde_json::from_value::<AppError>(e.clone()).ok())
    {
        return error;
    }
    let message = body
        .get("message")
        .and_then(|m| m.as_str())
        .map(str::to_owned)
        .unwrap_or_else(|| format!("the server answered with status {status}"));
    AppError::BadRequest { message }
}

/// A running stream; [`StreamHandle::stop`] aborts it.
#[derive(Debug, Default)]
pub struct StreamHandle {
    // Browsers run one thread: the wrapper only lets the handle sit in a signal.
    #[cfg(feature = "hydrate")]
    controller: Option<send_wrapper::SendWrapper<web_sys::AbortController>>,
}

impl StreamHandle {
    /// Aborts the fetch (the stream then reports [`StreamUpdate::Finished`]).
    pub fn stop(&self) {
        #[cfg(feature = "hydrate")]
        if let Some(controller) = &self.controller {
            controller.abort();
        }
    }
}

/// Posts `message` to `url` and reports every update to `on_update`, the last
/// one being [`StreamUpdate::Refused`] or [`StreamUpdate::Finished`].
#[cfg(feature = "hydrate")]
pub fn start(
    url: String,
    message: &NewMessage,
    mut on_update: impl FnMut(StreamUpdate) + 'static,
) -> StreamHandle {
    let controller = web_sys::AbortController::new().ok();
    let signal = controller.as_ref().map(web_sys::AbortController::signal);
    let body = serde_json::to_string(message).unwrap_or_default();
    leptos::task::spawn_local(async move {
        let last = match browser::run(&url, &body, signal.as_ref(), &mut on_update).await {
            Ok(()) => StreamUpdate::Finished(Ok(())),
            Err(_) if signal.as_ref().is_some_and(web_sys::AbortSignal::aborted) => {
                StreamUpdate::Finished(Ok(()))
            }
            Err(browser::Failure::BeforeAnswer(error)) => StreamUpdate::Refused(error),
            Err(browser::Failure::DuringAnswer(error)) => StreamUpdate::Finished(Err(error)),
        };
        on_update(last);
    });
    StreamHandle {
        controller: controller.map(send_wrapper::SendWrapper::new),
    }
}

/// Streams run in the browser only; the server never handles the event that
/// starts one.
#[cfg(not(feature = "hydrate"))]
pub fn start(
    _url: String,
    _message: &NewMessage,
    mut on_update: impl FnMut(StreamUpdate) + 'static,
) -> StreamHandle {
    on_update(StreamUpdate::Refused(AppError::Transport {
        message: "answers stream in the browser only".into(),
    }));
    StreamHandle::default()
}

#[cfg(feature = "hydrate")]
mod browser {
    use super::{refusal, SseParser, StreamUpdate};
    use crate::error::AppError;
    use wasm_bindgen::{JsCast, JsValue};
    use wasm_bindgen_futures::JsFuture;
    use web_sys::{
        AbortSignal, Headers, ReadableStreamDefaultReader, ReadableStreamReadResult,
        RequestCredentials, RequestInit, Response,
    };

    /// Why a stream ended early.
    pub(super) enum Failure {
        /// Before the server accepted the question.
        BeforeAnswer(AppError),
        /// After it had (the stored conversation has the rest).
        DuringAnswer(AppError),
    }

    fn transport(error: JsValue) -> AppError {
        let message = error
            .dyn_ref::<js_sys::Error>()
            .map(|e| String::from(e.message()))
            .or_else(|| error.as_string())
            .unwrap_or_else(|| "the connection failed".into());
        AppError::Transport { message }
    }

    pub(super) async fn run(
        url: &str,
        body: &str,
        signal: Option<&AbortSignal>,
        on_update: &mut impl FnMut(StreamUpdate),
    ) -> Result<(), Failure> {
        let before = |e: JsValue| Failure::BeforeAnswer(transport(e));
        let headers = Headers::new().map_err(before)?;
        headers.set("Accept", "text/event-stream").map_err(before)?;
        headers
            .set("Content-Type", "application/json")
            .map_err(before)?;
        let init = RequestInit::new();
        init.set_method("POST");
        init.set_headers(&headers);
        init.set_body(&JsValue::from_str(body));
        init.set_credentials(RequestCredentials::SameOrigin);
        init.set_signal(signal);
        let window = web_sys::window().ok_or_else(|| before(JsValue::NULL))?;
        let response: Response = JsFuture::from(window.fetch_with_str_and_init(url, &init))
            .await
            .map_err(before)?
            .unchecked_into();
        if !response.ok() {
            let text = match response.text() {
                Ok(promise) => JsFuture::from(promise).await.ok(),
                Err(_) => None,
            };
            let text = text.and_then(|t| t.as_string()).unwrap_or_default();
            return Err(Failure::BeforeAnswer(refusal(response.status(), &text)));
        }
        let during = |e: JsValue| Failure::DuringAnswer(transport(e));
        let stream = response
            .body()
            .ok_or_else(|| during(JsValue::from_str("the answer had no body")))?;
        let reader: ReadableStreamDefaultReader = stream.get_reader().unchecked_into();
        let mut parser = SseParser::default();
        loop {
            let chunk: ReadableStreamReadResult = JsFuture::from(reader.read())
                .await
                .map_err(during)?
                .unchecked_into();
            if chunk.get_done().unwrap_or(true) {
                return Ok(());
            }
            let bytes = js_sys::Uint8Array::new(&chunk.get_value()).to_vec();
            for event in parser.push(&bytes) {
                on_update(StreamUpdate::Event(Box::new(event)));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_read_whatever_the_pieces() {
        let stream = "event: started\ndata: {\"questionId\":\"q1\",\"messageId\":\"a1\"}\n\n: keep-alive\n\nevent: delta\ndata: {\"text\":\"Hé\"}\r\n\r\nevent: delta\ndata: {\"text\":\"llo\"}\n\n";
        let bytes = stream.as_bytes();
        let mut parser = SseParser::default();
        let mut events = Vec::new();
        // One byte at a time splits the UTF-8 of "é" and every line ending.
        for byte in bytes {
            events.extend(parser.push(std::slice::from_ref(byte)));
        }
        assert_eq!(
            events,
            vec![
                ChatEvent::Started {
                    question_id: "q1".into(),
                    message_id: "a1".into()
                },
                ChatEvent::Delta { text: "Hé".into() },
                ChatEvent::Delta { text: "llo".into() },
            ]
        );
    }

    #[test]
    fn unknown_and_unfinished_events_are_not_reported() {
        let mut parser = SseParser::default();
        assert!(parser
            .push(b"event: mystery\ndata: {}\n\nevent: delta\ndata: {\"text\":\"x\"}\n")
            .is_empty());
        assert_eq!(
            parser.push(b"\n"),
            vec![ChatEvent::Delta { text: "x".into() }]
        );
    }

    #[test]
    fn a_refusal_shows_the_servers_error() {
        let body = r#"{"error":{"code":"invalid","field":"content","message":"must not be empty"},"message":"content: must not be empty","field":"content"}"#;
        assert_eq!(
            refusal(422, body),
            AppError::invalid("content", "must not be empty")
        );
        let other = refusal(418, r#"{"error":"teapot","message":"I am a teapot"}"#);
        assert_eq!(other.to_string(), "I am a teapot");
        assert_eq!(
            refusal(502, "<html>").to_string(),
            "the server answered with status 502"
        );
    }
}
