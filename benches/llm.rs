//! LLM layer benchmark (`cargo bench --bench llm --features ssr`), printing two tables:
//!
//! 1. stream-parsing throughput per adapter (MB/s): a synthetic 2k-token stream in each
//!    provider's exact framing, fed through the shared framing + the adapter's decoder in
//!    16 KiB chunks (no network);
//! 2. adapter + executor overhead per request (p50/p99 µs) against the in-process simulator
//!    at zero latency, non-streamed and streamed, sequential requests on a warm connection.

use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use secrecy::SecretString;

use cover::server::llm::anthropic::AnthropicAdapter;
use cover::server::llm::gemini::GeminiAdapter;
use cover::server::llm::ollama::OllamaAdapter;
use cover::server::llm::openai::OpenAiAdapter;
use cover::server::llm::stream::{decode, replay};
use cover::server::llm::{
    build_provider, Adapter, Executor, GenerateRequest, LlamaFlavour, ProviderId, StreamEvent,
    Timeouts,
};
use cover::server::simulator::{self, SimulatorOptions};

const TOKENS: usize = 2_000;
const CHUNK: usize = 16 * 1024;
const PARSE_ROUNDS: usize = 30;
const WARMUP: usize = 100;
const REQUESTS: usize = 1_000;

fn anthropic_stream() -> String {
    let mut s = String::from("event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"model\":\"claude-3-5-sonnet-20241022\",\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":11,\"output_tokens\":1}}}\n\nevent: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\nevent: ping\ndata: {\"type\": \"ping\"}\n\n");
    for i in 0..TOKENS {
        s.push_str(&format!("event: content_block_delta\ndata: {{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{{\"type\":\"text_delta\",\"text\":\" token{i}\"}}}}\n\n"));
    }
    s.push_str("event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\nevent: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":2000}}\n\nevent: message_stop\ndata: {\"type\":\"message_stop\"}\n\n");
    s
}

fn openai_stream() -> String {
    let head = "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1727346168,\"model\":\"gpt-4o-2024-08-06\",\"system_fingerprint\":\"fp_5050236cbd\",\"choices\":";
    let mut s = format!("{head}[{{\"index\":0,\"delta\":{{\"role\":\"assistant\",\"content\":\"\",\"refusal\":null}},\"logprobs\":null,\"finish_reason\":null}}]}}\n\n");
    for i in 0..TOKENS {
        s.push_str(&format!("{head}[{{\"index\":0,\"delta\":{{\"content\":\" token{i}\"}},\"logprobs\":null,\"finish_reason\":null}}]}}\n\n"));
    }
    s.push_str(&format!(
        "{head}[{{\"index\":0,\"delta\":{{}},\"logprobs\":null,\"finish_reason\":\"stop\"}}]}}\n\n"
    ));
    s.push_str(&format!("{head}[],\"usage\":{{\"prompt_tokens\":14,\"completion_tokens\":2000,\"total_tokens\":2014}}}}\n\ndata: [DONE]\n\n"));
    s
}

fn gemini_stream() -> String {
    let mut s = String::new();
    for i in 0..TOKENS {
        s.push_str(&format!("data: {{\"candidates\": [{{\"content\": {{\"parts\": [{{\"text\": \" token{i}\"}}],\"role\": \"model\"}}}}],\"usageMetadata\": {{\"promptTokenCount\": 20,\"totalTokenCount\": 20}},\"modelVersion\": \"gemini-1.5-flash-002\"}}\r\n\r\n"));
    }
    s.push_str("data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"!\"}],\"role\": \"model\"},\"finishReason\": \"STOP\"}],\"usageMetadata\": {\"promptTokenCount\": 20,\"candidatesTokenCount\": 2001,\"totalTokenCount\": 2021},\"modelVersion\": \"gemini-1.5-flash-002\"}\r\n\r\n");
    s
}

fn ollama_stream() -> String {
    let mut s = String::new();
    for i in 0..TOKENS {
        s.push_str(&format!("{{\"model\":\"llama3.2\",\"created_at\":\"2023-08-04T08:52:19.385406455-07:00\",\"message\":{{\"role\":\"assistant\",\"content\":\" token{i}\"}},\"done\":false}}\n"));
    }
    s.push_str("{\"model\":\"llama3.2\",\"created_at\":\"2025-07-07T20:22:19.19314Z\",\"message\":{\"role\":\"assistant\",\"content\":\"\"},\"done_reason\":\"stop\",\"done\":true,\"total_duration\":182242375,\"load_duration\":41295167,\"prompt_eval_count\":169,\"prompt_eval_duration\":24573166,\"eval_count\":2000,\"eval_duration\":115959084}\n");
    s
}

fn parse_throughput(name: &str, adapter: &dyn Adapter, model: &str, body: &str) {
    let req = GenerateRequest::simple(model, "bench");
    let chunks: Vec<Bytes> = body
        .as_bytes()
        .chunks(CHUNK)
        .map(Bytes::copy_from_slice)
        .collect();
    let mut best = Duration::MAX;
    let mut events = 0;
    for _ in 0..PARSE_ROUNDS {
        let started = Instant::now();
        let stream = decode(
            adapter.id(),
            replay(chunks.clone()),
            adapter.framing(),
            adapter.stream_decoder(&req),
        );
        let out: Vec<StreamEvent> = futures::executor::block_on(stream.collect());
        best = best.min(started.elapsed());
        assert!(
            matches!(out.last(), Some(StreamEvent::Finish { .. })),
            "{name}: {:?}",
            out.last()
        );
        events = out.len();
    }
    let mb = body.len() as f64 / 1_000_000.0;
    println!(
        "{name:<10} {:>7.2} MB  {events:>5} events  {:>8.1} MB/s  {:>6.2} µs/event",
        mb,
        mb / best.as_secs_f64(),
        best.as_secs_f64() * 1e6 / events as f64
    );
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx].as_secs_f64() * 1e6
}

async fn request_overhead(url: &str) {
    let executor = Executor::new(Timeouts::default()).expect("client builds");
    let key = || Some(SecretString::from("sk-bench-key"));
    let targets = [
        (
            "claude",
            ProviderId::Claude,
            LlamaFlavour::Ollama,
            "claude-3-5-sonnet-20241022",
        ),
        ("openai", ProviderId::OpenAi, LlamaFlavour::Ollama, "gpt-4o"),
        (
            "gemini",
            ProviderId::Gemini,
            LlamaFlavour::Ollama,
            "gemini-1.5-flash-002",
        ),
        (
            "ollama",
            ProviderId::Llama,
            LlamaFlavour::Ollama,
            "llama3.2",
        ),
        (
            "llama-oai",
            ProviderId::Llama,
            LlamaFlavour::OpenAiCompatible,
            "llama3.2",
        ),
    ];
    println!(
        "\n{:<10} {:>13} {:>13} {:>13} {:>13}",
        "provider", "generate p50", "generate p99", "stream p50", "stream p99"
    );
    for (name, id, flavour, model) in targets {
        let provider = build_provider(&executor, id, url, key(), flavour);
        let req = GenerateRequest::simple(model, "Hello there, how are you today?");
        let mut generate = Vec::with_capacity(REQUESTS);
        let mut streamed = Vec::with_capacity(REQUESTS);
        for i in 0..WARMUP + REQUESTS {
            let started = Instant::now();
            provider.generate(&req).await.expect("generate");
            let g = started.elapsed();
            let started = Instant::now();
            let events: Vec<StreamEvent> =
                provider.stream(&req).await.expect("stream").collect().await;
            let s = started.elapsed();
            assert!(matches!(events.last(), Some(StreamEvent::Finish { .. })));
            if i >= WARMUP {
                generate.push(g);
                streamed.push(s);
            }
        }
        generate.sort();
        streamed.sort();
        println!(
            "{name:<10} {:>10.0} µs {:>10.0} µs {:>10.0} µs {:>10.0} µs",
            percentile(&generate, 0.5),
            percentile(&generate, 0.99),
            percentile(&streamed, 0.5),
            percentile(&streamed, 0.99)
        );
    }
}

fn main() {
    println!(
        "stream parsing ({TOKENS} tokens, {} KiB chunks, best of {PARSE_ROUNDS})",
        CHUNK / 1024
    );
    parse_throughput(
        "anthropic",
        &AnthropicAdapter::new("http://x", None),
        "claude-3-5-sonnet-20241022",
        &anthropic_stream(),
    );
    parse_throughput(
        "openai",
        &OpenAiAdapter::new(ProviderId::OpenAi, "http://x", None),
        "gpt-4o",
        &openai_stream(),
    );
    parse_throughput(
        "gemini",
        &GeminiAdapter::new("http://x", None),
        "gemini-1.5-flash-002",
        &gemini_stream(),
    );
    parse_throughput(
        "ollama",
        &OllamaAdapter::new("http://x", None),
        "llama3.2",
        &ollama_stream(),
    );

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let url = simulator::start_on_loopback(SimulatorOptions::default())
            .await
            .expect("the simulator starts")
            .url;
        println!("\nper-request latency against the in-process simulator (zero TTFT/zero pacing, {REQUESTS} sequential requests after {WARMUP} warm-up)");
        request_overhead(&url).await;
    });
}
