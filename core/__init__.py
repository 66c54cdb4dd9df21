"""The bottom layer: database plumbing, clock and ids shared by every context.

It imports nothing of ours, so `vault`, `policies`, `commerce` and `gateway` may all use it.
"""
