"""The vault: every piece of personal data, encrypted with a key of its own data subject.

Other modules call `vault.service.Vault` only; no module outside this package touches a key.
"""
