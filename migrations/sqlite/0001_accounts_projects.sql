-- Accounts, projects and project membership. Timestamps are Unix milliseconds (UTC).
create table app_user (
    user_id       text primary key,
    email         text not null unique,
    password_hash text not null,
    role          text not null check (role in ('admin', 'member')),
    created_at    bigint not null,
    updated_at    bigint not null
);

create table project (
    project_id text primary key,
    name       text not null,
    use_case   text not null default 'customer_support'
               check (use_case in ('customer_support', 'sales', 'technical_docs', 'other')),
    created_by text not null references app_user (user_id),
    created_at bigint not null,
    updated_at bigint not null
);

create table project_member (
    project_id text not null references project (project_id) on delete cascade,
    user_id    text not null references app_user (user_id) on delete cascade,
    role       text not null check (role in ('owner', 'member')),
    created_at bigint not null,
    primary key (project_id, user_id)
);
create index project_member_user on project_member (user_id);

-- Consecutive failed logins per email (known or not), to slow down guessing.
create table login_attempt (
    email           text primary key,
    failures        bigint not null,
    last_failure_at bigint not null
);
