-- The knowledge base (AC-004). Documents keep their extracted text and their
-- chunks; vectors belong to an index version, which records the embedding
-- model and its dimensions, so vectors of two models never mix. A project
-- serves from at most one `ready` index while at most one new version is
-- `building` beside it; the switch from one to the other is one transaction.
create table knowledge_document (
    document_id  text primary key,
    project_id   text not null references project (project_id) on delete cascade,
    name         text not null,
    kind         text not null check (kind in ('text', 'markdown', 'html', 'pdf')),
    size_bytes   bigint not null,
    content      text not null,
    chunk_count  bigint not null,
    token_count  bigint not null,
    created_by   text references app_user (user_id) on delete set null,
    created_at   bigint not null
);
create index knowledge_document_project on knowledge_document (project_id, created_at);

create table knowledge_chunk (
    chunk_id     text primary key,
    document_id  text not null references knowledge_document (document_id) on delete cascade,
    project_id   text not null references project (project_id) on delete cascade,
    ordinal      bigint not null,
    heading      text,
    content      text not null,
    tokens       bigint not null,
    unique (document_id, ordinal)
);
create index knowledge_chunk_project on knowledge_chunk (project_id);

create table knowledge_index (
    index_id      text primary key,
    project_id    text not null references project (project_id) on delete cascade,
    model         text not null,
    dimensions    bigint not null,
    state         text not null check (state in ('building', 'ready', 'retired', 'failed', 'cancelled')),
    error         text,
    created_at    bigint not null,
    completed_at  bigint
);
create unique index knowledge_index_serving on knowledge_index (project_id) where state = 'ready';
create unique index knowledge_index_building on knowledge_index (project_id) where state = 'building';

create table knowledge_vector (
    index_id  text not null references knowledge_index (index_id) on delete cascade,
    chunk_id  text not null references knowledge_chunk (chunk_id) on delete cascade,
    -- Little-endian f32s, unit length.
    vector    blob not null,
    primary key (index_id, chunk_id)
);
create index knowledge_vector_chunk on knowledge_vector (chunk_id);

-- What each attempt was for: a chat answer, the embeddings of documents or
-- of a question, or an image.
alter table llm_usage add column operation text not null default 'chat';

-- The knowledge chunks an answer was given, as JSON [{documentId, documentName, chunk, score}].
alter table message add column citations text;

-- The project's embedding model; null follows the chat provider's default.
alter table llm_config add column embedding_model text;
