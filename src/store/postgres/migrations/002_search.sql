-- Search index rows, one table per SearchParameter type (src/search/extract/rows.ts), written in the
-- same transaction as the resource version they describe. A resource's rows are replaced on every
-- write and removed on delete; `code` is the SearchParameter's code.

CREATE TABLE search_string (
  resource_type text NOT NULL,
  id            text NOT NULL,
  code          text NOT NULL,
  value         text NOT NULL,
  normalized    text NOT NULL
);
CREATE INDEX search_string_lookup ON search_string (resource_type, code, left(normalized, 200) text_pattern_ops);
CREATE INDEX search_string_owner ON search_string (resource_type, id);

CREATE TABLE search_token (
  resource_type text NOT NULL,
  id            text NOT NULL,
  code          text NOT NULL,
  system        text,
  value         text,
  text          text,
  type_system   text,
  type_code     text
);
CREATE INDEX search_token_lookup ON search_token (resource_type, code, value, system);
CREATE INDEX search_token_owner ON search_token (resource_type, id);

CREATE TABLE search_reference (
  resource_type     text NOT NULL,
  id                text NOT NULL,
  code              text NOT NULL,
  target_type       text,
  target_id         text,
  version           text,
  url               text,
  identifier_system text,
  identifier_value  text
);
CREATE INDEX search_reference_lookup ON search_reference (resource_type, code, target_id, target_type);
CREATE INDEX search_reference_target ON search_reference (target_type, target_id);
CREATE INDEX search_reference_owner ON search_reference (resource_type, id);

CREATE TABLE search_date (
  resource_type text        NOT NULL,
  id            text        NOT NULL,
  code          text        NOT NULL,
  start_at      timestamptz NOT NULL,
  end_at        timestamptz NOT NULL
);
CREATE INDEX search_date_lookup ON search_date (resource_type, code, start_at, end_at);
CREATE INDEX search_date_owner ON search_date (resource_type, id);

CREATE TABLE search_number (
  resource_type text    NOT NULL,
  id            text    NOT NULL,
  code          text    NOT NULL,
  value         numeric,
  low           numeric NOT NULL,
  high          numeric NOT NULL
);
CREATE INDEX search_number_lookup ON search_number (resource_type, code, value);
CREATE INDEX search_number_owner ON search_number (resource_type, id);

CREATE TABLE search_quantity (
  resource_type   text    NOT NULL,
  id              text    NOT NULL,
  code            text    NOT NULL,
  value           numeric,
  low             numeric NOT NULL,
  high            numeric NOT NULL,
  system          text,
  unit_code       text,
  unit            text,
  canonical_value numeric,
  canonical_unit  text
);
CREATE INDEX search_quantity_lookup ON search_quantity (resource_type, code, value);
CREATE INDEX search_quantity_owner ON search_quantity (resource_type, id);

CREATE TABLE search_uri (
  resource_type text NOT NULL,
  id            text NOT NULL,
  code          text NOT NULL,
  value         text NOT NULL,
  version       text
);
CREATE INDEX search_uri_lookup ON search_uri (resource_type, code, value text_pattern_ops);
CREATE INDEX search_uri_owner ON search_uri (resource_type, id);

CREATE TABLE search_composite (
  resource_type text  NOT NULL,
  id            text  NOT NULL,
  code          text  NOT NULL,
  components    jsonb NOT NULL
);
CREATE INDEX search_composite_lookup ON search_composite (resource_type, code);
CREATE INDEX search_composite_owner ON search_composite (resource_type, id);

-- Search results are ordered by (sort key, id); current-resource paging and _lastUpdated sorting.
CREATE INDEX resource_current_type_updated ON resource_current (resource_type, last_updated, id);
