"""Notifications use cases, one module per use case of the API or of the events.

Each API use case is one transaction that it commits itself; the event use cases run inside
the consumer's transaction (which also records the event id). Modules read top-down: `common`
(the caller and their subscriptions) and `staging` (writing deliveries) serve the others.
"""
