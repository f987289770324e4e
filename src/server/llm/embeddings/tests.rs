//! Embedding adapter tests: the exact request each API gets, answers parsed into input
//! order, malformed answers refused, error bodies read, and every service end to end
//! through [`build_embedder`] against the in-process simulator.

use reqwest::header::HeaderMap;
use secrecy::SecretString;
use serde_json::{json, Value};

use super::gemini::GeminiEmbeddings;
use super::ollama::OllamaEmbeddings;
use super::openai::OpenAiEmbeddings;
use super::voyage::VoyageEmbeddings;
use super::{
    build_embedder, EmbeddingAdapter, EmbeddingPurpose, EmbeddingRequest, EmbeddingResponse,
};
use crate::server::llm::error::{classify, ErrorKind, LlmError};
use crate::server::llm::testkit::{start_simulator, test_executor};
use crate::server::llm::{EmbeddingService, ProviderId};
use crate::server::simulator::SimulatorOptions;

const KEY: &str = "sk-embed-test-key-0123456789";
const REFUNDS: &str = "Refunds are issued within 14 days of purchase.";
const SHIPPING: &str = "Shipping takes 3 to 5 business days.";
const QUESTION: &str = "How do I get a refund?";

fn key() -> Option<SecretString> {
    Some(SecretString::from(KEY))
}

fn request(model: &str, inputs: &[&str], dimensions: Option<u32>) -> EmbeddingRequest {
    EmbeddingRequest {
        model: model.into(),
        inputs: inputs.iter().map(|s| (*s).to_owned()).collect(),
        purpose: EmbeddingPurpose::Document,
        dimensions,
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The error an adapter's extractor and the shared classifier make of `body` with `status`.
fn classified(adapter: &dyn EmbeddingAdapter, status: u16, body: Value) -> LlmError {
    let detail = (adapter.error_extractor())(&body).expect("the body is read");
    classify(
        adapter.provider(),
        Some(status),
        None,
        detail,
        &body.to_string(),
    )
}

fn parse(adapter: &dyn EmbeddingAdapter, req: &EmbeddingRequest, body: Value) -> EmbeddingResponse {
    adapter
        .parse_embeddings(req, body.to_string().as_bytes())
        .expect("the answer parses")
}

fn refused(adapter: &dyn EmbeddingAdapter, req: &EmbeddingRequest, body: &str) -> LlmError {
    adapter
        .parse_embeddings(req, body.as_bytes())
        .expect_err("the answer is refused")
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (norm(a) * norm(b))
}

#[test]
fn openai_gets_the_texts_as_floats_with_a_bearer_key_and_the_asked_size() {
    let adapter = OpenAiEmbeddings::new(ProviderId::OpenAi, "https://api.openai.com/v1/", key());
    let http = adapter
        .embed_request(&request(
            "text-embedding-3-small",
            &[REFUNDS, SHIPPING],
            Some(512),
        ))
        .unwrap();
    assert_eq!(http.url, "https://api.openai.com/v1/embeddings");
    assert_eq!(
        header(&http.headers, "authorization"),
        Some(format!("Bearer {KEY}").as_str())
    );
    assert!(http.headers["authorization"].is_sensitive());
    assert_eq!(
        http.body.unwrap(),
        json!({"model": "text-embedding-3-small", "input": [REFUNDS, SHIPPING],
               "encoding_format": "float", "dimensions": 512})
    );
    let without_size = adapter
        .embed_request(&request("text-embedding-3-small", &[REFUNDS], None))
        .unwrap();
    assert!(without_size.body.unwrap().get("dimensions").is_none());
}

#[test]
fn a_compatible_llama_server_gets_the_same_wire_without_a_size_it_may_refuse() {
    let adapter = OpenAiEmbeddings::new(ProviderId::Llama, "http://127.0.0.1:11434/v1", None);
    let http = adapter
        .embed_request(&request("nomic-embed-text", &[REFUNDS], Some(768)))
        .unwrap();
    assert_eq!(http.url, "http://127.0.0.1:11434/v1/embeddings");
    assert!(http.headers.is_empty());
    assert_eq!(
        http.body.unwrap(),
        json!({"model": "nomic-embed-text", "input": [REFUNDS], "encoding_format": "float"})
    );
}

#[test]
fn gemini_gets_one_request_per_text_with_its_task_type_and_size_and_the_key_in_a_header() {
    let adapter = GeminiEmbeddings::new("https://generativelanguage.googleapis.com/v1beta", key());
    let mut req = request(
        "models/gemini-embedding-001",
        &[REFUNDS, SHIPPING],
        Some(768),
    );
    let http = adapter.embed_request(&req).unwrap();
    assert_eq!(
        http.url,
        "https://generativelanguage.googleapis.com/v1beta/models/gemini-embedding-001:batchEmbedContents"
    );
    assert_eq!(header(&http.headers, "x-goog-api-key"), Some(KEY));
    assert!(!http.url.contains(KEY));
    let one = |text: &str, task: &str| {
        json!({"model": "models/gemini-embedding-001", "content": {"parts": [{"text": text}]},
               "taskType": task, "outputDimensionality": 768})
    };
    assert_eq!(
        http.body.unwrap(),
        json!({"requests": [one(REFUNDS, "RETRIEVAL_DOCUMENT"), one(SHIPPING, "RETRIEVAL_DOCUMENT")]})
    );
    req.purpose = EmbeddingPurpose::Query;
    req.inputs = vec![QUESTION.into()];
    let query = adapter.embed_request(&req).unwrap().body.unwrap();
    assert_eq!(query["requests"][0]["taskType"], "RETRIEVAL_QUERY");
}

#[test]
fn ollama_gets_the_tag_and_truncate_false_and_no_key_unless_one_is_given() {
    let adapter = OllamaEmbeddings::new("http://127.0.0.1:11434/api", None);
    let http = adapter
        .embed_request(&request("nomic-embed-text", &[REFUNDS], None))
        .unwrap();
    assert_eq!(http.url, "http://127.0.0.1:11434/api/embed");
    assert!(http.headers.is_empty());
    assert_eq!(
        http.body.unwrap(),
        json!({"model": "nomic-embed-text", "input": [REFUNDS], "truncate": false})
    );
}

#[test]
fn voyage_gets_the_input_type_of_the_purpose_the_output_size_and_truncation_off() {
    let adapter = VoyageEmbeddings::new("https://api.voyageai.com", key());
    let mut req = request("voyage-3.5", &[REFUNDS], Some(1024));
    let http = adapter.embed_request(&req).unwrap();
    assert_eq!(http.url, "https://api.voyageai.com/v1/embeddings");
    assert_eq!(
        header(&http.headers, "authorization"),
        Some(format!("Bearer {KEY}").as_str())
    );
    assert_eq!(
        http.body.unwrap(),
        json!({"model": "voyage-3.5", "input": [REFUNDS], "input_type": "document",
               "output_dimension": 1024, "truncation": false})
    );
    req.purpose = EmbeddingPurpose::Query;
    assert_eq!(
        adapter.embed_request(&req).unwrap().body.unwrap()["input_type"],
        "query"
    );
}

#[test]
fn openai_vectors_come_back_in_input_order_whatever_order_the_api_lists_them_in() {
    let adapter = OpenAiEmbeddings::new(ProviderId::OpenAi, "https://api.openai.com", None);
    let req = request("text-embedding-3-small", &["a", "b", "c"], Some(2));
    let resp = parse(
        &adapter,
        &req,
        json!({"object": "list", "model": "text-embedding-3-small",
               "data": [{"object": "embedding", "index": 2, "embedding": [0.0, 3.0]},
                        {"object": "embedding", "index": 0, "embedding": [0.0, 1.0]},
                        {"object": "embedding", "index": 1, "embedding": [0.0, 2.0]}],
               "usage": {"prompt_tokens": 3, "total_tokens": 3}}),
    );
    assert_eq!(resp.vectors, [[0.0, 1.0], [0.0, 2.0], [0.0, 3.0]]);
    assert_eq!(resp.usage.input_tokens, 3);
    assert_eq!(
        resp.usage.raw,
        json!({"prompt_tokens": 3, "total_tokens": 3})
    );
    assert!(!resp.usage_estimated);
}

#[test]
fn a_compatible_server_without_usage_gets_cover_s_count_marked_as_an_estimate() {
    let adapter = OpenAiEmbeddings::new(ProviderId::Llama, "http://127.0.0.1:11434/v1", None);
    let req = request("nomic-embed-text", &["abcdefgh"], None);
    let resp = parse(
        &adapter,
        &req,
        json!({"data": [{"index": 0, "embedding": [1.0, 0.0]}]}),
    );
    assert_eq!((resp.usage.input_tokens, resp.usage_estimated), (2, true));
    assert_eq!(resp.usage.raw, Value::Null);
}

#[test]
fn voyage_answers_are_read_like_openai_s_with_total_tokens_as_usage() {
    let adapter = VoyageEmbeddings::new("https://api.voyageai.com", None);
    let req = request("voyage-3.5", &["a", "b"], None);
    let resp = parse(
        &adapter,
        &req,
        json!({"object": "list", "model": "voyage-3.5",
               "data": [{"object": "embedding", "embedding": [0.5, 0.5], "index": 1},
                        {"object": "embedding", "embedding": [1.0, 0.0], "index": 0}],
               "usage": {"total_tokens": 10}}),
    );
    assert_eq!(resp.vectors, [[1.0, 0.0], [0.5, 0.5]]);
    assert_eq!((resp.usage.input_tokens, resp.usage_estimated), (10, false));
}

#[test]
fn gemini_vectors_are_scaled_to_length_one_and_its_usage_metadata_is_used_when_present() {
    let adapter = GeminiEmbeddings::new("https://generativelanguage.googleapis.com", None);
    let req = request("gemini-embedding-001", &["abcd", "efgh"], Some(2));
    let resp = parse(
        &adapter,
        &req,
        json!({"embeddings": [{"values": [3.0, 4.0]}, {"values": [0.0, 2.0]}],
               "usageMetadata": {"promptTokenCount": 5}}),
    );
    assert_eq!(resp.vectors, [[0.6, 0.8], [0.0, 1.0]]);
    assert_eq!((resp.usage.input_tokens, resp.usage_estimated), (5, false));
    let without = parse(
        &adapter,
        &req,
        json!({"embeddings": [{"values": [1.0, 0.0]}, {"values": [0.0, 1.0]}]}),
    );
    // "abcd" and "efgh": one estimated token each.
    assert_eq!(
        (without.usage.input_tokens, without.usage_estimated),
        (2, true)
    );
}

#[test]
fn ollama_usage_is_its_prompt_eval_count() {
    let adapter = OllamaEmbeddings::new("http://127.0.0.1:11434", None);
    let req = request("nomic-embed-text", &["a"], None);
    let resp = parse(
        &adapter,
        &req,
        json!({"model": "nomic-embed-text", "embeddings": [[0.1, 0.2]], "prompt_eval_count": 7}),
    );
    assert_eq!(resp.vectors, [[0.1, 0.2]]);
    assert_eq!((resp.usage.input_tokens, resp.usage_estimated), (7, false));
    assert_eq!(resp.usage.raw, json!({"prompt_eval_count": 7}));
}

#[test]
fn answers_with_missing_extra_repeated_or_wrongly_sized_vectors_are_malformed() {
    let openai = OpenAiEmbeddings::new(ProviderId::OpenAi, "https://api.openai.com", None);
    let two = request("text-embedding-3-small", &["a", "b"], Some(2));
    let cases = [
        r#"{"data": [{"index": 0, "embedding": [1, 0]}]}"#,
        r#"{"data": [{"index": 0, "embedding": [1, 0]}, {"index": 1, "embedding": [1, 0]}, {"index": 2, "embedding": [1, 0]}]}"#,
        r#"{"data": [{"index": 0, "embedding": [1, 0]}, {"index": 0, "embedding": [0, 1]}]}"#,
        r#"{"data": [{"index": 0, "embedding": [1, 0]}, {"index": 1, "embedding": [1, 0, 0]}]}"#,
        r#"{"data": [{"index": 0, "embedding": [1, 0]}, {"index": 1, "embedding": "AAAA"}]}"#,
        r#"{"data": [{"index": 0, "embedding": [1, 0]}, {"embedding": [0, 1]}]}"#,
        r#"{"object": "list""#,
    ];
    for body in cases {
        let err = refused(&openai, &two, body);
        assert_eq!(err.kind, ErrorKind::Transient, "{body}");
        assert!(err.message.starts_with("malformed"), "{body}: {err}");
        assert_eq!(err.raw_body.as_deref(), Some(body));
    }
    let any_size = request("nomic-embed-text", &["a", "b"], None);
    let ollama = OllamaEmbeddings::new("http://127.0.0.1:11434", None);
    let mixed = r#"{"embeddings": [[1, 0], [1, 0, 0]], "prompt_eval_count": 2}"#;
    assert!(refused(&ollama, &any_size, mixed)
        .message
        .contains("dimensions"));
    let gemini = GeminiEmbeddings::new("https://generativelanguage.googleapis.com", None);
    let one_short = r#"{"embeddings": [{"values": [1, 0]}]}"#;
    assert!(refused(&gemini, &any_size, one_short)
        .message
        .contains("1 vectors for 2 inputs"));
}

#[test]
fn voyage_s_detail_errors_are_read_as_text_or_as_a_validation_list() {
    let adapter = VoyageEmbeddings::new("https://api.voyageai.com", None);
    let auth = classified(
        &adapter,
        401,
        json!({"detail": "Provided API key is invalid."}),
    );
    assert_eq!(
        (auth.kind, auth.provider, auth.message.as_str()),
        (
            ErrorKind::Auth,
            ProviderId::Claude,
            "Provided API key is invalid."
        )
    );
    let too_long = classified(
        &adapter,
        400,
        json!({"detail": "The example at index 0 in your batch has too many tokens and does not fit into the model's context length of 32000 tokens."}),
    );
    assert_eq!(too_long.kind, ErrorKind::ContextTooLong);
    let invalid = classified(
        &adapter,
        422,
        json!({"detail": [{"loc": ["body", "input"], "msg": "field required", "type": "value_error.missing"}]}),
    );
    assert_eq!(
        (invalid.kind, invalid.message.as_str()),
        (ErrorKind::InvalidRequest, "field required")
    );
    assert!((adapter.error_extractor())(&json!({"error": "other"})).is_none());
}

#[test]
fn the_other_adapters_read_errors_with_their_chat_adapters_extractors() {
    let openai = OpenAiEmbeddings::new(ProviderId::OpenAi, "https://api.openai.com", None);
    let quota = classified(
        &openai,
        429,
        json!({"error": {"message": "You exceeded your current quota", "type": "insufficient_quota", "code": "insufficient_quota"}}),
    );
    assert_eq!(quota.kind, ErrorKind::QuotaExhausted);
    let gemini = GeminiEmbeddings::new("https://generativelanguage.googleapis.com", None);
    let key = classified(
        &gemini,
        400,
        json!({"error": {"code": 400, "message": "API key not valid.", "status": "INVALID_ARGUMENT",
                         "details": [{"reason": "API_KEY_INVALID"}]}}),
    );
    assert_eq!(key.kind, ErrorKind::Auth);
    let ollama = OllamaEmbeddings::new("http://127.0.0.1:11434", None);
    let missing = classified(&ollama, 404, json!({"error": "model \"x\" not found"}));
    assert_eq!(
        (missing.kind, missing.provider),
        (ErrorKind::InvalidRequest, ProviderId::Llama)
    );
}

/// The five ways Cover embeds: service, provider, model, asked size, vector size.
fn services() -> Vec<(
    EmbeddingService,
    ProviderId,
    &'static str,
    Option<u32>,
    usize,
)> {
    vec![
        (
            EmbeddingService::OpenAi,
            ProviderId::OpenAi,
            "text-embedding-3-small",
            None,
            1536,
        ),
        (
            EmbeddingService::Gemini,
            ProviderId::Gemini,
            "gemini-embedding-001",
            Some(768),
            768,
        ),
        (
            EmbeddingService::Ollama,
            ProviderId::Llama,
            "nomic-embed-text",
            None,
            768,
        ),
        (
            EmbeddingService::Voyage,
            ProviderId::Claude,
            "voyage-3.5",
            Some(256),
            256,
        ),
        (
            EmbeddingService::OpenAi,
            ProviderId::Llama,
            "nomic-embed-text",
            Some(768),
            768,
        ),
    ]
}

#[tokio::test]
async fn every_service_embeds_through_the_simulator_so_a_question_finds_its_answer() {
    let sim = start_simulator(SimulatorOptions::default()).await;
    let executor = test_executor();
    for (service, provider, model, dimensions, size) in services() {
        let embedder = build_embedder(&executor, service, provider, &sim.url, key());
        assert_eq!(embedder.provider(), provider);
        let docs = embedder
            .embed(&request(model, &[REFUNDS, SHIPPING], dimensions))
            .await
            .unwrap_or_else(|e| panic!("{service:?} {provider}: {e}"));
        assert_eq!(docs.vectors.len(), 2, "{service:?} {provider}");
        assert!(
            docs.vectors.iter().all(|v| v.len() == size),
            "{service:?} {provider}"
        );
        // 46 and 36 characters: 12 + 9 tokens as the simulator counts them.
        assert_eq!(
            (docs.usage.input_tokens, docs.usage_estimated),
            (21, false),
            "{service:?} {provider}"
        );
        let mut question = request(model, &[QUESTION], dimensions);
        question.purpose = EmbeddingPurpose::Query;
        let query = embedder.embed(&question).await.expect("the query embeds");
        let q = &query.vectors[0];
        assert!(
            cosine(q, &docs.vectors[0]) > cosine(q, &docs.vectors[1]),
            "{service:?} {provider}: the refund policy ranks first"
        );
    }
}

#[tokio::test]
async fn the_simulator_s_refusals_come_back_classified_for_every_service() {
    let sim = start_simulator(SimulatorOptions {
        accept_key: Some(KEY.into()),
        ..SimulatorOptions::default()
    })
    .await;
    let executor = test_executor();
    for (service, provider, model, dimensions, _) in services() {
        let embed = |key: Option<&str>, inputs: &[&str], model: &str| {
            let embedder = build_embedder(
                &executor,
                service,
                provider,
                &sim.url,
                key.map(SecretString::from),
            );
            let req = request(model, inputs, dimensions);
            async move { embedder.embed(&req).await.expect_err("refused") }
        };
        let label = format!("{service:?} {provider}");
        let keyless = service == EmbeddingService::Ollama || provider == ProviderId::Llama;
        if !keyless {
            let wrong = embed(Some("sk-wrong-key-000000"), &[REFUNDS], model).await;
            assert_eq!(
                (wrong.kind, wrong.provider),
                (ErrorKind::Auth, provider),
                "{label}"
            );
        }
        let empty = embed(Some(KEY), &[""], model).await;
        assert_eq!(
            (&empty.kind, empty.status),
            (&ErrorKind::InvalidRequest, Some(400)),
            "{label}: {empty}"
        );
        let chat_model = embed(Some(KEY), &[REFUNDS], "gpt-4o").await;
        assert_eq!(
            chat_model.kind,
            ErrorKind::InvalidRequest,
            "{label}: {chat_model}"
        );
        let long = "word ".repeat(200_000);
        let too_long = embed(Some(KEY), &[long.as_str()], model).await;
        assert_eq!(
            too_long.kind,
            ErrorKind::ContextTooLong,
            "{label}: {too_long}"
        );
    }
}

#[tokio::test]
async fn a_scheduled_voyage_rate_limit_fails_only_voyage_with_its_advised_wait() {
    let sim = start_simulator(SimulatorOptions::default()).await;
    let schedule = sim
        .schedule_fault(json!({"dialect": "voyage", "fault": "rate_limit", "retryAfterSecs": 3}));
    tokio::time::timeout(std::time::Duration::from_secs(10), schedule)
        .await
        .expect("the simulator schedules the fault in time");
    let executor = test_executor();
    let openai = build_embedder(
        &executor,
        EmbeddingService::OpenAi,
        ProviderId::OpenAi,
        &sim.url,
        key(),
    );
    openai
        .embed(&request("text-embedding-3-small", &[REFUNDS], None))
        .await
        .expect("OpenAI's embeddings are not Voyage's");
    let voyage = build_embedder(
        &executor,
        EmbeddingService::Voyage,
        ProviderId::Claude,
        &sim.url,
        key(),
    );
    let err = voyage
        .embed(&request("voyage-3.5", &[REFUNDS], None))
        .await
        .expect_err("rate limited");
    assert_eq!(
        err.kind,
        ErrorKind::RateLimited {
            retry_after: Some(std::time::Duration::from_secs(3))
        }
    );
    assert_eq!(sim.requests(), 2);
    voyage
        .embed(&request("voyage-3.5", &[REFUNDS], None))
        .await
        .expect("the fault was used once");
}
