"""Data-subject requests (GDPR Art. 15-17, 20): the vault owns the request, its deadlines, the
export document and the erasure.

The vault knows no commerce: every context that holds personal data implements the small
`PersonalDataSource` protocol (`sources.py`), and the composition root (`gateway`) registers
the implementations. `service.DataSubjectRequests` runs a request over every registered
source, step by step, each step idempotent, so an interrupted request resumes.
"""
