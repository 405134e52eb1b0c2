"""Inventory use cases, one module per part of the API; each use case is one transaction that it
commits itself. `common` holds what they share; `surface` keeps the production-surface ledger
that sites and units write to; `leases` applies leasing's lease events through `units`."""
