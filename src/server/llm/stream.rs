//! Shared stream framing (SSE and NDJSON) and the one loop that drives an adapter's
//! [`StreamDecoder`] over a byte stream.
//!
//! Framing copes with frames and UTF-8 characters split anywhere across chunks, comments,
//! keep-alives and LF, CRLF or CR separators. It runs in linear time (each byte is looked
//! at once, whatever the chunking) and buffers at most [`MAX_FRAME_BYTES`]: a longer line
//! or SSE event ends the stream with a malformed-stream error. The driver guarantees that
//! a stream ends with exactly one `Finish` or `Error` event: an upstream that closes
//! before the adapter saw its end marker yields an error, never a success; an answer
//! longer than [`MAX_ANSWER_BYTES`] is cut with an error too.

use std::collections::VecDeque;
use std::pin::Pin;

use bytes::Bytes;
use futures::{Stream, StreamExt};

use super::error::LlmError;
use super::executor::ByteStream;
use super::types::StreamEvent;
use super::ProviderId;

/// The longest line, and the longest SSE event (its data lines joined), a provider
/// stream may send: the most a stream makes us buffer before a frame is complete.
pub const MAX_FRAME_BYTES: usize = 1024 * 1024;

/// The most answer text (text and tool-call argument deltas together) one streamed
/// answer may carry; far above any model's output limit, it stops an upstream that
/// would otherwise stream forever.
pub const MAX_ANSWER_BYTES: usize = 1024 * 1024;

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

/// Cuts bytes into lines at LF, CRLF or a lone CR, carrying a partial line across
/// chunks; the one line splitter of both framings.
///
/// NOTE: a lone CR ends an NDJSON line too. JSON never needs a raw CR (inside strings it
/// must be escaped), and no provider pretty-prints its NDJSON.
#[derive(Debug)]
struct LineSplitter {
    provider: ProviderId,
    /// The start of a line whose end has not arrived yet (at most [`MAX_FRAME_BYTES`]).
    partial: Vec<u8>,
    /// The last chunk ended with CR: an LF opening the next chunk belongs to it.
    after_cr: bool,
}

impl LineSplitter {
    fn new(provider: ProviderId) -> Self {
        Self {
            provider,
            partial: Vec::new(),
            after_cr: false,
        }
    }

    /// Hands every line `chunk` completes to `on_line` (without its separator); stops at
    /// the first error, from `on_line` or a line over the cap.
    fn push(
        &mut self,
        mut chunk: &[u8],
        mut on_line: impl FnMut(&[u8]) -> Result<(), LlmError>,
    ) -> Result<(), LlmError> {
        if self.after_cr && !chunk.is_empty() {
            self.after_cr = false;
            chunk = chunk.strip_prefix(b"\n").unwrap_or(chunk);
        }
        while let Some(end) = chunk.iter().position(|b| matches!(b, b'\n' | b'\r')) {
            self.check_length(end)?;
            if self.partial.is_empty() {
                on_line(&chunk[..end])?;
            } else {
                self.partial.extend_from_slice(&chunk[..end]);
                on_line(&self.partial)?;
                self.partial.clear();
            }
            let was_cr = chunk[end] == b'\r';
            chunk = &chunk[end + 1..];
            if was_cr {
                match chunk.strip_prefix(b"\n") {
                    Some(rest) => chunk = rest,
                    None => self.after_cr = chunk.is_empty(),
                }
            }
        }
        self.check_length(chunk.len())?;
        self.partial.extend_from_slice(chunk);
        Ok(())
    }

    /// Fails when `more` bytes added to the partial line would pass the cap.
    fn check_length(&self, more: usize) -> Result<(), LlmError> {
        if self.partial.len() + more > MAX_FRAME_BYTES {
            return Err(too_long(self.provider, "line"));
        }
        Ok(())
    }

    /// The unterminated last line, when the stream ended inside one.
    fn take_rest(&mut self) -> Option<Vec<u8>> {
        (!self.partial.is_empty()).then(|| std::mem::take(&mut self.partial))
    }
}

fn too_long(provider: ProviderId, what: &str) -> LlmError {
    LlmError::malformed(
        provider,
        "stream",
        format!("a {what} longer than {MAX_FRAME_BYTES} bytes"),
        "",
    )
}

/// The SSE event being assembled from its lines (HTML spec, "event stream interpretation").
#[derive(Debug, Default)]
struct SseEvent {
    event: String,
    data: String,
    /// No line has been read yet: a byte-order mark may open the first.
    at_start: bool,
}

impl SseEvent {
    /// Reads one line; a blank line dispatches the event when it has data.
    fn line(&mut self, provider: ProviderId, line: &str) -> Result<Option<Frame>, LlmError> {
        let line = match std::mem::take(&mut self.at_start) {
            true => line.strip_prefix('\u{feff}').unwrap_or(line),
            false => line,
        };
        if line.is_empty() {
            return Ok(self.dispatch());
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line, ""),
        };
        match field {
            // A line opening with a colon is a comment (keep-alives are comments).
            "" => {}
            "event" => value.clone_into(&mut self.event),
            "data" => {
                if self.data.len() + value.len() + 1 > MAX_FRAME_BYTES {
                    return Err(too_long(provider, "event"));
                }
                self.data.push_str(value);
                self.data.push('\n');
            }
            // `id` and `retry` serve reconnection, which we never do; unknown fields are ignored.
            _ => {}
        }
        Ok(None)
    }

    fn dispatch(&mut self) -> Option<Frame> {
        let event = std::mem::take(&mut self.event);
        let mut data = std::mem::take(&mut self.data);
        // Data lines each added `\n`: no data line, no event.
        data.pop()?;
        Some(Frame {
            event: if event.is_empty() {
                "message".to_owned()
            } else {
                event
            },
            data,
        })
    }
}

/// Turns bytes, chunk by chunk, into frames: the synchronous core of [`frames`], exposed
/// so that benchmarks can drive it without a runtime.
///
/// It yields nothing more after its first error.
#[derive(Debug)]
pub struct Framer {
    provider: ProviderId,
    lines: LineSplitter,
    /// The event being assembled; `None` for NDJSON.
    sse: Option<SseEvent>,
    failed: bool,
}

impl Framer {
    /// A framer for one stream from `provider`.
    pub fn new(provider: ProviderId, framing: Framing) -> Self {
        Self {
            provider,
            lines: LineSplitter::new(provider),
            sse: (framing == Framing::Sse).then(|| SseEvent {
                at_start: true,
                ..SseEvent::default()
            }),
            failed: false,
        }
    }

    /// Frames one more chunk, pushing every frame it completes (or the error) to `out`.
    pub fn push(&mut self, chunk: &[u8], out: &mut Vec<Result<Frame, LlmError>>) {
        if self.failed {
            return;
        }
        let (provider, sse) = (self.provider, &mut self.sse);
        let pushed = self.lines.push(chunk, |line| {
            if let Some(frame) = frame_line(provider, sse, line)? {
                out.push(Ok(frame));
            }
            Ok(())
        });
        self.fail_on(pushed, out);
    }

    /// Ends the stream: an unterminated NDJSON line is still a frame; an SSE event
    /// without its closing blank line is dropped, as the SSE spec says.
    pub fn finish(&mut self, out: &mut Vec<Result<Frame, LlmError>>) {
        if self.failed || self.sse.is_some() {
            return;
        }
        if let Some(rest) = self.lines.take_rest() {
            match frame_line(self.provider, &mut self.sse, &rest) {
                Ok(Some(frame)) => out.push(Ok(frame)),
                Ok(None) => {}
                Err(err) => self.fail_on(Err(err), out),
            }
        }
    }

    fn fail_on(&mut self, result: Result<(), LlmError>, out: &mut Vec<Result<Frame, LlmError>>) {
        if let Err(err) = result {
            self.failed = true;
            out.push(Err(err));
        }
    }
}

/// One complete line as a frame: SSE lines build events, NDJSON lines are frames.
fn frame_line(
    provider: ProviderId,
    sse: &mut Option<SseEvent>,
    line: &[u8],
) -> Result<Option<Frame>, LlmError> {
    let text = std::str::from_utf8(line)
        .map_err(|err| LlmError::malformed(provider, "stream line", err, ""))?;
    match sse {
        Some(event) => event.line(provider, text),
        None => Ok((!text.trim().is_empty()).then(|| Frame {
            event: String::new(),
            data: text.trim().to_owned(),
        })),
    }
}

/// Frames in-memory chunks all at once: the synchronous twin of `frames(replay(..))`, for
/// tests and benchmarks.
pub fn frame_chunks<'a>(
    provider: ProviderId,
    framing: Framing,
    chunks: impl IntoIterator<Item = &'a [u8]>,
) -> Vec<Result<Frame, LlmError>> {
    let mut framer = Framer::new(provider, framing);
    let mut out = Vec::new();
    for chunk in chunks {
        framer.push(chunk, &mut out);
    }
    framer.finish(&mut out);
    out
}

type FrameStream = Pin<Box<dyn Stream<Item = Result<Frame, LlmError>> + Send>>;

/// Splits a byte stream into frames; ends after the first error, dropping the upstream.
pub fn frames(provider: ProviderId, bytes: ByteStream, framing: Framing) -> FrameStream {
    struct State {
        bytes: Option<ByteStream>,
        framer: Framer,
        ready: VecDeque<Result<Frame, LlmError>>,
    }
    let state = State {
        bytes: Some(bytes),
        framer: Framer::new(provider, framing),
        ready: VecDeque::new(),
    };
    Box::pin(futures::stream::unfold(state, |mut st| async move {
        loop {
            if let Some(frame) = st.ready.pop_front() {
                return Some((frame, st));
            }
            let bytes = st.bytes.as_mut()?;
            let mut out = Vec::new();
            let done = match bytes.next().await {
                Some(Ok(chunk)) => {
                    st.framer.push(&chunk, &mut out);
                    st.framer.failed
                }
                Some(Err(err)) => {
                    out.push(Err(err));
                    true
                }
                None => {
                    st.framer.finish(&mut out);
                    true
                }
            };
            if done {
                st.bytes = None;
            }
            st.ready.extend(out);
        }
    }))
}

/// Drives `decoder` over `bytes`, yielding unified events that always end in `Finish` or
/// `Error`; an answer past [`MAX_ANSWER_BYTES`] ends in an `Error`.
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
        answer_bytes: usize,
    }
    let state = State {
        frames: Some(frames(provider, bytes, framing)),
        decoder,
        pending: VecDeque::new(),
        answer_bytes: 0,
    };
    Box::pin(futures::stream::unfold(state, move |mut st| async move {
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
            cut_at_answer_cap(provider, &mut st.answer_bytes, &mut out);
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

/// Adds the answer text in `out` to `answer_bytes`; from the event that passes
/// [`MAX_ANSWER_BYTES`] on, `out` is replaced by an error.
fn cut_at_answer_cap(provider: ProviderId, answer_bytes: &mut usize, out: &mut Vec<StreamEvent>) {
    let Some(over) = out.iter().position(|event| {
        *answer_bytes += match event {
            StreamEvent::TextDelta { text } => text.len(),
            StreamEvent::ToolCallDelta { arguments, .. } => arguments.len(),
            _ => 0,
        };
        *answer_bytes > MAX_ANSWER_BYTES
    }) else {
        return;
    };
    out.truncate(over);
    out.push(StreamEvent::Error {
        error: LlmError::malformed(
            provider,
            "stream",
            format!("an answer longer than {MAX_ANSWER_BYTES} bytes"),
            "",
        ),
    });
}

/// Turns in-memory chunks into a [`ByteStream`]; used to replay recorded streams.
pub fn replay(chunks: Vec<Bytes>) -> ByteStream {
    Box::pin(futures::stream::iter(chunks.into_iter().map(Ok)))
}

#[cfg(test)]
mod random_streams;

#[cfg(test)]
mod tests {
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    use super::random_streams::{random_chunks, random_stream};
    use super::*;
    use crate::server::llm::ErrorKind;

    fn sse_frames(chunks: &[&[u8]]) -> Vec<Result<Frame, LlmError>> {
        let bytes = replay(chunks.iter().map(|c| Bytes::copy_from_slice(c)).collect());
        futures::executor::block_on(frames(ProviderId::Gemini, bytes, Framing::Sse).collect())
    }

    fn frame(event: &str, data: &str) -> Frame {
        Frame {
            event: event.to_owned(),
            data: data.to_owned(),
        }
    }

    fn is_too_long(frames: &[Result<Frame, LlmError>]) -> bool {
        matches!(frames, [Err(err)] if err.message.contains(&format!("longer than {MAX_FRAME_BYTES} bytes")))
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

    #[test]
    fn sse_events_follow_the_spec_whatever_the_separators_and_wherever_the_stream_is_cut() {
        let text = "\u{feff}: hello\r\nevent: delta\rdata:one\ndata:  two\r\nid: 9\nretry: 10\n\r\ndata\n\nevent: lonely\n\ndata: \u{e9}\r\r";
        let want = vec![
            Ok(frame("delta", "one\n two")),
            Ok(frame("message", "")),
            Ok(frame("message", "\u{e9}")),
        ];
        let bytes = text.as_bytes();
        assert_eq!(
            frame_chunks(ProviderId::OpenAi, Framing::Sse, [bytes]),
            want
        );
        for cut in 0..=bytes.len() {
            for second in cut..=bytes.len() {
                let chunks = [&bytes[..cut], &bytes[cut..second], &bytes[second..]];
                let got = frame_chunks(ProviderId::OpenAi, Framing::Sse, chunks);
                assert_eq!(got, want, "cut at {cut} and {second}");
            }
        }
    }

    #[test]
    fn an_sse_event_cut_off_by_the_end_of_the_stream_is_dropped_but_an_ndjson_line_is_kept() {
        let sse = frame_chunks(ProviderId::Claude, Framing::Sse, [&b"data: x\n"[..]]);
        assert_eq!(sse, vec![]);
        let ndjson = frame_chunks(
            ProviderId::Llama,
            Framing::Ndjson,
            [&b"{\"done\":true}"[..]],
        );
        assert_eq!(ndjson, vec![Ok(frame("", "{\"done\":true}"))]);
    }

    #[test]
    fn a_line_of_exactly_the_cap_is_read() {
        let line = vec![b'a'; MAX_FRAME_BYTES];
        let got = frame_chunks(ProviderId::Llama, Framing::Ndjson, line.chunks(1000));
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].as_ref().expect("frame").data.len(), MAX_FRAME_BYTES);
    }

    #[test]
    fn a_line_over_the_cap_ends_the_stream_with_a_malformed_stream_error() {
        let mut line = vec![b'a'; 10 * 1024 * 1024];
        line.extend_from_slice(b"\n{\"after\":1}\n");
        for framing in [Framing::Sse, Framing::Ndjson] {
            for chunk in [4096, 1024 * 1024 + 1, line.len()] {
                let got = frame_chunks(ProviderId::Llama, framing, line.chunks(chunk));
                assert!(
                    is_too_long(&got),
                    "{framing:?} in {chunk}-byte chunks: {got:?}"
                );
                let err = got[0].as_ref().expect_err("error");
                assert_eq!(err.kind, ErrorKind::Transient);
                assert!(err.message.starts_with("malformed stream"), "{err}");
            }
        }
    }

    #[test]
    fn an_sse_event_whose_data_lines_pass_the_cap_together_ends_the_stream() {
        let line = format!("data: {}\n", "b".repeat(1000));
        let text = line.repeat(MAX_FRAME_BYTES / 1000 + 1);
        let got = frame_chunks(ProviderId::Gemini, Framing::Sse, [text.as_bytes()]);
        assert!(is_too_long(&got), "{got:?}");
    }

    #[test]
    fn the_framed_stream_stops_reading_the_upstream_after_an_error() {
        let chunks = vec![
            Bytes::from_static(b"\xff\n"),
            Bytes::from_static(b"{\"a\":1}\n"),
        ];
        let got: Vec<_> = futures::executor::block_on(
            frames(ProviderId::Llama, replay(chunks), Framing::Ndjson).collect(),
        );
        assert!(
            matches!(got.as_slice(), [Err(err)] if err.message.starts_with("malformed stream line"))
        );
    }

    #[test]
    fn random_bytes_give_the_same_frames_however_they_are_split_into_chunks() {
        let mut rng = StdRng::seed_from_u64(0x5EED);
        for case in 0..20_000 {
            let bytes = random_stream(&mut rng, 40);
            let chunks = random_chunks(&mut rng, &bytes);
            for framing in [Framing::Sse, Framing::Ndjson] {
                let whole = frame_chunks(ProviderId::OpenAi, framing, [bytes.as_slice()]);
                let split = frame_chunks(ProviderId::OpenAi, framing, chunks.iter().copied());
                assert_eq!(
                    split, whole,
                    "case {case}, {framing:?}: {bytes:?} as {chunks:?}"
                );
            }
        }
    }
}
