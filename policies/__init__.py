"""Policies as data (TOML files beside this module) and the small engine that answers from them.

Imports nothing of ours: every other layer may ask it questions.
"""
