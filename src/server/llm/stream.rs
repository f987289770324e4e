//! Shared stream framing (SSE and NDJSON) and the one loop that drives an adapter's
//! [`StreamDecoder`] over a byte stream.
//!
//! Framing copes with frames and UTF-8 characters split anywhere across chunks, comments,
//! keep-alives and LF or CRLF separators. The driver guarantees that a stream ends with
//! exactly one `Finish` or `Error` event: an upstream that closes before the adapter saw
//! its end marker yields an error, never a success.

use std::collections::VecDeque;
use std::pin::Pin;

use bytes::Bytes;
use eventsource_stream::{EventStreamError, Eventsource};
use futures::{Stream, StreamExt};

use super::error::LlmError;
use super::executor::ByteStream;
use super::types::StreamEvent;
use super::ProviderId;

/// A normalised event stream, as returned by `Provider::stream`.
pub type EventStream = Pin<Box<dyn Stream<Item = StreamEvent> + Send>>;

/// One framed unit of a stream: an SSE event or an NDJSON line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// SSE event name (`message` when absent); empty for NDJSON.
    pub event: String,
    /// SSE data (multi-line data joined with `\n`) or the NDJSON line.
    pub data: String,
}

/// How a provider frames its stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// Server-sent events (Anthropic, OpenAI, Gemini).
    Sse,
    /// Newline-delimited JSON (Ollama native).
    Ndjson,
}

/// Per-provider translation of frames into unified events.
pub trait StreamDecoder: Send {
    /// Handles one frame, pushing zero or more events.
    fn frame(&mut self, frame: &Frame, out: &mut Vec<StreamEvent>) -> Result<(), LlmError>;
    /// Called when the upstream closes; must fail unless the end marker was seen.
    fn end(&mut self, out: &mut Vec<StreamEvent>) -> Result<(), LlmError>;
}

type FrameStream = Pin<Box<dyn Stream<Item = Result<Frame, LlmError>> + Send>>;

/// Splits a byte stream into frames.
pub fn frames(provider: ProviderId, bytes: ByteStream, framing: Framing) -> FrameStream {
    match framing {
        Framing::Sse => Box::pin(bytes.eventsource().map(move |item| match item {
            Ok(event) => Ok(Frame {
                event: event.event,
                data: event.data,
            }),
            Err(EventStreamError::Transport(err)) => Err(err),
            Err(EventStreamError::Utf8(err)) => {
                Err(LlmError::malformed(provider, "stream", &err, ""))
            }
            Err(EventStreamError::Parser(err)) => {
                Err(LlmError::malformed(provider, "stream", &err, ""))
            }
        })),
        Framing::Ndjson => ndjson_frames(provider, bytes),
    }
}

fn ndjson_frames(provider: ProviderId, bytes: ByteStream) -> FrameStream {
    struct State {
        bytes: ByteStream,
        buf: Vec<u8>,
        eof: bool,
    }
    let state = State {
        bytes,
        buf: Vec::new(),
        eof: false,
    };
    Box::pin(futures::stream::unfold(state, move |mut st| async move {
        loop {
            let line_end = st.buf.iter().position(|b| *b == b'\n');
            let line: Vec<u8> = match line_end {
                Some(pos) => st.buf.drain(..=pos).collect(),
                None if st.eof && !st.buf.is_empty() => std::mem::take(&mut st.buf),
                None if st.eof => return None,
                None => {
                    match st.bytes.next().await {
                        Some(Ok(chunk)) => st.buf.extend_from_slice(&chunk),
                        Some(Err(err)) => {
                            st.eof = true;
                            st.buf.clear();
                            return Some((Err(err), st));
                        }
                        None => st.eof = true,
                    }
                    continue;
                }
            };
            let frame = match String::from_utf8(line) {
                Ok(text) if text.trim().is_empty() => continue,
                Ok(text) => Ok(Frame {
                    event: String::new(),
                    data: text.trim().to_owned(),
                }),
                Err(err) => Err(LlmError::malformed(provider, "stream line", &err, "")),
            };
            return Some((frame, st));
        }
    }))
}

/// Drives `decoder` over `bytes`, yielding unified events that always end in `Finish` or `Error`.
pub fn decode(
    provider: ProviderId,
    bytes: ByteStream,
    framing: Framing,
    decoder: Box<dyn StreamDecoder>,
) -> EventStream {
    struct State {
        frames: Option<FrameStream>,
        decoder: Box<dyn StreamDecoder>,
        pending: VecDeque<StreamEvent>,
    }
    let state = State {
        frames: Some(frames(provider, bytes, framing)),
        decoder,
        pending: VecDeque::new(),
    };
    Box::pin(futures::stream::unfold(state, |mut st| async move {
        loop {
            if let Some(event) = st.pending.pop_front() {
                return Some((event, st));
            }
            let frames = st.frames.as_mut()?;
            let mut out = Vec::new();
            let result = match frames.next().await {
                Some(Ok(frame)) => st.decoder.frame(&frame, &mut out),
                Some(Err(err)) => Err(err),
                None => st.decoder.end(&mut out),
            };
            if let Err(err) = result {
                out.push(StreamEvent::Error { error: err });
            }
            let done = out
                .iter()
                .any(|e| matches!(e, StreamEvent::Finish { .. } | StreamEvent::Error { .. }));
            if done {
                // Dropping the frames drops the upstream response: nothing more is read.
                st.frames = None;
                if let Some(pos) = out.iter().position(|e| {
                    matches!(e, StreamEvent::Finish { .. } | StreamEvent::Error { .. })
                }) {
                    out.truncate(pos + 1);
                }
            }
            st.pending.extend(out);
        }
    }))
}

/// Turns in-memory chunks into a [`ByteStream`]; used to replay recorded streams.
pub fn replay(chunks: Vec<Bytes>) -> ByteStream {
    Box::pin(futures::stream::iter(chunks.into_iter().map(Ok)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sse_frames(chunks: &[&[u8]]) -> Vec<Result<Frame, LlmError>> {
        let bytes = replay(chunks.iter().map(|c| Bytes::copy_from_slice(c)).collect());
        futures::executor::block_on(frames(ProviderId::Gemini, bytes, Framing::Sse).collect())
    }

    #[test]
    fn sse_frames_separated_by_crlf_are_read_like_lf_ones() {
        let got = sse_frames(&[b"data: {\"a\":1}\r\n\r\ndata: {\"b\":2}\r\n\r\n"]);
        let data: Vec<String> = got.into_iter().map(|f| f.expect("frame").data).collect();
        assert_eq!(data, vec!["{\"a\":1}", "{\"b\":2}"]);
    }

    #[test]
    fn sse_comments_and_keep_alives_produce_no_frames() {
        let got = sse_frames(&[b": keep-alive\n\n", b":\n\ndata: x\n\n"]);
        assert_eq!(got.len(), 1);
    }

    #[test]
    fn a_utf8_character_split_across_chunks_is_reassembled() {
        let text = "data: caf\u{e9} \u{1F600}\n\n".as_bytes();
        for cut in 1..text.len() {
            let got = sse_frames(&[&text[..cut], &text[cut..]]);
            assert_eq!(got.len(), 1, "cut at {cut}");
            assert_eq!(got[0].as_ref().expect("frame").data, "caf\u{e9} \u{1F600}");
        }
    }

    #[test]
    fn ndjson_lines_split_anywhere_are_reassembled_and_blank_lines_skipped() {
        let text = "{\"a\":\"\u{e9}\"}\n\n{\"b\":2}\r\n".as_bytes();
        for cut in 0..=text.len() {
            let bytes = replay(vec![
                Bytes::copy_from_slice(&text[..cut]),
                Bytes::copy_from_slice(&text[cut..]),
            ]);
            let got: Vec<_> = futures::executor::block_on(
                frames(ProviderId::Llama, bytes, Framing::Ndjson).collect::<Vec<_>>(),
            );
            let data: Vec<String> = got.into_iter().map(|f| f.expect("frame").data).collect();
            assert_eq!(
                data,
                vec!["{\"a\":\"\u{e9}\"}", "{\"b\":2}"],
                "cut at {cut}"
            );
        }
    }
}
