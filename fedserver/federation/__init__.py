"""Federation: the inbox, inbound handlers, the outbox services and delivery."""
