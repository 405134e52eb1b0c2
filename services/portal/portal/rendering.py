"""Jinja2 pages: autoescaped, translated through the request's locale, with the formatting
helpers as filters."""

from __future__ import annotations

from collections.abc import Iterable
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from portal import formatting
from portal.i18n import LOCALES, current_locale, gettext, ngettext
from portal.sessions import web_context

TEMPLATES = Path(__file__).with_name("templates")
#: The CSRF token of the page render() is rendering (see build_environment).
_CSRF: ContextVar[str] = ContextVar("portal_csrf_token", default="")


_NAMERS = {
    "arrondissement": formatting.arrondissement,
    "nth": formatting.ordinal_arrondissement,
    "trade": formatting.trade,
    "site_kind": formatting.site_kind,
    "feature": formatting.feature,
    "sort_label": formatting.sort_label,
}


def options(codes: Iterable[object], kind: str) -> list[tuple[str, str]]:
    """(value, label) pairs for a form control, labels in the page's language."""
    namer = _NAMERS[kind]
    return [(str(code), namer(code)) for code in codes]  # type: ignore[operator]


def build_environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html"], default_for_string=True, default=True),
        extensions=["jinja2.ext.i18n", "jinja2.ext.do"],
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_callables(gettext, ngettext, newstyle=True)  # type: ignore[attr-defined]
    env.filters.update(
        number=formatting.number,
        euros=formatting.euros,
        day=formatting.day,
        arrondissement=formatting.arrondissement,
        nth=formatting.ordinal_arrondissement,
        site_kind=formatting.site_kind,
        feature=formatting.feature,
        legal_form=formatting.legal_form,
        label=formatting.label,
        trade=formatting.trade,
        sort_label=formatting.sort_label,
        options=options,
    )
    # The imported csrf_field() macro has no access to the page's context: it reads the token
    # of the page being rendered through this function.
    env.globals.update(locales=LOCALES, current_csrf_token=lambda: _CSRF.get())
    return env


ENV = build_environment()


def render(
    request: Request, template: str, context: dict[str, Any] | None = None, status: int = 200
) -> HTMLResponse:
    """The page in the request's language, with ``user`` (a SignedIn, or None) and the
    ``csrf_token`` its forms carry (``components/csrf.html``'s ``csrf_field()``)."""
    settings = request.app.state.settings
    query = [(k, v) for k, v in request.query_params.multi_items() if k != "lang"]
    web = web_context(request.state)
    csrf_token = web.csrf_token() if web is not None else ""
    _CSRF.set(csrf_token)
    page = ENV.get_template(template).render(
        request=request,
        lang=current_locale(),
        path=request.url.path,
        query=query,
        tile_url=settings.tile_url,
        tile_attribution=settings.tile_attribution,
        user=web.user if web is not None else None,
        csrf_token=csrf_token,
        **(context or {}),
    )
    return HTMLResponse(page, status_code=status)
