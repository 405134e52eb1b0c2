"""Leasing use cases, one module per part of the API. Each use case is a single transaction
that it commits itself.

common (actor, permission checks) <- decisions (an application's state machine) <- artisans,
programmes, listings, applications, leases; nothing here imports the API or the event handlers.
"""
