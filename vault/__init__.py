"""The vault: every piece of personal data, encrypted with a key of its own data subject,
and the audit trail of who accessed it.

Other modules call `vault.service.Vault` only; no module outside this package touches a key.
"""
