"""Who is calling: the roles, the principal, and the FastAPI dependencies that verify it.

Fabrique's services are OAuth 2 resource servers: they never sign a token. Access tokens come
from the identity provider (Keycloak, realm ``fabrique``) and are verified by the process's one
:class:`fabkit.oidc.JwksTokenVerifier` (``app.state.verifier``, built by
:func:`fabkit.runtime.build_runtime`) against the provider's published keys.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from fabkit.errors import ProblemError

if TYPE_CHECKING:
    from fabkit.oidc import JwksTokenVerifier


class Role(StrEnum):
    ADMIN = "admin"
    LANDLORD = "landlord"
    ARTISAN = "artisan"
    OFFICER = "officer"  # city officer: reads everything; writes only programmes and appeal answers


@dataclass(frozen=True)
class Principal:
    """Who is calling: the token's subject (an id in its role's table) and its role.

    ``email_verified`` is what the provider says of the account's e-mail address (false for
    service accounts, which have none), ``email`` that address when it is verified (None
    otherwise). Neither is part of the caller's identity: two principals with the same subject
    and role are equal."""

    subject: str
    role: Role
    email_verified: bool = field(default=False, compare=False)
    email: str | None = field(default=None, compare=False, repr=False)

    def owns_address(self, address: str) -> bool:
        """The provider verified that this account receives mail at ``address``."""
        return self.email is not None and self.email.casefold() == address.strip().casefold()

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN


def unauthorized(detail: str) -> ProblemError:
    return ProblemError(
        401,
        detail,
        headers={"WWW-Authenticate": 'Bearer realm="fabrique", error="invalid_token"'},
    )


_bearer = HTTPBearer(
    auto_error=False,
    bearerFormat="JWT",
    description=(
        "An access token of Fabrique's OpenID Connect provider (Keycloak, realm fabrique; "
        "discovery at <issuer>/.well-known/openid-configuration): client credentials for "
        "landlord integrations and the admin CLI, authorization code + PKCE for people."
    ),
)


async def current_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """The caller, verified by ``request.app.state.verifier``, or a 401/403/503 problem."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise ProblemError(
            401,
            "A bearer token is required (Authorization: Bearer <access token of the identity "
            "provider>).",
            headers={"WWW-Authenticate": 'Bearer realm="fabrique"'},
        )
    verifier: JwksTokenVerifier = request.app.state.verifier
    return await verifier.verify(credentials.credentials)


PrincipalDep = Annotated[Principal, Depends(current_principal)]


def require_roles(*roles: Role):  # type: ignore[no-untyped-def]
    """Dependency that lets only the given roles through (403 otherwise)."""

    async def _check(principal: PrincipalDep) -> Principal:
        if principal.role not in roles:
            allowed = ", ".join(r.value for r in roles)
            raise ProblemError(
                403,
                f"This action needs one of these roles: {allowed}; your token acts as "
                f"{principal.role}.",
            )
        return principal

    return Depends(_check)
