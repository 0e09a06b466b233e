"""Domain and persistence: tenants, keys, conversations, messages, events, tickets.

This package is the bottom of the dependency graph: it imports neither ``graph`` nor ``api``.
"""
