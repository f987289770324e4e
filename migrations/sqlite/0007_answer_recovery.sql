-- What each running answer holds of its project's monthly budget. A hold is
-- taken with the reservation (in the same transaction) and released with the
-- answer's settlement; holds of an app server that died are released by any
-- other server once they are older than the answer time limit, so a crash
-- never leaves money reserved forever.
create table budget_hold (
    hold_id        text primary key,
    project_id     text not null references project (project_id) on delete cascade,
    month          text not null,
    reserved_nanos bigint not null check (reserved_nanos >= 0),
    created_at     bigint not null
);
create index budget_hold_created on budget_hold (created_at);

-- Answers still pending, oldest first: what the sweeper of abandoned answers
-- reads on every app server, without scanning every message.
create index message_pending on message (updated_at) where status = 'pending';
