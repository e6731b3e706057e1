-- Request objects (OIDC Core §6, RFC 9101). `request_uris`: the URLs the client may pass
-- as request_uri (a JSON list; only these are ever fetched, so a request_uri cannot make
-- the server fetch an arbitrary URL); '[]' for every client registered before.
-- `request_object_signing_alg`: the one algorithm its request objects must be signed
-- with, when it registered one (NULL: any asymmetric algorithm Lanyard verifies).
ALTER TABLE clients ADD COLUMN request_uris TEXT NOT NULL DEFAULT '[]';
ALTER TABLE clients ADD COLUMN request_object_signing_alg TEXT;
