-- A/B experiments between providers (FR-008). Each arm is a configuration
-- version of its own (llm_config rows with `experiment_id` set, which the
-- project's current configuration never is); a conversation assigned to an
-- arm pins that version, so the whole answer path (routing, fallback, budget,
-- ledger) runs the arm's configuration unchanged, and the ledger's
-- `config_version` says which arm every attempt belongs to.
create table experiment (
    experiment_id   text primary key,
    project_id      text not null references project (project_id) on delete cascade,
    name            text not null,
    -- Hashed with the unit (conversation or end user) for sticky assignment.
    seed            text not null,
    primary_metric  text not null check (primary_metric in ('satisfaction', 'latency', 'cost')),
    -- Answers each arm needs before results stop being provisional.
    planned_answers bigint not null,
    state           text not null check (state in ('running', 'stopped')),
    promoted_arm    text,
    created_by      text references app_user (user_id) on delete set null,
    created_at      bigint not null,
    stopped_at      bigint
);
create index experiment_project on experiment (project_id, created_at);
-- At most one experiment of a project runs: two started at once cannot both.
create unique index experiment_one_running on experiment (project_id) where state = 'running';

create table experiment_arm (
    experiment_id  text not null references experiment (experiment_id) on delete cascade,
    -- 'A', 'B', 'C', 'D'; A is the control.
    arm            text not null,
    name           text not null,
    config_version bigint not null,
    weight         bigint not null,
    primary key (experiment_id, arm)
);

alter table llm_config add column experiment_id text;
alter table conversation add column experiment_id text;
alter table conversation add column arm text;
