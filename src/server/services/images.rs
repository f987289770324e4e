//! Image generation (FR-005, "GPT: DALL-E integration"; DALL-E itself was
//! retired from OpenAI's API in May 2026, its successors are the GPT Image
//! models): the chat's "Generate image" and the gateway's
//! `POST /v1/images/generations`, through one path.
//!
//! ```text
//! checked ask ─► project's OpenAI key ─► budget gate (prompt + the pictures' fixed
//! output tokens, held whole) ─► ImageClient with retries ─► every try a ledger row
//! (operation `images`) ─► settled (in a conversation: question + answer stored)
//! ```
//!
//! Only OpenAI draws; a conversation of another provider has no image
//! generation (`ImageGeneration::of_provider` is `None`), and the page says so.

use crate::error::AppError;
use crate::model::catalog::{ImageSpec, ModelInfo, ProviderId};
use crate::model::chat::{
    AnswerFacts, ImageAttachment, ImageExchange, MessageStatus, NewImage, MAX_MESSAGE_CHARS,
};
use crate::model::costs::UsageOperation;
use crate::model::llm_config::KeySource;
use crate::server::db::conversations::{AnswerUpdate, Exchange};
use crate::server::error::{Error, Result};
use crate::server::ledger::pricing::{token_usage, UsageContext};
use crate::server::ledger::Settlement;
use crate::server::llm::images::{GeneratedImage, ImageClient, ImageRequest};
use crate::server::llm::tokens::count_text_tokens;
use crate::server::llm::Usage;
use crate::server::services::budgets;
use crate::server::services::chat;
use crate::server::services::llm_settings::{self, base_url_for, Draft};
use crate::server::services::metering::{call_with_retries, Billed, CallTarget, MeteredSink};
use crate::server::state::AppState;
use std::time::{Duration, Instant};

/// The model id that names the project's own image model (the gateway's).
pub const PROJECT_IMAGE_MODEL: &str = "cover/default";

/// A picture request, checked against the model's catalog spec.
#[derive(Debug, Clone)]
pub struct ImageAsk {
    /// The image model.
    pub model: ModelInfo,
    /// What to draw.
    pub prompt: String,
    /// How many pictures.
    pub n: u32,
    /// `WIDTHxHEIGHT`.
    pub size: String,
    /// `low`, `medium` or `high`.
    pub quality: String,
}

/// The pictures drawn and what they cost.
#[derive(Debug, Clone)]
pub struct Drawn {
    /// The pictures, in order.
    pub images: Vec<GeneratedImage>,
    /// Prompt tokens in, the pictures' tokens out.
    pub usage: Usage,
    /// True when the usage is Cover's count.
    pub usage_estimated: bool,
    /// Every try's cost, nano-dollars (`None`: unpriced).
    pub cost_nanos: Option<i64>,
    /// Time spent waiting on OpenAI.
    pub upstream: Duration,
}

/// Checks a request for `model`; every problem names its field (422).
pub fn checked(
    model: &ModelInfo,
    prompt: &str,
    n: Option<u32>,
    size: Option<&str>,
    quality: Option<&str>,
) -> Result<ImageAsk> {
    let spec: &ImageSpec = model.image.as_ref().ok_or_else(|| {
        AppError::invalid("model", format!("{} does not draw pictures", model.id))
    })?;
    if prompt.trim().is_empty() {
        return Err(AppError::invalid("prompt", "say what to draw").into());
    }
    let chars = prompt.chars().count();
    let most = (spec.max_prompt_chars as usize).min(MAX_MESSAGE_CHARS);
    if chars > most {
        return Err(AppError::invalid(
            "prompt",
            format!("{chars} characters; {} takes at most {most}", model.name),
        )
        .into());
    }
    let n = n.unwrap_or(1);
    if !(1..=spec.max_images).contains(&n) {
        return Err(AppError::invalid(
            "n",
            format!(
                "{n} pictures; {} draws 1 to {} a request",
                model.name, spec.max_images
            ),
        )
        .into());
    }
    let size = size.filter(|s| *s != "auto").unwrap_or(&spec.default_size);
    if !spec.sizes().contains(&size) {
        return Err(AppError::invalid(
            "size",
            format!(
                "{size} is not a size {} draws; use one of {}",
                model.name,
                spec.sizes().join(", ")
            ),
        )
        .into());
    }
    let quality = quality
        .filter(|q| *q != "auto")
        .unwrap_or(&spec.default_quality);
    if spec.option(size, quality).is_none() {
        return Err(AppError::invalid(
            "quality",
            format!(
                "{quality} is not a quality {} draws; use one of {}",
                model.name,
                spec.qualities().join(", ")
            ),
        )
        .into());
    }
    Ok(ImageAsk {
        model: model.clone(),
        prompt: prompt.to_owned(),
        n,
        size: size.to_owned(),
        quality: quality.to_owned(),
    })
}

/// Draws `ask` for the project, billed to `context`: a place among the
/// answers in flight (the same bound as chat answers), the key, the budget
/// gate, the call with retries and every try in the ledger. `exchange` (a
/// conversation's question) is stored when the budget admits the call;
/// `store_answer` says which answer to store, and how, once the call ended.
async fn draw(
    state: &AppState,
    project_id: &str,
    draft: &Draft,
    ask: &ImageAsk,
    context: UsageContext,
    exchange: Option<Exchange>,
    store_answer: impl FnOnce(&std::result::Result<Drawn, AppError>) -> Option<(String, AnswerUpdate)>,
) -> Result<Drawn> {
    let _slot = state.answer_slots.take(project_id).await?;
    let provider = ask.model.provider;
    let key = llm_settings::project_key(state, project_id, draft, provider).await?;
    let Some((key, source)) = key else {
        return Err(AppError::invalid(
            "model",
            format!(
                "{} cannot draw: the project has no {} key, its own or Cover's",
                ask.model.name,
                provider.label()
            ),
        )
        .into());
    };
    let managed_key = source == KeySource::Managed;
    let option_tokens = ask
        .model
        .image
        .as_ref()
        .and_then(|spec| spec.option(&ask.size, &ask.quality))
        .map_or(0, |option| option.output_tokens);
    let output_tokens = option_tokens * u64::from(ask.n);
    let prompt_tokens = count_text_tokens(&ask.model.id, &ask.prompt);
    let mut admission = budgets::admit_whole_call(
        state,
        project_id,
        &ask.model,
        prompt_tokens,
        u32::try_from(output_tokens).unwrap_or(u32::MAX),
        managed_key,
        exchange,
    )
    .await?;
    let base_url = base_url_for(state, draft, provider);
    let client = ImageClient::new(
        &base_url,
        Some(key),
        state.executor_for(provider, &base_url).clone(),
    );
    let request = ImageRequest {
        model: ask.model.id.clone(),
        prompt: ask.prompt.clone(),
        n: ask.n,
        size: ask.size.clone(),
        quality: ask.quality.clone(),
    };
    let estimate = || Usage {
        input_tokens: prompt_tokens.tokens,
        output_tokens,
        ..Usage::default()
    };
    let target = CallTarget {
        provider,
        model: ask.model.id.clone(),
        managed_key,
    };
    let sink = MeteredSink::new(state, context);
    let outcome = call_with_retries(&sink, UsageOperation::Images, &target, || async {
        let response = client.generate(&request, estimate).await?;
        Ok(Billed {
            usage: response.usage.clone(),
            usage_estimated: response.usage_estimated,
            value: response,
        })
    })
    .await;
    let totals = sink.totals();
    let result = outcome
        .map(|response| Drawn {
            images: response.images,
            usage: response.usage,
            usage_estimated: response.usage_estimated,
            cost_nanos: totals.cost(),
            upstream: totals.upstream,
        })
        .map_err(|error| AppError::ProviderFailed {
            class: error.class().as_str().to_owned(),
            message: error.to_string(),
            message_id: String::new(),
        });
    let settlement = Settlement {
        answer: store_answer(&result),
        ..admission.settlement(&sink)
    };
    let month = state.ledger.settle(settlement).await?;
    budgets::after_settlement(state, &admission, month).await;
    result.map_err(Error::App)
}

/// Pictures a program asked for (`POST /v1/images/generations`): `model`
/// an image model id, or [`PROJECT_IMAGE_MODEL`] for the project's.
pub async fn draw_for_program(
    state: &AppState,
    project_id: &str,
    model: &str,
    prompt: &str,
    n: Option<u32>,
    size: Option<&str>,
    quality: Option<&str>,
) -> Result<(ImageAsk, Drawn)> {
    let (config, draft) = llm_settings::current(state, project_id).await?;
    let model = if model == PROJECT_IMAGE_MODEL {
        state
            .catalog
            .project_image_model(draft.provider)
            .ok_or_else(|| {
                AppError::invalid(
                    "model",
                    format!(
                        "{} projects have no image model; name one ({})",
                        draft.provider.label(),
                        image_model_ids(state)
                    ),
                )
            })?
    } else {
        state.catalog.image_model(model).ok_or_else(|| {
            AppError::invalid(
                "model",
                format!(
                    "{model} is not an image model Cover can route to; use one of {}",
                    image_model_ids(state)
                ),
            )
        })?
    };
    let ask = checked(model, prompt, n, size, quality)?;
    let context = UsageContext::new(project_id, Some(config.version));
    let drawn = draw(state, project_id, &draft, &ask, context, None, |_| None).await?;
    Ok((ask, drawn))
}

fn image_model_ids(state: &AppState) -> String {
    state
        .catalog
        .image_models
        .iter()
        .map(|m| m.id.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// "Generate image" in a conversation: the prompt is stored as the user's
/// message when the budget admits it, the picture (or the failure) as the
/// answer, with its facts and cost; the conversation's history then carries
/// a line saying what was drawn, so later questions can refer to it.
pub async fn draw_in_conversation(
    state: &AppState,
    project_id: &str,
    conversation_id: &str,
    asked: NewImage,
) -> Result<ImageExchange> {
    let started = Instant::now();
    let (pinned, _) = chat::with_room(state, project_id, conversation_id).await?;
    let provider = ProviderId::parse(&pinned.provider).unwrap_or(ProviderId::Claude);
    let model = state.catalog.project_image_model(provider).ok_or_else(|| {
        AppError::invalid(
            "prompt",
            format!(
                "image generation is not available with {}: it needs a GPT (OpenAI) project",
                provider.label()
            ),
        )
    })?;
    let ask = checked(
        model,
        &asked.prompt,
        None,
        asked.size.as_deref(),
        asked.quality.as_deref(),
    )?;
    let exchange = Exchange::asked(
        conversation_id,
        ask.prompt.clone(),
        None,
        chat::title_of(&ask.prompt),
    );
    let (question_id, answer_id) = (
        exchange.question.message_id.clone(),
        exchange.answer_id.clone(),
    );
    let context = UsageContext {
        conversation_id: Some(conversation_id.to_owned()),
        message_id: Some(answer_id.clone()),
        ..UsageContext::new(project_id, Some(pinned.config_version))
    };
    let caption = format!(
        "Drew {} with {} ({}, {} quality).",
        if ask.n == 1 {
            "a picture".to_owned()
        } else {
            format!("{} pictures", ask.n)
        },
        ask.model.name,
        ask.size,
        ask.quality
    );
    let store_answer = |result: &std::result::Result<Drawn, AppError>| {
        let update = match result {
            Ok(drawn) => {
                let attachments: Vec<ImageAttachment> = drawn
                    .images
                    .iter()
                    .map(|image| ImageAttachment {
                        media_type: "image/png".into(),
                        data: image.png_base64.clone(),
                    })
                    .collect();
                let facts = AnswerFacts {
                    provider: ask.model.provider,
                    model: ask.model.id.clone(),
                    model_name: ask.model.name.clone(),
                    usage: token_usage(&drawn.usage, drawn.usage_estimated),
                    cost_nanos: drawn.cost_nanos,
                    latency_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
                    ttft_ms: None,
                    trimmed_messages: 0,
                };
                AnswerUpdate {
                    status: MessageStatus::Complete,
                    content: caption.clone(),
                    facts: serde_json::to_string(&facts).ok(),
                    fallback: None,
                    interrupted: None,
                    error: None,
                    cost_nanos: drawn.cost_nanos.unwrap_or(0),
                    unpriced: drawn.cost_nanos.is_none(),
                    citations: None,
                    images: serde_json::to_string(&attachments).ok(),
                }
            }
            Err(error) => AnswerUpdate {
                status: MessageStatus::Error,
                content: String::new(),
                facts: None,
                fallback: None,
                interrupted: None,
                error: Some(error.to_string()),
                cost_nanos: 0,
                unpriced: false,
                citations: None,
                images: None,
            },
        };
        Some((answer_id.clone(), update))
    };
    let (_, draft) = llm_settings::current(state, project_id).await?;
    let drawn = draw(
        state,
        project_id,
        &draft,
        &ask,
        context,
        Some(exchange),
        store_answer,
    )
    .await;
    if let Err(Error::App(AppError::ProviderFailed { class, message, .. })) = drawn {
        return Err(AppError::ProviderFailed {
            class,
            message,
            message_id: answer_id,
        }
        .into());
    }
    drawn?;
    let messages = chat::messages(
        state,
        project_id,
        conversation_id,
        &[&question_id, &answer_id],
    )
    .await?;
    let [question, answer]: [_; 2] = messages
        .try_into()
        .map_err(|_| Error::internal("a drawn picture's messages went missing"))?;
    Ok(ImageExchange { question, answer })
}
