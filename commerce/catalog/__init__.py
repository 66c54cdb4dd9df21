"""Channels, locations, categories, products and variants."""
