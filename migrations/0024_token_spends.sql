-- Paying with tokens (issue #11 point 5).
--
-- token_wallets: what a local account may still spend. It is the account's tokens in our log
-- (minted - spent - expired) less the spends still waiting for the maker's countersignature,
-- kept as one number so that a debit is one guarded UPDATE: the CHECK keeps it from ever going
-- below zero, whatever runs concurrently (rewards/spending.py debit). Mints credit it in the
-- transaction that appends them; a refused spend or a countersigned undo-spend gives tokens back.
CREATE TABLE token_wallets (
    account_uri     text PRIMARY KEY,
    available       bigint NOT NULL DEFAULT 0 CHECK (available >= 0),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
INSERT INTO token_wallets (account_uri, available)
SELECT account_uri, sum(tokens) FROM rewards_mints GROUP BY account_uri;

-- Every rewards/spend/v1 entry this instance issued or countersigned (rewards/spend.py). One spend
-- and at most one undo-spend per order: a replayed or duplicated spend is refused by the key.
-- role: issuer (our buyer, the maker elsewhere), counterparty (our maker, the buyer elsewhere) or
-- local (both here: signed by us alone). state: pending until the maker's instance countersigns,
-- then countersigned (idx: the entry in our log), or refused for good (the tokens went back).
CREATE TABLE token_spends (
    spend_id        text PRIMARY KEY,
    kind            text NOT NULL CHECK (kind IN ('spend', 'undo-spend')),
    order_uri       text NOT NULL,
    account_uri     text NOT NULL,
    seller_uri      text NOT NULL,
    listing_uri     text NOT NULL,
    quantity        integer NOT NULL CHECK (quantity BETWEEN 1 AND 1000),
    tokens          bigint NOT NULL CHECK (tokens > 0),
    role            text NOT NULL CHECK (role IN ('issuer', 'counterparty', 'local')),
    state           text NOT NULL CHECK (state IN ('pending', 'countersigned', 'refused')),
    reason          text NOT NULL DEFAULT '',
    idx             bigint UNIQUE REFERENCES rewards_log_entries (idx),
    delivery_id     bigint REFERENCES rewards_receipt_deliveries (id),
    spent_at        timestamptz NOT NULL,
    UNIQUE (order_uri, kind),
    CHECK ((state = 'countersigned') = (idx IS NOT NULL))
);
CREATE INDEX token_spends_account ON token_spends (account_uri) WHERE idx IS NOT NULL;
CREATE INDEX token_spends_seller ON token_spends (seller_uri) WHERE idx IS NOT NULL;
CREATE INDEX token_spends_delivery ON token_spends (delivery_id) WHERE delivery_id IS NOT NULL;

-- What a token order costs in tokens (shipping included); NULL for an order paid in won.
ALTER TABLE orders ADD COLUMN total_tokens bigint CHECK (total_tokens > 0);
ALTER TABLE orders ADD CONSTRAINT orders_tokens_paid_in_tokens
    CHECK ((payment_method = 'tokens') = (total_tokens IS NOT NULL));

-- Expiries (rewards/expire/v1): unused tokens past token_expiry_days, one numbered entry at a time per
-- account, like mints (the key makes a second expiry of the same tokens impossible).
CREATE TABLE rewards_expiries (
    account_uri     text NOT NULL,
    seq             integer NOT NULL CHECK (seq >= 1),
    idx             bigint NOT NULL UNIQUE REFERENCES rewards_log_entries (idx),
    tokens          bigint NOT NULL CHECK (tokens > 0),
    expired_at      timestamptz NOT NULL,
    PRIMARY KEY (account_uri, seq)
);
CREATE INDEX rewards_mints_minted_at ON rewards_mints (minted_at);
