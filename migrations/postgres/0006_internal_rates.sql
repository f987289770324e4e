-- Internal rates an admin sets for self-hosted models (per GPU hour of answer
-- time and/or per 1M tokens), each from its effective date. Without one a
-- self-hosted model costs $0.
create table internal_rate (
    model           text not null,
    effective_date  text not null,
    per_hour_nanos  bigint not null,
    per_m_tok_nanos bigint not null,
    created_by      text references app_user (user_id) on delete set null,
    created_at      bigint not null,
    primary key (model, effective_date)
);
