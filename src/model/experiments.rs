//! A/B experiments between providers (FR-008): what an owner creates, and the
//! results each arm shows, with the statistics that say whether a difference
//! is real. Shared by the JSON API, the server functions and the Performance
//! screen.
//!
//! * **Arms**: 2 to 4 configurations (provider, model, parameters), each saved
//!   as a configuration version of its own; arm `A` is the control.
//! * **Assignment** is sticky: a conversation (or, through the gateway, an end
//!   user) is mapped onto the weights by a hash of the experiment's seed and
//!   its id, and the arm is stored with the conversation, so changing weights
//!   never moves a running conversation.
//! * **Results stay provisional** until every arm has its planned answers: no
//!   peeking wins. A sample-ratio mismatch (χ² of conversations against the
//!   weights, p < 0.001) flags the assignment as broken.

use crate::model::catalog::ProviderId;
use crate::model::parameters::ParametersPatch;
use crate::model::performance::{Percentiles, Satisfaction};
use serde::{Deserialize, Serialize};

/// Fewest arms an experiment has.
pub const MIN_ARMS: usize = 2;
/// Most arms an experiment has.
pub const MAX_ARMS: usize = 4;
/// The arms' labels, in order: `A` is the control.
pub const ARM_LABELS: [&str; MAX_ARMS] = ["A", "B", "C", "D"];
/// The significance level every comparison is held to (after Holm's correction).
pub const ALPHA: f64 = 0.05;
/// Below this p-value the arms' conversations do not match their weights.
pub const SRM_ALPHA: f64 = 0.001;

crate::model::text_enum! {
    /// What an experiment is decided on.
    pub enum ExperimentMetric {
        /// Thumbs-up share of the rated answers (higher wins).
        Satisfaction = "satisfaction",
        /// Answer latency (lower wins).
        Latency = "latency",
        /// Cost per answer (lower wins).
        Cost = "cost",
    }
}

crate::model::text_enum! {
    /// Whether an experiment still assigns new conversations.
    pub enum ExperimentState {
        /// Assigning new conversations to its arms.
        Running = "running",
        /// Stopped (and perhaps promoted): new conversations use the project's configuration.
        Stopped = "stopped",
    }
}

/// One arm of a new experiment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewArm {
    /// A name people recognise ("GPT-4o mini, cooler").
    #[serde(default)]
    pub name: Option<String>,
    /// The provider.
    pub provider: ProviderId,
    /// A catalog chat model of that provider.
    pub model: String,
    /// Parameters that differ from the project's (others are kept).
    #[serde(default)]
    pub parameters: Option<ParametersPatch>,
    /// Its share of new conversations, 1–100 (relative to the others).
    pub weight: u32,
}

/// What `POST /api/projects/:id/experiments` takes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewExperiment {
    /// What it is called.
    pub name: String,
    /// What it is decided on.
    pub primary_metric: ExperimentMetric,
    /// Answers each arm needs before its results are final (20–1,000,000).
    pub planned_answers_per_arm: u64,
    /// 2 to 4 arms; the first is the control.
    pub arms: Vec<NewArm>,
}

/// What `PATCH /api/projects/:id/experiments/:eid` takes: new weights, by arm
/// label. Running conversations keep their arm.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExperimentWeights {
    /// `{"A": 50, "B": 50}`.
    pub weights: std::collections::BTreeMap<String, u32>,
}

/// What `POST …/experiments/:eid/promote` takes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PromoteArm {
    /// The arm whose configuration becomes the project's.
    pub arm: String,
}

/// The Performance screen's form that starts an experiment, as posted: two
/// arms, each a catalog model (its provider follows) and a weight, all as
/// typed (checked by the server, which names each bad field).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ExperimentForm {
    /// Its name.
    pub name: String,
    /// `satisfaction`, `latency` or `cost`.
    pub primary_metric: String,
    /// Answers each arm needs.
    pub planned_answers_per_arm: String,
    /// Arm A's model.
    pub model_a: String,
    /// Arm A's weight.
    pub weight_a: String,
    /// Arm B's model.
    pub model_b: String,
    /// Arm B's weight.
    pub weight_b: String,
}

/// A test of one arm against the control on one metric.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct Comparison {
    /// `satisfaction`, `errorRate`, `latency` or `cost`.
    pub metric: String,
    /// How it was tested: `two-proportion z` or `Mann-Whitney U`.
    pub test: String,
    /// The arm's value minus the control's (share points, seconds or nano-dollars).
    pub difference: Option<f64>,
    /// Two-sided p-value, before correction (`None` without data on both sides).
    pub p_value: Option<f64>,
    /// After Holm's correction across this arm's metrics.
    pub adjusted_p: Option<f64>,
    /// Adjusted p below [`ALPHA`] and the sample complete.
    pub significant: bool,
    /// Whether the difference favours the arm (for its metric's direction).
    pub better: Option<bool>,
}

/// One arm's configuration and what it measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct ArmResult {
    /// `A`–`D`.
    pub arm: String,
    /// Its name.
    pub name: String,
    /// Its configuration version.
    pub config_version: i64,
    /// Provider assigned.
    pub provider: ProviderId,
    /// Model assigned (catalog id).
    pub model: String,
    /// Its display name.
    pub model_name: String,
    /// Its weight now.
    pub weight: u32,
    /// Conversations (and gateway end users) assigned.
    pub conversations: u64,
    /// Answers asked of it.
    pub answers: u64,
    /// Answers no model gave.
    pub errors: u64,
    /// Failed answers' share (`None` without answers).
    pub error_rate: Option<f64>,
    /// Answers another model gave (the fallback): the arm assigned and who
    /// answered are both recorded.
    pub fallbacks: u64,
    /// Thumbs up share with its 95 % Wilson interval.
    pub satisfaction: Satisfaction,
    /// Answer latency, request to last byte.
    pub latency: Percentiles,
    /// Mean cost of an answer, nano-dollars (`None` without priced answers).
    pub cost_per_answer_nanos: Option<i64>,
    /// Mean cost of a conversation, nano-dollars.
    pub cost_per_conversation_nanos: Option<i64>,
    /// The arm against the control (empty for the control).
    pub comparisons: Vec<Comparison>,
}

/// An experiment with its arms' results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct ExperimentView {
    /// Id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Running or stopped.
    pub state: ExperimentState,
    /// What it is decided on.
    pub primary_metric: ExperimentMetric,
    /// Answers each arm needs.
    pub planned_answers_per_arm: u64,
    /// True until every arm has its planned answers: no difference is
    /// called significant before.
    pub provisional: bool,
    /// χ² p-value of the conversations against the weights.
    pub sample_ratio_p: Option<f64>,
    /// `sample_ratio_p` below [`SRM_ALPHA`]: the assignment is broken.
    pub sample_ratio_mismatch: bool,
    /// At the project's recent traffic, days until every arm has its planned
    /// answers (`None` without recent traffic).
    pub projected_days: Option<f64>,
    /// The arm promoted when it stopped.
    pub promoted_arm: Option<String>,
    /// Arms, control first.
    pub arms: Vec<ArmResult>,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339, when stopped.
    pub stopped_at: Option<String>,
}

/// `GET /api/projects/:id/experiments`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct ExperimentList {
    /// Newest first.
    pub experiments: Vec<ExperimentView>,
    /// The project's answers a day over the last 14 days, for projecting how
    /// long a planned sample takes.
    pub recent_answers_per_day: f64,
}
