//! Image generation (FR-005, the GPT image feature): OpenAI's Images API
//! (`POST /v1/images/generations`) for the GPT Image models, translation only,
//! sent by the shared [`Executor`] like every other provider call.
//!
//! API: <https://platform.openai.com/docs/api-reference/images/create>, guide (sizes,
//! qualities, output tokens): <https://developers.openai.com/api/docs/guides/image-generation>.
//! GPT Image models always answer base64 (`b64_json`) and take no `response_format`;
//! Cover asks for PNG and checks each picture is one before anything stores it.

use base64::Engine as _;
use secrecy::SecretString;
use serde_json::json;

use super::executor::{DetailExtractor, Executor, HttpRequest};
use super::openai::OpenAiAdapter;
use super::wire::{parse_json, trim_base};
use super::{Adapter, LlmError, ProviderId, Usage};

/// The first bytes of every PNG file.
const PNG_SIGNATURE: [u8; 8] = [0x89, b'P', b'N', b'G', b'\r', b'\n', 0x1a, b'\n'];

/// What to draw, with one model, at one size and quality.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRequest {
    /// The API id (`gpt-image-2`).
    pub model: String,
    /// What the picture shows.
    pub prompt: String,
    /// How many pictures.
    pub n: u32,
    /// `WIDTHxHEIGHT`.
    pub size: String,
    /// `low`, `medium` or `high`.
    pub quality: String,
}

/// One picture, as PNG bytes in base64.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratedImage {
    /// Base64 of a PNG file.
    pub png_base64: String,
    /// The prompt the model actually drew from, when it rewrote it.
    pub revised_prompt: Option<String>,
}

/// The pictures of one request and what they billed.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageResponse {
    /// One per picture asked for, in order.
    pub images: Vec<GeneratedImage>,
    /// Prompt tokens as `input_tokens`, the pictures' as `output_tokens`.
    pub usage: Usage,
    /// True when the API reported no usage and Cover counted it.
    pub usage_estimated: bool,
}

/// OpenAI's Images API at one base URL with one key.
pub struct ImageClient {
    base_url: String,
    api_key: Option<SecretString>,
    errors: DetailExtractor,
    executor: Executor,
}

impl ImageClient {
    /// The Images API at `base_url` (OpenAI's, or the simulator's).
    pub fn new(base_url: &str, api_key: Option<SecretString>, executor: Executor) -> Self {
        // Image errors come in the chat API's shape: the chat adapter reads them.
        let errors = OpenAiAdapter::new(ProviderId::OpenAi, base_url, None).error_extractor();
        Self {
            base_url: trim_base(base_url, "/v1"),
            api_key,
            errors,
            executor,
        }
    }

    /// The HTTP request for `req`.
    pub fn request(&self, req: &ImageRequest) -> HttpRequest {
        let body = json!({
            "model": req.model,
            "prompt": req.prompt,
            "n": req.n,
            "size": req.size,
            "quality": req.quality,
            "output_format": "png",
        });
        HttpRequest::post(format!("{}/v1/images/generations", self.base_url), body).secret_header(
            "authorization",
            "Bearer ",
            self.api_key.as_ref(),
        )
    }

    /// Draws the pictures with one API call (the caller retries).
    pub async fn generate(
        &self,
        req: &ImageRequest,
        estimate: impl FnOnce() -> Usage,
    ) -> Result<ImageResponse, LlmError> {
        let body = self
            .executor
            .send(ProviderId::OpenAi, self.request(req), self.errors)
            .await?;
        parse_images(req, &body, estimate)
    }
}

/// Reads an Images API answer: exactly `n` pictures, each a PNG; its usage,
/// or, when it reported none, `estimate()` (flagged as estimated).
pub fn parse_images(
    req: &ImageRequest,
    body: &[u8],
    estimate: impl FnOnce() -> Usage,
) -> Result<ImageResponse, LlmError> {
    // NOTE: only the start of the body is kept with the error: pictures are megabytes.
    let start = &body[..body.len().min(512)];
    let malformed = |why: &str| {
        LlmError::malformed(
            ProviderId::OpenAi,
            "images",
            why,
            &String::from_utf8_lossy(start),
        )
    };
    let v = parse_json(ProviderId::OpenAi, "images", body)?;
    let items = v["data"].as_array().ok_or_else(|| malformed("no data"))?;
    if items.len() != req.n as usize {
        return Err(malformed(&format!(
            "{} pictures where {} were asked for",
            items.len(),
            req.n
        )));
    }
    let images = items
        .iter()
        .map(|item| {
            let encoded = item["b64_json"]
                .as_str()
                .ok_or_else(|| malformed("a picture without b64_json"))?;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .map_err(|_| malformed("a picture that is not base64"))?;
            if !bytes.starts_with(&PNG_SIGNATURE) {
                return Err(malformed("a picture that is not a PNG"));
            }
            Ok(GeneratedImage {
                png_base64: encoded.to_owned(),
                revised_prompt: item["revised_prompt"].as_str().map(str::to_owned),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let reported = &v["usage"];
    let (usage, usage_estimated) = match (
        reported["input_tokens"].as_u64(),
        reported["output_tokens"].as_u64(),
    ) {
        (Some(input_tokens), Some(output_tokens)) => (
            Usage {
                input_tokens,
                output_tokens,
                raw: reported.clone(),
                ..Usage::default()
            },
            false,
        ),
        _ => (estimate(), true),
    };
    Ok(ImageResponse {
        images,
        usage,
        usage_estimated,
    })
}

/// True when `bytes` are a PNG file (by its signature).
pub fn is_png(bytes: &[u8]) -> bool {
    bytes.starts_with(&PNG_SIGNATURE)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn asked(n: u32) -> ImageRequest {
        ImageRequest {
            model: "gpt-image-1".into(),
            prompt: "a lighthouse at dusk".into(),
            n,
            size: "1024x1024".into(),
            quality: "low".into(),
        }
    }

    fn png_b64() -> String {
        let mut bytes = PNG_SIGNATURE.to_vec();
        bytes.extend_from_slice(b"rest");
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }

    fn estimate() -> Usage {
        Usage {
            input_tokens: 7,
            output_tokens: 272,
            ..Usage::default()
        }
    }

    #[test]
    fn the_request_asks_for_png_and_never_sends_response_format() {
        let client = ImageClient::new(
            "https://api.openai.com/v1",
            None,
            Executor::new(Default::default()).unwrap(),
        );
        let http = client.request(&asked(2));
        assert_eq!(http.url, "https://api.openai.com/v1/images/generations");
        let body = http.body.unwrap();
        assert_eq!(body["output_format"], "png");
        assert_eq!(body["n"], 2);
        assert_eq!(body["quality"], "low");
        assert!(body.get("response_format").is_none());
    }

    #[test]
    fn reported_usage_is_taken_and_missing_usage_is_estimated() {
        let body = json!({"created": 1, "data": [{"b64_json": png_b64()}],
            "usage": {"input_tokens": 9, "output_tokens": 272, "total_tokens": 281,
                      "input_tokens_details": {"text_tokens": 9, "image_tokens": 0}}});
        let parsed = parse_images(&asked(1), body.to_string().as_bytes(), estimate).unwrap();
        assert_eq!(
            (parsed.usage.input_tokens, parsed.usage.output_tokens),
            (9, 272)
        );
        assert!(!parsed.usage_estimated);
        let body = json!({"created": 1, "data": [{"b64_json": png_b64()}]});
        let parsed = parse_images(&asked(1), body.to_string().as_bytes(), estimate).unwrap();
        assert_eq!(
            (parsed.usage.input_tokens, parsed.usage.output_tokens),
            (7, 272)
        );
        assert!(parsed.usage_estimated);
    }

    #[test]
    fn a_wrong_count_or_a_picture_that_is_not_a_png_is_malformed() {
        let one = json!({"data": [{"b64_json": png_b64()}]}).to_string();
        let err = parse_images(&asked(2), one.as_bytes(), estimate).unwrap_err();
        assert!(err.message.contains("1 pictures where 2"), "{err}");
        let jpeg = base64::engine::general_purpose::STANDARD.encode([0xff, 0xd8, 0xff, 0xe0]);
        let body = json!({"data": [{"b64_json": jpeg}]}).to_string();
        let err = parse_images(&asked(1), body.as_bytes(), estimate).unwrap_err();
        assert!(err.message.contains("not a PNG"), "{err}");
    }
}
