-- The rollups leave the answer's commit: the ledger writer stores each row
-- and each ended request marked pending, and a rollup pass a few tens of
-- milliseconds later (or before any report is read) claims the pending ones
-- and adds them to the rollups in one transaction. A row's mark is cleared
-- in the transaction that adds it, so a crash in between loses nothing and
-- adds nothing twice: the next pass, on any app server, takes it up.
-- Rows stored before this migration are in the rollups already.
alter table llm_usage add column rollup_pending bigint not null default 0;
create index llm_usage_rollup_pending on llm_usage (usage_id) where rollup_pending = 1;

-- What the performance rollups need of an ended request besides its owner:
-- the model first asked, whether it was answered, whether it went on to
-- another model.
alter table usage_request add column first_provider text not null default '';
alter table usage_request add column first_model text not null default '';
alter table usage_request add column answered bigint not null default 0;
alter table usage_request add column went_on bigint not null default 0;
alter table usage_request add column rollup_pending bigint not null default 0;
create index usage_request_rollup_pending on usage_request (request_id) where rollup_pending = 1;
