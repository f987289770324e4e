//! Simulated embedding APIs, each in its provider's request, answer and error shapes:
//!
//! | API | route | dialect |
//! |---|---|---|
//! | OpenAI (and Llama OpenAI-compatible) | `POST /v1/embeddings` | `openai` |
//! | Voyage AI | `POST /v1/embeddings` with a `voyage…` model | `voyage` |
//! | Gemini | `models/{m}:batchEmbedContents`, `models/{m}:embedContent` | `gemini` |
//! | Ollama | `POST /api/embed` | `ollama` |
//!
//! Every request goes through [`Sim::gate`] (keys, `x-sim-fault`, the fault schedule,
//! the request counter). The vectors are deterministic and carry meaning, so retrieval
//! can be tested end to end: each text's words (lowercase runs of letters and digits,
//! minus a few stopwords, crudely stemmed) are hashed with FNV-1a to a dimension and a
//! sign, summed, and the sum scaled to length 1. Texts that share words are close;
//! "How do I get a refund?" lands nearer "Refunds are issued within 14 days" than
//! "Shipping takes 3 days". The size is the one the request asks for, else the model's
//! catalog size, else 768. Usage counts tokens like the chat answers do; a text longer
//! than the model's catalog input limit gets the provider's context-length error.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use base64::Engine;
use serde_json::{json, Value};

use super::answer::count_text_tokens;
use super::{
    catalog, ending_of, gemini, header_key, json_response, ollama, openai, overloaded_retry_after,
    rate_limit_retry_after, whole_answer, Api, DialectName, Fault, Sim, BAD_REQUEST_MESSAGE,
};
use crate::server::llm::tokens::estimate_text_tokens;

/// The vector size when neither the request nor the catalog names one.
const DEFAULT_DIMENSIONS: usize = 768;
/// Most texts one OpenAI request may carry.
const OPENAI_MAX_INPUTS: usize = 2048;
/// Most texts one Voyage request may carry.
const VOYAGE_MAX_INPUTS: usize = 1000;
/// Most requests one Gemini batch may carry.
const GEMINI_MAX_REQUESTS: usize = 100;

/// Words too common to say what a text is about.
const STOPWORDS: &[&str] = &[
    "a", "about", "an", "and", "are", "as", "at", "be", "been", "but", "by", "can", "could", "do",
    "does", "did", "for", "from", "get", "got", "had", "has", "have", "how", "i", "if", "in",
    "into", "is", "it", "its", "me", "my", "no", "not", "of", "on", "or", "our", "so", "that",
    "the", "their", "them", "there", "these", "they", "this", "to", "was", "we", "were", "what",
    "when", "where", "which", "who", "why", "will", "with", "would", "you", "your",
];

/// The simulated embedding of `text` in `dimensions` dimensions, of length 1.
pub(crate) fn embed(text: &str, dimensions: usize) -> Vec<f32> {
    let dimensions = dimensions.max(1);
    let mut features = words(text);
    if features.is_empty() {
        // Only stopwords or punctuation: the whole text is its one feature.
        features.push(text.trim().to_lowercase());
    }
    let mut vector = vec![0f32; dimensions];
    for feature in &features {
        let (index, sign) = slot(feature, dimensions);
        vector[index] += sign;
    }
    let norm = vector.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm == 0.0 {
        // Features that cancel out: fall back to the whole text's slot.
        let (index, sign) = slot(text, dimensions);
        vector[index] = sign;
        return vector;
    }
    vector.iter_mut().for_each(|x| *x /= norm);
    vector
}

/// The dimension and sign a feature adds to: low bits pick the dimension, the top bit the sign.
fn slot(feature: &str, dimensions: usize) -> (usize, f32) {
    let hash = fnv1a(feature.as_bytes());
    let index = (hash % dimensions as u64) as usize;
    let sign = if hash >> 63 == 0 { 1.0 } else { -1.0 };
    (index, sign)
}

/// 64-bit FNV-1a: fixed across builds and platforms, unlike the std hasher.
fn fnv1a(bytes: &[u8]) -> u64 {
    const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    bytes.iter().fold(OFFSET_BASIS, |hash, b| {
        (hash ^ u64::from(*b)).wrapping_mul(PRIME)
    })
}

/// A text's features: lowercase words of letters and digits, stopwords dropped, stemmed.
fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .filter(|w| !STOPWORDS.contains(&w.as_str()))
        .map(stem)
        .collect()
}

/// Strips one of `ing`, `ed`, `es`, `s` (not `ss`) from words longer than four letters,
/// so "refunds" and "refund", "shipping" and "shipped" meet.
fn stem(word: String) -> String {
    if word.chars().count() <= 4 {
        return word;
    }
    for suffix in ["ing", "ed", "es", "s"] {
        if word.ends_with(suffix) && !(suffix == "s" && word.ends_with("ss")) {
            return word[..word.len() - suffix.len()].to_owned();
        }
    }
    word
}

/// What the simulator knows of an embedding model.
struct ModelFacts {
    /// Its vector size when the request asks none.
    dimensions: usize,
    /// Its longest text, when the catalog knows it.
    max_input_tokens: Option<u64>,
}

/// A catalog embedding model (by id, alias or Ollama tag), or any model whose name says
/// it embeds (768 dimensions); `None` for everything else (chat models, unknown names).
fn model_facts(model: &str) -> Option<ModelFacts> {
    let bare = model.strip_prefix("models/").unwrap_or(model);
    let bare = bare.strip_suffix(":latest").unwrap_or(bare);
    let known = catalog().and_then(|c| {
        c.embedding_model(bare).or_else(|| {
            c.embedding_models
                .iter()
                .find(|m| m.ollama_tag.as_deref() == Some(bare))
        })
    });
    match known.and_then(|m| m.embedding) {
        Some(spec) => Some(ModelFacts {
            dimensions: spec.dimensions as usize,
            max_input_tokens: Some(spec.max_input_tokens),
        }),
        None => (bare.contains("embed") || bare.starts_with("voyage")).then_some(ModelFacts {
            dimensions: DEFAULT_DIMENSIONS,
            max_input_tokens: None,
        }),
    }
}

/// One text to embed and the size asked for it.
struct Input {
    text: String,
    dimensions: Option<usize>,
}

/// An embeddings request as every API asks it.
struct Asked {
    model: String,
    inputs: Vec<Input>,
    /// OpenAI `encoding_format: base64`.
    base64: bool,
}

/// One embedding API's request and answer shapes (its errors are its [`Api`]'s).
trait Format: Sync {
    /// Reads the request; `Err` is the message of the provider's 400.
    fn read(&self, body: &Value) -> Result<Asked, String>;
    /// The provider's answer for a model it does not have.
    fn unknown_model(&self, model: &str) -> Response;
    /// The answer: one vector per input, and the tokens they cost.
    fn answer(&self, asked: &Asked, vectors: &[Vec<f32>], tokens: u64) -> Value;
}

/// The shared flow: read, gate, check, embed, answer (or break the answer as the fault says).
async fn serve(
    sim: &Sim,
    api: &dyn Api,
    format: &dyn Format,
    headers: HeaderMap,
    query: Option<&str>,
    body: &[u8],
) -> Response {
    let value: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(err) => return api.bad_request(&format!("invalid JSON body: {err}")),
    };
    let fault = match sim.gate(api, &headers, query, &value).await {
        Ok(fault) => fault,
        Err(response) => return response,
    };
    let asked = match format.read(&value) {
        Ok(asked) => asked,
        Err(message) => return api.bad_request(&message),
    };
    let Some(facts) = model_facts(&asked.model) else {
        return format.unknown_model(&asked.model);
    };
    let too_long = facts.max_input_tokens.is_some_and(|max| {
        asked
            .inputs
            .iter()
            .any(|input| estimate_text_tokens(&input.text) > max)
    });
    if too_long {
        return api.fault(Fault::ContextTooLong, None);
    }
    let vectors: Vec<Vec<f32>> = asked
        .inputs
        .iter()
        .map(|input| embed(&input.text, input.dimensions.unwrap_or(facts.dimensions)))
        .collect();
    let texts: Vec<&str> = asked.inputs.iter().map(|i| i.text.as_str()).collect();
    let tokens = count_text_tokens(&texts);
    let text = format.answer(&asked, &vectors, tokens).to_string();
    // The first-token delay stands for the time an embedding request takes.
    if !sim.opts.ttft.is_zero() {
        tokio::time::sleep(sim.opts.ttft).await;
    }
    whole_answer(sim, text, ending_of(fault)).await
}

/// A positive size at `value`, if one is given; `Err` names the field.
fn dimensions_at(value: &Value, field: &str) -> Result<Option<usize>, String> {
    match value {
        Value::Null => Ok(None),
        v => v
            .as_u64()
            .filter(|d| *d > 0)
            .map(|d| Some(d as usize))
            .ok_or_else(|| format!("'{field}' must be a positive integer")),
    }
}

/// `input` as OpenAI, Voyage and Ollama take it: one string or a list of strings, at most
/// `max` of them, none empty. `Err(None)` for an empty list or an empty string (the caller
/// words it), `Err(Some(_))` for anything else wrong.
fn text_inputs(input: &Value, max: usize) -> Result<Vec<String>, Option<String>> {
    let texts: Vec<String> = match input {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) => items
            .iter()
            .map(|i| i.as_str().map(str::to_owned))
            .collect::<Option<_>>()
            .ok_or_else(|| Some("the simulator embeds text inputs only".to_owned()))?,
        _ => {
            return Err(Some(
                "'input' must be a string or a list of strings".to_owned(),
            ))
        }
    };
    if texts.len() > max {
        return Err(Some(format!("'input' may hold at most {max} texts")));
    }
    if texts.is_empty() || texts.iter().any(String::is_empty) {
        return Err(None);
    }
    Ok(texts)
}

fn with_size(texts: Vec<String>, dimensions: Option<usize>) -> Vec<Input> {
    texts
        .into_iter()
        .map(|text| Input { text, dimensions })
        .collect()
}

/// OpenAI's `/v1/embeddings` shapes.
struct OpenAiFormat;

impl Format for OpenAiFormat {
    fn read(&self, body: &Value) -> Result<Asked, String> {
        let model = body["model"]
            .as_str()
            .ok_or("you must provide a model parameter")?;
        let texts = text_inputs(&body["input"], OPENAI_MAX_INPUTS).map_err(|why| {
            why.unwrap_or_else(|| {
                "'$.input' is invalid. Please check the API reference: https://platform.openai.com/docs/api-reference.".to_owned()
            })
        })?;
        let base64 = match body["encoding_format"].as_str() {
            None | Some("float") => false,
            Some("base64") => true,
            Some(other) => {
                return Err(format!(
                    "'{other}' is not one of ['float', 'base64'] - 'encoding_format'"
                ))
            }
        };
        Ok(Asked {
            model: model.to_owned(),
            inputs: with_size(texts, dimensions_at(&body["dimensions"], "dimensions")?),
            base64,
        })
    }

    fn unknown_model(&self, model: &str) -> Response {
        let message =
            format!("The model `{model}` does not exist or you do not have access to it.");
        openai::error(
            404,
            "invalid_request_error",
            Some("model_not_found"),
            &message,
            &[],
        )
    }

    fn answer(&self, asked: &Asked, vectors: &[Vec<f32>], tokens: u64) -> Value {
        let data: Vec<Value> = vectors
            .iter()
            .enumerate()
            .map(|(index, v)| {
                let embedding = if asked.base64 {
                    let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
                    json!(base64::engine::general_purpose::STANDARD.encode(bytes))
                } else {
                    json!(v)
                };
                json!({"object": "embedding", "index": index, "embedding": embedding})
            })
            .collect();
        json!({"object": "list", "data": data, "model": asked.model,
               "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})
    }
}

/// Voyage AI's `/v1/embeddings`: its keys, its `{"detail": ...}` errors, its shapes.
struct Voyage;

fn voyage_error(status: u16, detail: &str, headers: &[(&'static str, String)]) -> Response {
    json_response(
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        json!({"detail": detail}).to_string(),
        headers,
    )
}

impl Api for Voyage {
    fn name(&self) -> DialectName {
        DialectName::Voyage
    }

    fn authorize(
        &self,
        sim: &Sim,
        headers: &HeaderMap,
        _query: Option<&str>,
        _body: &Value,
    ) -> Result<(), Response> {
        match header_key(headers, "authorization") {
            None => Err(voyage_error(401, "No API key provided.", &[])),
            Some(key) if sim.key_ok(Some(key)) => Ok(()),
            Some(_) => Err(self.fault(Fault::Unauthorized, None)),
        }
    }

    fn fault(&self, fault: Fault, retry_after_secs: Option<u64>) -> Response {
        match fault {
            Fault::RateLimit => voyage_error(429, "You have exceeded your TPM rate limit. Please wait and try again, or see https://docs.voyageai.com/docs/rate-limits.", &[rate_limit_retry_after(retry_after_secs)]),
            Fault::Quota => voyage_error(429, "You have used up your free tokens. Please add a payment method in the dashboard to continue.", &[]),
            Fault::Overloaded => voyage_error(503, "The server is overloaded. Please try again later.", &overloaded_retry_after(retry_after_secs)),
            Fault::Unavailable => voyage_error(503, "Service Unavailable", &[]),
            Fault::Unauthorized => voyage_error(401, "Provided API key is invalid.", &[]),
            Fault::ContextTooLong => voyage_error(400, "Request to model 'voyage-3.5' failed. The example at index 0 in your batch has too many tokens and does not fit into the model's context length of 32000 tokens. Please lower the number of tokens in the listed example(s) or use truncation.", &[]),
            Fault::BadRequest => self.bad_request(BAD_REQUEST_MESSAGE),
            _ => voyage_error(500, "Internal Server Error", &[]),
        }
    }

    fn bad_request(&self, message: &str) -> Response {
        voyage_error(400, message, &[])
    }
}

impl Format for Voyage {
    fn read(&self, body: &Value) -> Result<Asked, String> {
        let model = body["model"].as_str().ok_or("Field 'model' is required.")?;
        let texts = text_inputs(&body["input"], VOYAGE_MAX_INPUTS).map_err(|why| {
            why.unwrap_or_else(|| "Input cannot contain empty strings or empty lists.".to_owned())
        })?;
        if !matches!(
            body["input_type"].as_str(),
            None | Some("query" | "document")
        ) {
            return Err("'input_type' must be null, 'query' or 'document'.".into());
        }
        Ok(Asked {
            model: model.to_owned(),
            inputs: with_size(
                texts,
                dimensions_at(&body["output_dimension"], "output_dimension")?,
            ),
            base64: false,
        })
    }

    fn unknown_model(&self, model: &str) -> Response {
        let detail = format!("Model {model} is not supported. Please see https://docs.voyageai.com/docs/embeddings for the supported models.");
        voyage_error(400, &detail, &[])
    }

    fn answer(&self, asked: &Asked, vectors: &[Vec<f32>], tokens: u64) -> Value {
        let data: Vec<Value> = vectors
            .iter()
            .enumerate()
            .map(|(index, v)| json!({"object": "embedding", "embedding": v, "index": index}))
            .collect();
        json!({"object": "list", "data": data, "model": asked.model,
               "usage": {"total_tokens": tokens}})
    }
}

/// Gemini's `embedContent` (one text) and `batchEmbedContents` shapes, for the model in the path.
struct GeminiFormat {
    model: String,
    batch: bool,
}

impl GeminiFormat {
    /// One `EmbedContentRequest`: its text and asked size.
    fn input(&self, request: &Value, at: &str) -> Result<Input, String> {
        if let Some(model) = request["model"].as_str() {
            if model.strip_prefix("models/").unwrap_or(model) != self.model {
                return Err(format!(
                    "* {at}.model: the model of each request must be the batch's model, models/{}",
                    self.model
                ));
            }
        }
        let text: String = request["content"]["parts"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| p["text"].as_str())
            .collect();
        if text.is_empty() {
            return Err(format!("* {at}.content: contents must not be empty"));
        }
        let dimensions = dimensions_at(
            gemini::field(request, "outputDimensionality", "output_dimensionality"),
            "outputDimensionality",
        )?;
        Ok(Input { text, dimensions })
    }
}

impl Format for GeminiFormat {
    fn read(&self, body: &Value) -> Result<Asked, String> {
        let inputs = if self.batch {
            let requests = body["requests"]
                .as_array()
                .filter(|r| !r.is_empty())
                .ok_or("* BatchEmbedContentsRequest.requests: requests must not be empty")?;
            if requests.len() > GEMINI_MAX_REQUESTS {
                return Err(format!("* BatchEmbedContentsRequest.requests: at most {GEMINI_MAX_REQUESTS} requests can be in one batch"));
            }
            requests
                .iter()
                .enumerate()
                .map(|(i, r)| self.input(r, &format!("BatchEmbedContentsRequest.requests[{i}]")))
                .collect::<Result<_, _>>()?
        } else {
            vec![self.input(body, "EmbedContentRequest")?]
        };
        Ok(Asked {
            model: self.model.clone(),
            inputs,
            base64: false,
        })
    }

    fn unknown_model(&self, model: &str) -> Response {
        let method = if self.batch {
            "batchEmbedContents"
        } else {
            "embedContent"
        };
        gemini::not_found(model, method)
    }

    fn answer(&self, _asked: &Asked, vectors: &[Vec<f32>], tokens: u64) -> Value {
        let usage = json!({"promptTokenCount": tokens});
        if self.batch {
            let embeddings: Vec<Value> = vectors.iter().map(|v| json!({"values": v})).collect();
            json!({"embeddings": embeddings, "usageMetadata": usage})
        } else {
            json!({"embedding": {"values": vectors.first()}, "usageMetadata": usage})
        }
    }
}

/// Ollama's `/api/embed` shapes.
struct OllamaFormat;

impl Format for OllamaFormat {
    fn read(&self, body: &Value) -> Result<Asked, String> {
        let model = body["model"].as_str().ok_or("model is required")?;
        let texts = text_inputs(&body["input"], usize::MAX)
            .map_err(|why| why.unwrap_or_else(|| "input must not be empty".to_owned()))?;
        Ok(Asked {
            model: model.to_owned(),
            inputs: with_size(texts, dimensions_at(&body["dimensions"], "dimensions")?),
            base64: false,
        })
    }

    fn unknown_model(&self, model: &str) -> Response {
        ollama::error(
            404,
            &format!("model \"{model}\" not found, try pulling it first"),
            &[],
        )
    }

    fn answer(&self, asked: &Asked, vectors: &[Vec<f32>], tokens: u64) -> Value {
        json!({"model": asked.model, "embeddings": vectors,
               "total_duration": 14_143_917u64, "load_duration": 1_019_500u64,
               "prompt_eval_count": tokens})
    }
}

/// `POST /v1/embeddings`: Voyage's API for a `voyage…` model, else OpenAI's.
pub(super) async fn v1_embeddings(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let voyage = serde_json::from_slice::<Value>(&body)
        .ok()
        .is_some_and(|v| v["model"].as_str().is_some_and(|m| m.starts_with("voyage")));
    if voyage {
        serve(&sim, &Voyage, &Voyage, headers, None, &body).await
    } else {
        serve(&sim, &openai::OpenAi, &OpenAiFormat, headers, None, &body).await
    }
}

/// `POST models/{model}:embedContent` and `:batchEmbedContents`.
pub(super) async fn gemini(
    sim: Arc<Sim>,
    model: &str,
    batch: bool,
    headers: HeaderMap,
    query: Option<String>,
    body: Bytes,
) -> Response {
    let api = gemini::Gemini::new(model);
    let format = GeminiFormat {
        model: api.model.clone(),
        batch,
    };
    serve(&sim, &api, &format, headers, query.as_deref(), &body).await
}

/// `POST /api/embed`.
pub(super) async fn ollama(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    serve(&sim, &ollama::Ollama, &OllamaFormat, headers, None, &body).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cosine(a: &[f32], b: &[f32]) -> f32 {
        a.iter().zip(b).map(|(x, y)| x * y).sum()
    }

    #[test]
    fn a_refund_question_is_closer_to_the_refund_policy_than_to_shipping() {
        let query = embed("How do I get a refund?", 768);
        let refunds = embed("Refunds are issued within 14 days of purchase.", 768);
        let shipping = embed("Shipping takes 3 to 5 business days.", 768);
        assert!(
            cosine(&query, &refunds) > cosine(&query, &shipping) + 0.2,
            "refunds {} shipping {}",
            cosine(&query, &refunds),
            cosine(&query, &shipping)
        );
    }

    #[test]
    fn vectors_are_deterministic_unit_length_and_of_the_asked_size() {
        let a = embed("The quick brown fox", 256);
        assert_eq!(a, embed("The quick brown fox", 256));
        assert_eq!(a.len(), 256);
        let norm: f32 = cosine(&a, &a);
        assert!((norm - 1.0).abs() < 1e-5, "{norm}");
        let only_stopwords = embed("how do I", 16);
        assert!((cosine(&only_stopwords, &only_stopwords) - 1.0).abs() < 1e-5);
    }

    #[test]
    fn words_are_lowercased_stopped_and_stemmed() {
        assert_eq!(
            words("Shipping, shipped & REFUNDS: the boxes! (class of 2024)"),
            ["shipp", "shipp", "refund", "box", "class", "2024"]
        );
    }

    #[test]
    fn fnv1a_is_the_published_function() {
        // Reference values of 64-bit FNV-1a.
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
    }

    #[test]
    fn catalog_models_give_their_size_and_embedding_looking_names_the_default() {
        let size = |m: &str| model_facts(m).map(|f| f.dimensions);
        assert_eq!(size("text-embedding-3-large"), Some(3072));
        assert_eq!(size("models/gemini-embedding-001"), Some(768));
        assert_eq!(size("nomic-embed-text:latest"), Some(768));
        assert_eq!(size("voyage-3.5"), Some(1024));
        assert_eq!(size("mxbai-embed-large"), Some(768));
        assert!(size("gpt-4o").is_none());
    }
}
