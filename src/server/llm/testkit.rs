//! Test helpers shared by the adapter tests: replaying recorded streams (whole and split at
//! every byte), one request using every feature the adapters translate, and starting the
//! simulator on a free loopback port.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;

use super::stream::{decode, replay};
use super::{
    Adapter, ContentPart, Executor, GenerateRequest, Message, Role, StreamEvent, Timeouts,
    ToolCall, ToolChoice, ToolDefinition,
};
use crate::server::simulator::{self, SimStats, SimulatorOptions};

/// Decodes `recorded` delivered in the given chunks.
pub(crate) fn replay_chunks(
    adapter: &dyn Adapter,
    req: &GenerateRequest,
    chunks: Vec<Bytes>,
) -> Vec<StreamEvent> {
    let stream = decode(
        adapter.id(),
        replay(chunks),
        adapter.framing(),
        adapter.stream_decoder(req),
    );
    futures::executor::block_on(stream.collect())
}

/// Decodes `recorded` whole, then split in two at every byte and one byte per chunk, and
/// asserts every delivery gives identical events; returns them.
pub(crate) fn decode_every_split(
    adapter: &dyn Adapter,
    req: &GenerateRequest,
    recorded: &str,
) -> Vec<StreamEvent> {
    let bytes = recorded.as_bytes();
    let whole = replay_chunks(adapter, req, vec![Bytes::copy_from_slice(bytes)]);
    for cut in 1..bytes.len() {
        let split = replay_chunks(
            adapter,
            req,
            vec![
                Bytes::copy_from_slice(&bytes[..cut]),
                Bytes::copy_from_slice(&bytes[cut..]),
            ],
        );
        assert_eq!(
            split, whole,
            "events differ when the stream is split at byte {cut}"
        );
    }
    let bytewise = replay_chunks(
        adapter,
        req,
        bytes
            .iter()
            .map(|b| Bytes::copy_from_slice(&[*b]))
            .collect(),
    );
    assert_eq!(
        bytewise, whole,
        "events differ when the stream arrives one byte at a time"
    );
    whole
}

/// A running simulator: its base URL and counters.
pub(crate) struct Sim {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    /// Counters the simulator updates.
    pub stats: Arc<SimStats>,
}

impl Sim {
    /// Schedules a fault through the control API (`POST /_sim/faults`), as the Playwright suite does.
    pub(crate) async fn schedule_fault(&self, entry: serde_json::Value) {
        let response = reqwest::Client::new()
            .post(format!("{}/_sim/faults", self.url))
            .json(&entry)
            .send()
            .await
            .expect("simulator answers");
        assert_eq!(response.status().as_u16(), 201, "fault {entry} scheduled");
    }

    /// Clears the fault schedule (`DELETE /_sim/faults`).
    pub(crate) async fn clear_faults(&self) {
        let response = reqwest::Client::new()
            .delete(format!("{}/_sim/faults", self.url))
            .send()
            .await
            .expect("simulator answers");
        assert_eq!(response.status().as_u16(), 204);
    }

    /// Requests the provider routes have received so far.
    pub(crate) fn requests(&self) -> u64 {
        self.stats.requests.load(Ordering::Relaxed)
    }

    /// Streams the simulator is still sending.
    pub(crate) fn open_streams(&self) -> i64 {
        self.stats.open_streams.load(Ordering::Relaxed)
    }
}

/// Starts the simulator on port 0 inside the test's runtime.
pub(crate) async fn start_simulator(opts: SimulatorOptions) -> Sim {
    let simulator::LoopbackSimulator { url, stats } = simulator::start_on_loopback(opts)
        .await
        .expect("the simulator starts on loopback");
    Sim { url, stats }
}

/// An executor with short timeouts, for the tests that wait for a hang or a stall.
pub(crate) fn quick_executor() -> Executor {
    executor_with(Duration::from_millis(800), Duration::from_millis(300))
}

/// An executor with timeouts generous enough for a loaded CI machine.
pub(crate) fn test_executor() -> Executor {
    executor_with(Duration::from_secs(20), Duration::from_secs(10))
}

fn executor_with(request: Duration, idle: Duration) -> Executor {
    Executor::new(Timeouts {
        connect: Duration::from_secs(5),
        request,
        idle,
    })
    .expect("client builds")
}

/// A request to `model` using every feature the adapters translate: a system
/// prompt, a question with an image, a tool call and its result, a tool
/// definition and a forced tool choice. Each adapter's test checks its own
/// wire shapes of the same conversation.
pub(crate) fn rich_request(model: &str) -> GenerateRequest {
    let mut request = GenerateRequest::simple(model, "unused");
    request.messages = vec![
        Message::text(Role::System, "Be terse."),
        Message::parts(
            Role::User,
            vec![
                ContentPart::text("What is this?"),
                ContentPart::Image {
                    media_type: "image/jpeg".into(),
                    data: "/9j/4AAQ".into(),
                },
            ],
        ),
        Message::tool_calls(vec![ToolCall {
            id: "call_1".into(),
            name: "lookup".into(),
            arguments: serde_json::json!({"q": 1}),
        }]),
        Message::tool_result("call_1", "42"),
    ];
    request.tools = vec![ToolDefinition {
        name: "lookup".into(),
        description: "Look up".into(),
        parameters: serde_json::json!({"type": "object"}),
    }];
    request.tool_choice = ToolChoice::Tool {
        name: "lookup".into(),
    };
    request
}

/// The text deltas of an event list, joined.
pub(crate) fn text_of(events: &[StreamEvent]) -> String {
    events
        .iter()
        .filter_map(|e| match e {
            StreamEvent::TextDelta { text } => Some(text.as_str()),
            _ => None,
        })
        .collect()
}
