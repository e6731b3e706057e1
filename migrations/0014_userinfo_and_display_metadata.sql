-- Signed userinfo (OIDC Core §5.3.2, OIDC Registration §2): the JWS algorithm a client
-- asked its userinfo responses to be signed with; NULL answers plain JSON, as before.
ALTER TABLE clients ADD COLUMN userinfo_signed_response_alg TEXT;

-- Display metadata (RFC 7591 §2), shown on the login and consent pages: the client's logo,
-- home page, privacy policy and terms of service. Absolute URLs, validated on the way in;
-- NULL when not registered.
ALTER TABLE clients ADD COLUMN logo_uri TEXT;
ALTER TABLE clients ADD COLUMN client_uri TEXT;
ALTER TABLE clients ADD COLUMN policy_uri TEXT;
ALTER TABLE clients ADD COLUMN tos_uri TEXT;
