-- Every version of every resource, in write order. `seq` orders system history and pages it.
CREATE TABLE resource_version (
  seq           bigserial PRIMARY KEY,
  resource_type text        NOT NULL,
  id            text        NOT NULL,
  version_id    integer     NOT NULL,
  last_updated  timestamptz NOT NULL,
  deleted       boolean     NOT NULL DEFAULT false,
  method        text        NOT NULL,
  content       text,
  UNIQUE (resource_type, id, version_id)
);
CREATE INDEX resource_version_type_seq ON resource_version (resource_type, seq);
CREATE INDEX resource_version_updated ON resource_version (last_updated);

-- The current version of each resource (a delete keeps its row, with deleted = true), so that
-- reads, conditional writes and search never scan history.
CREATE TABLE resource_current (
  resource_type text        NOT NULL,
  id            text        NOT NULL,
  version_id    integer     NOT NULL,
  last_updated  timestamptz NOT NULL,
  deleted       boolean     NOT NULL DEFAULT false,
  content       text,
  PRIMARY KEY (resource_type, id)
);
