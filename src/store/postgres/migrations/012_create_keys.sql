-- continuum_create now answers `Type/id` for each resource it wrote. One call can carry the creates
-- of several requests (the embedded store groups concurrent creates: store.ts, CreateGroups), and
-- an id alone is ambiguous when two of them chose the same id for different types.
-- It also inserts index rows only for the resources it wrote: a create that found its id taken
-- must not leave rows describing another resource (a call outside a transaction commits by itself).
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
    RETURNING resource_type, id
  )
  SELECT array_agg(v.resource_type || '/' || v.id) INTO written FROM v;
  IF p_index IS NOT NULL THEN
    IF coalesce(cardinality(written), 0) = cardinality(p_ids) THEN
      PERFORM continuum_insert_index(p_index);
    ELSE
      -- Some were skipped (rare): keep the rows ([type, id, ...]) of the written ones only.
      PERFORM continuum_insert_index(coalesce((
        SELECT jsonb_object_agg(j.key, (
          SELECT coalesce(jsonb_agg(a.e ORDER BY a.n), '[]'::jsonb)
          FROM jsonb_array_elements(j.value) WITH ORDINALITY AS a(e, n)
          WHERE (a.e->>0) || '/' || (a.e->>1) = ANY(written)))
        FROM jsonb_each(p_index) AS j), '{}'::jsonb));
    END IF;
  END IF;
  RETURN QUERY SELECT unnest(coalesce(written, '{}'::text[]));
END $$;
