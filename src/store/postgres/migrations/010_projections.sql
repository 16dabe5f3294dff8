-- Projections: small JSON documents derived from a resource at write time (src/store/projections.ts),
-- for readers that need a few fields of many resources (the CCM worklist and month close) and would
-- otherwise read and parse every resource whole. Rows are written, replaced and removed with the
-- resource's search index rows (by the same functions, in the same transaction); `code` names the
-- projection and its version ("ccm-time-entry.v1").
-- `key` is what readers select rows by without a search (a status, a month): a resource has one
-- row per key of its value.
CREATE TABLE resource_projection (
  resource_type text NOT NULL,
  id            text NOT NULL,
  code          text NOT NULL,
  key           text NOT NULL,
  data          text NOT NULL
);
CREATE INDEX resource_projection_owner ON resource_projection (resource_type, id);
CREATE INDEX resource_projection_key ON resource_projection (code, resource_type, key, id);

-- A projection is read only once every stored resource of its types has its row: a projection new
-- to this database starts not ready and is backfilled (reindexing its types) before it is used.
CREATE TABLE projection_state (
  code       text PRIMARY KEY,
  types      text[] NOT NULL,
  ready      boolean NOT NULL DEFAULT false,
  updated_at timestamptz NOT NULL DEFAULT now()
);

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
  IF p ? 'projection' THEN
    INSERT INTO resource_projection (resource_type, id, code, key, data)
    SELECT e->>0, e->>1, e->>2, e->>3, e->>4 FROM jsonb_array_elements(p->'projection') e;
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
  DELETE FROM resource_projection WHERE (resource_type, id) IN (SELECT * FROM unnest(p_types, p_ids));
END $$;
