"""Customers: accounts, sign-in and the profile, whose personal data lives only in the vault."""
