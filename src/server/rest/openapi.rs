//! `GET /api/openapi.json`: an OpenAPI 3.1 document of every JSON endpoint,
//! built from one table so a new route is one line here (the integration tests
//! check that every documented route answers and that the routes are all
//! documented).

use axum::Json;
use serde_json::{json, Value};

/// One documented endpoint: method, path, summary, request schema, success
/// status and response schema, and the error statuses it can answer.
pub struct Endpoint {
    /// HTTP method, lower case.
    pub method: &'static str,
    /// Path with `{param}` placeholders.
    pub path: &'static str,
    /// What it does.
    pub summary: &'static str,
    /// Request body schema name, if any.
    pub request: Option<&'static str>,
    /// Success status and response schema name (`None` for no body).
    pub response: (u16, Option<&'static str>),
    /// Error statuses.
    pub errors: &'static [u16],
    /// Who may call it.
    pub auth: Auth,
}

/// How an endpoint is authenticated.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    /// Nobody needs to be signed in.
    Public,
    /// The session cookie.
    Session,
    /// The session cookie or a project API token.
    SessionOrToken,
}

/// Every JSON endpoint.
pub const ENDPOINTS: &[Endpoint] = &[
    Endpoint {
        method: "post",
        path: "/api/auth/signup",
        summary: "Create an account (the first becomes workspace admin) and sign in",
        request: Some("Credentials"),
        response: (201, Some("User")),
        errors: &[400, 409, 422],
        auth: Auth::Public,
    },
    Endpoint {
        method: "post",
        path: "/api/auth/login",
        summary: "Sign in",
        request: Some("Credentials"),
        response: (200, Some("User")),
        errors: &[400, 401, 422, 429],
        auth: Auth::Public,
    },
    Endpoint {
        method: "post",
        path: "/api/auth/logout",
        summary: "Sign out",
        request: None,
        response: (204, None),
        errors: &[],
        auth: Auth::Session,
    },
    Endpoint {
        method: "get",
        path: "/api/auth/me",
        summary: "The signed-in user",
        request: None,
        response: (200, Some("User")),
        errors: &[401],
        auth: Auth::Session,
    },
    Endpoint {
        method: "get",
        path: "/api/projects",
        summary: "Projects the caller may open",
        request: None,
        response: (200, Some("ProjectList")),
        errors: &[401],
        auth: Auth::Session,
    },
    Endpoint {
        method: "post",
        path: "/api/projects",
        summary: "Create a project (starts on Claude 3.5 Sonnet)",
        request: Some("NewProject"),
        response: (201, Some("Project")),
        errors: &[400, 401, 422],
        auth: Auth::Session,
    },
    Endpoint {
        method: "get",
        path: "/api/projects/{id}",
        summary: "One project",
        request: None,
        response: (200, Some("Project")),
        errors: &[401, 404],
        auth: Auth::Session,
    },
    Endpoint {
        method: "patch",
        path: "/api/projects/{id}",
        summary: "Rename a project or change its use case",
        request: Some("ProjectPatch"),
        response: (200, Some("Project")),
        errors: &[400, 401, 404, 422],
        auth: Auth::Session,
    },
    Endpoint {
        method: "post",
        path: "/api/projects/{id}/members",
        summary: "Add an existing account to a project",
        request: Some("NewMember"),
        response: (201, None),
        errors: &[400, 401, 404, 422],
        auth: Auth::Session,
    },
    Endpoint {
        method: "get",
        path: "/api/llm/providers",
        summary: "Every provider with its models (the catalog)",
        request: None,
        response: (200, Some("ProviderList")),
        errors: &[],
        auth: Auth::Public,
    },
    Endpoint {
        method: "get",
        path: "/api/llm/providers/{id}/models",
        summary: "One provider's models",
        request: None,
        response: (200, Some("ModelList")),
        errors: &[422],
        auth: Auth::Public,
    },
    Endpoint {
        method: "post",
        path: "/api/llm/providers/{id}/validate",
        summary: "Check an API key with the provider",
        request: Some("KeyToCheck"),
        response: (200, Some("KeyCheck")),
        errors: &[400, 401, 422],
        auth: Auth::SessionOrToken,
    },
    Endpoint {
        method: "get",
        path: "/api/admin/internal-rates",
        summary: "Internal rates of self-hosted models (workspace admins)",
        request: None,
        response: (200, Some("InternalRateList")),
        errors: &[401, 403],
        auth: Auth::Session,
    },
    Endpoint {
        method: "put",
        path: "/api/admin/internal-rates/{model}",
        summary: "Set what a self-hosted model costs from a date: per hour of answer time and/or per 1M tokens (without a rate it costs $0)",
        request: Some("InternalRateChange"),
        response: (200, Some("InternalRate")),
        errors: &[400, 401, 403, 422],
        auth: Auth::Session,
    },
    Endpoint {
        method: "post",
        path: "/api/llm/compare",
        summary: "Compare providers on a sample: one question to up to 6 models side by side, with answers, latency, tokens and cost (billed to the project)",
        request: Some("CompareRequest"),
        response: (200, Some("CompareResults")),
        errors: &[400, 401, 404, 422],
        auth: Auth::SessionOrToken,
    },
    Endpoint {
        method: "get",
        path: "/api/projects/{id}/llm-config",
        summary: "The project's current LLM configuration (key masked)",
        request: None,
        response: (200, Some("LlmConfig")),
        errors: &[401, 404],
        auth: Auth::SessionOrToken,
    },
    Endpoint {
        method: "patch",
        path: "/api/projects/{id}/llm-config",
        summary: "Change the configuration (saved as a new version); apiKey is write-only",
        request: Some("LlmConfigPatch"),
        response: (200, Some("LlmConfig")),
        errors: &[400, 401, 404, 409, 422],
        auth: Auth::SessionOrToken,
    },
    Endpoint {
        method: "get",
        path: "/api/projects/{id}/conversations",
        summary: "The project's conversations, most recently active first, with their cost so far",
        request: None,
        response: (200, Some("ConversationList")),
        errors: &[401, 404],
        auth: Auth::SessionOrToken,
    },
    Endpoint {
        method: "post",
        path: "/api/projects/{id}/conversations",
        summary: "Start a conversation; it keeps the project's current provider, model and parameters",
        request: None,
        response: (201, Some("Conversation")),
        errors: &[401, 404],
        auth: Auth::SessionOrToken,
    },
    Endpoint {
        method: "get",
        path: "/api/projects/{id}/conversations/{conversation_id}",
        summary: "A conversation with its messages and the facts of every answer",
        request: None,
        response: (200, Some("ConversationDetail")),
        errors: &[401, 404],
        auth: Auth::SessionOrToken,
    },
    Endpoint {
        method: "post",
        path: "/api/projects/{id}/conversations/{conversation_id}/messages",
        summary: "Ask a question. The answer comes as JSON, or as server-sent events (started, delta, fallback, interrupted, then done or error) with Accept: text/event-stream",
        request: Some("NewMessage"),
        response: (200, Some("ChatAnswer")),
        errors: &[400, 401, 402, 404, 422, 502],
        auth: Auth::SessionOrToken,
    },
    Endpoint {
        method: "put",
        path: "/api/projects/{id}/conversations/{conversation_id}/messages/{message_id}/rating",
        summary: "Thumbs up or down on an answer (null clears it)",
        request: Some("Rating"),
        response: (204, None),
        errors: &[400, 401, 404],
        auth: Auth::SessionOrToken,
    },
    Endpoint {
        method: "get",
        path: "/api/projects/{id}/budget",
        summary: "The monthly budget and where it stands: spent (running answers' reservations included), alerts fired, what the ladder does now",
        request: None,
        response: (200, Some("BudgetStatus")),
        errors: &[401, 404],
        auth: Auth::SessionOrToken,
    },
    Endpoint {
        method: "put",
        path: "/api/projects/{id}/budget",
        summary: "Set the monthly budget (exact dollars) and its alert webhook; a null limit removes it",
        request: Some("BudgetChange"),
        response: (200, Some("BudgetStatus")),
        errors: &[400, 401, 404, 422],
        auth: Auth::SessionOrToken,
    },
    Endpoint {
        method: "get",
        path: "/api/projects/{id}/notifications",
        summary: "The project's notifications (budget alerts at 50, 80 and 100 %), newest first",
        request: None,
        response: (200, Some("NotificationList")),
        errors: &[401, 404],
        auth: Auth::SessionOrToken,
    },
    Endpoint {
        method: "post",
        path: "/api/projects/{id}/notifications/read",
        summary: "Mark every notification of the project read",
        request: None,
        response: (204, None),
        errors: &[401, 404],
        auth: Auth::SessionOrToken,
    },
    Endpoint {
        method: "post",
        path: "/api/projects/{id}/llm-config/test",
        summary: "Test Connection with the key the project would use",
        request: Some("ConnectionToTest"),
        response: (200, Some("KeyCheck")),
        errors: &[400, 401, 404],
        auth: Auth::SessionOrToken,
    },
    Endpoint {
        method: "get",
        path: "/api/projects/{id}/tokens",
        summary: "The project's API tokens",
        request: None,
        response: (200, Some("TokenList")),
        errors: &[401, 403, 404],
        auth: Auth::Session,
    },
    Endpoint {
        method: "post",
        path: "/api/projects/{id}/tokens",
        summary: "Create an API token (its secret is shown once)",
        request: Some("NewToken"),
        response: (201, Some("CreatedToken")),
        errors: &[400, 401, 403, 404, 422],
        auth: Auth::Session,
    },
    Endpoint {
        method: "delete",
        path: "/api/projects/{id}/tokens/{tokenId}",
        summary: "Revoke an API token",
        request: None,
        response: (204, None),
        errors: &[401, 403, 404],
        auth: Auth::Session,
    },
    Endpoint {
        method: "get",
        path: "/api/projects/{id}/llm-usage",
        summary: "Usage and cost for a period: totals, conversations, by model and provider, the series, what other models would have cost, the recommendation, suggestions, the month-end projection and the budget. Query: from, to (YYYY-MM-DD, UTC, both included; default the last 30 days, at most 366), provider, model, granularity (day, week, month)",
        request: None,
        response: (200, Some("CostReport")),
        errors: &[400, 401, 404, 422],
        auth: Auth::SessionOrToken,
    },
    Endpoint {
        method: "get",
        path: "/api/projects/{id}/llm-usage.csv",
        summary: "The usage ledger of a period as CSV (text/csv), one line per provider attempt; cost_usd is an exact decimal, empty when unpriced. Same query as llm-usage",
        request: None,
        response: (200, None),
        errors: &[400, 401, 404, 422],
        auth: Auth::SessionOrToken,
    },
    Endpoint {
        method: "get",
        path: "/api/admin/llm-usage",
        summary: "Workspace admins: spend by provider, model and project, monthly by provider, and the 10 most expensive conversations. Query: from, to, provider, model",
        request: None,
        response: (200, Some("WorkspaceCosts")),
        errors: &[400, 401, 403, 422],
        auth: Auth::Session,
    },
    Endpoint {
        method: "get",
        path: "/api/admin/llm-usage.csv",
        summary: "Workspace admins: every project's usage ledger of a period as CSV (text/csv). Same query as llm-usage",
        request: None,
        response: (200, None),
        errors: &[400, 401, 403, 422],
        auth: Auth::Session,
    },
    Endpoint {
        method: "get",
        path: "/api/openapi.json",
        summary: "This document",
        request: None,
        response: (200, None),
        errors: &[],
        auth: Auth::Public,
    },
];

fn schema_ref(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

fn string() -> Value {
    json!({ "type": "string" })
}

fn object(required: &[&str], properties: Value) -> Value {
    json!({ "type": "object", "required": required, "properties": properties })
}

fn schemas() -> Value {
    let provider = json!({ "type": "string", "enum": ["claude", "openai", "gemini", "llama"] });
    let parameters = object(
        &[],
        json!({
            "temperature": { "type": "number", "description": "0–1 for Claude, 0–2 for OpenAI, Gemini and Llama" },
            "maxTokens": { "type": "integer", "minimum": 1, "description": "at most the model's max output" },
            "topP": { "type": "number", "minimum": 0, "maximum": 1 },
            "topK": { "type": "integer", "description": "Claude, Gemini, Llama" },
            "frequencyPenalty": { "type": "number", "minimum": -2, "maximum": 2, "description": "OpenAI only" },
            "presencePenalty": { "type": "number", "minimum": -2, "maximum": 2, "description": "OpenAI only" },
            "stop": { "type": "array", "items": string() },
            "safetySettings": { "type": "array", "description": "Gemini only", "items": object(&["category", "threshold"], json!({ "category": string(), "threshold": string() })) },
            "googleSearch": { "type": "boolean", "description": "Gemini only: grounding with Google Search" }
        }),
    );
    let fallback = object(
        &["enabled", "provider", "model", "retryAttempts"],
        json!({
            "enabled": { "type": "boolean" }, "provider": provider, "model": string(),
            "retryAttempts": { "type": "integer", "minimum": 0, "maximum": 10 }
        }),
    );
    let key_check = object(
        &["valid", "message", "latencyMs"],
        json!({ "valid": { "type": "boolean" }, "message": string(), "latencyMs": { "type": "integer" } }),
    );
    let token = object(
        &["id", "name", "prefix", "createdAt", "revoked"],
        json!({
            "id": string(), "name": string(), "prefix": string(), "createdAt": string(),
            "lastUsedAt": string(), "revoked": { "type": "boolean" }
        }),
    );
    let project = object(
        &["id", "name", "useCase", "role", "createdAt"],
        json!({
            "id": string(), "name": string(),
            "useCase": { "type": "string", "enum": ["customer_support", "sales", "technical_docs", "other"] },
            "role": { "type": "string", "enum": ["owner", "member", "admin"] }, "createdAt": string()
        }),
    );
    let conversation = object(
        &[
            "id",
            "title",
            "provider",
            "model",
            "modelName",
            "configVersion",
            "messageCount",
            "costNanos",
            "hasUnpriced",
            "createdAt",
            "updatedAt",
        ],
        json!({
            "id": string(), "title": string(), "provider": provider, "model": string(), "modelName": string(),
            "configVersion": { "type": "integer" }, "messageCount": { "type": "integer" },
            "costNanos": { "type": "integer", "description": "nano-dollars (1e-9 USD), every attempt counted" },
            "hasUnpriced": { "type": "boolean" }, "createdAt": string(), "updatedAt": string()
        }),
    );
    let usage = object(
        &[
            "inputTokens",
            "cacheReadTokens",
            "cacheWriteTokens",
            "outputTokens",
            "reasoningTokens",
            "estimated",
        ],
        json!({
            "inputTokens": { "type": "integer" }, "cacheReadTokens": { "type": "integer" },
            "cacheWriteTokens": { "type": "integer" }, "outputTokens": { "type": "integer" },
            "reasoningTokens": { "type": "integer" }, "estimated": { "type": "boolean" }
        }),
    );
    json!({
        "Credentials": object(&["email", "password"], json!({ "email": string(), "password": { "type": "string", "minLength": 8 } })),
        "User": object(&["id", "email", "role"], json!({ "id": string(), "email": string(), "role": { "type": "string", "enum": ["admin", "member"] } })),
        "Project": project,
        "ProjectList": object(&["projects"], json!({ "projects": { "type": "array", "items": schema_ref("Project") } })),
        "NewProject": object(&["name"], json!({ "name": string(), "useCase": string() })),
        "ProjectPatch": object(&[], json!({ "name": string(), "useCase": string() })),
        "NewMember": object(&["email"], json!({ "email": string() })),
        "ProviderList": object(&["defaultModel", "providers"], json!({ "defaultModel": string(), "providers": { "type": "array", "items": { "type": "object" } } })),
        "ModelList": object(&["provider", "models"], json!({ "provider": provider, "models": { "type": "array", "items": { "type": "object" } } })),
        "KeyToCheck": object(&[], json!({ "apiKey": string(), "baseUrl": string(), "llamaFlavour": { "type": "string", "enum": ["ollama", "openAiCompatible"] } })),
        "KeyCheck": key_check,
        "Parameters": parameters,
        "FallbackConfig": fallback,
        "LlmConfig": object(&["projectId", "version", "provider", "model", "parameters", "systemPrompt", "apiKeySource", "fallbackConfig", "llamaFlavour", "updatedAt"], json!({
            "projectId": string(), "version": { "type": "integer" }, "provider": provider, "model": string(),
            "parameters": schema_ref("Parameters"), "systemPrompt": string(),
            "apiKeySource": { "type": "string", "enum": ["managed", "byok"] },
            "apiKeyMasked": { "type": ["string", "null"], "description": "e.g. sk-ant-...k4j2; the key itself is never returned" },
            "fallbackConfig": schema_ref("FallbackConfig"), "baseUrl": { "type": ["string", "null"] },
            "llamaFlavour": { "type": "string", "enum": ["ollama", "openAiCompatible"] }, "updatedAt": string()
        })),
        "LlmConfigPatch": object(&[], json!({
            "provider": provider, "model": string(), "parameters": schema_ref("Parameters"), "systemPrompt": string(),
            "apiKeySource": { "type": "string", "enum": ["managed", "byok"] },
            "apiKey": { "type": "string", "writeOnly": true, "description": "checked with the provider, stored encrypted" },
            "fallbackConfig": schema_ref("FallbackConfig"), "baseUrl": string(),
            "llamaFlavour": { "type": "string", "enum": ["ollama", "openAiCompatible"] }
        })),
        "ConnectionToTest": object(&[], json!({ "provider": provider, "apiKey": string() })),
        "Token": token,
        "TokenList": object(&["tokens"], json!({ "tokens": { "type": "array", "items": schema_ref("Token") } })),
        "NewToken": object(&["name"], json!({ "name": string() })),
        "CreatedToken": { "allOf": [schema_ref("Token"), object(&["secret"], json!({ "secret": { "type": "string", "description": "shown once" } }))] },
        "Conversation": conversation,
        "ConversationList": object(&["conversations"], json!({ "conversations": { "type": "array", "items": schema_ref("Conversation") } })),
        "ConversationDetail": { "allOf": [schema_ref("Conversation"), object(&["vision", "messages"], json!({
            "vision": { "type": "boolean" },
            "messages": { "type": "array", "items": object(&["id", "role", "content", "status", "createdAt"], json!({
                "id": string(), "role": { "type": "string", "enum": ["user", "assistant"] }, "content": string(),
                "status": { "type": "string", "enum": ["pending", "complete", "stopped", "error"] },
                "facts": { "type": "object" }, "fallback": schema_ref("FallbackNotice"), "interrupted": { "type": "object" },
                "error": string(), "rating": { "type": "string", "enum": ["up", "down"] }, "createdAt": string(),
                "images": { "type": "array", "items": schema_ref("Image") }
            })) }
        }))] },
        "Image": object(&["mediaType", "data"], json!({ "mediaType": { "type": "string", "enum": ["image/png", "image/jpeg", "image/gif", "image/webp"] }, "data": { "type": "string", "description": "base64" } })),
        "NewMessage": object(&["content"], json!({ "content": string(), "images": { "type": "array", "items": schema_ref("Image") } })),
        "Usage": usage,
        "FallbackNotice": object(&["from", "fromProvider", "to", "toProvider", "reason", "message"], json!({
            "from": string(), "fromProvider": provider, "to": string(), "toProvider": provider,
            "reason": { "type": "string", "description": "failure class: rateLimited, overloaded, quotaExhausted, transient, auth, contextTooLong; or budget: the monthly budget sent the answer to a cheaper model or shortened it" },
            "message": string()
        })),
        "ChatAnswer": object(&["messageId", "questionId", "content", "provider", "model", "usage", "costUsd", "latencyMs", "fallback"], json!({
            "messageId": string(), "questionId": string(), "content": string(), "provider": provider, "model": string(),
            "usage": schema_ref("Usage"),
            "costUsd": { "type": ["string", "null"], "description": "exact decimal; null when a model without a known price was used" },
            "costNanos": { "type": ["integer", "null"] }, "latencyMs": { "type": "integer" }, "ttftMs": { "type": ["integer", "null"] },
            "fallback": { "oneOf": [schema_ref("FallbackNotice"), { "type": "null" }] },
            "interrupted": { "type": ["object", "null"] }, "trimmedMessages": { "type": "integer" }
        })),
        "Rating": object(&["rating"], json!({ "rating": { "type": ["string", "null"], "enum": ["up", "down", null] } })),
        "BudgetChange": object(&[], json!({
            "limitUsd": { "type": ["string", "null"], "description": "exact decimal dollars per calendar month (UTC), e.g. 250.00; null removes the budget" },
            "webhookUrl": { "type": ["string", "null"], "description": "http(s) URL called with {projectId, threshold, spentUsd, limitUsd, month} on each alert" }
        })),
        "BudgetStatus": object(&["limitNanos", "spentNanos", "webhookUrl", "alertsFired", "state"], json!({
            "limitNanos": { "type": ["integer", "null"], "description": "nano-dollars; null = no budget" },
            "spentNanos": { "type": "integer", "description": "this month, reservations of running answers included" },
            "webhookUrl": { "type": ["string", "null"] },
            "alertsFired": { "type": "array", "items": { "type": "integer", "enum": [50, 80, 100] } },
            "state": { "type": "string", "enum": ["ok", "downgraded", "capped", "blocked"] }
        })),
        "NotificationList": object(&["notifications"], json!({ "notifications": { "type": "array", "items": object(&["id", "kind", "message", "createdAt", "read"], json!({
            "id": string(), "kind": { "type": "string", "enum": ["budget50", "budget80", "budget100"] }, "message": string(),
            "createdAt": string(), "read": { "type": "boolean" }
        })) } })),
        "InternalRate": object(&["model", "effectiveDate", "perHourNanos", "perMTokNanos"], json!({
            "model": string(), "effectiveDate": { "type": "string", "format": "date" },
            "perHourNanos": { "type": "integer" }, "perMTokNanos": { "type": "integer" }
        })),
        "InternalRateList": object(&["rates"], json!({ "rates": { "type": "array", "items": schema_ref("InternalRate") } })),
        "InternalRateChange": object(&["effectiveDate"], json!({
            "effectiveDate": { "type": "string", "format": "date" },
            "perHourUsd": { "type": "string", "description": "exact decimal, e.g. 2.50" },
            "perMTokUsd": { "type": "string", "description": "exact decimal, e.g. 0.10" }
        })),
        "CompareRequest": object(&["projectId", "prompt", "models"], json!({
            "projectId": string(), "prompt": string(), "systemPrompt": string(),
            "models": { "type": "array", "items": string(), "minItems": 1, "maxItems": 6 }
        })),
        "CompareResults": { "type": "array", "items": object(&["model", "name", "provider", "content", "latencyMs", "inputTokens", "outputTokens"], json!({
            "model": string(), "name": string(), "provider": provider, "content": string(), "error": { "type": ["string", "null"] },
            "latencyMs": { "type": "integer" }, "inputTokens": { "type": "integer" }, "outputTokens": { "type": "integer" },
            "costNanos": { "type": ["integer", "null"] }
        })) },
        "SpendLine": spend_line_schema(),
        "CostReport": cost_report_schema(),
        "WorkspaceCosts": workspace_costs_schema(),
        "Error": object(&["error", "message"], json!({ "error": { "type": "object" }, "message": string(), "field": string() }))
    })
}

/// Spend and usage of one slice (`CostReport`, `WorkspaceCosts`).
fn spend_line_schema() -> Value {
    let integer = json!({ "type": "integer" });
    object(
        &[
            "key",
            "label",
            "costNanos",
            "unpricedAttempts",
            "attempts",
            "failedAttempts",
            "fallbackAttempts",
            "tokens",
        ],
        json!({
            "key": { "type": "string", "description": "model id, provider id, project id, bucket start date (YYYY-MM-DD) or YYYY-MM|provider" },
            "label": string(),
            "costNanos": { "type": "integer", "description": "priced spend in nano-dollars (1e-9 USD), exact" },
            "unpricedAttempts": { "type": "integer", "description": "attempts without a known price: not in costNanos, never counted as $0" },
            "attempts": integer, "failedAttempts": integer, "fallbackAttempts": integer,
            "tokens": object(&["inputTokens", "cacheReadTokens", "cacheWriteTokens", "outputTokens", "reasoningTokens"], json!({
                "inputTokens": integer, "cacheReadTokens": integer, "cacheWriteTokens": integer,
                "outputTokens": integer, "reasoningTokens": integer
            })),
            "avgLatencyMs": { "type": ["integer", "null"] }
        }),
    )
}

/// `GET /api/projects/{id}/llm-usage`.
fn cost_report_schema() -> Value {
    let lines = json!({ "type": "array", "items": schema_ref("SpendLine") });
    let nullable_integer = json!({ "type": ["integer", "null"] });
    object(
        &[
            "from",
            "to",
            "currentModel",
            "currentModelName",
            "total",
            "conversations",
            "byModel",
            "byProvider",
            "series",
            "whatIf",
            "suggestions",
            "projection",
            "budget",
        ],
        json!({
            "from": string(), "to": string(), "currentModel": string(), "currentModelName": string(),
            "total": schema_ref("SpendLine"), "conversations": { "type": "integer" },
            "avgCostPerConversationNanos": nullable_integer,
            "byModel": lines, "byProvider": lines, "series": lines,
            "whatIf": { "type": "array", "items": object(&["model", "name", "provider", "costNanos", "differencePermille"], json!({
                "model": string(), "name": string(), "provider": string(),
                "costNanos": { "type": ["integer", "null"], "description": "the period's tokens at this model's list prices; null without a per-token price" },
                "differencePermille": { "type": ["integer", "null"], "description": "against the actual priced spend, per mille (-700 = 70 % cheaper)" }
            })) },
            "recommendation": { "oneOf": [{ "type": "null" }, object(&["model", "name", "reason"], json!({
                "model": string(), "name": string(), "reason": string(), "savingPermille": nullable_integer
            }))] },
            "suggestions": { "type": "array", "items": object(&["kind", "message"], json!({
                "kind": { "type": "string", "enum": ["promptCaching", "cheaperOutput", "trimLongPrompts", "checkPrimary"] },
                "message": string()
            })) },
            "projection": object(&["month", "spentNanos", "projectedNanos", "daysElapsed", "daysInMonth"], json!({
                "month": string(), "spentNanos": { "type": "integer" }, "projectedNanos": { "type": "integer" },
                "daysElapsed": { "type": "number" }, "daysInMonth": { "type": "integer" }
            })),
            "budget": schema_ref("BudgetStatus")
        }),
    )
}

/// `GET /api/admin/llm-usage`.
fn workspace_costs_schema() -> Value {
    let lines = json!({ "type": "array", "items": schema_ref("SpendLine") });
    object(
        &[
            "from",
            "to",
            "total",
            "byProvider",
            "byModel",
            "byProject",
            "monthlyByProvider",
            "topConversations",
        ],
        json!({
            "from": string(), "to": string(), "total": schema_ref("SpendLine"),
            "byProvider": lines, "byModel": lines, "byProject": lines, "monthlyByProvider": lines,
            "topConversations": { "type": "array", "items": object(&["conversationId", "title", "projectId", "projectName", "costNanos", "attempts"], json!({
                "conversationId": string(), "title": string(), "projectId": string(), "projectName": string(),
                "costNanos": { "type": "integer" }, "attempts": { "type": "integer" }
            })) }
        }),
    )
}

fn operation(endpoint: &Endpoint) -> Value {
    let mut responses = serde_json::Map::new();
    let (status, body) = endpoint.response;
    responses.insert(
        status.to_string(),
        match body {
            Some(name) => json!({ "description": "success", "content": { "application/json": { "schema": schema_ref(name) } } }),
            None => json!({ "description": "success" }),
        },
    );
    for code in endpoint.errors {
        responses.insert(
            code.to_string(),
            json!({ "description": "error", "content": { "application/json": { "schema": schema_ref("Error") } } }),
        );
    }
    let mut op = json!({ "summary": endpoint.summary, "responses": responses });
    if let Some(name) = endpoint.request {
        op["requestBody"] = json!({ "required": true, "content": { "application/json": { "schema": schema_ref(name) } } });
    }
    op["security"] = match endpoint.auth {
        Auth::Public => json!([]),
        Auth::Session => json!([{ "session": [] }]),
        Auth::SessionOrToken => json!([{ "session": [] }, { "projectToken": [] }]),
    };
    let params: Vec<Value> = endpoint
        .path
        .split('/')
        .filter_map(|part| part.strip_prefix('{')?.strip_suffix('}'))
        .map(|name| json!({ "name": name, "in": "path", "required": true, "schema": string() }))
        .collect();
    if !params.is_empty() {
        op["parameters"] = Value::Array(params);
    }
    op
}

/// The OpenAPI document.
pub fn build() -> Value {
    let mut paths = serde_json::Map::new();
    for endpoint in ENDPOINTS {
        let entry = paths.entry(endpoint.path).or_insert_with(|| json!({}));
        entry[endpoint.method] = operation(endpoint);
    }
    json!({
        "openapi": "3.1.0",
        "info": { "title": "Cover multi-LLM API", "version": env!("CARGO_PKG_VERSION") },
        "paths": paths,
        "components": {
            "schemas": schemas(),
            "securitySchemes": {
                "session": { "type": "apiKey", "in": "cookie", "name": "cover_session" },
                "projectToken": { "type": "http", "scheme": "bearer", "description": "a project API token (cov_…)" }
            }
        }
    })
}

/// `GET /api/openapi.json`.
pub async fn document() -> Json<Value> {
    Json(build())
}
