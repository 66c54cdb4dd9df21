"""Loyalty: one account and one append-only ledger per customer, the same in every channel."""
