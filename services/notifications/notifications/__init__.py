"""Fabrique notifications: saved searches and alerts by webhook, e-mail and in-app feed."""
