//! Cost analysis as the cost page, the admin dashboard and programs see it
//! (FR-007, AC-005, mockup 3): spend from the usage ledger in exact
//! nano-dollars, re-priced "what if" figures, projections and budgets.
//! Shared with the browser.

use crate::model::catalog::ProviderId;
use serde::{Deserialize, Serialize};

crate::model::text_enum! {
    /// What a provider call was for: the ledger keeps every kind, and the
    /// performance figures read only chat answers.
    #[derive(Default)]
    pub enum UsageOperation {
        /// A chat answer (the app's chat, Compare, the gateway).
        #[default]
        Chat = "chat",
        /// Embeddings of document chunks or of a question.
        Embeddings = "embeddings",
        /// Pictures drawn by an image model (the chat's "Generate image",
        /// `POST /v1/images/generations`).
        Images = "images",
    }
}

/// How finely a spend series is bucketed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum Granularity {
    /// One point per UTC day.
    #[default]
    Day,
    /// One point per ISO week (starting Monday, UTC).
    Week,
    /// One point per calendar month (UTC).
    Month,
}

/// Which usage a report covers (`GET /api/projects/:id/llm-usage` query).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct UsageFilter {
    /// First day included, `YYYY-MM-DD` (UTC); default: 29 days before `to`.
    pub from: Option<String>,
    /// Last day included, `YYYY-MM-DD` (UTC); default: today.
    pub to: Option<String>,
    /// Only this provider.
    pub provider: Option<ProviderId>,
    /// Only this model (catalog id).
    pub model: Option<String>,
    /// Series bucket size.
    #[serde(default)]
    pub granularity: Granularity,
}

/// Token counts in the ledger's disjoint buckets, summed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct TokenTotals {
    /// Uncached input tokens.
    pub input_tokens: i64,
    /// Input tokens read from a cache.
    pub cache_read_tokens: i64,
    /// Input tokens written to a cache.
    pub cache_write_tokens: i64,
    /// Output tokens (reasoning included).
    pub output_tokens: i64,
    /// Of the output, reasoning tokens.
    pub reasoning_tokens: i64,
}

/// Spend and usage of one slice (a model, a provider, a project, a day).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct SpendLine {
    /// What the line is about: a model id, a provider id, a project id or a
    /// bucket start date (`YYYY-MM-DD`).
    pub key: String,
    /// A readable name (model or project name, provider label, date).
    pub label: String,
    /// Priced spend in nano-dollars.
    pub cost_nanos: i64,
    /// Attempts whose model had no known price (their cost is not in `cost_nanos`).
    pub unpriced_attempts: i64,
    /// Provider attempts (retries and fallbacks included).
    pub attempts: i64,
    /// Attempts that failed.
    pub failed_attempts: i64,
    /// Attempts answered by a fallback or degraded model (AC-006).
    pub fallback_attempts: i64,
    /// Tokens.
    pub tokens: TokenTotals,
    /// Average attempt duration in ms (`None` without attempts): response
    /// times by provider and model (AC-007).
    pub avg_latency_ms: Option<i64>,
}

/// "If you had used …": the same token buckets re-priced at another model's
/// prices (mockup 3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct WhatIf {
    /// The other model (catalog id).
    pub model: String,
    /// Its display name.
    pub name: String,
    /// Its provider.
    pub provider: ProviderId,
    /// What the period would have cost, in nano-dollars; `None` when the model
    /// has no known price.
    pub cost_nanos: Option<i64>,
    /// Difference to the actual spend in per mille (−700 = 70.0 % cheaper);
    /// `None` when either side is unknown or the actual spend is 0.
    pub difference_permille: Option<i64>,
}

/// A model to switch to for the project's use case, with the saving.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct CostRecommendation {
    /// The recommended model (catalog id).
    pub model: String,
    /// Its display name.
    pub name: String,
    /// Why, in one sentence with the figures.
    pub reason: String,
    /// Saving in per mille of the actual spend (700 = 70 %).
    pub saving_permille: Option<i64>,
}

/// An optimisation suggestion computed from the data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct Suggestion {
    /// Which optimisation it proposes.
    pub kind: SuggestionKind,
    /// What to do and why, with the figures.
    pub message: String,
}

/// Month-end spend projected from the month so far (AC-005).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct Projection {
    /// The month, `YYYY-MM`.
    pub month: String,
    /// Spent so far this month, nano-dollars.
    pub spent_nanos: i64,
    /// Projected month-end spend, nano-dollars.
    pub projected_nanos: i64,
    /// Days of the month elapsed (fractional days count as elapsed time).
    pub days_elapsed: f64,
    /// Days in the month.
    pub days_in_month: u32,
}

/// The admin's limits on Cover's managed keys and this month's spend with
/// them (`GET /api/admin/managed-budget`, the admin page).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct ManagedKeyLimits {
    /// The monthly budget (exact decimal dollars) of every project on managed
    /// keys that sets none of its own.
    pub managed_budget_usd: String,
    /// The monthly cap on all projects' managed-key spend together (decimal
    /// dollars); `None`: no cap.
    pub cap_usd: Option<String>,
    /// The month the figures are for (`YYYY-MM`, UTC).
    pub month: String,
    /// Spent with managed keys this month (decimal dollars).
    pub spent_usd: String,
    /// Held by answers running now (decimal dollars).
    pub held_usd: String,
}

/// A project's monthly budget and where it stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct BudgetStatus {
    /// The monthly limit in nano-dollars; `None` = no budget.
    pub limit_nanos: Option<i64>,
    /// The limit is the workspace's default for projects on Cover's managed
    /// keys: the project has no budget of its own.
    #[serde(default)]
    pub workspace_default: bool,
    /// Spent this month (nano-dollars), reservations of running answers included.
    pub spent_nanos: i64,
    /// When the project spends Cover's managed keys and the admin set a
    /// workspace-wide cap on them: what the cap leaves this month for every
    /// such project together (nano-dollars, running answers' holds deducted).
    #[serde(default)]
    pub workspace_cap_left_nanos: Option<i64>,
    /// Webhook called on alerts, if any.
    pub webhook_url: Option<String>,
    /// Alert thresholds reached this month (50, 80, 100).
    pub alerts_fired: Vec<u8>,
    /// What the budget does to answers now.
    pub state: BudgetState,
}

crate::model::text_enum! {
    /// What a project's budget does to new answers now.
    pub enum BudgetState {
        /// Nothing: answers run as configured.
        Ok = "ok",
        /// A cheaper model of the chain answers.
        Downgraded = "downgraded",
        /// Answers are shortened (max tokens capped).
        Capped = "capped",
        /// Paid models are refused.
        Blocked = "blocked",
    }
}

crate::model::text_enum! {
    /// What an in-app notification is about.
    pub enum NotificationKind {
        /// Half the monthly budget is spent.
        Budget50 = "budget50",
        /// 80 % of the monthly budget is spent.
        Budget80 = "budget80",
        /// The monthly budget is used up.
        Budget100 = "budget100",
    }
}

crate::model::text_enum! {
    /// Which optimisation a cost suggestion proposes.
    pub enum SuggestionKind {
        /// Cache the long, repeated system prompt.
        PromptCaching = "promptCaching",
        /// Move to a model with cheaper output.
        CheaperOutput = "cheaperOutput",
        /// Shorten prompts above the long-context tier.
        TrimLongPrompts = "trimLongPrompts",
        /// The primary fails often: check its key or provider.
        CheckPrimary = "checkPrimary",
    }
}

/// An in-app notification (budget alerts).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct Notification {
    /// Id.
    pub id: String,
    /// What it is about.
    pub kind: NotificationKind,
    /// The text shown.
    pub message: String,
    /// When (RFC 3339).
    pub created_at: String,
    /// Whether someone has read it.
    pub read: bool,
}

/// A project's cost analysis for a period: the cost page and
/// `GET /api/projects/:id/llm-usage`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct CostReport {
    /// First day covered (`YYYY-MM-DD`).
    pub from: String,
    /// Last day covered (`YYYY-MM-DD`).
    pub to: String,
    /// The project's current model (catalog id) and its name.
    pub current_model: String,
    /// Display name of the current model.
    pub current_model_name: String,
    /// Everything in the period.
    pub total: SpendLine,
    /// Conversations with usage in the period.
    pub conversations: i64,
    /// Average cost per conversation in nano-dollars (`None` without conversations).
    pub avg_cost_per_conversation_nanos: Option<i64>,
    /// Spend by model, most expensive first.
    pub by_model: Vec<SpendLine>,
    /// Spend by provider, most expensive first.
    pub by_provider: Vec<SpendLine>,
    /// Spend over time, one line per bucket (`key` = bucket start date).
    pub series: Vec<SpendLine>,
    /// The same usage at every other catalog model's prices.
    pub what_if: Vec<WhatIf>,
    /// The model to switch to for the project's use case, if one saves money.
    pub recommendation: Option<CostRecommendation>,
    /// Optimisation suggestions from the data.
    pub suggestions: Vec<Suggestion>,
    /// Month-end projection of the current month.
    pub projection: Projection,
    /// The budget.
    pub budget: BudgetStatus,
}

/// One expensive conversation (admin dashboard).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct ConversationCost {
    /// Conversation id.
    pub conversation_id: String,
    /// Its title.
    pub title: String,
    /// Its project.
    pub project_id: String,
    /// The project's name.
    pub project_name: String,
    /// What it cost in the period, nano-dollars.
    pub cost_nanos: i64,
    /// Attempts in the period.
    pub attempts: i64,
}

/// Spend across the workspace (admin dashboard, `GET /api/admin/llm-usage`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct WorkspaceCosts {
    /// First day covered.
    pub from: String,
    /// Last day covered.
    pub to: String,
    /// Everything.
    pub total: SpendLine,
    /// By provider.
    pub by_provider: Vec<SpendLine>,
    /// By model.
    pub by_model: Vec<SpendLine>,
    /// By project (`key` = project id, `label` = project name).
    pub by_project: Vec<SpendLine>,
    /// Spend per calendar month by provider: `key` = `YYYY-MM|provider`.
    pub monthly_by_provider: Vec<SpendLine>,
    /// The most expensive conversations.
    pub top_conversations: Vec<ConversationCost>,
}

/// `POST /api/llm/compare`: one sample conversation for several models.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CompareRequest {
    /// The project whose keys and parameters are used.
    pub project_id: String,
    /// The sample question (and optional system prompt).
    pub prompt: String,
    /// Optional system prompt; the project's when absent.
    #[serde(default)]
    pub system_prompt: Option<String>,
    /// Catalog model ids, 1 to 6.
    pub models: Vec<String>,
}

/// One model's answer to the sample.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct CompareResult {
    /// Model id.
    pub model: String,
    /// Display name.
    pub name: String,
    /// Provider.
    pub provider: ProviderId,
    /// The answer (empty on error).
    pub content: String,
    /// Why it failed, if it did.
    pub error: Option<String>,
    /// Latency in ms.
    pub latency_ms: u64,
    /// Input tokens.
    pub input_tokens: u64,
    /// Output tokens.
    pub output_tokens: u64,
    /// Cost in nano-dollars (`None` = unpriced).
    pub cost_nanos: Option<i64>,
}
