-- Per-project LLM configuration (spec LLMConfiguration). Every saved change is a
-- new version; conversations pin the version they started with.
create table llm_config (
    llm_config_id text primary key,
    project_id    text not null references project (project_id) on delete cascade,
    version       bigint not null,
    provider      text not null check (provider in ('claude', 'openai', 'gemini', 'llama')),
    model         text not null,
    -- JSON, camelCase (temperature, maxTokens, topP, penalties, topK, safetySettings, …).
    parameters    text not null,
    system_prompt text not null,
    key_source    text not null check (key_source in ('managed', 'byok')),
    -- JSON {enabled, provider, model, retryAttempts}.
    fallback      text not null,
    -- Self-hosted Llama server and how it is spoken to.
    base_url      text,
    llama_flavour text not null default 'ollama' check (llama_flavour in ('ollama', 'openAiCompatible')),
    created_by    text references app_user (user_id) on delete set null,
    created_at    bigint not null,
    unique (project_id, version)
);

-- BYOK provider keys, AES-256-GCM encrypted (project id as associated data).
create table provider_key (
    project_id  text not null references project (project_id) on delete cascade,
    provider    text not null check (provider in ('claude', 'openai', 'gemini', 'llama')),
    ciphertext  text not null,
    nonce       text not null,
    key_version bigint not null,
    masked      text not null,
    created_at  bigint not null,
    updated_at  bigint not null,
    primary key (project_id, provider)
);

-- Project API tokens for programs (shown once, stored as SHA-256, revocable).
create table api_token (
    api_token_id text primary key,
    project_id   text not null references project (project_id) on delete cascade,
    name         text not null,
    token_hash   text not null unique,
    token_prefix text not null,
    created_by   text references app_user (user_id) on delete set null,
    created_at   bigint not null,
    last_used_at bigint,
    revoked_at   bigint
);
create index api_token_project on api_token (project_id);
