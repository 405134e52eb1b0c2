"""Login, registration and logout through the identity provider (authorization code + PKCE).

`/login` and `/auth/register` start the flow (rate-limited per client address) and send the
browser to the realm's login or registration page in the page's language; `/auth/callback`
checks the state against the flow's cookie, exchanges the code, checks the ID token and opens a
new session; `POST /logout` ends it here and at the provider. The 303 to `/login`, the 403
"form expired" page and the 429 page for the whole portal are installed here too.
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from fabkit.oidc import IdentityProviderUnavailable
from portal.i18n import current_locale
from portal.pages.deps import CsrfDep, CsrfRejected, LoginRequired
from portal.ratelimit import RateLimit, RateLimited, client_key
from portal.rendering import render
from portal.sessions import (
    LoginError,
    LoginFlow,
    SessionManager,
    TokenSet,
    clear_cookie_header,
    safe_next,
    set_cookie_header,
    web_context,
)

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)

#: Which explanation the error page gives, by LoginError reason / provider error code.
REASONS = {"access_denied", "expired", "state", "provider", "exchange", "id_token"}


def _manager(request: Request) -> SessionManager:
    return request.app.state.sessions  # type: ignore[no-any-return]


def _login_limit(request: Request) -> RateLimit:
    return request.app.state.login_limit  # type: ignore[no-any-return]


def _unavailable(request: Request, next_path: str) -> HTMLResponse:
    response = render(request, "login.html", {"next": next_path}, status=503)
    response.headers["Retry-After"] = "30"
    return response


async def _start(request: Request, next_param: str | None, *, register: bool) -> Response:
    manager = _manager(request)
    next_path = safe_next(next_param)
    web = web_context(request.state)
    if web is not None and web.user is not None and not register:
        return RedirectResponse(next_path, status_code=303)
    if manager.oidc is None:
        return _unavailable(request, next_path)
    retry_after = await _login_limit(request).check(client_key(request))
    if retry_after is not None:
        raise RateLimited(retry_after)
    flow = LoginFlow.start(next_path)
    try:
        url = await manager.oidc.authorization_url(
            state=flow.state,
            nonce=flow.nonce,
            verifier=flow.verifier,
            locale=current_locale(),
            register=register,
        )
    except IdentityProviderUnavailable as exc:
        log.warning("login cannot start: %s", exc)
        return _unavailable(request, next_path)
    response = RedirectResponse(url, status_code=303)
    response.headers.append(
        "Set-Cookie",
        set_cookie_header(
            manager.cookies.login,
            flow.seal(manager.keys),
            max_age=900,
            secure=manager.secure,
        ),
    )
    response.headers["Cache-Control"] = "no-store"
    return response


@router.get("/login", response_class=HTMLResponse)
async def login(request: Request, next: str | None = None) -> Response:
    return await _start(request, next, register=False)


@router.get("/auth/register", response_class=HTMLResponse)
async def register(request: Request, next: str | None = None) -> Response:
    return await _start(request, next, register=True)


def _failed(request: Request, reason: str, next_path: str) -> HTMLResponse:
    manager = _manager(request)
    status = 503 if reason == "unavailable" else 400
    response = render(
        request, "auth_error.html", {"reason": reason, "next": next_path}, status=status
    )
    response.headers.append(
        "Set-Cookie", clear_cookie_header(manager.cookies.login, secure=manager.secure)
    )
    return response


@router.get("/auth/callback", response_class=HTMLResponse)
async def callback(
    request: Request,
    code: str | None = None,
    state: str | None = None,
    error: str | None = None,
) -> Response:
    manager = _manager(request)
    flow = LoginFlow.open(manager.keys, request.cookies.get(manager.cookies.login))
    next_path = flow.next if flow is not None else "/me"
    if error is not None:
        # Keycloak's own words (error_description) are not shown: they may be in English
        # and carry anything; the page explains in the visitor's language.
        return _failed(
            request, "access_denied" if error == "access_denied" else "provider", next_path
        )
    if flow is None:
        return _failed(request, "expired", next_path)
    if not state or not code or state != flow.state:
        return _failed(request, "state", next_path)
    if manager.oidc is None:
        return _failed(request, "unavailable", next_path)
    try:
        now = manager.clock()
        body = await manager.oidc.exchange_code(code, flow.verifier)
        tokens = TokenSet.from_response(body, now)
        if tokens.id_token is None:
            raise LoginError("id_token", "the token endpoint returned no ID token")
        claims = await manager.oidc.id_claims(tokens.id_token, flow.nonce)
    except IdentityProviderUnavailable as exc:
        log.warning("login cannot finish: %s", exc)
        return _failed(request, "unavailable", next_path)
    except LoginError as exc:
        log.warning("login refused: %s", exc)
        return _failed(request, exc.reason if exc.reason in REASONS else "provider", next_path)
    web = web_context(request.state)
    if web is not None and web.session_id_hash is not None:
        await manager.end(web.session_id_hash)  # a login always gets a new session id
    raw = await manager.open(tokens, claims)
    response = RedirectResponse(next_path, status_code=303)
    response.headers.append("Set-Cookie", manager.session_cookie(raw))
    response.headers.append(
        "Set-Cookie", clear_cookie_header(manager.cookies.login, secure=manager.secure)
    )
    response.headers["Cache-Control"] = "no-store"
    return response


@router.post("/logout")
async def logout(request: Request, _: CsrfDep) -> Response:
    manager = _manager(request)
    web = web_context(request.state)
    id_token = web.id_token if web is not None else None
    if web is not None and web.session_id_hash is not None:
        await manager.end(web.session_id_hash)
        web.user = None
    target = "/"
    if manager.oidc is not None and id_token is not None:
        target = await manager.oidc.end_session_url(id_token) or "/"
    response = RedirectResponse(target, status_code=303)
    response.headers.append(
        "Set-Cookie", clear_cookie_header(manager.cookies.session, secure=manager.secure)
    )
    return response


def install(app: FastAPI) -> None:
    """The answers for LoginRequired (303), CsrfRejected (403 page), RateLimited (429 page)."""
    settings = app.state.settings
    app.state.login_limit = RateLimit(
        "login", settings.login_rate_limit, settings.login_rate_window_s
    )

    @app.exception_handler(LoginRequired)
    async def login_required(request: Request, exc: LoginRequired) -> Response:
        return RedirectResponse(exc.location, status_code=303)

    @app.exception_handler(CsrfRejected)
    async def csrf_rejected(request: Request, exc: CsrfRejected) -> Response:
        return render(request, "auth_csrf.html", status=403)

    @app.exception_handler(RateLimited)
    async def rate_limited(request: Request, exc: RateLimited) -> Response:
        minutes = max(1, -(-exc.retry_after // 60))
        response = render(
            request,
            "auth_rate_limited.html",
            {"retry_after": exc.retry_after, "minutes": minutes},
            status=429,
        )
        response.headers["Retry-After"] = str(exc.retry_after)
        return response
