//! `/projects/:id/settings`: the project's LLM configuration (spec mockup 1) —
//! provider, model with its facts, parameters, advanced settings and presets,
//! API key management with Test Connection, fallback, Cancel and Save.
//!
//! Before hydration it is a plain form: Change and the presets reload the page
//! with `?provider=` / `?preset=`, Save posts and the server validates. After
//! hydration the same form updates in place: the model list follows the
//! provider, ranges follow the provider, invalid values are flagged as you type
//! and Save is refused until they are fixed. Cancel reloads the saved
//! configuration, discarding unsaved changes.

use crate::components::capability::CapabilityMark;
use crate::components::error_notice::{action_error, ErrorNotice, SignInNeeded};
use crate::components::knowledge_progress::{use_live_status, KnowledgeProgress};
use crate::error::{AppError, FieldError};
use crate::model::access::{scopes_to_text, Scope, DEFAULT_TOKEN_SCOPES};
use crate::model::account::{ProjectRole, UseCase};
use crate::model::catalog::{format_tokens, Catalog, ModelInfo, ProviderId};
use crate::model::knowledge::{EmbeddingChange, KnowledgeStatus};
use crate::model::llm_config::{
    fallback_problems, preset, KeySource, LlamaFlavour, MAX_RETRY_ATTEMPTS,
};
use crate::model::parameters::{
    validate_parameters, ModelLimits, Param, Parameters, SafetySetting, GEMINI_SAFETY_THRESHOLDS,
};
use crate::model::recommend::{recommend, Observations};
use crate::model::settings_form::{SettingsForm, SAFETY_CATEGORIES};
use crate::pages::project::use_project_id;
use crate::server_fns::projects::{list_members, InviteMember, RemoveMember};
use crate::server_fns::settings::{
    get_settings, CreateApiToken, RevokeApiToken, SaveSettings, SettingsData, TestConnection,
};
use leptos::prelude::*;
use leptos_router::hooks::use_query_map;
use leptos_router::{lazy_route, LazyRoute};
use std::sync::Arc;

/// The settings screen as a lazily loaded route: its code is a separate wasm chunk,
/// fetched when the route is first shown (see `scripts/build`).
pub struct SettingsRoute;

#[lazy_route]
impl LazyRoute for SettingsRoute {
    fn data() -> Self {
        Self
    }

    fn view(_this: Self) -> AnyView {
        view! { <SettingsPage/> }.into_any()
    }
}

/// Loads the configuration and shows the editor.
#[component]
pub fn SettingsPage() -> impl IntoView {
    let project_id = use_project_id();
    let data = Resource::new(move || project_id.get(), get_settings);
    view! {
        <Suspense fallback=|| view! { <p class="muted">"Loading settings…"</p> }>
            {move || Suspend::new(async move {
                match data.await {
                    Ok(data) => view! { <SettingsEditor data=data/> }.into_any(),
                    Err(AppError::Unauthenticated { .. }) => view! { <SignInNeeded/> }.into_any(),
                    Err(AppError::NotFound) => ().into_any(),
                    Err(error) => view! { <p class="notice error">{error.to_string()}</p> }.into_any(),
                }
            })}
        </Suspense>
    }
}

/// The editable values of the form, as the inputs hold them (text).
#[derive(Clone, Copy)]
struct Fields {
    provider: RwSignal<ProviderId>,
    model: RwSignal<String>,
    temperature: RwSignal<String>,
    max_tokens: RwSignal<String>,
    top_p: RwSignal<String>,
    top_k: RwSignal<String>,
    frequency_penalty: RwSignal<String>,
    presence_penalty: RwSignal<String>,
    system_prompt: RwSignal<String>,
    key_source: RwSignal<KeySource>,
    api_key: RwSignal<String>,
    fallback_enabled: RwSignal<bool>,
    fallback_model: RwSignal<String>,
    retry_attempts: RwSignal<String>,
    /// The fixed embedding model; empty follows the provider.
    embedding_model: RwSignal<String>,
}

fn text(value: Option<f64>) -> String {
    value.map(|v| v.to_string()).unwrap_or_default()
}

impl Fields {
    /// The saved configuration, with the unsaved `?provider=` / `?preset=` applied.
    fn new(
        data: &SettingsData,
        provider: Option<ProviderId>,
        use_preset: Option<UseCase>,
    ) -> Fields {
        let config = &data.config;
        let p = &config.parameters;
        let fields = Fields {
            provider: RwSignal::new(config.provider),
            model: RwSignal::new(config.model.clone()),
            temperature: RwSignal::new(text(p.temperature)),
            max_tokens: RwSignal::new(p.max_tokens.map(|v| v.to_string()).unwrap_or_default()),
            top_p: RwSignal::new(text(p.top_p)),
            top_k: RwSignal::new(p.top_k.map(|v| v.to_string()).unwrap_or_default()),
            frequency_penalty: RwSignal::new(text(p.frequency_penalty)),
            presence_penalty: RwSignal::new(text(p.presence_penalty)),
            system_prompt: RwSignal::new(config.system_prompt.clone()),
            key_source: RwSignal::new(config.api_key_source),
            api_key: RwSignal::new(String::new()),
            fallback_enabled: RwSignal::new(config.fallback_config.enabled),
            fallback_model: RwSignal::new(config.fallback_config.model.clone()),
            retry_attempts: RwSignal::new(config.fallback_config.retry_attempts.to_string()),
            embedding_model: RwSignal::new(config.embedding_model.clone().unwrap_or_default()),
        };
        if let Some(provider) = provider {
            fields.switch_provider(&data.catalog, provider);
        }
        if let Some(use_case) = use_preset {
            fields.apply_preset(&data.catalog, use_case);
        }
        fields
    }

    /// A new provider brings its default model; values it does not take are cleared.
    fn switch_provider(&self, catalog: &Catalog, provider: ProviderId) {
        if provider == self.provider.get_untracked() {
            return;
        }
        self.provider.set(provider);
        if let Some(info) = catalog.provider(provider) {
            self.model.set(info.default_model.clone());
        }
        for (param, value) in [
            (Param::TopK, self.top_k),
            (Param::FrequencyPenalty, self.frequency_penalty),
            (Param::PresencePenalty, self.presence_penalty),
        ] {
            if !param.supported_by(provider) {
                value.set(String::new());
            }
        }
    }

    fn apply_preset(&self, catalog: &Catalog, use_case: UseCase) {
        let preset = preset(use_case);
        let cap = catalog
            .model(&self.model.get_untracked())
            .map_or(preset.max_tokens, |m| {
                ModelLimits::from(m)
                    .max_output_tokens
                    .min(preset.max_tokens)
            });
        self.temperature.set(preset.temperature.to_string());
        self.max_tokens.set(cap.to_string());
        self.top_p.set(preset.top_p.to_string());
        self.system_prompt.set(preset.system_prompt.to_owned());
    }

    /// Every problem the browser can see before saving (the server checks
    /// again): the form's numbers read by the same parser the server uses,
    /// then the same parameter and fallback rules.
    fn problems(&self, catalog: &Catalog) -> Vec<FieldError> {
        let form = SettingsForm {
            provider: self.provider.get().as_str().to_owned(),
            temperature: self.temperature.get(),
            max_tokens: self.max_tokens.get(),
            top_p: self.top_p.get(),
            top_k: Some(self.top_k.get()),
            frequency_penalty: Some(self.frequency_penalty.get()),
            presence_penalty: Some(self.presence_penalty.get()),
            ..SettingsForm::default()
        };
        let (patch, mut errors) = form.parameters_patch();
        let mut parameters = Parameters::default();
        patch.apply_to(&mut parameters);
        let mut bad = |field: &str, message: String| {
            errors.push(FieldError {
                field: field.to_owned(),
                message,
            })
        };
        let limits = catalog.model(&self.model.get()).map(ModelLimits::from);
        if let Err(param_errors) =
            validate_parameters(self.provider.get(), &parameters, limits.as_ref())
        {
            for e in param_errors {
                bad(
                    &format!("parameters.{}", e.field),
                    format!("{} (allowed: {})", e.message, e.allowed),
                );
            }
        }
        let retry_attempts = self.retry_attempts.get().trim().parse().unwrap_or(u32::MAX);
        errors.extend(fallback_problems(
            self.fallback_enabled.get(),
            &self.fallback_model.get(),
            retry_attempts,
            &self.model.get(),
        ));
        errors
    }
}

fn model_facts(model: &ModelInfo) -> String {
    let cost = match &model.pricing {
        Some(p) => format!("{}/{} per 1M tokens", p.input_per_m_tok, p.output_per_m_tok),
        None => "$0* (self-hosted: infrastructure costs apply)".into(),
    };
    format!(
        "Context: {} tokens | Cost: {cost} | Speed: {} | Max output: {}",
        format_tokens(model.context_window),
        model.speed.label(),
        format_tokens(model.max_output)
    )
}

/// The whole settings form: the page's state (fields, the save and Test
/// Connection actions, every field problem) and its sections.
#[component]
fn SettingsEditor(data: SettingsData) -> impl IntoView {
    let query = use_query_map();
    let requested_provider = query
        .with_untracked(|q| q.get("provider"))
        .and_then(|p| ProviderId::parse(&p));
    let requested_preset = query
        .with_untracked(|q| q.get("preset"))
        .and_then(|p| UseCase::parse(&p));
    let saved_version = query.with_untracked(|q| q.get("saved"));
    let fields = Fields::new(&data, requested_provider, requested_preset);
    let catalog = Arc::new(data.catalog.clone());
    let project_id = data.config.project_id.clone();
    // The saved provider and its masked key: from the page load, then from each save.
    let stored_key = RwSignal::new((data.config.provider, data.config.api_key_masked.clone()));

    let save = ServerAction::<SaveSettings>::new();
    Effect::new(move |_| {
        if let Some(Ok(config)) = save.value().get() {
            stored_key.set((config.provider, config.api_key_masked.clone()));
            fields.api_key.set(String::new());
        }
    });
    let client_problems = {
        let catalog = catalog.clone();
        Memo::new(move |_| fields.problems(&catalog))
    };
    let server_problems = Signal::derive(move || {
        save.value()
            .get()
            .and_then(Result::err)
            .map(|e| e.field_errors())
            .unwrap_or_default()
    });
    let problems = Signal::derive(move || {
        let mut all = client_problems.get();
        all.extend(server_problems.get());
        all
    });
    let blocked = Signal::derive(move || !client_problems.get().is_empty());
    let saved_notice = move || {
        let version = save
            .value()
            .get()
            .and_then(Result::ok)
            .map(|c| c.version.to_string())
            .or_else(|| saved_version.clone())?;
        Some(view! {
            <p class="notice ok" role="status" data-test="save-confirmation">
                {format!("Saved as version {version}. New conversations use it; existing conversations keep their own version.")}
            </p>
        })
    };
    let cancel_href = format!("/projects/{project_id}/settings");
    let can_manage = data.role.grants(Scope::Manage);
    let read_only_notice = (!can_manage).then(|| {
        view! {
            <p class="notice" role="status" data-test="read-only">
                "You are a member of this project: you can see its settings; its owners change them."
            </p>
        }
    });

    view! {
        <section class="card" data-test="settings">
            <h2>"LLM Provider & Model"</h2>
            {saved_notice}
            {read_only_notice}
            <ProviderPicker catalog=catalog.clone() fields=fields/>
            <ActionForm action=save attr:data-test="settings-form" attr:class="settings-form">
                <fieldset class="plain" disabled=!can_manage data-test="settings-fields">
                <input type="hidden" name="project_id" value=project_id.clone()/>
                <input type="hidden" name="form[provider]" prop:value=move || fields.provider.get().as_str()/>
                <ModelSection catalog=catalog.clone() fields=fields use_case=data.use_case
                    observed=Arc::new(data.observed.clone()) problems=problems/>
                <ParametersSection catalog=catalog.clone() fields=fields problems=problems
                    safety=data.config.parameters.safety_settings.clone()/>
                <LlamaServerSection fields=fields problems=problems
                    base_url=data.config.base_url.clone().unwrap_or_default() flavour=data.config.llama_flavour/>
                <KeySection fields=fields problems=problems blocked=blocked managed=data.managed.clone()
                    stored_key=stored_key project_id=project_id.clone()/>
                <FallbackSection catalog=catalog.clone() fields=fields problems=problems/>
                <KnowledgeSection catalog=catalog.clone() fields=fields problems=problems
                    status=data.knowledge.clone()/>
                <ErrorNotice error=action_error(save) test_id="save-error"/>
                <div class="row end">
                    <a href=cancel_href class="button secondary" rel="external" data-test="cancel">"Cancel"</a>
                    <button type="submit" data-test="save" disabled=move || blocked.get()>"Save Changes"</button>
                </div>
                </fieldset>
            </ActionForm>
        </section>
        <Members project_id=data.config.project_id.clone() can_manage=can_manage/>
        <ApiTokens project_id=data.config.project_id.clone() initial=data.tokens.clone() can_manage=can_manage/>
    }
}

/// "Active Provider": a GET form before hydration, an instant switch after.
#[component]
fn ProviderPicker(catalog: Arc<Catalog>, fields: Fields) -> impl IntoView {
    let provider_options = {
        let catalog = catalog.clone();
        move || {
            catalog
                .providers
                .iter()
                .map(|p| {
                    let id = p.id;
                    view! { <option value=id.as_str() selected=move || fields.provider.get() == id>{p.name.clone()}</option> }
                })
                .collect_view()
        }
    };
    let on_provider_change = {
        let catalog = catalog.clone();
        move |ev: leptos::ev::Event| {
            if let Some(provider) = ProviderId::parse(&event_target_value(&ev)) {
                fields.switch_provider(&catalog, provider);
            }
        }
    };
    view! {
        <h3>"Active Provider"</h3>
        <form method="get" class="inline" data-test="provider-form">
            <label for="provider">"Provider"</label>
            <select id="provider" name="provider" data-test="provider" on:change=on_provider_change>
                {provider_options}
            </select>
            <button type="submit" class="secondary" data-test="provider-change">"Change"</button>
        </form>
    }
}

/// "Model Selection": the provider's models, the recommendation for the
/// project's use case and the chosen model's facts.
#[component]
fn ModelSection(
    catalog: Arc<Catalog>,
    fields: Fields,
    use_case: UseCase,
    /// What the project measured, which recommendations take into account.
    observed: Arc<Observations>,
    problems: Signal<Vec<FieldError>>,
) -> impl IntoView {
    let model_options = {
        let catalog = catalog.clone();
        let observed = observed.clone();
        move || {
            let provider = fields.provider.get();
            let recommended =
                recommend(&catalog, use_case, Some(provider), &observed).map(|r| r.model);
            catalog
                .models_of(provider)
                .map(|m| {
                    let id = m.id.clone();
                    let label = if recommended.as_deref() == Some(m.id.as_str()) {
                        format!("{} (Recommended)", m.name)
                    } else {
                        m.name.clone()
                    };
                    view! { <option value=m.id.clone() selected=move || fields.model.get() == id>{label}</option> }
                })
                .collect_view()
        }
    };
    let recommendation = {
        let catalog = catalog.clone();
        move || {
            recommend(&catalog, use_case, Some(fields.provider.get()), &observed).map(|r| {
                view! { <p class="muted" data-test="recommendation">{format!("Recommended for {}: {}", use_case.label().to_lowercase(), r.reason)}</p> }
            })
        }
    };
    let facts = {
        let catalog = catalog.clone();
        move || {
            catalog.model(&fields.model.get()).map(|m| {
                let caps = m.capabilities;
                let marks = [
                    ("Vision", "vision", caps.vision),
                    ("Tool use", "tools", caps.tools),
                    ("Streaming", "streaming", caps.streaming),
                    ("Search grounding", "grounding", caps.grounding),
                    ("Full privacy (self-hosted)", "privacy", caps.self_hosted),
                ];
                view! {
                    <p data-test="model-facts">{model_facts(m)}</p>
                    <ul class="caps" data-test="model-capabilities">
                        {marks
                            .into_iter()
                            .map(|(label, key, yes)| view! {
                                <li data-test=format!("cap-{key}")>{label} ": " <CapabilityMark available=yes/></li>
                            })
                            .collect_view()}
                    </ul>
                }
            })
        }
    };
    view! {
        <h3>"Model Selection"</h3>
        <label for="model">"Model"</label>
        <select id="model" name="form[model]" data-test="model" on:change=move |ev| fields.model.set(event_target_value(&ev))>
            {model_options}
        </select>
        <FieldProblem field="model" problems=problems/>
        {recommendation}
        {facts}
    }
}

/// The embedding model the Knowledge base uses: the provider's by default or
/// a fixed one, with what Save would do to the index said before Save, and
/// the index's progress (live).
#[component]
fn KnowledgeSection(
    catalog: Arc<Catalog>,
    fields: Fields,
    problems: Signal<Vec<FieldError>>,
    status: KnowledgeStatus,
) -> impl IntoView {
    let project_id = use_project_id();
    let status = use_live_status(project_id, status);
    let following = {
        let catalog = catalog.clone();
        move || {
            catalog
                .default_embedding_model(fields.provider.get())
                .map_or_else(|| "none".to_owned(), |m| m.name.clone())
        }
    };
    let options = catalog
        .embedding_models
        .iter()
        .map(|m| {
            let id = m.id.clone();
            let dimensions = m.embedding.map(|e| e.dimensions).unwrap_or_default();
            let label = format!("{} ({}, {dimensions} dimensions)", m.name, m.provider.label());
            view! { <option value=m.id.clone() selected=move || fields.embedding_model.get() == id>{label}</option> }
        })
        .collect_view();
    let change = move || {
        let change = status.with(|status| {
            EmbeddingChange::of(
                &catalog,
                status,
                fields.provider.get(),
                Some(fields.embedding_model.get().as_str()),
            )
        });
        let name = |id: &str| {
            catalog
                .embedding_model(id)
                .map_or_else(|| id.to_owned(), |m| m.name.clone())
        };
        let chunks = change.chunks;
        let text = if change.reembedding_required {
            format!(
                "Saving re-embeds {chunks} chunks with {} in the background; answers keep using {} until it is done.",
                name(&change.next_model),
                name(&change.current_model)
            )
        } else if chunks > 0 {
            format!(
                "The knowledge base stays as it is: its {chunks} chunks are already embedded with {}.",
                name(&change.next_model)
            )
        } else {
            format!(
                "Documents you add will be embedded with {}.",
                name(&change.next_model)
            )
        };
        view! {
            <p class="muted" data-test="embedding-change"
                data-reembed=if change.reembedding_required { "true" } else { "false" }>{text}</p>
        }
    };
    view! {
        <h3>"Knowledge base"</h3>
        <label for="embedding-model">"Embedding model"</label>
        <select id="embedding-model" name="form[embedding_model]" data-test="embedding-model"
            on:change=move |ev| fields.embedding_model.set(event_target_value(&ev))>
            <option value="" selected=move || fields.embedding_model.get().is_empty()>
                {move || format!("Follow the provider (now: {})", following())}
            </option>
            {options}
        </select>
        <FieldProblem field="embeddingModel" problems=problems/>
        {change}
        <KnowledgeProgress status=status/>
    }
}

/// "Model Parameters" and "Advanced Settings": what the provider takes (the
/// parameter table decides), the system prompt and the use-case presets.
#[component]
fn ParametersSection(
    catalog: Arc<Catalog>,
    fields: Fields,
    problems: Signal<Vec<FieldError>>,
    safety: Vec<SafetySetting>,
) -> impl IntoView {
    let max_tokens_limit = {
        let catalog = catalog.clone();
        move || {
            catalog
                .model(&fields.model.get())
                .map_or(1, |m| m.max_output)
        }
    };
    let temperature_max = move || match Param::Temperature.range(fields.provider.get()) {
        Some((_, most)) if most <= 1.0 => "1",
        _ => "2",
    };
    let on_preset = {
        let catalog = catalog.clone();
        move |use_case: UseCase| {
            let catalog = catalog.clone();
            move |ev: leptos::ev::MouseEvent| {
                ev.prevent_default();
                fields.apply_preset(&catalog, use_case);
            }
        }
    };
    let gemini_safety = safety;
    view! {
                <h3>"Model Parameters"</h3>
                <SliderField id="temperature" label="Temperature" name="form[temperature]" value=fields.temperature
                    max=Signal::derive(temperature_max) field="parameters.temperature" problems=problems/>
                <TextField id="max-tokens" label="Max Tokens" name="form[max_tokens]" value=fields.max_tokens inputmode="numeric" test="max-tokens" field="parameters.maxTokens" problems=problems hint=Signal::derive(move || format!("1 – {}", max_tokens_limit()))/>
                <SliderField id="top-p" label="Top P" name="form[top_p]" value=fields.top_p
                    max=Signal::stored("1") field="parameters.topP" problems=problems/>

                <details class="advanced" data-test="advanced">
                    <summary>"Advanced Settings"</summary>
                    <Show when=move || Param::TopK.supported_by(fields.provider.get())>
                        <TextField id="top-k" label="Top K (optional)" name="form[top_k]" value=fields.top_k inputmode="numeric" test="top-k" field="parameters.topK" problems=problems/>
                    </Show>
                    <Show when=move || Param::FrequencyPenalty.supported_by(fields.provider.get())>
                        <TextField id="frequency-penalty" label="Frequency penalty" name="form[frequency_penalty]" value=fields.frequency_penalty inputmode="decimal" test="frequency-penalty" field="parameters.frequencyPenalty" problems=problems hint="−2 – 2"/>
                        <TextField id="presence-penalty" label="Presence penalty" name="form[presence_penalty]" value=fields.presence_penalty inputmode="decimal" test="presence-penalty" field="parameters.presencePenalty" problems=problems hint="−2 – 2"/>
                    </Show>
                    <Show when=move || Param::SafetySettings.supported_by(fields.provider.get())>
                        <fieldset data-test="safety-settings">
                            <legend>"Safety settings (Gemini)"</legend>
                            {SAFETY_CATEGORIES
                                .into_iter()
                                .map(|(category, label, field)| {
                                    let current = gemini_safety
                                        .iter()
                                        .find(|s| s.category == category)
                                        .map(|s| s.threshold.clone())
                                        .unwrap_or_default();
                                    view! {
                                        <label for=field>{label}</label>
                                        <select id=field name=format!("form[{field}]") data-test=format!("safety-{field}")>
                                            <option value="" selected=current.is_empty()>"Gemini default"</option>
                                            {GEMINI_SAFETY_THRESHOLDS
                                                .iter()
                                                .map(|t| view! { <option value=*t selected=current == *t>{*t}</option> })
                                                .collect_view()}
                                        </select>
                                    }
                                })
                                .collect_view()}
                            <label class="check">
                                <input type="checkbox" name="form[google_search]" data-test="google-search"/>
                                " Ground answers with Google Search"
                            </label>
                            <FieldProblem field="parameters.safetySettings" problems=problems/>
                        </fieldset>
                    </Show>
                    <label for="system-prompt">"System prompt"</label>
                    <textarea id="system-prompt" name="form[system_prompt]" rows="4"
                        prop:value=move || fields.system_prompt.get()
                        on:input=move |ev| fields.system_prompt.set(event_target_value(&ev))
                        data-test="system-prompt">{fields.system_prompt.get_untracked()}</textarea>
                    <FieldProblem field="systemPrompt" problems=problems/>
                    <p class="presets">
                        "Presets: "
                        {[UseCase::CustomerSupport, UseCase::Sales, UseCase::TechnicalDocs]
                            .into_iter()
                            .map(|u| view! {
                                <a href=format!("?preset={}", u.as_str()) rel="external" class="preset"
                                    data-test=format!("preset-{}", u.as_str()) on:click=on_preset(u)>{u.label()}</a>
                            })
                            .collect_view()}
                    </p>
                </details>

    }
}

/// A self-hosted Llama's server URL and API style.
#[component]
fn LlamaServerSection(
    fields: Fields,
    problems: Signal<Vec<FieldError>>,
    base_url: String,
    flavour: LlamaFlavour,
) -> impl IntoView {
    let (llama_base_url, llama_flavour) = (base_url, flavour);
    view! {
                <Show when=move || fields.provider.get() == ProviderId::Llama>
                    <fieldset data-test="llama-server">
                        <legend>"Self-hosted server"</legend>
                        <label for="base-url">"Server URL (empty: the server default)"</label>
                        <input id="base-url" type="url" name="form[base_url]" value=llama_base_url.clone()
                            placeholder="http://127.0.0.1:11434" data-test="base-url"/>
                        <FieldProblem field="baseUrl" problems=problems/>
                        <label for="llama-flavour">"API"</label>
                        <select id="llama-flavour" name="form[llama_flavour]" data-test="llama-flavour">
                            <option value="ollama" selected=llama_flavour == LlamaFlavour::Ollama>"Ollama (/api/chat)"</option>
                            <option value="openAiCompatible" selected=llama_flavour == LlamaFlavour::OpenAiCompatible>"OpenAI-compatible (/v1)"</option>
                        </select>
                    </fieldset>
                </Show>

    }
}

/// "API Key Management": managed or own key, the stored key masked, a new
/// key (write-only) and Test Connection with its spinner and result.
#[component]
fn KeySection(
    fields: Fields,
    problems: Signal<Vec<FieldError>>,
    blocked: Signal<bool>,
    managed: Vec<ProviderId>,
    stored_key: RwSignal<(ProviderId, Option<String>)>,
    project_id: String,
) -> impl IntoView {
    let test = ServerAction::<TestConnection>::new();
    let managed_note = {
        let managed = managed.clone();
        move || {
            if managed.contains(&fields.provider.get()) {
                "Included in plan: Cover's key for this provider is configured."
            } else {
                "Cover has no managed key for this provider on this server: use your own key."
            }
        }
    };
    let project_for_test = project_id.clone();
    let run_test = move |_| {
        test.dispatch(TestConnection {
            project_id: project_for_test.clone(),
            provider: fields.provider.get_untracked().as_str().to_owned(),
            api_key: fields.api_key.get_untracked(),
        });
    };
    let test_result = move || {
        if test.pending().get() {
            return Some(view! {
                <span class="spinner" role="progressbar" aria-label="Testing connection" data-test="test-connection-spinner"></span>
                <span class="muted">"Testing connection…"</span>
            }.into_any());
        }
        test.value().get().map(|outcome| match outcome {
            Ok(check) => {
                let class = if check.valid { "notice ok" } else { "notice error" };
                let text = format!("{} ({} ms)", check.message, check.latency_ms);
                view! { <span class=class data-test="test-connection-result">{text}</span> }.into_any()
            }
            Err(error) => view! { <span class="notice error" data-test="test-connection-result">{error.to_string()}</span> }.into_any(),
        })
    };
    view! {
                <h3>"API Key Management"</h3>
                <fieldset data-test="key-source">
                    <legend class="sr-only">"Key source"</legend>
                    <label class="check">
                        <input type="radio" name="form[api_key_source]" value="managed"
                            prop:checked=move || fields.key_source.get() == KeySource::Managed
                            on:change=move |_| fields.key_source.set(KeySource::Managed)
                            data-test="key-source-managed"/>
                        " Use Cover-managed keys"
                    </label>
                    <p class="muted" data-test="managed-availability">{managed_note}</p>
                    <label class="check">
                        <input type="radio" name="form[api_key_source]" value="byok"
                            prop:checked=move || fields.key_source.get() == KeySource::Byok
                            on:change=move |_| fields.key_source.set(KeySource::Byok)
                            data-test="key-source-byok"/>
                        " Use my own API key"
                    </label>
                </fieldset>
                <p>
                    "Stored key: "
                    <code data-test="api-key-masked">
                        {move || {
                            let (provider, masked) = stored_key.get();
                            if fields.provider.get() == provider {
                                masked.unwrap_or_else(|| "none".into())
                            } else {
                                "none for this provider yet".into()
                            }
                        }}
                    </code>
                </p>
                <label for="api-key">"API key (write-only; leave empty to keep the stored key)"</label>
                <input id="api-key" type="password" name="form[api_key]" autocomplete="off"
                    prop:value=move || fields.api_key.get()
                    on:input=move |ev| fields.api_key.set(event_target_value(&ev))
                    data-test="api-key"/>
                <FieldProblem field="apiKey" problems=problems/>
                <div class="row">
                    <button type="submit" class="secondary" data-test="api-key-update"
                        disabled=move || blocked.get()>"Update"</button>
                    <button type="button" class="secondary" data-test="test-connection" on:click=run_test
                        disabled=move || test.pending().get()>"Test Connection"</button>
                    <span class="test-result" aria-live="polite">{test_result}</span>
                </div>

    }
}

/// "Fallback Configuration": on or off, the fallback model and the retries.
#[component]
fn FallbackSection(
    catalog: Arc<Catalog>,
    fields: Fields,
    problems: Signal<Vec<FieldError>>,
) -> impl IntoView {
    let fallback_options = {
        let catalog = catalog.clone();
        catalog
            .providers
            .iter()
            .map(|p| {
                let options = catalog
                    .models_of(p.id)
                    .map(|m| {
                        let id = m.id.clone();
                        view! { <option value=m.id.clone() selected=move || fields.fallback_model.get() == id>{m.name.clone()}</option> }
                    })
                    .collect_view();
                view! { <optgroup label=p.name.clone()>{options}</optgroup> }
            })
            .collect_view()
    };
    view! {
                <h3>"Fallback Configuration"</h3>
                <label class="check">
                    <input type="checkbox" name="form[fallback_enabled]"
                        prop:checked=move || fields.fallback_enabled.get()
                        on:change=move |ev| fields.fallback_enabled.set(event_target_checked(&ev))
                        data-test="fallback-enabled"/>
                    " Enable automatic fallback"
                </label>
                <label for="fallback-model">"Fallback provider and model"</label>
                <select id="fallback-model" name="form[fallback_model]" data-test="fallback-model"
                    on:change=move |ev| fields.fallback_model.set(event_target_value(&ev))>
                    {fallback_options}
                </select>
                <FieldProblem field="fallbackConfig.model" problems=problems/>
                <label for="retry-attempts">"Retry attempts"</label>
                <input id="retry-attempts" type="number" min="0" max=MAX_RETRY_ATTEMPTS.to_string() name="form[retry_attempts]"
                    prop:value=move || fields.retry_attempts.get()
                    on:input=move |ev| fields.retry_attempts.set(event_target_value(&ev))
                    data-test="retry-attempts"/>
                <FieldProblem field="fallbackConfig.retryAttempts" problems=problems/>

    }
}

/// A field's error message, when it has one (`data-test="error-<field>"`).
#[component]
fn FieldProblem(
    /// The field (JSON path, as the server names it).
    field: &'static str,
    /// Every current problem: the browser's checks and the server's answer.
    problems: Signal<Vec<FieldError>>,
) -> impl IntoView {
    move || {
        let message = problems
            .get()
            .into_iter()
            .find(|e| e.field == field)?
            .message;
        Some(view! {
            <span class="field-error" data-test=format!("error-{}", field.replace('.', "-"))>{message}</span>
        })
    }
}

/// A labelled text input bound to a signal, with its allowed range and error.
#[component]
fn TextField(
    /// Element id (and `for` of the label).
    id: &'static str,
    /// Label text.
    label: &'static str,
    /// Form field name.
    name: &'static str,
    /// The value.
    value: RwSignal<String>,
    /// `decimal` or `numeric`.
    inputmode: &'static str,
    /// The `data-test` hook.
    test: &'static str,
    /// The JSON field it sets (for its error).
    field: &'static str,
    /// Every current problem.
    problems: Signal<Vec<FieldError>>,
    /// The allowed range, shown beside the input.
    #[prop(into, optional)]
    hint: Signal<String>,
) -> impl IntoView {
    view! {
        <div class="param">
            <label for=id>{label}</label>
            <input id=id type="text" inputmode=inputmode name=name
                prop:value=move || value.get()
                on:input=move |ev| value.set(event_target_value(&ev))
                data-test=test/>
            <span class="muted">{hint}</span>
            <FieldProblem field=field problems=problems/>
        </div>
    }
}

/// A parameter with a slider and a text input on the same value (0 to `max`).
#[component]
fn SliderField(
    /// Element id of the text input; the slider's hook is `<id>-slider`.
    id: &'static str,
    /// Label text.
    label: &'static str,
    /// Form field name (the text input carries it).
    name: &'static str,
    /// The value.
    value: RwSignal<String>,
    /// The upper bound.
    max: Signal<&'static str>,
    /// The JSON field it sets (for its error).
    field: &'static str,
    /// Every current problem.
    problems: Signal<Vec<FieldError>>,
) -> impl IntoView {
    view! {
        <div class="param">
            <label for=id>{label}</label>
            <input type="range" aria-label=format!("{label} slider") min="0" max=move || max.get() step="0.05"
                prop:value=move || value.get()
                on:input=move |ev| value.set(event_target_value(&ev))
                data-test=format!("{id}-slider")/>
            <input id=id type="text" inputmode="decimal" name=name
                prop:value=move || value.get()
                on:input=move |ev| value.set(event_target_value(&ev))
                data-test=id/>
            <span class="muted">{move || format!("0 – {}", max.get())}</span>
            <FieldProblem field=field problems=problems/>
        </div>
    }
}

/// The project's members: who is in it, an invitation form (owners get a
/// one-time link to pass on) and Remove (owners; the member's tokens go too).
#[component]
fn Members(project_id: String, can_manage: bool) -> impl IntoView {
    let invite = ServerAction::<InviteMember>::new();
    let remove = ServerAction::<RemoveMember>::new();
    let members = {
        let project_id = project_id.clone();
        Resource::new(
            move || remove.version().get(),
            move |_| list_members(project_id.clone()),
        )
    };
    let link = move || {
        invite.value().get().and_then(Result::ok).map(|created| {
            view! {
                <p class="notice ok" data-test="invitation-link">
                    {format!("Send this link to {} (it works once, until {}): ", created.email, created.expires_at)}
                    <code>{created.link}</code>
                </p>
            }
        })
    };
    let invite_form = can_manage.then(|| {
        let project_id = project_id.clone();
        view! {
            <ActionForm action=invite attr:class="inline" attr:data-test="invite-form">
                <input type="hidden" name="project_id" value=project_id/>
                <label for="invite-email">"Invite by email"</label>
                <input id="invite-email" type="email" name="email" required data-test="invite-email"/>
                <button type="submit" data-test="invite-submit">"Create invitation link"</button>
            </ActionForm>
            <ErrorNotice error=action_error(invite) test_id="invite-error"/>
        }
    });
    view! {
        <section class="card" data-test="members">
            <h2>"Members"</h2>
            <p class="muted">"Owners change settings, keys, budgets, members and tokens; members chat, rate and read costs."</p>
            {invite_form}
            {link}
            <ErrorNotice error=action_error(remove) test_id="remove-member-error"/>
            <Transition fallback=|| view! { <p class="muted">"Loading members…"</p> }>
                {move || {
                    let project_id = project_id.clone();
                    Suspend::new(async move {
                        let list = members.await.unwrap_or_default();
                        view! {
                            <ul class="member-list" data-test="member-list">
                                {list.into_iter().map(|member| {
                                    let project_id = project_id.clone();
                                    let remove_form = (can_manage && member.role != ProjectRole::Owner).then(move || view! {
                                        <ActionForm action=remove attr:class="inline">
                                            <input type="hidden" name="project_id" value=project_id.clone()/>
                                            <input type="hidden" name="user_id" value=member.user_id.clone()/>
                                            <button type="submit" class="link" data-test="member-remove">"Remove"</button>
                                        </ActionForm>
                                    });
                                    view! {
                                        <li data-test="member-item">
                                            {member.email.clone()} " · " {member.role.as_str()} {remove_form}
                                        </li>
                                    }
                                }).collect_view()}
                            </ul>
                        }
                    })
                }}
            </Transition>
        </section>
    }
}

/// Project API tokens: create (shown once), list, revoke.
#[component]
fn ApiTokens(
    project_id: String,
    initial: Vec<crate::model::api_token::ApiToken>,
    can_manage: bool,
) -> impl IntoView {
    let create = ServerAction::<CreateApiToken>::new();
    let revoke = ServerAction::<RevokeApiToken>::new();
    let tokens = RwSignal::new(initial);
    Effect::new(move |_| {
        if let Some(Ok(created)) = create.value().get() {
            tokens.update(|list| {
                if !list.iter().any(|t| t.id == created.token.id) {
                    list.insert(0, created.token.clone());
                }
            });
        }
    });
    Effect::new(move |_| {
        if let (Some(Ok(())), Some(input)) = (revoke.value().get(), revoke.input().get()) {
            tokens.update(|list| {
                if let Some(token) = list.iter_mut().find(|t| t.id == input.token_id) {
                    token.revoked = true;
                }
            });
        }
    });
    let secret = move || {
        create.value().get().and_then(Result::ok).map(|created| {
            view! {
                <p class="notice ok" data-test="token-secret">
                    "Copy this token now; it is not shown again: " <code>{created.secret}</code>
                </p>
            }
        })
    };
    let revoke_project = project_id.clone();
    let create_form = can_manage.then(|| {
        view! {
            <ActionForm action=create attr:class="inline" attr:data-test="token-form">
                <input type="hidden" name="project_id" value=project_id/>
                <label for="token-name">"Token name"</label>
                <input id="token-name" name="name" required maxlength="60" data-test="token-name"/>
                <fieldset class="plain inline" data-test="token-scopes">
                    <legend>"Scopes"</legend>
                    {Scope::ALL.into_iter().enumerate().map(|(i, scope)| {
                        let id = format!("token-scope-{scope}");
                        view! {
                            <input type="checkbox" id=id.clone() name=format!("scopes[{i}]") value=scope.as_str()
                                checked=DEFAULT_TOKEN_SCOPES.contains(&scope) data-test=id.clone()/>
                            <label for=id>{scope.label()}</label>
                        }
                    }).collect_view()}
                </fieldset>
                <button type="submit" data-test="token-create">"Create token"</button>
            </ActionForm>
            <ErrorNotice error=action_error(create) test_id="token-error"/>
        }
    });
    view! {
        <section class="card" data-test="api-tokens">
            <h2>"API tokens for programs"</h2>
            <p class="muted">"Send as Authorization: Bearer <token> to this project's JSON API, within the token's scopes."</p>
            {create_form}
            {secret}
            <ul class="token-list" data-test="token-list">
                <For each=move || tokens.get() key=|t| (t.id.clone(), t.revoked) let:token>
                    {
                        let project_id = revoke_project.clone();
                        let status = if token.revoked { "revoked" } else { "active" };
                        let scopes = scopes_to_text(&token.scopes).replace(',', ", ");
                        view! {
                            <li data-test="token-item">
                                <code>{token.prefix.clone()} "…"</code> " " {token.name.clone()} " · " {status}
                                " · " <span data-test="token-item-scopes">{scopes}</span>
                                {(!token.revoked && can_manage).then(|| view! {
                                    <ActionForm action=revoke attr:class="inline">
                                        <input type="hidden" name="project_id" value=project_id/>
                                        <input type="hidden" name="token_id" value=token.id.clone()/>
                                        <button type="submit" class="link" data-test="token-revoke">"Revoke"</button>
                                    </ActionForm>
                                })}
                            </li>
                        }
                    }
                </For>
            </ul>
        </section>
    }
}
