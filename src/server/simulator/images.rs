//! Simulated OpenAI Images API (`POST /v1/images/generations`) for the GPT Image models
//! of the catalog, in OpenAI's request, answer and error shapes (dialect `openai`).
//!
//! Each picture is a real PNG of the asked size: a diagonal gradient whose colours come
//! from a hash of the prompt and the picture's index, so the same prompt always draws the
//! same pictures. Usage follows OpenAI's billing: the prompt's text tokens as
//! `input_tokens`, each picture's catalog output tokens (fixed by size and quality) as
//! `output_tokens`. Like the real API, `response_format` is refused for GPT Image models,
//! and sizes, qualities, `n` and the prompt's length are checked against the catalog.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use base64::Engine;
use serde_json::{json, Value};

use super::answer::count_text_tokens;
use super::{catalog, ending_of, openai, whole_answer, Api, Sim};
use crate::model::catalog::ImageSpec;

/// What a generation request asks for, checked.
struct Asked<'a> {
    prompt: &'a str,
    n: u32,
    size: &'a str,
    quality: &'a str,
    output_tokens: u64,
}

fn invalid(message: &str, param: &str) -> Response {
    let body = json!({"error": {"message": message, "type": "invalid_request_error",
                                "param": param, "code": "invalid_value"}});
    super::json_response(StatusCode::BAD_REQUEST, body.to_string(), &[])
}

/// Reads and checks the request against the model's catalog spec.
#[allow(clippy::result_large_err)]
fn read<'a>(body: &'a Value, spec: &'a ImageSpec) -> Result<Asked<'a>, Response> {
    if body.get("response_format").is_some() {
        return Err(invalid(
            "Unknown parameter: 'response_format'.",
            "response_format",
        ));
    }
    let prompt = body["prompt"].as_str().unwrap_or_default();
    if prompt.trim().is_empty() {
        return Err(invalid("'prompt' is required", "prompt"));
    }
    if prompt.chars().count() > spec.max_prompt_chars as usize {
        return Err(invalid(
            &format!(
                "'prompt' is too long: at most {} characters",
                spec.max_prompt_chars
            ),
            "prompt",
        ));
    }
    let n = match &body["n"] {
        Value::Null => 1,
        value => value
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .filter(|n| (1..=spec.max_images).contains(n))
            .ok_or_else(|| {
                invalid(
                    &format!("'n' must be between 1 and {}", spec.max_images),
                    "n",
                )
            })?,
    };
    let size = body["size"].as_str().unwrap_or(&spec.default_size);
    let size = if size == "auto" {
        spec.default_size.as_str()
    } else {
        size
    };
    let quality = body["quality"].as_str().unwrap_or(&spec.default_quality);
    let quality = if quality == "auto" {
        spec.default_quality.as_str()
    } else {
        quality
    };
    let option = spec.option(size, quality).ok_or_else(|| {
        invalid(
            &format!(
                "Invalid size or quality '{size}' / '{quality}'. Supported sizes are {}; qualities {}.",
                spec.sizes().join(", "),
                spec.qualities().join(", ")
            ),
            "size",
        )
    })?;
    Ok(Asked {
        prompt,
        n,
        size,
        quality,
        output_tokens: option.output_tokens * u64::from(n),
    })
}

/// `POST /v1/images/generations`.
pub(super) async fn generations(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let api = openai::OpenAi;
    let value: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(err) => return api.bad_request(&format!("invalid JSON body: {err}")),
    };
    let fault = match sim.gate(&api, &headers, None, &value).await {
        Ok(fault) => fault,
        Err(response) => return response,
    };
    let model = value["model"].as_str().unwrap_or("dall-e-2");
    let Some(spec) = catalog()
        .and_then(|c| c.image_model(model))
        .and_then(|m| m.image.as_ref())
    else {
        let message =
            format!("The model `{model}` does not exist or you do not have access to it.");
        return openai::error(
            404,
            "invalid_request_error",
            Some("model_not_found"),
            &message,
            &[],
        );
    };
    let asked = match read(&value, spec) {
        Ok(asked) => asked,
        Err(response) => return response,
    };
    let data: Vec<Value> = (0..asked.n)
        .map(|index| {
            let png = draw(asked.size, asked.prompt, index);
            json!({"b64_json": base64::engine::general_purpose::STANDARD.encode(png)})
        })
        .collect();
    let input_tokens = count_text_tokens(&[asked.prompt]);
    let answer = json!({
        "created": super::super::gateway::unix_now(),
        "background": "opaque",
        "data": data,
        "output_format": "png",
        "quality": asked.quality,
        "size": asked.size,
        "usage": {
            "input_tokens": input_tokens,
            "input_tokens_details": {"text_tokens": input_tokens, "image_tokens": 0},
            "output_tokens": asked.output_tokens,
            "total_tokens": input_tokens + asked.output_tokens,
        },
    });
    // The first-token delay stands for the time a picture takes.
    if !sim.opts.ttft.is_zero() {
        tokio::time::sleep(sim.opts.ttft).await;
    }
    whole_answer(&sim, answer.to_string(), ending_of(fault)).await
}

/// A PNG of `size` (`WxH`, from the catalog): a gradient in the prompt's colours.
fn draw(size: &str, prompt: &str, index: u32) -> Vec<u8> {
    let (width, height) = size
        .split_once('x')
        .and_then(|(w, h)| Some((w.parse::<u32>().ok()?, h.parse::<u32>().ok()?)))
        .unwrap_or((1024, 1024));
    let seed = prompt
        .bytes()
        .chain(index.to_le_bytes())
        .fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
            (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
        });
    let [r, g, b, ..] = seed.to_le_bytes();
    let mut pixels = Vec::with_capacity((width * height * 3) as usize);
    for y in 0..height {
        for x in 0..width {
            // 0..=255 along the diagonal.
            let t = ((x + y) * 255 / (width + height).max(1)) as u8;
            pixels.extend_from_slice(&[r ^ t, g.wrapping_add(t / 2), b ^ (255 - t)]);
        }
    }
    let mut file = Vec::new();
    let mut encoder = png::Encoder::new(&mut file, width, height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    // Writing to memory cannot fail for a size that matches the pixels.
    if let Ok(mut writer) = encoder.write_header() {
        let _ = writer.write_image_data(&pixels);
    }
    file
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_picture_is_a_png_of_the_asked_size_and_the_same_prompt_draws_the_same() {
        let png = draw("1536x1024", "a lighthouse", 0);
        let decoder = png::Decoder::new(std::io::Cursor::new(&png));
        let reader = decoder.read_info().unwrap();
        assert_eq!((reader.info().width, reader.info().height), (1536, 1024));
        assert_eq!(png, draw("1536x1024", "a lighthouse", 0));
        assert_ne!(png, draw("1536x1024", "a lighthouse", 1));
        assert!(png.len() < 200_000, "{} bytes", png.len());
    }
}
