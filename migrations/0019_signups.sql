-- Sign-ups from the web and the API (`[instance] registrations`). An account that asked to join
-- an instance with `registrations = "approval"` waits, with its reason, until an administrator
-- approves it (it cannot log in, and is not listed) or rejects it (it is removed).
ALTER TABLE local_accounts ADD COLUMN approved boolean NOT NULL DEFAULT true;
ALTER TABLE local_accounts ADD COLUMN signup_reason text NOT NULL DEFAULT '' CHECK (length(signup_reason) <= 1000);
CREATE INDEX local_accounts_pending ON local_accounts (created_at) WHERE NOT approved;
