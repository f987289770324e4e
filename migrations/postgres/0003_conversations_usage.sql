-- Conversations pin the configuration version they started with (AC-002): a
-- settings change applies to new conversations only.
create table conversation (
    conversation_id text primary key,
    project_id      text not null references project (project_id) on delete cascade,
    title           text not null,
    config_version  bigint not null,
    -- The pinned provider and model, copied from llm_config for listing.
    provider        text not null,
    model           text not null,
    -- Messages so far; also hands out message sequence numbers atomically.
    message_count   bigint not null default 0,
    created_by      text references app_user (user_id) on delete set null,
    created_at      bigint not null,
    updated_at      bigint not null,
    foreign key (project_id, config_version) references llm_config (project_id, version)
);
create index conversation_project on conversation (project_id, updated_at);

-- Questions and answers. An answer row is written when the question is stored
-- (status 'pending') and completed when the answer ends.
create table message (
    message_id       text primary key,
    conversation_id  text not null references conversation (conversation_id) on delete cascade,
    seq              bigint not null,
    role             text not null check (role in ('user', 'assistant')),
    content          text not null,
    -- JSON array of {mediaType, data} (questions only).
    images           text,
    status           text not null check (status in ('pending', 'complete', 'stopped', 'error')),
    -- JSON AnswerFacts / FallbackNotice / InterruptedAnswer (answers only).
    facts            text,
    fallback         text,
    interrupted      text,
    error            text,
    -- Sum of every attempt's cost (nano-dollars); unpriced when some attempt had no price.
    cost_nanos       bigint not null default 0,
    unpriced         bigint not null default 0,
    rating           text check (rating in ('up', 'down')),
    created_at       bigint not null,
    updated_at       bigint not null,
    unique (conversation_id, seq)
);

-- The usage ledger (spec LLMUsage): one row per attempt, written by the batched
-- ledger writer. No foreign keys: a ledger row is never refused.
create table llm_usage (
    usage_id           text primary key,
    project_id         text not null,
    conversation_id    text,
    message_id         text,
    -- All attempts of one answer share a request id.
    request_id         text not null,
    attempt            bigint not null,
    provider           text not null,
    model              text not null,
    config_version     bigint,
    role               text not null check (role in ('primary', 'fallback', 'degraded')),
    is_fallback        bigint not null,
    streamed           bigint not null,
    -- Disjoint token buckets: input (uncached), cache read, cache write, output (of which reasoning).
    input_tokens       bigint not null,
    cache_read_tokens  bigint not null,
    cache_write_tokens bigint not null,
    output_tokens      bigint not null,
    reasoning_tokens   bigint not null,
    usage_estimated    bigint not null,
    raw_usage          text,
    -- Null when the model has no known price ("unpriced", never $0).
    cost_nanos         bigint,
    price_version      text,
    latency_ms         bigint not null,
    ttft_ms            bigint,
    success            bigint not null,
    error_class        text,
    error_message      text,
    created_at         bigint not null
);
create index llm_usage_project_time on llm_usage (project_id, created_at);
create index llm_usage_conversation on llm_usage (conversation_id);
