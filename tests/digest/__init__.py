"""Digest site, digest email, evidence bundles and their checks in a real browser."""
