"""Personalization that asks first: recommendations and purchase-based offers, only with consent."""
