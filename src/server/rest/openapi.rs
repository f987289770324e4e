//! `GET /api/openapi.json`: an OpenAPI 3.1 document of every JSON endpoint
//! (the gateway's SDK-compatible `/v1` endpoints included),
//! built from one table, so a new route is one entry here (the integration
//! tests check that every documented route answers and that the routes are
//! all documented). The schemas of the bodies are generated from the very
//! Rust types the handlers read and answer (schemars, JSON Schema 2020-12),
//! so the document cannot drift from the API; the gateway's, which follow
//! OpenAI's format, are written out and checked against real exchanges by
//! the same tests.

use crate::model::access::{PrivateHosts, Scope};
use crate::model::account::{CreatedInvitation, ProjectView, UserView};
use crate::model::api_token::CreatedApiToken;
use crate::model::chat::{
    ChatAnswer, ConversationDetail, ConversationSummary, ImageExchange, NewImage, NewMessage,
};
use crate::model::costs::{
    BudgetStatus, CompareRequest, CompareResult, CostReport, ManagedKeyLimits, WorkspaceCosts,
};
use crate::model::experiments::{
    ExperimentList, ExperimentView, ExperimentWeights, NewExperiment, PromoteArm,
};
use crate::model::knowledge::{DocumentDetail, DocumentView, KnowledgeStatus};
use crate::model::llm_config::{KeyCheck, LlmConfig, LlmConfigPatch};
use crate::model::performance::PerformanceReport;
use crate::model::pricing::InternalRate;
use crate::server::error::ErrorBody;
use crate::server::gateway;
use crate::server::rest;
use crate::server::services::internal_rates::RateChange;
use axum::Json;
use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde_json::{json, Value};

/// How a body is documented: adds a type's schema to the document's
/// components and answers a reference to it.
pub type Body = fn(&mut SchemaGenerator) -> Schema;

/// The schema of `T`, as a [`Body`].
pub fn body<T: JsonSchema>(generator: &mut SchemaGenerator) -> Schema {
    generator.subschema_for::<T>()
}

/// How a request body comes.
#[derive(Clone, Copy)]
pub enum RequestBody {
    /// A JSON body of this schema.
    Json(Body),
    /// A `multipart/form-data` upload whose field `file` is the document.
    MultipartFile,
}

/// One documented endpoint: method, path, summary, request schema, success
/// status and response schema, and the error statuses it can answer.
pub struct Endpoint {
    /// HTTP method, lower case.
    pub method: &'static str,
    /// Path with `{param}` placeholders.
    pub path: &'static str,
    /// What it does.
    pub summary: &'static str,
    /// Request body, if any.
    pub request: Option<RequestBody>,
    /// Success status and response body (`None` for no body).
    pub response: (u16, Option<Body>),
    /// Error statuses.
    pub errors: &'static [u16],
    /// Who may call it.
    pub auth: Auth,
}

/// Who may call an endpoint: what the handler's extractor enforces, and what
/// the authorization-matrix test checks for every kind of caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    /// Nobody needs to be signed in.
    Public,
    /// Anyone signed in (the session cookie).
    Session,
    /// Workspace admins (the session cookie).
    Admin,
    /// A project's people whose role grants `scope` (members chat and read,
    /// owners and admins everything), and, when `tokens`, that project's
    /// tokens carrying `scope`.
    Project {
        /// What the route needs.
        scope: Scope,
        /// Whether a project token may call it.
        tokens: bool,
    },
    /// An owner of some project, a workspace admin, or a `manage` token:
    /// what makes the server reach out to an address the caller names.
    ProjectManager,
    /// A project API token carrying `scope`, acting for its own project (the
    /// gateway for programs; sessions do not reach it). Its errors come in
    /// the SDK format's own shape.
    ProjectToken {
        /// What the route needs.
        scope: Scope,
    },
    /// The operator's own token (`COVER_METRICS_TOKEN`), for monitoring:
    /// no account or project token reaches it.
    Operator,
}

impl Auth {
    /// People and that project's tokens with `scope`.
    pub const fn project(scope: Scope) -> Auth {
        Auth::Project {
            scope,
            tokens: true,
        }
    }

    /// People with `scope` only (tokens never manage tokens or members).
    pub const fn people(scope: Scope) -> Auth {
        Auth::Project {
            scope,
            tokens: false,
        }
    }
}

/// Every JSON endpoint.
pub const ENDPOINTS: &[Endpoint] = &[
    Endpoint {
        method: "post",
        path: "/api/auth/signup",
        summary: "Create an account and sign in: with an invitation, the setup token (makes the admin) or, when sign-up is open, without",
        request: Some(RequestBody::Json(body::<rest::auth::SignUpBody>)),
        response: (201, Some(body::<UserView>)),
        errors: &[400, 403, 409, 422, 503],
        auth: Auth::Public,
    },
    Endpoint {
        method: "post",
        path: "/api/auth/login",
        summary: "Sign in (throttled per account, per account and address, per address)",
        request: Some(RequestBody::Json(body::<rest::auth::Credentials>)),
        response: (200, Some(body::<UserView>)),
        errors: &[400, 401, 422, 429, 503],
        auth: Auth::Public,
    },
    Endpoint {
        method: "post",
        path: "/api/auth/logout",
        summary: "Sign out (ends whatever session the request carries)",
        request: None,
        response: (204, None),
        errors: &[],
        auth: Auth::Public,
    },
    Endpoint {
        method: "get",
        path: "/api/auth/me",
        summary: "The signed-in user",
        request: None,
        response: (200, Some(body::<UserView>)),
        errors: &[401],
        auth: Auth::Session,
    },
    Endpoint {
        method: "get",
        path: "/api/projects",
        summary: "One page of the projects the caller may open (every project for workspace admins), newest first: query limit (1-100, default 50) and cursor (the previous page's nextCursor)",
        request: None,
        response: (200, Some(body::<rest::projects::ProjectList>)),
        errors: &[401],
        auth: Auth::Session,
    },
    Endpoint {
        method: "post",
        path: "/api/projects",
        summary: "Create a project (starts on Claude 3.5 Sonnet)",
        request: Some(RequestBody::Json(body::<rest::projects::NewProject>)),
        response: (201, Some(body::<ProjectView>)),
        errors: &[400, 401, 422],
        auth: Auth::Session,
    },
    Endpoint {
        method: "get",
        path: "/api/projects/{id}",
        summary: "One project",
        request: None,
        response: (200, Some(body::<ProjectView>)),
        errors: &[401, 403, 404],
        auth: Auth::people(Scope::Read),
    },
    Endpoint {
        method: "patch",
        path: "/api/projects/{id}",
        summary: "Rename a project or change its use case",
        request: Some(RequestBody::Json(body::<rest::projects::ProjectPatch>)),
        response: (200, Some(body::<ProjectView>)),
        errors: &[400, 401, 403, 404, 422],
        auth: Auth::people(Scope::Manage),
    },
    Endpoint {
        method: "post",
        path: "/api/projects/{id}/members",
        summary: "Invite an email to a project: a one-time link, whether the email has an account or not",
        request: Some(RequestBody::Json(body::<rest::auth::Invitee>)),
        response: (201, Some(body::<CreatedInvitation>)),
        errors: &[400, 401, 403, 404, 422],
        auth: Auth::people(Scope::Manage),
    },
    Endpoint {
        method: "get",
        path: "/api/projects/{id}/members",
        summary: "A project's members and their roles",
        request: None,
        response: (200, Some(body::<rest::projects::MemberList>)),
        errors: &[401, 403, 404],
        auth: Auth::people(Scope::Read),
    },
    Endpoint {
        method: "delete",
        path: "/api/projects/{id}/members/{userId}",
        summary: "Remove a member (owners; anyone may leave); their tokens are revoked",
        request: None,
        response: (204, None),
        errors: &[401, 403, 404, 409],
        auth: Auth::people(Scope::Manage),
    },
    Endpoint {
        method: "post",
        path: "/api/invitations",
        summary: "Invite an email to the workspace (admins): a one-time sign-up link",
        request: Some(RequestBody::Json(body::<rest::auth::Invitee>)),
        response: (201, Some(body::<CreatedInvitation>)),
        errors: &[400, 401, 403, 422],
        auth: Auth::Admin,
    },
    Endpoint {
        method: "post",
        path: "/api/invitations/accept",
        summary: "Accept an invitation made for the signed-in account's email",
        request: Some(RequestBody::Json(body::<rest::auth::Acceptance>)),
        response: (200, Some(body::<rest::auth::Accepted>)),
        errors: &[400, 401, 409, 422],
        auth: Auth::Session,
    },
    Endpoint {
        method: "get",
        path: "/api/llm/providers",
        summary: "Every provider with its models (the catalog)",
        request: None,
        response: (200, Some(body::<rest::catalog::ProviderList<'static>>)),
        errors: &[],
        auth: Auth::Public,
    },
    Endpoint {
        method: "get",
        path: "/api/llm/providers/{id}/models",
        summary: "One provider's models",
        request: None,
        response: (200, Some(body::<rest::catalog::ModelList<'static>>)),
        errors: &[422],
        auth: Auth::Public,
    },
    Endpoint {
        method: "post",
        path: "/api/llm/providers/{id}/validate",
        summary: "Check an API key with the provider",
        request: Some(RequestBody::Json(body::<rest::settings::KeyToCheck>)),
        response: (200, Some(body::<KeyCheck>)),
        errors: &[400, 401, 403, 422, 429],
        auth: Auth::ProjectManager,
    },
    Endpoint {
        method: "get",
        path: "/api/admin/internal-rates",
        summary: "Internal rates of self-hosted models (workspace admins)",
        request: None,
        response: (200, Some(body::<rest::prices::RateList>)),
        errors: &[401, 403],
        auth: Auth::Admin,
    },
    Endpoint {
        method: "put",
        path: "/api/admin/internal-rates/{model}",
        summary: "Set what a self-hosted model costs from a date: per hour of answer time and/or per 1M tokens (without a rate it costs $0)",
        request: Some(RequestBody::Json(body::<RateChange>)),
        response: (200, Some(body::<InternalRate>)),
        errors: &[400, 401, 403, 422],
        auth: Auth::Admin,
    },
    Endpoint {
        method: "get",
        path: "/api/admin/managed-budget",
        summary: "The limits on Cover's managed keys (the default monthly budget of projects without their own, the workspace-wide monthly cap) and this month's spend with them",
        request: None,
        response: (200, Some(body::<ManagedKeyLimits>)),
        errors: &[401, 403],
        auth: Auth::Admin,
    },
    Endpoint {
        method: "put",
        path: "/api/admin/managed-budget",
        summary: "Set those limits (an empty capUsd removes the cap; absent leaves it)",
        request: Some(RequestBody::Json(body::<rest::prices::ManagedLimitsChange>)),
        response: (200, Some(body::<ManagedKeyLimits>)),
        errors: &[400, 401, 403, 422],
        auth: Auth::Admin,
    },
    Endpoint {
        method: "get",
        path: "/api/admin/private-hosts",
        summary: "The private hosts and networks user-supplied URLs may reach: the operator's (COVER_ALLOWED_PRIVATE_HOSTS) and the admin's",
        request: None,
        response: (200, Some(body::<PrivateHosts>)),
        errors: &[401, 403],
        auth: Auth::Admin,
    },
    Endpoint {
        method: "put",
        path: "/api/admin/private-hosts",
        summary: "Replace the admin's list (host names, addresses, networks; 422 naming an entry it cannot read)",
        request: Some(RequestBody::Json(body::<rest::settings::PrivateHostsChange>)),
        response: (200, Some(body::<PrivateHosts>)),
        errors: &[400, 401, 403, 422],
        auth: Auth::Admin,
    },
    Endpoint {
        method: "post",
        path: "/api/llm/compare",
        summary: "Compare providers on a sample: one question to up to 6 models side by side, with answers, latency, tokens and cost (billed to the project)",
        request: Some(RequestBody::Json(body::<CompareRequest>)),
        response: (200, Some(body::<Vec<CompareResult>>)),
        errors: &[400, 401, 403, 404, 422],
        auth: Auth::project(Scope::Chat),
    },
    Endpoint {
        method: "get",
        path: "/api/projects/{id}/llm-config",
        summary: "The project's current LLM configuration (key masked)",
        request: None,
        response: (200, Some(body::<LlmConfig>)),
        errors: &[401, 403, 404],
        auth: Auth::project(Scope::Read),
    },
    Endpoint {
        method: "patch",
        path: "/api/projects/{id}/llm-config",
        summary: "Change the configuration (saved as a new version); apiKey is write-only",
        request: Some(RequestBody::Json(body::<LlmConfigPatch>)),
        response: (200, Some(body::<LlmConfig>)),
        errors: &[400, 401, 403, 404, 409, 422],
        auth: Auth::project(Scope::Manage),
    },
    Endpoint {
        method: "get",
        path: "/api/projects/{id}/conversations",
        summary: "One page of the project's conversations, most recently active first, with their cost so far: query limit (1-100, default 50) and cursor (the previous page's nextCursor)",
        request: None,
        response: (200, Some(body::<rest::chat::ConversationList>)),
        errors: &[401, 403, 404],
        auth: Auth::project(Scope::Chat),
    },
    Endpoint {
        method: "post",
        path: "/api/projects/{id}/conversations",
        summary: "Start a conversation; it keeps the project's current provider, model and parameters",
        request: None,
        response: (201, Some(body::<ConversationSummary>)),
        errors: &[401, 403, 404],
        auth: Auth::project(Scope::Chat),
    },
    Endpoint {
        method: "get",
        path: "/api/projects/{id}/conversations/{conversation_id}",
        summary: "A conversation with its messages and the facts of every answer",
        request: None,
        response: (200, Some(body::<ConversationDetail>)),
        errors: &[401, 403, 404],
        auth: Auth::project(Scope::Chat),
    },
    Endpoint {
        method: "post",
        path: "/api/projects/{id}/conversations/{conversation_id}/messages",
        summary: "Ask a question. The answer comes as JSON, or as server-sent events (started, delta, fallback, interrupted, then done or error) with Accept: text/event-stream",
        request: Some(RequestBody::Json(body::<NewMessage>)),
        response: (200, Some(body::<ChatAnswer>)),
        errors: &[400, 401, 402, 403, 404, 422, 502],
        auth: Auth::project(Scope::Chat),
    },
    Endpoint {
        method: "post",
        path: "/api/projects/{id}/conversations/{conversation_id}/images",
        summary: "Draw a picture in a GPT conversation (FR-005): the prompt and the picture are stored as a question and its answer, priced and in the ledger; 422 where the provider has no image generation",
        request: Some(RequestBody::Json(body::<NewImage>)),
        response: (201, Some(body::<ImageExchange>)),
        errors: &[401, 402, 403, 404, 409, 422, 502],
        auth: Auth::project(Scope::Chat),
    },
    Endpoint {
        method: "put",
        path: "/api/projects/{id}/conversations/{conversation_id}/messages/{message_id}/rating",
        summary: "Thumbs up or down on an answer (null clears it)",
        request: Some(RequestBody::Json(body::<rest::chat::RatingBody>)),
        response: (204, None),
        errors: &[400, 401, 403, 404],
        auth: Auth::project(Scope::Chat),
    },
    Endpoint {
        method: "get",
        path: "/api/projects/{id}/budget",
        summary: "The monthly budget and where it stands: spent (running answers' reservations included), alerts fired, what the ladder does now",
        request: None,
        response: (200, Some(body::<BudgetStatus>)),
        errors: &[401, 403, 404],
        auth: Auth::project(Scope::Read),
    },
    Endpoint {
        method: "put",
        path: "/api/projects/{id}/budget",
        summary: "Set the monthly budget (exact dollars) and its alert webhook; a null limit removes it",
        request: Some(RequestBody::Json(body::<rest::budgets::BudgetChange>)),
        response: (200, Some(body::<BudgetStatus>)),
        errors: &[400, 401, 403, 404, 422],
        auth: Auth::project(Scope::Manage),
    },
    Endpoint {
        method: "post",
        path: "/api/projects/{id}/documents",
        summary: "Upload a knowledge base document (multipart field `file`: text, Markdown, HTML or PDF, at most 10 MB): its text is split into chunks and embedded in the background; 413 over the limit, 422 naming `file` for an unsupported type or an empty or unreadable file (nothing is stored then)",
        request: Some(RequestBody::MultipartFile),
        response: (201, Some(body::<DocumentView>)),
        errors: &[400, 401, 403, 404, 413, 422],
        auth: Auth::project(Scope::Manage),
    },
    Endpoint {
        method: "get",
        path: "/api/projects/{id}/documents",
        summary: "The project's knowledge base documents, newest first",
        request: None,
        response: (200, Some(body::<rest::knowledge::DocumentList>)),
        errors: &[401, 403, 404],
        auth: Auth::project(Scope::Read),
    },
    Endpoint {
        method: "get",
        path: "/api/projects/{id}/documents/{documentId}",
        summary: "One document with its chunks (text, section, tokens)",
        request: None,
        response: (200, Some(body::<DocumentDetail>)),
        errors: &[401, 403, 404],
        auth: Auth::project(Scope::Read),
    },
    Endpoint {
        method: "delete",
        path: "/api/projects/{id}/documents/{documentId}",
        summary: "Delete a document with its chunks and vectors",
        request: None,
        response: (204, None),
        errors: &[401, 403, 404],
        auth: Auth::project(Scope::Manage),
    },
    Endpoint {
        method: "get",
        path: "/api/projects/{id}/knowledge/status",
        summary: "Where the knowledge index stands: building (chunks done of total, ETA), ready or failed (the previous index still serves), with the embedding model",
        request: None,
        response: (200, Some(body::<KnowledgeStatus>)),
        errors: &[401, 403, 404],
        auth: Auth::project(Scope::Read),
    },
    Endpoint {
        method: "get",
        path: "/api/projects/{id}/knowledge/events",
        summary: "The same status as a live event stream (text/event-stream): a `status` event now and after each change",
        request: None,
        response: (200, None),
        errors: &[401, 403, 404],
        auth: Auth::project(Scope::Read),
    },
    Endpoint {
        method: "get",
        path: "/api/projects/{id}/notifications",
        summary: "The project's notifications (budget alerts at 50, 80 and 100 %), newest first",
        request: None,
        response: (200, Some(body::<rest::budgets::NotificationList>)),
        errors: &[401, 403, 404],
        auth: Auth::project(Scope::Read),
    },
    Endpoint {
        method: "post",
        path: "/api/projects/{id}/notifications/read",
        summary: "Mark every notification of the project read",
        request: None,
        response: (204, None),
        errors: &[401, 403, 404],
        auth: Auth::project(Scope::Read),
    },
    Endpoint {
        method: "post",
        path: "/api/projects/{id}/llm-config/test",
        summary: "Test Connection with the key the project would use",
        request: Some(RequestBody::Json(body::<rest::settings::ConnectionToTest>)),
        response: (200, Some(body::<KeyCheck>)),
        errors: &[400, 401, 403, 404],
        auth: Auth::project(Scope::Manage),
    },
    Endpoint {
        method: "get",
        path: "/api/projects/{id}/tokens",
        summary: "The project's API tokens",
        request: None,
        response: (200, Some(body::<rest::settings::TokenList>)),
        errors: &[401, 403, 404],
        auth: Auth::people(Scope::Read),
    },
    Endpoint {
        method: "post",
        path: "/api/projects/{id}/tokens",
        summary: "Create an API token (its secret is shown once)",
        request: Some(RequestBody::Json(body::<rest::settings::NewToken>)),
        response: (201, Some(body::<CreatedApiToken>)),
        errors: &[400, 401, 403, 404, 422],
        auth: Auth::people(Scope::Manage),
    },
    Endpoint {
        method: "delete",
        path: "/api/projects/{id}/tokens/{tokenId}",
        summary: "Revoke an API token",
        request: None,
        response: (204, None),
        errors: &[401, 403, 404],
        auth: Auth::people(Scope::Manage),
    },
    Endpoint {
        method: "get",
        path: "/api/projects/{id}/llm-usage",
        summary: "Usage and cost for a period: totals, conversations, by model and provider, the series, what other models would have cost, the recommendation, suggestions, the month-end projection and the budget. Query: from, to (YYYY-MM-DD, UTC, both included; default the last 30 days, at most 366), provider, model, granularity (day, week, month)",
        request: None,
        response: (200, Some(body::<CostReport>)),
        errors: &[400, 401, 403, 404, 422],
        auth: Auth::project(Scope::Read),
    },
    Endpoint {
        method: "get",
        path: "/api/projects/{id}/llm-usage.csv",
        summary: "The usage ledger of a period as CSV (text/csv), one line per provider attempt; cost_usd is an exact decimal, empty when unpriced. Same query as llm-usage",
        request: None,
        response: (200, None),
        errors: &[400, 401, 403, 404, 422],
        auth: Auth::project(Scope::Read),
    },
    Endpoint {
        method: "get",
        path: "/api/admin/llm-usage",
        summary: "Workspace admins: spend by provider, model and project, monthly by provider, and the 10 most expensive conversations. Query: from, to, provider, model",
        request: None,
        response: (200, Some(body::<WorkspaceCosts>)),
        errors: &[400, 401, 403, 422],
        auth: Auth::Admin,
    },
    Endpoint {
        method: "get",
        path: "/api/admin/llm-usage.csv",
        summary: "Workspace admins: every project's usage ledger of a period as CSV (text/csv). Same query as llm-usage",
        request: None,
        response: (200, None),
        errors: &[400, 401, 403, 422],
        auth: Auth::Admin,
    },
    Endpoint {
        method: "get",
        path: "/api/projects/{id}/llm-performance",
        summary: "How each provider's model performs for the project (FR-008): attempts, answers, success and error rates by class, latency and TTFT p50/p95/p99 in seconds (marked lowSample under 20 values), output tokens/s, fallback activation and success, satisfaction with a 95 % Wilson interval, and a series; query: from, to, provider, model, granularity",
        request: None,
        response: (200, Some(body::<PerformanceReport>)),
        errors: &[401, 403, 404, 422],
        auth: Auth::project(Scope::Read),
    },
    Endpoint {
        method: "get",
        path: "/api/projects/{id}/experiments",
        summary: "The project's A/B experiments, newest first, each with its arms' results and tests against the control, and the project's recent answers a day (for projecting a planned sample)",
        request: None,
        response: (200, Some(body::<ExperimentList>)),
        errors: &[401, 403, 404],
        auth: Auth::project(Scope::Read),
    },
    Endpoint {
        method: "post",
        path: "/api/projects/{id}/experiments",
        summary: "Start an A/B experiment (owners): 2–4 arms, each a provider, model and parameters saved as a configuration version of its own, with weights; new conversations are assigned to arms stickily; 422 naming every invalid field, 409 while another runs",
        request: Some(RequestBody::Json(body::<NewExperiment>)),
        response: (201, Some(body::<ExperimentView>)),
        errors: &[401, 403, 404, 409, 422],
        auth: Auth::project(Scope::Manage),
    },
    Endpoint {
        method: "get",
        path: "/api/projects/{id}/experiments/{experiment_id}",
        summary: "One experiment: per arm conversations, answers, errors, fallbacks, satisfaction with its Wilson interval, latency p50/p95, cost per answer and conversation; two-proportion and Mann-Whitney tests against the control with Holm's correction, provisional until the planned sample, and the sample-ratio check",
        request: None,
        response: (200, Some(body::<ExperimentView>)),
        errors: &[401, 403, 404],
        auth: Auth::project(Scope::Read),
    },
    Endpoint {
        method: "patch",
        path: "/api/projects/{id}/experiments/{experiment_id}",
        summary: "New weights for a running experiment (owners); assigned conversations keep their arm",
        request: Some(RequestBody::Json(body::<ExperimentWeights>)),
        response: (200, Some(body::<ExperimentView>)),
        errors: &[401, 403, 404, 409, 422],
        auth: Auth::project(Scope::Manage),
    },
    Endpoint {
        method: "post",
        path: "/api/projects/{id}/experiments/{experiment_id}/stop",
        summary: "Stop an experiment (owners): new conversations use the project's configuration again",
        request: None,
        response: (200, Some(body::<ExperimentView>)),
        errors: &[401, 403, 404, 409],
        auth: Auth::project(Scope::Manage),
    },
    Endpoint {
        method: "post",
        path: "/api/projects/{id}/experiments/{experiment_id}/promote",
        summary: "Promote an arm (owners): its provider, model and parameters become the project's configuration through the settings service, and the experiment stops",
        request: Some(RequestBody::Json(body::<PromoteArm>)),
        response: (200, Some(body::<rest::experiments::Promoted>)),
        errors: &[401, 403, 404, 409, 422],
        auth: Auth::project(Scope::Manage),
    },
    Endpoint {
        method: "get",
        path: "/api/admin/llm-performance",
        summary: "The performance report across the workspace (admins)",
        request: None,
        response: (200, Some(body::<PerformanceReport>)),
        errors: &[401, 403, 422],
        auth: Auth::Admin,
    },
    Endpoint {
        method: "post",
        path: "/v1/chat/completions",
        summary: "OpenAI-compatible chat completion through the project's routing, fallback, budget and ledger (JSON, or server-sent chunks with stream: true); model: a catalog id of any provider or cover/default",
        request: Some(RequestBody::Json(gateway::openai::request_schema)),
        response: (200, Some(gateway::openai::completion_schema)),
        errors: &[400, 401, 403, 429, 502, 503],
        auth: Auth::ProjectToken { scope: Scope::Chat },
    },
    Endpoint {
        method: "post",
        path: "/v1/messages",
        summary: "Anthropic-compatible Messages (token as x-api-key or bearer): the same routing to any provider; JSON, or Anthropic's stream events with stream: true",
        request: Some(RequestBody::Json(gateway::anthropic::request_schema)),
        response: (200, Some(gateway::anthropic::message_schema)),
        errors: &[400, 401, 403, 429, 502, 503, 529],
        auth: Auth::ProjectToken { scope: Scope::Chat },
    },
    Endpoint {
        method: "post",
        path: "/v1/embeddings",
        summary: "Embeddings in OpenAI's format with any provider's embedding model (or `cover/default`, the project's), through the budget gate and the ledger; float or base64",
        request: Some(RequestBody::Json(gateway::embeddings::request_schema)),
        response: (200, Some(gateway::embeddings::response_schema)),
        errors: &[400, 401, 403, 429, 502],
        auth: Auth::ProjectToken { scope: Scope::Chat },
    },
    Endpoint {
        method: "post",
        path: "/v1/images/generations",
        summary: "Image generation in OpenAI's format with a GPT Image model (or `cover/default`, the project's), through the budget gate and the ledger; PNG as b64_json",
        request: Some(RequestBody::Json(gateway::images::request_schema)),
        response: (200, Some(gateway::images::response_schema)),
        errors: &[400, 401, 403, 429, 502],
        auth: Auth::ProjectToken { scope: Scope::Chat },
    },
    Endpoint {
        method: "get",
        path: "/v1/models",
        summary: "The models this project can route to (OpenAI's list format): exactly the ids /v1/chat/completions accepts",
        request: None,
        response: (200, Some(gateway::openai::models_schema)),
        errors: &[401, 403],
        auth: Auth::ProjectToken { scope: Scope::Chat },
    },
    Endpoint {
        method: "get",
        path: "/metrics",
        summary: "Prometheus metrics of every provider attempt (OpenMetrics text): attempts by outcome, latency and first-token histograms, tokens, cost in nano-dollars and unpriced attempts, by provider and model; 404 unless the operator set COVER_METRICS_TOKEN",
        request: None,
        response: (200, None),
        errors: &[401, 404],
        auth: Auth::Operator,
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

fn operation(endpoint: &Endpoint, generator: &mut SchemaGenerator) -> Value {
    let mut responses = serde_json::Map::new();
    let (status, success) = endpoint.response;
    responses.insert(
        status.to_string(),
        match success {
            Some(schema) => json!({ "description": "success", "content": { "application/json": { "schema": schema(generator) } } }),
            None => json!({ "description": "success" }),
        },
    );
    let error = match (endpoint.auth, endpoint.path) {
        (Auth::ProjectToken { .. }, "/v1/messages") => gateway::anthropic::error_schema(generator),
        (Auth::ProjectToken { .. }, _) => gateway::openai::error_schema(generator),
        _ => generator.subschema_for::<ErrorBody>(),
    };
    for code in endpoint.errors {
        responses.insert(
            code.to_string(),
            json!({ "description": "error", "content": { "application/json": { "schema": error } } }),
        );
    }
    let mut op = json!({ "summary": endpoint.summary, "responses": responses });
    match endpoint.request {
        Some(RequestBody::Json(schema)) => {
            op["requestBody"] = json!({ "required": true, "content": { "application/json": { "schema": schema(generator) } } });
        }
        Some(RequestBody::MultipartFile) => {
            op["requestBody"] = json!({ "required": true, "content": { "multipart/form-data": { "schema": {
                "type": "object",
                "required": ["file"],
                "properties": { "file": { "type": "string", "format": "binary", "description": "text, Markdown, HTML or PDF; at most 10 MB" } }
            } } } });
        }
        None => {}
    }
    op["security"] = match endpoint.auth {
        Auth::Public => json!([]),
        Auth::Session | Auth::Admin | Auth::Project { tokens: false, .. } => {
            json!([{ "session": [] }])
        }
        Auth::Project {
            scope,
            tokens: true,
        } => json!([{ "session": [] }, { "projectToken": [scope.as_str()] }]),
        Auth::ProjectManager => json!([{ "session": [] }, { "projectToken": ["manage"] }]),
        Auth::ProjectToken { scope } => json!([{ "projectToken": [scope.as_str()] }]),
        Auth::Operator => json!([{ "operatorToken": [] }]),
    };
    let params: Vec<Value> = endpoint
        .path
        .split('/')
        .filter_map(|part| part.strip_prefix('{')?.strip_suffix('}'))
        .map(|name| json!({ "name": name, "in": "path", "required": true, "schema": { "type": "string" } }))
        .collect();
    if !params.is_empty() {
        op["parameters"] = Value::Array(params);
    }
    op
}

/// The OpenAPI document.
pub fn build() -> Value {
    let mut settings = SchemaSettings::draft2020_12();
    settings.definitions_path = "/components/schemas".into();
    let mut generator = SchemaGenerator::new(settings);
    let mut paths = serde_json::Map::new();
    for endpoint in ENDPOINTS {
        let entry = paths.entry(endpoint.path).or_insert_with(|| json!({}));
        entry[endpoint.method] = operation(endpoint, &mut generator);
    }
    json!({
        "openapi": "3.1.0",
        "info": { "title": "Cover multi-LLM API", "version": env!("CARGO_PKG_VERSION") },
        "paths": paths,
        "components": {
            "schemas": generator.take_definitions(true),
            "securitySchemes": {
                "session": { "type": "apiKey", "in": "cookie", "name": "cover_session", "description": "`__Host-cover_session` when the site is served over TLS" },
                "projectToken": { "type": "http", "scheme": "bearer", "description": "a project API token (cov_…)" },
                "operatorToken": { "type": "http", "scheme": "bearer", "description": "the operator's COVER_METRICS_TOKEN" }
            }
        }
    })
}

/// `GET /api/openapi.json`.
pub async fn document() -> Json<Value> {
    Json(build())
}
