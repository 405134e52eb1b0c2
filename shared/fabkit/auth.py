"""JWT bearer authentication with three roles: admin, landlord, artisan."""

from __future__ import annotations

import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated

import jwt
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from fabkit.errors import ProblemError


class Role(StrEnum):
    ADMIN = "admin"
    LANDLORD = "landlord"
    ARTISAN = "artisan"
    OFFICER = "officer"  # a city officer: reads everything, writes nothing


@dataclass(frozen=True)
class Principal:
    """Who is calling: the token's subject (an id in its role's table) and its role."""

    subject: str
    role: Role

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN


class TokenService:
    """Issues and checks HS256 tokens shared by every Fabrique service."""

    ALGORITHM = "HS256"

    def __init__(
        self, secret: str, issuer: str = "fabrique", previous: tuple[str, ...] = ()
    ) -> None:
        self._secret = secret
        self._issuer = issuer
        # Rotation: tokens signed with a previous secret stay valid until it is dropped.
        self._verify_with = (secret, *previous)

    def issue(self, subject: str, role: Role, ttl_seconds: int = 30 * 24 * 3600) -> str:
        now = int(time.time())
        claims = {
            "sub": subject,
            "role": role.value,
            "iss": self._issuer,
            "iat": now,
            "exp": now + ttl_seconds,
        }
        return jwt.encode(claims, self._secret, algorithm=self.ALGORITHM)

    def decode(self, token: str) -> Principal:
        error: Exception | None = None
        for secret in self._verify_with:
            try:
                claims = jwt.decode(
                    token,
                    secret,
                    algorithms=[self.ALGORITHM],
                    issuer=self._issuer,
                    options={"require": ["sub", "role", "exp", "iss"]},
                )
                return Principal(subject=str(claims["sub"]), role=Role(claims["role"]))
            except jwt.InvalidSignatureError as exc:
                error = exc  # perhaps signed with another of our secrets
            except (jwt.PyJWTError, ValueError) as exc:
                raise _unauthorized(f"Invalid bearer token: {exc}") from exc
        raise _unauthorized(f"Invalid bearer token: {error}")


def _unauthorized(detail: str) -> ProblemError:
    return ProblemError(401, detail, headers={"WWW-Authenticate": 'Bearer realm="fabrique"'})


_bearer = HTTPBearer(auto_error=False, description="A Fabrique JWT (admin, landlord or artisan)")


async def current_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """The authenticated caller, or 401."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise _unauthorized("A bearer token is required (Authorization: Bearer <token>).")
    tokens: TokenService = request.app.state.tokens
    return tokens.decode(credentials.credentials)


PrincipalDep = Annotated[Principal, Depends(current_principal)]


def require_roles(*roles: Role):  # type: ignore[no-untyped-def]
    """Dependency that lets only the given roles through (403 otherwise)."""

    async def _check(principal: PrincipalDep) -> Principal:
        if principal.role not in roles:
            allowed = ", ".join(r.value for r in roles)
            raise ProblemError(
                403, f"This action needs one of these roles: {allowed}; you are {principal.role}."
            )
        return principal

    return Depends(_check)
