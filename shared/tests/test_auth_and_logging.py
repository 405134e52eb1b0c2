"""Who may call: require_roles and the bearer dependency (tokens are verified by
fabkit.oidc, see test_oidc.py; no service can mint one); and what the log redaction hides."""

from __future__ import annotations

import logging

import jwt
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

import fabkit.auth
from fabkit.auth import Principal, Role, require_roles
from fabkit.errors import install_problem_handlers
from fabkit.logging import RedactingFilter, redact


class _Verifier:
    """Stands in for JwksTokenVerifier: maps a token string to a principal."""

    def __init__(self, known: dict[str, Principal]) -> None:
        self.known = known

    async def verify(self, token: str) -> Principal:
        return self.known[token]


def _app() -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)
    app.state.verifier = _Verifier(
        {
            "admin": Principal("a-1", Role.ADMIN),
            "officer": Principal("o-1", Role.OFFICER),
            "artisan": Principal("x-1", Role.ARTISAN, email_verified=True),
        }
    )

    readers = require_roles(Role.ADMIN, Role.OFFICER)

    @app.get("/read")
    async def read(principal: Principal = readers) -> dict[str, str]:
        return {"subject": principal.subject, "role": principal.role.value}

    return app


def test_no_service_can_mint_a_token() -> None:
    assert not hasattr(fabkit.auth, "TokenService")


def test_require_roles_lets_the_listed_roles_through_and_refuses_others() -> None:
    client = TestClient(_app())
    for who in ("admin", "officer"):
        r = client.get("/read", headers={"Authorization": f"Bearer {who}"})
        assert r.status_code == 200, r.text
    r = client.get("/read", headers={"Authorization": "Bearer artisan"})
    assert r.status_code == 403
    assert "admin, officer" in r.json()["detail"]
    assert "acts as artisan" in r.json()["detail"]


def test_no_bearer_token_is_a_401_that_says_how_to_send_one() -> None:
    r = TestClient(_app()).get("/read")
    assert r.status_code == 401
    assert r.headers["www-authenticate"].startswith("Bearer")
    assert "Authorization: Bearer" in r.json()["detail"]


# Redaction -----------------------------------------------------------------------------------

JWT = jwt.encode({"sub": "landlord-7", "roles": ["landlord"]}, "k" * 32, algorithm="HS256")


@pytest.mark.parametrize(
    ("text", "secret", "kept"),
    [
        ("Authorization: Bearer abc.DEF-123_x", "abc.DEF-123_x", "Authorization: Bearer"),
        ("authorization: bearer opaque~token+/=", "opaque~token+/=", "bearer [redacted]"),
        (f"calling with {JWT} now", JWT, "calling with"),
        (f"token={JWT}", JWT, "token="),
        ("login failed password=hunter2 for alice", "hunter2", "for alice"),
        ('{"password": "hunter2", "user": "alice"}', "hunter2", '"user": "alice"'),
        ("PASSWORD: 'hunter2'", "hunter2", "PASSWORD"),
        ("secret: s3cr3t-value", "s3cr3t-value", "secret:"),
        ("jwt_secret=s3cr3t-value,next=1", "s3cr3t-value", "next=1"),
        ("api token: tok_12345", "tok_12345", "api token"),
        ("postgresql://u:pw@host/db", ":pw@", "postgresql://u:[redacted]@host/db"),
        (
            "connecting to postgresql+asyncpg://fabrique:S3cret%21@db:5432/inventory",
            "S3cret%21",
            "@db:5432/inventory",
        ),
        ("smtp://mailer:hunter2@smtp.example:587", "hunter2", "smtp://mailer:"),
    ],
)
def test_redact_hides_secrets(text: str, secret: str, kept: str) -> None:
    cleaned = redact(text)

    assert secret not in cleaned
    assert "[redacted" in cleaned
    assert kept in cleaned


def test_redact_hides_a_url_password_exactly() -> None:
    assert redact("postgresql://u:pw@host/db") == "postgresql://u:[redacted]@host/db"


@pytest.mark.parametrize(
    "text",
    [
        "unit 0b8f2c1e-5d7a-4f0e-9a51-3c2d7e6b1a90 is now available",
        "GET /v1/units?arrondissement=13 200",
        "kafka bootstrap 127.0.0.1:9092",
        "postgresql://u@host/db",
        "http://localhost:8001/livez",
    ],
)
def test_redact_leaves_ordinary_text_alone(text: str) -> None:
    assert redact(text) == text


def test_redacting_filter_rewrites_the_record() -> None:
    record = logging.LogRecord(
        "fabrique", logging.INFO, __file__, 1, "auth header %s for %s", (f"Bearer {JWT}", "u"), None
    )

    assert RedactingFilter().filter(record) is True
    assert JWT not in record.getMessage()
    assert record.getMessage() == "auth header Bearer [redacted] for u"


def test_redacting_filter_keeps_clean_records_untouched() -> None:
    record = logging.LogRecord("fabrique", logging.INFO, __file__, 1, "unit %s", ("u-1",), None)

    assert RedactingFilter().filter(record) is True
    assert (record.msg, record.args) == ("unit %s", ("u-1",))
