-- Where a knowledge-base article lives on the web (front matter / <meta name=url> / FAQ record
-- `url`), so citations and search results can link to the source page. NULL: no web page.
-- Only absolute http(s) addresses: the loaders refuse anything else, and the check keeps a
-- `javascript:` link out of the table whatever writes to it (the widget renders it as a link).
-- Articles ingested before this column existed get their url on the next ingestion run: a
-- changed url is written without re-embedding (kb_pipeline.index.KnowledgeBase.ingest).
ALTER TABLE kb_articles
    ADD COLUMN url text
    CONSTRAINT kb_articles_url_http CHECK (
        url IS NULL OR (length(url) <= 2048 AND url ~* '^https?://[^[:space:]]+$')
    );
