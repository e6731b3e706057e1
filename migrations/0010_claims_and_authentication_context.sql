-- How each session was authenticated (`pwd`: password on the login page, `dev`:
-- --dev-login), the source of the `amr` and `acr` claims. Sessions from before are
-- password sign-ins (the only kind outside dev mode), hence the default.
ALTER TABLE sessions ADD COLUMN amr TEXT NOT NULL DEFAULT 'pwd';

-- A code carries what its tokens will say about the sign-in and what the client asked
-- for: the `claims` request parameter (OIDC Core §5.5, JSON, NULL when not sent), the
-- `acr` established at /authorize, and the session's `amr`.
ALTER TABLE authorization_codes ADD COLUMN claims TEXT;
ALTER TABLE authorization_codes ADD COLUMN acr TEXT;
ALTER TABLE authorization_codes ADD COLUMN amr TEXT;

-- The grant keeps them too: userinfo sees only an access token (its jti names the grant)
-- and must still honour the claims request; a refresh re-issues the id_token with the same
-- acr/amr. NULL on older grants: no claims requested, a password sign-in.
ALTER TABLE grants ADD COLUMN claims TEXT;
ALTER TABLE grants ADD COLUMN acr TEXT;
ALTER TABLE grants ADD COLUMN amr TEXT;

-- Whether scope-requested profile claims go into the id_token as well as userinfo:
-- 'all' (default, as Keycloak, Auth0 and Google do, since many RP libraries read the
-- profile from the id_token only) or 'minimal' (OIDC Core §5.4: userinfo only when an
-- access token is issued; claims named in the `claims` parameter are still honoured).
ALTER TABLE clients ADD COLUMN id_token_claims TEXT NOT NULL DEFAULT 'all';
