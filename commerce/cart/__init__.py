"""Server-side carts: one per guest capability id, one active per customer on every device."""
