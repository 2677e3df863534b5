-- Orders by direct message are found by the message they answer: an edit (Update) of a message that
-- ordered must not order again, and every direct message that may order asks whether it already did.
CREATE INDEX orders_thread ON orders (thread_uri) WHERE thread_uri IS NOT NULL;
