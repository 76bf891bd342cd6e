"""Checks on served and training data: parity and drift."""
