"""Chooses each request's language and remembers a choice made with ?lang= in a cookie."""

from __future__ import annotations

from http.cookies import SimpleCookie
from urllib.parse import parse_qs

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from portal.i18n import LANG_COOKIE, LOCALES, negotiate, set_locale

ONE_YEAR = 365 * 24 * 3600


class LanguageMiddleware:
    """Pure ASGI (no task switch), so the locale set here is the one the page renders in."""

    def __init__(self, app: ASGIApp, secure_cookie: bool) -> None:
        self.app = app
        self.secure = secure_cookie

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        asked = (query.get("lang") or [None])[0]
        cookie = SimpleCookie()
        try:
            cookie.load(headers.get("cookie", ""))
        except Exception:  # a malformed Cookie header is the browser's problem
            cookie = SimpleCookie()
        remembered = cookie[LANG_COOKIE].value if LANG_COOKIE in cookie else None
        locale = negotiate(asked, remembered, headers.get("accept-language", ""))
        set_locale(locale)

        async def _send(message: Message) -> None:
            if message["type"] == "http.response.start":
                out = MutableHeaders(scope=message)
                out.setdefault("Content-Language", locale)
                out.append("Vary", "Accept-Language, Cookie")
                if asked in LOCALES and asked != remembered:
                    flags = f"; Path=/; Max-Age={ONE_YEAR}; SameSite=Lax; HttpOnly"
                    secure = "; Secure" if self.secure else ""
                    out.append("Set-Cookie", f"{LANG_COOKIE}={asked}{flags}{secure}")
            await send(message)

        await self.app(scope, receive, _send)
