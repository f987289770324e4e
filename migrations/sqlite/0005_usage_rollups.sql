-- Daily rollups of the usage ledger for the cost page and the admin dashboard
-- (FR-007): reading a month of a busy project from `llm_usage` means hundreds
-- of thousands of rows, these hold a few hundred. The ledger writer adds every
-- batch to them in the transaction that stores it, so they always equal the
-- ledger; the statements below sum the rows stored before this migration.

-- Per project, UTC day, provider, model, fallback flag and prompt size class.
create table usage_daily (
    project_id         text not null,
    -- The UTC day: Unix milliseconds of its midnight.
    day                bigint not null,
    provider           text not null,
    model              text not null,
    -- 1 for fallback and degraded attempts (AC-006: tracked separately).
    is_fallback        bigint not null,
    -- 1 when the prompt (input + cache read + cache write) exceeded 128,000
    -- tokens: Gemini 1.5's long-context tier, so "what if" re-pricing is exact.
    long_prompt        bigint not null,
    attempts           bigint not null,
    failed_attempts    bigint not null,
    -- Attempts without a known price: counted here, never summed as $0.
    unpriced_attempts  bigint not null,
    input_tokens       bigint not null,
    cache_read_tokens  bigint not null,
    cache_write_tokens bigint not null,
    output_tokens      bigint not null,
    reasoning_tokens   bigint not null,
    -- Nano-dollars of the priced attempts.
    cost_nanos         bigint not null,
    latency_ms         bigint not null,
    primary key (project_id, day, provider, model, is_fallback, long_prompt)
);
create index usage_daily_day on usage_daily (day);

-- A compact number per conversation (counting distinct conversations and
-- ranking them over a month of conversation-days is several times faster on
-- integers than on UUID text) and its priced cost so far: no conversation
-- costs more in a period, which bounds the search for the most expensive.
create table usage_conversation (
    conversation_key integer primary key,
    conversation_id  text not null unique,
    cost_nanos       bigint not null
);
create index usage_conversation_cost on usage_conversation (cost_nanos);

-- Per project, UTC day, conversation, provider and model: distinct
-- conversations of a period and the most expensive ones.
create table usage_conversation_daily (
    project_id       text not null,
    day              bigint not null,
    conversation_key bigint not null,
    provider         text not null,
    model            text not null,
    attempts         bigint not null,
    cost_nanos       bigint not null,
    primary key (project_id, day, conversation_key, provider, model)
);
-- The workspace's most expensive conversations, read from the index alone.
create index usage_conversation_daily_day
    on usage_conversation_daily (day, conversation_key, project_id, cost_nanos, attempts);

-- The workspace CSV export reads the ledger by time across projects.
create index llm_usage_time on llm_usage (created_at);

insert into usage_daily
select project_id, (created_at / 86400000) * 86400000, provider, model, is_fallback,
       case when input_tokens + cache_read_tokens + cache_write_tokens > 128000 then 1 else 0 end,
       count(*), sum(1 - success), count(*) - count(cost_nanos),
       sum(input_tokens), sum(cache_read_tokens), sum(cache_write_tokens),
       sum(output_tokens), sum(reasoning_tokens), coalesce(sum(cost_nanos), 0), sum(latency_ms)
from llm_usage
group by 1, 2, 3, 4, 5, 6;

insert into usage_conversation (conversation_id, cost_nanos)
select conversation_id, coalesce(sum(cost_nanos), 0) from llm_usage
where conversation_id is not null
group by conversation_id;

insert into usage_conversation_daily
select u.project_id, (u.created_at / 86400000) * 86400000, k.conversation_key, u.provider, u.model,
       count(*), coalesce(sum(u.cost_nanos), 0)
from llm_usage u
join usage_conversation k on k.conversation_id = u.conversation_id
group by u.project_id, (u.created_at / 86400000) * 86400000, k.conversation_key, u.provider, u.model;
