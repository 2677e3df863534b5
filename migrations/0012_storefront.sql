-- The storefront: what a maker tells buyers (business information, payment instructions),
-- listings (local products and the remote ones federation brings), and orders with their
-- history. Stock and state move by UPDATE ... WHERE, guarded by these constraints.

-- 전자상거래법 §13: what an online seller discloses; payment in won happens outside fedserver.
CREATE TABLE seller_profiles (
    account_id          bigint PRIMARY KEY REFERENCES actors (id) ON DELETE CASCADE,
    business_name       text NOT NULL DEFAULT '',   -- 상호
    representative      text NOT NULL DEFAULT '',   -- 대표자
    address             text NOT NULL DEFAULT '',   -- 사업장 주소
    phone               text NOT NULL DEFAULT '',   -- 연락처
    email               text NOT NULL DEFAULT '',
    registration_number text NOT NULL DEFAULT '',   -- 사업자등록번호
    mail_order_number   text NOT NULL DEFAULT '',   -- 통신판매업 신고번호
    payment_text        text NOT NULL DEFAULT '',   -- bank transfer instructions
    payto               text NOT NULL DEFAULT '' CHECK (payto = '' OR payto LIKE 'payto:%'),
    updated_at          timestamptz NOT NULL DEFAULT now()
);

-- A listing is also the Note it federates as (objects.id), so likes, boosts and replies land on it.
CREATE TABLE listings (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    object_id           bigint NOT NULL UNIQUE REFERENCES objects (id) ON DELETE CASCADE,
    seller_id           bigint NOT NULL REFERENCES actors (id) ON DELETE CASCADE,
    is_local            boolean NOT NULL,
    title               text NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
    description         text NOT NULL DEFAULT '',
    currency            text NOT NULL DEFAULT 'https://www.wikidata.org/wiki/Q202040',
    price               bigint NOT NULL CHECK (price > 0),
    -- NULL: made to order, no count.
    stock               integer CHECK (stock >= 0),
    token_price         integer CHECK (token_price > 0),
    shipping_krw        bigint NOT NULL DEFAULT 0 CHECK (shipping_krw >= 0),
    free_shipping_over  bigint CHECK (free_shipping_over > 0),
    auto_accept         boolean NOT NULL DEFAULT false,
    status              text NOT NULL DEFAULT 'active'
                        CHECK (status IN ('active', 'paused', 'sold_out', 'deleted')),
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    CHECK (NOT is_local OR (price <= 100000000 AND currency = 'https://www.wikidata.org/wiki/Q202040')),
    CHECK (status <> 'sold_out' OR stock = 0)
);
CREATE INDEX listings_seller ON listings (seller_id, id DESC);
CREATE INDEX listings_newest ON listings (id DESC) WHERE status = 'active';

-- Each instance keeps its copy of an order it takes part in; `uri` is the Agreement id both share.
CREATE TABLE orders (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    uri                 text NOT NULL UNIQUE,
    offer_uri           text UNIQUE,                -- the buyer's Offer, when there was one
    listing_id          bigint NOT NULL REFERENCES listings (id),
    buyer_id            bigint NOT NULL REFERENCES actors (id),
    seller_id           bigint NOT NULL REFERENCES actors (id),
    quantity            integer NOT NULL CHECK (quantity BETWEEN 1 AND 1000),
    unit_price          bigint NOT NULL CHECK (unit_price > 0),
    shipping_krw        bigint NOT NULL DEFAULT 0 CHECK (shipping_krw >= 0),
    total_krw           bigint NOT NULL CHECK (total_krw > 0),
    payment_method      text NOT NULL DEFAULT 'krw' CHECK (payment_method IN ('krw', 'tokens')),
    -- How the buyer speaks: FEP-0837 activities, direct messages (a Mastodon user), or this instance.
    channel             text NOT NULL CHECK (channel IN ('fep', 'dm', 'local')),
    state               text NOT NULL DEFAULT 'requested'
                        CHECK (state IN ('requested', 'accepted', 'rejected', 'paid', 'shipped', 'delivered',
                                         'completed', 'cancelled')),
    reserved            integer NOT NULL DEFAULT 0 CHECK (reserved >= 0),  -- stock this order holds
    message             text NOT NULL DEFAULT '',
    reason              text NOT NULL DEFAULT '',
    thread_uri          text,                        -- the buyer's direct message an order by DM answers
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    CHECK (buyer_id <> seller_id)
);
CREATE INDEX orders_buyer ON orders (buyer_id, id DESC);
CREATE INDEX orders_seller ON orders (seller_id, id DESC);
CREATE INDEX orders_listing ON orders (listing_id);

-- Every move of an order, in order: who made it, and why.
CREATE TABLE order_events (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    order_id            bigint NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    event               text NOT NULL,
    party               text NOT NULL CHECK (party IN ('buyer', 'seller')),
    state               text NOT NULL,
    note                text NOT NULL DEFAULT '',
    created_at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX order_events_order ON order_events (order_id, id);
