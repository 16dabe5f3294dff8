-- Records of the authorization server (src/auth): registered clients, users, signing keys and
-- short-lived tickets (authorization requests, codes, launches, refresh tokens, revoked access
-- tokens, client-assertion ids seen). One table: each kind is a handful of rows or expires.
CREATE TABLE IF NOT EXISTS auth_record (
  kind        text NOT NULL,
  id          text NOT NULL,
  doc         jsonb NOT NULL,
  expires_at  timestamptz,
  used_at     timestamptz,
  created_at  timestamptz NOT NULL DEFAULT now(),
  seq         bigserial,
  PRIMARY KEY (kind, id)
);
CREATE INDEX IF NOT EXISTS auth_record_seq ON auth_record (kind, seq);
CREATE INDEX IF NOT EXISTS auth_record_expiry ON auth_record (expires_at) WHERE expires_at IS NOT NULL;
