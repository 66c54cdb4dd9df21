"""The vault: personal data encrypted per person, and the audit trail of who accessed it."""
