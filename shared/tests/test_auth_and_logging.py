"""Bearer tokens: what TokenService accepts and refuses; and what the log redaction hides."""

from __future__ import annotations

import logging
import time

import jwt
import pytest

from fabkit.auth import Principal, Role, TokenService
from fabkit.errors import ProblemError
from fabkit.logging import RedactingFilter, redact

SECRET = "test-secret-long-enough-for-hs256-0123456789"
OTHER_SECRET = "another-secret-long-enough-for-hs256-98765"


@pytest.fixture
def tokens() -> TokenService:
    return TokenService(SECRET, issuer="fabrique")


def _raw(claims: dict[str, object], secret: str = SECRET) -> str:
    return jwt.encode(claims, secret, algorithm="HS256")


def _claims(**overrides: object) -> dict[str, object]:
    now = int(time.time())
    claims: dict[str, object] = {
        "sub": "landlord-7",
        "role": "landlord",
        "iss": "fabrique",
        "iat": now,
        "exp": now + 600,
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def _assert_401(exc: ProblemError) -> None:
    assert exc.status == 401
    assert exc.title == "Unauthorized"
    assert exc.headers == {"WWW-Authenticate": 'Bearer realm="fabrique"'}
    assert exc.detail.startswith("Invalid bearer token")


# Tokens --------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", list(Role))
def test_issue_then_decode_gives_the_principal(tokens: TokenService, role: Role) -> None:
    principal = tokens.decode(tokens.issue("subject-42", role))

    assert principal == Principal(subject="subject-42", role=role)
    assert principal.is_admin is (role is Role.ADMIN)


def test_issued_claims(tokens: TokenService) -> None:
    before = int(time.time())

    claims = jwt.decode(
        tokens.issue("artisan-3", Role.ARTISAN, ttl_seconds=3600),
        SECRET,
        algorithms=["HS256"],
        issuer="fabrique",
    )

    assert claims["sub"] == "artisan-3"
    assert claims["role"] == "artisan"
    assert claims["iss"] == "fabrique"
    assert before <= claims["iat"] <= before + 5
    assert claims["exp"] - claims["iat"] == 3600
    assert jwt.get_unverified_header(tokens.issue("a", Role.ADMIN))["alg"] == "HS256"


def test_decode_accepts_a_token_made_elsewhere_with_the_same_secret(tokens: TokenService) -> None:
    # Every service checks tokens issued by another one: only secret and issuer are shared.
    principal = tokens.decode(_raw(_claims(sub="admin-1", role="admin")))

    assert principal == Principal("admin-1", Role.ADMIN)


def test_expired_token_is_refused(tokens: TokenService) -> None:
    expired = tokens.issue("landlord-7", Role.LANDLORD, ttl_seconds=-10)

    with pytest.raises(ProblemError, match="expired") as caught:
        tokens.decode(expired)
    _assert_401(caught.value)


def test_token_signed_with_another_secret_is_refused(tokens: TokenService) -> None:
    forged = TokenService(OTHER_SECRET).issue("admin-1", Role.ADMIN)

    with pytest.raises(ProblemError, match="Signature verification failed") as caught:
        tokens.decode(forged)
    _assert_401(caught.value)


def test_token_from_another_issuer_is_refused(tokens: TokenService) -> None:
    foreign = TokenService(SECRET, issuer="someone-else").issue("admin-1", Role.ADMIN)

    with pytest.raises(ProblemError, match="issuer") as caught:
        tokens.decode(foreign)
    _assert_401(caught.value)


@pytest.mark.parametrize("missing", ["role", "sub", "exp", "iss"])
def test_token_missing_a_required_claim_is_refused(tokens: TokenService, missing: str) -> None:
    token = _raw({k: v for k, v in _claims().items() if k != missing})

    with pytest.raises(ProblemError, match=missing) as caught:
        tokens.decode(token)
    _assert_401(caught.value)


@pytest.mark.parametrize("role", ["superuser", "ADMIN", "", ["admin"]])
def test_token_with_an_unknown_role_is_refused(tokens: TokenService, role: object) -> None:
    with pytest.raises(ProblemError) as caught:
        tokens.decode(_raw(_claims(role=role)))
    _assert_401(caught.value)


@pytest.mark.parametrize(
    "garbage",
    ["", "not-a-token", "a.b.c", "eyJhbGciOiJIUzI1NiJ9.e30", "Bearer x.y.z"],
)
def test_garbage_is_refused(tokens: TokenService, garbage: str) -> None:
    with pytest.raises(ProblemError) as caught:
        tokens.decode(garbage)
    _assert_401(caught.value)


def test_unsigned_token_is_refused(tokens: TokenService) -> None:
    unsigned = jwt.encode(_claims(role="admin"), None, algorithm="none")

    with pytest.raises(ProblemError) as caught:
        tokens.decode(unsigned)
    _assert_401(caught.value)


def test_tampered_payload_is_refused(tokens: TokenService) -> None:
    header, _, signature = tokens.issue("landlord-7", Role.LANDLORD).split(".")
    admin_payload = _raw(_claims(role="admin")).split(".")[1]

    with pytest.raises(ProblemError) as caught:
        tokens.decode(f"{header}.{admin_payload}.{signature}")
    _assert_401(caught.value)


# Redaction -----------------------------------------------------------------------------------

JWT = TokenService(SECRET).issue("landlord-7", Role.LANDLORD)


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


def test_rotation_accepts_previous_secrets_but_signs_with_the_new_one() -> None:
    old = TokenService("o" * 40)
    rotating = TokenService("n" * 40, previous=("o" * 40,))
    token_from_old = old.issue("landlord-1", Role.LANDLORD)
    assert rotating.decode(token_from_old).subject == "landlord-1"
    fresh = rotating.issue("landlord-1", Role.LANDLORD)
    with pytest.raises(ProblemError) as refused:
        old.decode(fresh)  # signed with the new secret only
    assert refused.value.status == 401
    with pytest.raises(ProblemError):
        TokenService("n" * 40).decode(token_from_old)  # the old secret dropped: refused
