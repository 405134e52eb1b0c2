"""Every call the portal makes to the public APIs, one module per service.

The portal owns no domain data: a page is built from inventory, leasing and notifications
answers, asked with the visitor's own token when logged in. `base` holds the clients, the
errors pages turn into answers, and the one request function every call goes through.
"""

from portal.clients.base import (
    UpstreamNotFound,
    UpstreamRefused,
    Upstreams,
    UpstreamUnavailable,
    reachable,
)

__all__ = [
    "UpstreamNotFound",
    "UpstreamRefused",
    "UpstreamUnavailable",
    "Upstreams",
    "reachable",
]
