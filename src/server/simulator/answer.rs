//! Deterministic answers: the same prompt always gives the same text, tool calls and usage.
//!
//! A forced tool is called once per part of the last user message joined by " and "
//! ("Paris and London": two calls, made in parallel as the providers do), else once.

use serde_json::{json, Map, Value};

use crate::server::llm::tokens::estimate_text_tokens;

/// A tool the request forces the model to call.
#[derive(Debug, Clone)]
pub(crate) struct ForcedTool {
    /// Tool name.
    pub name: String,
    /// JSON schema of its arguments.
    pub schema: Value,
}

/// What the simulator needs to know about a request, whatever the provider.
#[derive(Debug, Clone)]
pub(crate) struct Prompt {
    /// Requested model id.
    pub model: String,
    /// Text of the last user message.
    pub last_user: String,
    /// Estimated prompt tokens (all text the request carries).
    pub input_tokens: u64,
    /// Output token limit, when given.
    pub max_tokens: Option<u64>,
    /// A tool call to make instead of text.
    pub forced_tool: Option<ForcedTool>,
    /// The answer must be JSON (OpenAI's `response_format`, Gemini's
    /// `responseMimeType`, Ollama's `format`).
    pub json: Option<JsonAnswer>,
    /// Whether to stream.
    pub stream: bool,
    /// OpenAI `stream_options.include_usage`.
    pub include_usage: bool,
}

/// The JSON an answer must be.
#[derive(Debug, Clone)]
pub(crate) enum JsonAnswer {
    /// Any object: `{"answer": "<the simulated answer>"}`.
    Object,
    /// An object of this schema, its properties filled like tool arguments.
    Schema(Value),
}

/// How the simulated answer ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Finish {
    /// Natural end.
    Stop,
    /// Cut by the output token limit.
    Length,
    /// A tool call.
    ToolCall,
}

/// The simulated answer.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    /// Text pieces, one per output token.
    pub pieces: Vec<String>,
    /// Tool calls (name, arguments) when forced, in order: several are parallel calls.
    pub tools: Vec<(String, Value)>,
    /// Output tokens reported in usage.
    pub output_tokens: u64,
    /// Why the answer ended.
    pub finish: Finish,
}

impl Plan {
    /// The whole answer text.
    pub fn text(&self) -> String {
        self.pieces.concat()
    }

    /// The arguments of tool call `index` as JSON text, split in a few fragments for
    /// streaming.
    pub fn argument_fragments(&self, index: usize) -> Vec<String> {
        let Some((_, args)) = self.tools.get(index) else {
            return Vec::new();
        };
        let text = args.to_string();
        let chars: Vec<char> = text.chars().collect();
        chars.chunks(8).map(|c| c.iter().collect()).collect()
    }
}

/// The text answer for a user message.
pub(crate) fn answer_text(last_user: &str) -> String {
    let topic = last_user.split_whitespace().collect::<Vec<_>>().join(" ");
    format!("This is a simulated answer to: {topic}")
}

/// Plans the answer for a prompt.
pub(crate) fn plan(prompt: &Prompt) -> Plan {
    if let Some(tool) = &prompt.forced_tool {
        let parts: Vec<&str> = prompt
            .last_user
            .split(" and ")
            .map(str::trim)
            .filter(|part| !part.is_empty())
            .collect();
        let parts = if parts.is_empty() {
            vec![prompt.last_user.as_str()]
        } else {
            parts
        };
        let tools: Vec<(String, Value)> = parts
            .into_iter()
            .map(|part| (tool.name.clone(), arguments(&tool.schema, part)))
            .collect();
        let output_tokens = tools
            .iter()
            .map(|(_, args)| estimate_text_tokens(&args.to_string()) + 10)
            .sum();
        return Plan {
            pieces: Vec::new(),
            tools,
            output_tokens,
            finish: Finish::ToolCall,
        };
    }
    if let Some(json) = &prompt.json {
        let value = match json {
            JsonAnswer::Object => json!({"answer": answer_text(&prompt.last_user)}),
            JsonAnswer::Schema(schema) => arguments(schema, &prompt.last_user),
        };
        let text = value.to_string();
        let chars: Vec<char> = text.chars().collect();
        let pieces: Vec<String> = chars.chunks(8).map(|c| c.iter().collect()).collect();
        return Plan {
            output_tokens: pieces.len() as u64,
            pieces,
            tools: Vec::new(),
            finish: Finish::Stop,
        };
    }
    let text = answer_text(&prompt.last_user);
    let mut pieces: Vec<String> = text
        .split(' ')
        .enumerate()
        .map(|(i, w)| {
            if i == 0 {
                w.to_owned()
            } else {
                format!(" {w}")
            }
        })
        .collect();
    let mut finish = Finish::Stop;
    if let Some(max) = prompt.max_tokens {
        if (pieces.len() as u64) > max {
            pieces.truncate(max as usize);
            finish = Finish::Length;
        }
    }
    Plan {
        output_tokens: pieces.len() as u64,
        pieces,
        tools: Vec::new(),
        finish,
    }
}

/// Fills the schema's properties: strings get the user's text, numbers 42, booleans true.
fn arguments(schema: &Value, last_user: &str) -> Value {
    let mut args = Map::new();
    for (name, prop) in schema["properties"].as_object().into_iter().flatten() {
        let kind = prop["type"]
            .as_str()
            .unwrap_or("string")
            .to_ascii_lowercase();
        let value = match kind.as_str() {
            "integer" | "number" => json!(42),
            "boolean" => json!(true),
            "array" => json!([]),
            "object" => json!({}),
            _ => match prop["enum"].as_array().and_then(|e| e.first()) {
                Some(first) => first.clone(),
                None => json!(last_user),
            },
        };
        args.insert(name.clone(), value);
    }
    Value::Object(args)
}

/// The text of a message `content` that is a string or an array of `{type: text}` parts
/// (Anthropic and OpenAI share this shape); `None` when it has no text (e.g. tool results).
pub(crate) fn text_content(content: &Value) -> Option<String> {
    match content {
        Value::String(s) => Some(s.clone()),
        Value::Array(parts) => {
            let texts: Vec<&str> = parts
                .iter()
                .filter(|p| p["type"] == "text")
                .filter_map(|p| p["text"].as_str())
                .collect();
            (!texts.is_empty()).then(|| texts.join(""))
        }
        _ => None,
    }
}

/// Estimates the prompt tokens of every string found in a JSON request body.
pub(crate) fn count_text_tokens(texts: &[&str]) -> u64 {
    texts.iter().map(|t| estimate_text_tokens(t)).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prompt(text: &str, max_tokens: Option<u64>) -> Prompt {
        Prompt {
            model: "m".into(),
            last_user: text.into(),
            input_tokens: 1,
            max_tokens,
            forced_tool: None,
            json: None,
            stream: false,
            include_usage: false,
        }
    }

    #[test]
    fn the_answer_is_derived_from_the_last_user_message_one_token_per_word() {
        let p = plan(&prompt("Hello   there", None));
        assert_eq!(p.text(), "This is a simulated answer to: Hello there");
        assert_eq!(p.output_tokens, 8);
        assert_eq!(p.finish, Finish::Stop);
    }

    #[test]
    fn a_json_answer_is_an_object_or_fills_its_schema() {
        let mut pr = prompt("Paris", None);
        pr.json = Some(JsonAnswer::Object);
        let text = plan(&pr).text();
        assert_eq!(
            serde_json::from_str::<Value>(&text).unwrap(),
            json!({"answer": "This is a simulated answer to: Paris"})
        );
        pr.json = Some(JsonAnswer::Schema(
            json!({"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}}}),
        ));
        let text = plan(&pr).text();
        assert_eq!(
            serde_json::from_str::<Value>(&text).unwrap(),
            json!({"city": "Paris", "days": 42})
        );
    }

    #[test]
    fn max_tokens_truncates_the_answer_and_ends_it_for_length() {
        let p = plan(&prompt("Hello", Some(3)));
        assert_eq!(p.text(), "This is a");
        assert_eq!(p.finish, Finish::Length);
    }

    #[test]
    fn forced_tools_get_arguments_filled_from_their_schema() {
        let mut pr = prompt("Paris", None);
        pr.forced_tool = Some(ForcedTool {
            name: "get_weather".into(),
            schema: json!({"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}, "unit": {"type": "string", "enum": ["c", "f"]}}}),
        });
        let p = plan(&pr);
        assert_eq!(
            p.tools,
            vec![(
                "get_weather".into(),
                json!({"city": "Paris", "days": 42, "unit": "c"})
            )]
        );
        assert_eq!(
            p.argument_fragments(0).concat(),
            r#"{"city":"Paris","days":42,"unit":"c"}"#
        );
        // Two places asked at once: two parallel calls.
        pr.last_user = "Paris and London".into();
        let p = plan(&pr);
        let cities: Vec<&Value> = p.tools.iter().map(|(_, args)| &args["city"]).collect();
        assert_eq!(cities, [&json!("Paris"), &json!("London")]);
    }
}
