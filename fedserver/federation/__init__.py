"""Federation: the outbound HTTP client, its address rules, and delivery fan-out."""
