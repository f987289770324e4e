-- The workspace-wide monthly cap on spend with Cover's managed keys, which
-- the admin sets on top of every project's own budget. Each attempt records
-- whether it spent a managed key; the workspace's month keeps that spend and
-- what running answers hold against the cap, as `budget_month` does for a
-- project; a hold takes its share of the cap with it.
alter table llm_usage add column managed_key bigint not null default 0;
alter table budget_hold add column workspace_nanos bigint not null default 0;
create table workspace_month (
    month          text primary key,
    spent_nanos    bigint not null default 0,
    reserved_nanos bigint not null default 0
);
