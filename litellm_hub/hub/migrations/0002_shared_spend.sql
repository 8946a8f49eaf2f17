-- Proxy instances share budgets: what each budget holder has spent is one row, added to in the same
-- transaction as the request-log row that costs it, so every instance reads the same spend at once.

-- A response served from LiteLLM's cache (it costs nothing).
ALTER TABLE hub_request_log ADD COLUMN cache_hit boolean NOT NULL DEFAULT false;

-- Who a budget belongs to: a person across every key they have had ('user:<account id>'), any other key alone.
CREATE FUNCTION hub_spend_holder(p_key_hash text) RETURNS text LANGUAGE sql STABLE AS $$
    SELECT COALESCE(
        (SELECT 'user:' || (k.metadata->>'user_id') FROM hub_keys k
         WHERE k.key_hash = p_key_hash AND k.metadata ? 'user_id'),
        'key:' || p_key_hash)
$$;

CREATE TABLE hub_spend (
    holder     text PRIMARY KEY,
    spend      double precision NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL DEFAULT now()
);

INSERT INTO hub_spend (holder, spend)
SELECT hub_spend_holder(key_hash), sum(cost) FROM hub_request_log
WHERE key_hash IS NOT NULL AND cost <> 0
GROUP BY 1;

-- The cost of an answered request whose log row is not written yet: the hub records it before the answer
-- leaves the proxy, so the next request, on any instance, already counts it. The row's insert removes it.
CREATE TABLE hub_spend_pending (
    request_id text PRIMARY KEY,
    holder     text NOT NULL,
    cost       double precision NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX hub_spend_pending_holder ON hub_spend_pending (holder);

-- A row's cost counts once: on insert, and by the difference when a later event of the request replaces it.
-- The request's lock orders this against a pending entry being recorded for it (hub.db.RECORD_PENDING).
CREATE FUNCTION hub_count_spend() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    delta double precision := NEW.cost - CASE WHEN TG_OP = 'UPDATE' THEN OLD.cost ELSE 0 END;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('hub_spend:' || NEW.request_id));
    DELETE FROM hub_spend_pending WHERE request_id = NEW.request_id;
    IF NEW.key_hash IS NOT NULL AND delta <> 0 THEN
        INSERT INTO hub_spend AS s (holder, spend) VALUES (hub_spend_holder(NEW.key_hash), delta)
        ON CONFLICT (holder) DO UPDATE SET spend = s.spend + EXCLUDED.spend, updated_at = now();
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER hub_request_log_spend AFTER INSERT OR UPDATE OF cost ON hub_request_log
    FOR EACH ROW EXECUTE FUNCTION hub_count_spend();
