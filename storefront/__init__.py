"""The storefront: products that federate as listings, and orders that travel between instances.

- `rules`: the order state machine, totals and what a direct message orders (pure).
- `store`: the SQL of seller profiles, listings, stock and orders.
- `products`: listing, changing and delisting products (published as Notes with FEP-0837 fields).
- `orders`: placing, receiving and moving orders, with stock reserved in the same transaction.
- `messages`: the direct messages each move sends, so any Mastodon app shows the order.
- `inbound`: the FEP-0837 activities and remote listings and orders, registered with the dispatcher.
- `web`: the listing pages and documents; `cli`: `fedserver product …` and `fedserver order …`.
"""
