//! Local token counting: exact for OpenAI models with the embedded tiktoken vocabularies
//! (o200k for the gpt-4o/o1 family, cl100k for gpt-4 and gpt-3.5), an estimate elsewhere.

use tiktoken_rs::CoreBPE;

use super::types::{ContentPart, GenerateRequest, TokenCount};

/// Tokens OpenAI adds around every chat message (`<|start|>role…<|end|>`).
const OPENAI_TOKENS_PER_MESSAGE: u64 = 3;
/// Tokens OpenAI adds to prime the assistant's reply.
const OPENAI_REPLY_PRIMING: u64 = 3;

fn openai_encoding(model: &str) -> Option<&'static CoreBPE> {
    let m = model.to_ascii_lowercase();
    if m.starts_with("gpt-4o")
        || m.starts_with("o1")
        || m.starts_with("o3")
        || m.starts_with("gpt-4.1")
        || m.starts_with("chatgpt-4o")
    {
        Some(tiktoken_rs::o200k_base_singleton())
    } else if m.starts_with("gpt-4")
        || m.starts_with("gpt-3.5")
        || m.starts_with("text-embedding-3")
        || m.starts_with("text-embedding-ada")
    {
        Some(tiktoken_rs::cl100k_base_singleton())
    } else {
        None
    }
}

/// Estimates tokens of a text at about four characters per token (rounded up).
pub fn estimate_text_tokens(text: &str) -> u64 {
    (text.chars().count() as u64).div_ceil(4)
}

/// Counts a text's tokens for `model`: exact (`true`) with the model's own
/// vocabulary for OpenAI's chat and embedding models, else the estimate.
/// Document chunks, embedding budgets and usage the provider does not report
/// are all counted with it.
pub fn count_text_tokens(model: &str, text: &str) -> TokenCount {
    match openai_encoding(model) {
        Some(bpe) => TokenCount {
            tokens: bpe.encode_with_special_tokens(text).len() as u64,
            exact: true,
        },
        None => TokenCount {
            tokens: estimate_text_tokens(text),
            exact: false,
        },
    }
}

/// Counts a request's prompt tokens: exact for known OpenAI models, otherwise an estimate.
///
/// Images are counted as a flat 85 tokens (OpenAI's low-detail figure) and make the
/// count an estimate; tool definitions are counted from their JSON.
pub fn count_request_tokens(req: &GenerateRequest) -> TokenCount {
    let encoding = openai_encoding(&req.model);
    let count = |text: &str| -> u64 {
        match encoding {
            Some(bpe) => bpe.encode_with_special_tokens(text).len() as u64,
            None => estimate_text_tokens(text),
        }
    };
    let mut exact = encoding.is_some();
    let mut tokens = OPENAI_REPLY_PRIMING;
    for message in &req.messages {
        tokens += OPENAI_TOKENS_PER_MESSAGE;
        let role = serde_json::to_value(message.role).unwrap_or_default();
        tokens += count(role.as_str().unwrap_or_default());
        for part in &message.content {
            match part {
                ContentPart::Text { text } => tokens += count(text),
                ContentPart::Image { .. } => {
                    tokens += 85;
                    exact = false;
                }
            }
        }
        for call in &message.tool_calls {
            tokens += count(&call.name) + count(&call.arguments.to_string());
        }
    }
    for tool in &req.tools {
        exact = false;
        tokens +=
            count(&tool.name) + count(&tool.description) + count(&tool.parameters.to_string());
    }
    TokenCount { tokens, exact }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gpt_4o_counts_are_exact_with_o200k() {
        let req = GenerateRequest::simple("gpt-4o-2024-08-06", "Hello world");
        // "Hello world" = 2 o200k tokens, "user" = 1, +3 per message, +3 priming.
        assert_eq!(
            count_request_tokens(&req),
            TokenCount {
                tokens: 9,
                exact: true
            }
        );
    }

    #[test]
    fn gpt_4_uses_cl100k_and_differs_from_o200k_on_the_same_text() {
        let text = "Ünïcödé façade — naïve coöperation";
        let a = count_request_tokens(&GenerateRequest::simple("gpt-4", text));
        let b = count_request_tokens(&GenerateRequest::simple("gpt-4o", text));
        assert!(a.exact && b.exact);
        assert_ne!(a.tokens, b.tokens);
    }

    #[test]
    fn embedding_texts_are_counted_with_their_model_s_vocabulary() {
        let openai = count_text_tokens("text-embedding-3-small", "Hello world");
        assert_eq!(
            openai,
            TokenCount {
                tokens: 2,
                exact: true
            }
        );
        let other = count_text_tokens("voyage-3.5", "abcdefghi");
        assert_eq!(
            other,
            TokenCount {
                tokens: 3,
                exact: false
            }
        );
    }

    #[test]
    fn other_models_get_an_estimate_marked_as_one() {
        let req = GenerateRequest::simple("llama3.2", "abcdefgh");
        // 8 chars → 2, "user" → 1, +3 +3.
        assert_eq!(
            count_request_tokens(&req),
            TokenCount {
                tokens: 9,
                exact: false
            }
        );
    }
}
