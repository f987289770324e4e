-- Rollups of the usage ledger for the performance report (FR-008): a busy
-- month is a million ledger rows, the report reads these few thousand. The
-- ledger writer adds every batch to them in the transaction that stores it;
-- the server fills them from the rows stored before this migration the first
-- time it starts (`performance_rollups_filled` in workspace_setting).

-- One row per chat request (every attempt of one answer, comparison or
-- gateway call): the model it belongs to (the one that answered, else the one
-- first asked) and its UTC day, so a rating given later counts where the
-- request does; stored once, so a group commit tried again adds it once.
create table usage_request (
    request_id     text primary key,
    project_id     text not null,
    message_id     text,
    day            bigint not null,
    owner_provider text not null,
    owner_model    text not null
);
create index usage_request_message on usage_request (message_id);

-- Per project, UTC day, provider and model: attempts and requests.
create table usage_performance_daily (
    project_id            text not null,
    day                   bigint not null,
    provider              text not null,
    model                 text not null,
    attempts              bigint not null,
    successes             bigint not null,
    -- Of the successful attempts: summed latency and output tokens (speed).
    success_latency_ms    bigint not null,
    success_output_tokens bigint not null,
    -- Requests it owns, requests first asked of it, of those the ones that
    -- went on to another model, and the ones another model answered.
    answers               bigint not null,
    asked_first           bigint not null,
    went_on               bigint not null,
    rescued               bigint not null,
    -- Thumbs on the answers it owns.
    rated_up              bigint not null,
    rated_down            bigint not null,
    primary key (project_id, day, provider, model)
);
create index usage_performance_daily_day on usage_performance_daily (day);

-- Failed attempts by the router's error class.
create table usage_errors_daily (
    project_id  text not null,
    day         bigint not null,
    provider    text not null,
    model       text not null,
    error_class text not null,
    attempts    bigint not null,
    primary key (project_id, day, provider, model, error_class)
);
create index usage_errors_daily_day on usage_errors_daily (day);

-- Latency (successful attempts) and time to first token (successful streamed
-- attempts) in fixed log-spaced bins (`LatencyHistogram`: exact below 50 ms,
-- then 4 % wide): percentiles within 2 % of the exact ones.
create table usage_latency_daily (
    project_id text not null,
    day        bigint not null,
    provider   text not null,
    model      text not null,
    measure    text not null check (measure in ('latency', 'ttft')),
    bin        bigint not null,
    samples    bigint not null,
    primary key (project_id, day, provider, model, measure, bin)
);
create index usage_latency_daily_day on usage_latency_daily (day);
