//! Context fitting: leaves out the oldest turns of a conversation that would not fit the
//! model's context window, so a long conversation still gets an answer.
//!
//! Counts are local estimates (the chars/4 rule of [`tokens`](crate::server::llm::tokens)):
//! they are cheap on the hot path, and the router keeps a margin below the window and
//! refits tighter when a provider still says the prompt is too long.

use crate::server::llm::tokens::count_request_tokens;
use crate::server::llm::{
    ErrorKind, GenerateRequest, LlmError, Message, ModelLimits, Parameters, ProviderId,
    ResponseFormat, Role, ToolChoice, ToolDefinition,
};

/// Fits a conversation into a model's context window: keeps every system message and the
/// newest turns, and drops the oldest non-system messages in whole turns (a user message
/// with the assistant/tool messages after it) until the estimated prompt plus `max_tokens`
/// fits within `budget_fraction` of the window. The last turn (the last user message and
/// what follows it) is never dropped; when even it does not fit, the error is
/// `ContextTooLong`. Returns the kept messages, in order, and how many were dropped.
pub fn fit_to_context(
    messages: &[Message],
    tools: &[ToolDefinition],
    limits: ModelLimits,
    max_tokens: u32,
    budget_fraction: f64,
    provider: ProviderId,
) -> Result<(Vec<Message>, u32), LlmError> {
    // Rounds down: a budget is a whole number of tokens.
    let budget = (f64::from(limits.context_window) * budget_fraction.clamp(0.0, 1.0)) as u64;
    let answer = u64::from(max_tokens);
    let whole = estimate_request(messages.to_vec(), tools.to_vec());
    let mut prompt = count_request_tokens(&whole).tokens;
    if prompt + answer <= budget {
        return Ok((whole.messages, 0));
    }
    let turns = turn_numbers(messages);
    let last_turn = turns.iter().flatten().copied().max().unwrap_or(0);
    let empty = count_request_tokens(&estimate_request(Vec::new(), Vec::new())).tokens;
    let mut first_kept = 0;
    while prompt + answer > budget {
        if first_kept >= last_turn {
            return Err(LlmError::new(
                provider,
                ErrorKind::ContextTooLong,
                format!(
                    "the newest message needs about {prompt} tokens plus {answer} for the answer, \
                     more than the {budget} available in the model's context window of {} tokens",
                    limits.context_window
                ),
            ));
        }
        let dropped: u64 = messages
            .iter()
            .zip(&turns)
            .filter(|(_, turn)| **turn == Some(first_kept))
            .map(|(message, _)| {
                count_request_tokens(&estimate_request(vec![message.clone()], Vec::new())).tokens
                    - empty
            })
            .sum();
        prompt -= dropped;
        first_kept += 1;
    }
    let kept: Vec<Message> = whole
        .messages
        .into_iter()
        .zip(&turns)
        .filter(|(_, turn)| turn.is_none_or(|t| t >= first_kept))
        .map(|(message, _)| message)
        .collect();
    let dropped = u32::try_from(messages.len() - kept.len()).unwrap_or(u32::MAX);
    Ok((kept, dropped))
}

/// A request counted with the estimate (no model, so no exact tokenizer).
fn estimate_request(messages: Vec<Message>, tools: Vec<ToolDefinition>) -> GenerateRequest {
    GenerateRequest {
        model: String::new(),
        messages,
        tools,
        tool_choice: ToolChoice::Auto,
        response_format: ResponseFormat::Text,
        parameters: Parameters::default(),
        limits: None,
    }
}

/// The turn of each message (`None` for system messages). A user message starts a new turn;
/// assistant and tool messages belong to the turn before them (those before any user
/// message form turn 0 on their own).
fn turn_numbers(messages: &[Message]) -> Vec<Option<usize>> {
    let mut turn = 0;
    let mut turn_has_messages = false;
    messages
        .iter()
        .map(|message| match message.role {
            Role::System => None,
            role => {
                if role == Role::User && turn_has_messages {
                    turn += 1;
                }
                turn_has_messages = true;
                Some(turn)
            }
        })
        .collect()
}
