-- What a project token may do: a comma-separated set of `chat`, `read` and
-- `manage`. Tokens made before scopes existed keep chatting and reading; only
-- a token made (or re-made) with `manage` may change the configuration.
alter table api_token add column scopes text not null default 'chat,read';

-- One-time invitations: an owner or admin invites an email to a project (or,
-- with no project, to the workspace). Only a SHA-256 of the link's secret is
-- stored; the link is shown once, to the inviter.
create table invitation (
    invitation_id text primary key,
    token_hash    text not null unique,
    email         text not null,
    project_id    text references project (project_id) on delete cascade,
    invited_by    text not null references app_user (user_id) on delete cascade,
    created_at    bigint not null,
    expires_at    bigint not null,
    accepted_at   bigint,
    accepted_by   text references app_user (user_id) on delete set null
);
create index invitation_project on invitation (project_id);

-- Workspace-wide settings an admin changes at run time (the one-time setup
-- token's hash, the managed-key budgets, the private-host allow-list).
create table workspace_setting (
    name       text primary key,
    value      text not null,
    updated_at bigint not null
);

-- Failed logins per throttle key: an account, an account from one client
-- address, or one client address. Counted before the password is checked.
drop table login_attempt;
create table login_throttle (
    throttle_key    text primary key,
    failures        bigint not null,
    last_failure_at bigint not null
);
