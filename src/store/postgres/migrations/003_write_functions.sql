-- Writes as functions: PL/pgSQL plans its statements once per connection and reuses the plans,
-- where the same statements sent as text would be parsed and planned on every write (most of a
-- create's cost). Index rows arrive as one jsonb document: {"token": [[type, id, code, ...], ...], ...}
-- with columns in table order; numeric infinities as the strings "Infinity" / "-Infinity".

CREATE OR REPLACE FUNCTION continuum_insert_index(p jsonb) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  IF p ? 'string' THEN
    INSERT INTO search_string (resource_type, id, code, value, normalized)
    SELECT e->>0, e->>1, e->>2, e->>3, e->>4 FROM jsonb_array_elements(p->'string') e;
  END IF;
  IF p ? 'token' THEN
    INSERT INTO search_token (resource_type, id, code, system, value, text, type_system, type_code)
    SELECT e->>0, e->>1, e->>2, e->>3, e->>4, e->>5, e->>6, e->>7 FROM jsonb_array_elements(p->'token') e;
  END IF;
  IF p ? 'reference' THEN
    INSERT INTO search_reference (resource_type, id, code, target_type, target_id, version, url, identifier_system, identifier_value)
    SELECT e->>0, e->>1, e->>2, e->>3, e->>4, e->>5, e->>6, e->>7, e->>8 FROM jsonb_array_elements(p->'reference') e;
  END IF;
  IF p ? 'date' THEN
    INSERT INTO search_date (resource_type, id, code, start_at, end_at)
    SELECT e->>0, e->>1, e->>2, (e->>3)::timestamptz, (e->>4)::timestamptz FROM jsonb_array_elements(p->'date') e;
  END IF;
  IF p ? 'number' THEN
    INSERT INTO search_number (resource_type, id, code, value, low, high)
    SELECT e->>0, e->>1, e->>2, (e->>3)::numeric, (e->>4)::numeric, (e->>5)::numeric FROM jsonb_array_elements(p->'number') e;
  END IF;
  IF p ? 'quantity' THEN
    INSERT INTO search_quantity (resource_type, id, code, value, low, high, system, unit_code, unit, canonical_value, canonical_unit)
    SELECT e->>0, e->>1, e->>2, (e->>3)::numeric, (e->>4)::numeric, (e->>5)::numeric, e->>6, e->>7, e->>8, (e->>9)::numeric, e->>10
    FROM jsonb_array_elements(p->'quantity') e;
  END IF;
  IF p ? 'uri' THEN
    INSERT INTO search_uri (resource_type, id, code, value, version)
    SELECT e->>0, e->>1, e->>2, e->>3, e->>4 FROM jsonb_array_elements(p->'uri') e;
  END IF;
  IF p ? 'composite' THEN
    INSERT INTO search_composite (resource_type, id, code, components)
    SELECT e->>0, e->>1, e->>2, e->3 FROM jsonb_array_elements(p->'composite') e;
  END IF;
END $$;

CREATE OR REPLACE FUNCTION continuum_delete_index(p_types text[], p_ids text[]) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM search_string WHERE (resource_type, id) IN (SELECT * FROM unnest(p_types, p_ids));
  DELETE FROM search_token WHERE (resource_type, id) IN (SELECT * FROM unnest(p_types, p_ids));
  DELETE FROM search_reference WHERE (resource_type, id) IN (SELECT * FROM unnest(p_types, p_ids));
  DELETE FROM search_date WHERE (resource_type, id) IN (SELECT * FROM unnest(p_types, p_ids));
  DELETE FROM search_number WHERE (resource_type, id) IN (SELECT * FROM unnest(p_types, p_ids));
  DELETE FROM search_quantity WHERE (resource_type, id) IN (SELECT * FROM unnest(p_types, p_ids));
  DELETE FROM search_uri WHERE (resource_type, id) IN (SELECT * FROM unnest(p_types, p_ids));
  DELETE FROM search_composite WHERE (resource_type, id) IN (SELECT * FROM unnest(p_types, p_ids));
END $$;

-- Creates version 1 of each resource given (in order), skipping ids that exist; returns the ids
-- written. Index rows are inserted as given (the caller fails or repairs on a skipped id).
CREATE OR REPLACE FUNCTION continuum_create(
  p_types text[], p_ids text[], p_updated timestamptz[], p_contents text[], p_methods text[], p_index jsonb
) RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE
  written text[];
BEGIN
  WITH r AS (
    SELECT * FROM unnest(p_types, p_ids, p_updated, p_contents, p_methods) WITH ORDINALITY AS t(resource_type, id, last_updated, content, method, ord)
  ),
  c AS (
    INSERT INTO resource_current (resource_type, id, version_id, last_updated, deleted, content)
    SELECT resource_type, id, 1, last_updated, false, content FROM r ORDER BY ord
    ON CONFLICT DO NOTHING RETURNING resource_type, id
  ),
  v AS (
    INSERT INTO resource_version (resource_type, id, version_id, last_updated, deleted, method, content)
    SELECT r.resource_type, r.id, 1, r.last_updated, false, r.method, r.content
    FROM r JOIN c ON c.resource_type = r.resource_type AND c.id = r.id ORDER BY r.ord
    RETURNING id
  )
  SELECT array_agg(id) INTO written FROM v;
  IF p_index IS NOT NULL THEN
    PERFORM continuum_insert_index(p_index);
  END IF;
  RETURN QUERY SELECT unnest(coalesce(written, '{}'::text[]));
END $$;

-- Writes version p_version of an existing resource (the caller holds its row lock), replacing its
-- index rows with p_index (none for a delete).
CREATE OR REPLACE FUNCTION continuum_write_version(
  p_type text, p_id text, p_version integer, p_updated timestamptz, p_deleted boolean, p_method text, p_content text, p_index jsonb
) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  UPDATE resource_current SET version_id = p_version, last_updated = p_updated, deleted = p_deleted, content = p_content
  WHERE resource_type = p_type AND id = p_id;
  INSERT INTO resource_version (resource_type, id, version_id, last_updated, deleted, method, content)
  VALUES (p_type, p_id, p_version, p_updated, p_deleted, p_method, p_content);
  PERFORM continuum_delete_index(ARRAY[p_type], ARRAY[p_id]);
  IF p_index IS NOT NULL THEN
    PERFORM continuum_insert_index(p_index);
  END IF;
END $$;

-- Reindexing: replaces the index rows of the given resources.
CREATE OR REPLACE FUNCTION continuum_replace_index(p_types text[], p_ids text[], p_index jsonb) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  PERFORM continuum_delete_index(p_types, p_ids);
  IF p_index IS NOT NULL THEN
    PERFORM continuum_insert_index(p_index);
  END IF;
END $$;
