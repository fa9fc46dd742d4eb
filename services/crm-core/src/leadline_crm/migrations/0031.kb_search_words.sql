-- The knowledge base's search at 100,000 articles (issue 14). Ranking every match of a common word, and matching
-- misspelt words by trigram similarity against every title, took seconds; instead:
-- * `title_search`: the title's own tsvector, so title hits are found (and put first) from their own index, and
--   a page ranks a bounded set of candidates rather than every match (service/queries.py KB_SEARCH);
-- * `kb_words`: every word of every title (PostgreSQL's documented pattern for pg_trgm with text search): a
--   misspelt word of a query is looked up there by trigram distance (a GiST index answers the nearest words
--   directly), and the query searches for the word it meant as well. Words stay when their article goes: a
--   correction to a word no title holds finds nothing more.
-- depends: 0030.service_desk
ALTER TABLE kb_articles
    ADD COLUMN title_search tsvector GENERATED ALWAYS AS (to_tsvector('english'::regconfig, title)) STORED;
CREATE INDEX kb_articles_title_search ON kb_articles USING gin (title_search);
DROP INDEX kb_articles_title_trgm;

CREATE TABLE kb_words (
    word  text PRIMARY KEY
);
CREATE INDEX kb_words_trgm ON kb_words USING gist (word public.gist_trgm_ops);

CREATE FUNCTION kb_words_of_title() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO kb_words (word)
    SELECT w.lexeme FROM unnest(to_tsvector('simple'::regconfig, NEW.title)) AS w
     WHERE w.lexeme ~ '^[[:alpha:]]{3,40}$'
    ON CONFLICT DO NOTHING;
    RETURN NEW;
END
$$;
CREATE TRIGGER kb_words_of_title AFTER INSERT OR UPDATE OF title ON kb_articles
    FOR EACH ROW EXECUTE FUNCTION kb_words_of_title();
INSERT INTO kb_words (word)
SELECT DISTINCT w.lexeme FROM kb_articles, unnest(to_tsvector('simple'::regconfig, title)) AS w
 WHERE w.lexeme ~ '^[[:alpha:]]{3,40}$'
ON CONFLICT DO NOTHING;
