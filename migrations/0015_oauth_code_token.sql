-- The token an authorization code bought, so that a second use of the code (a stolen code
-- replayed) revokes it, as RFC 6749 section 4.1.2 asks.
ALTER TABLE oauth_codes ADD COLUMN token_id bigint REFERENCES oauth_tokens (id) ON DELETE SET NULL;
