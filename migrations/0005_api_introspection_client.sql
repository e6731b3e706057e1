-- The client an API authenticates with at /introspect (RFC 7662): it may learn about
-- tokens whose audience is this API, and nothing else.
ALTER TABLE apis ADD COLUMN introspection_client_id TEXT;
