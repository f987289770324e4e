-- Monthly budgets per project (FR-007): the limit, what each month spent and
-- holds reserved for running answers, the alerts fired, and the in-app
-- notifications they leave.
create table budget (
    project_id  text primary key references project (project_id) on delete cascade,
    -- Nano-dollars per calendar month (UTC).
    limit_nanos bigint not null check (limit_nanos >= 0),
    -- Called with a JSON body on every alert.
    webhook_url text,
    created_at  bigint not null,
    updated_at  bigint not null
);

-- One row per project and month (`YYYY-MM`, UTC). Answers reserve their
-- maximum cost here before they run and settle to what they cost when they
-- end; each alert time is set once, by the settlement that crossed it.
create table budget_month (
    project_id     text not null references project (project_id) on delete cascade,
    month          text not null,
    spent_nanos    bigint not null default 0,
    reserved_nanos bigint not null default 0,
    alert50_at     bigint,
    alert80_at     bigint,
    alert100_at    bigint,
    primary key (project_id, month)
);

-- In-app notifications (budget alerts).
create table notification (
    notification_id text primary key,
    project_id      text not null references project (project_id) on delete cascade,
    kind            text not null check (kind in ('budget50', 'budget80', 'budget100')),
    message         text not null,
    created_at      bigint not null,
    read_at         bigint
);
create index notification_project on notification (project_id, created_at);
