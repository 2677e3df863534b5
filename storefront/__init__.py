"""Products, stock, orders and the public shop pages (later issues)."""
