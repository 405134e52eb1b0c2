"""Jinja2 pages: autoescaped, translated through the request's locale, with the formatting
helpers as filters."""

from __future__ import annotations

from collections.abc import Iterable
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import (
    Environment,
    FileSystemLoader,
    StrictUndefined,
    pass_context,
    select_autoescape,
)
from jinja2.runtime import Context
from markupsafe import Markup, escape

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


_OPTIONS: dict[tuple[str, str, tuple[object, ...]], list[tuple[str, str]]] = {}


def options(codes: Iterable[object], kind: str) -> list[tuple[str, str]]:
    """(value, label) pairs for a form control, labels in the page's language. Made once per
    language and list of codes (the board's form has about sixty options on every view); the
    list is shared, so a template must not change it (they only read or concatenate it)."""
    codes = tuple(codes)
    key = (current_locale(), kind, codes)
    found = _OPTIONS.get(key)
    if found is None:
        namer = _NAMERS[kind]
        found = [(str(code), namer(code)) for code in codes]  # type: ignore[operator]
        if len(_OPTIONS) < 1024:  # codes come from the code base, plus one typed trade
            _OPTIONS[key] = found
    return found


# (macro, name, options) → each option's HTML, unticked and ticked: the controls of the board's
# filter form (some sixty) are the same for every view of a language but for which are ticked.
_CONTROLS: dict[tuple[str, str, tuple[Any, ...]], list[tuple[Any, str, str]]] = {}

_CHECKBOX = (
    '      <div class="checkbox">\n'
    '        <input class="checkbox-input" id="f-{name}-{value}" name="{name}" type="checkbox"'
    ' value="{value}"{ticked}>\n'
    '        <label class="checkbox-label" for="f-{name}-{value}">{text}</label>\n'
    "      </div>"
)
_OPTION = '    <option value="{value}"{ticked}>{text}</option>'


def _controls(kind: str, name: str, options: Iterable[Any]) -> list[tuple[Any, str, str]]:
    rows = list(options)
    try:
        key = (kind, name, tuple(tuple(row) for row in rows))
        found = _CONTROLS.get(key)
    except TypeError:  # unhashable values: made for this call only
        key, found = None, None
    if found is None:
        template, ticked = (_CHECKBOX, " checked") if kind == "checkbox" else (_OPTION, " selected")
        found = []
        for value, text in rows:
            parts = {"name": escape(name), "value": escape(value), "text": escape(text)}
            plain, marked = (template.format(**parts, ticked=t) for t in ("", ticked))
            found.append((value, plain, marked))
        if key is not None and len(_CONTROLS) < 512:
            _CONTROLS[key] = found
    return found


def checkbox_items(name: str, options: Iterable[Any], selected: Any) -> Markup:
    """The checkboxes of components/checkboxes.html, one per option, ticked when the value is
    in ``selected``: the same HTML as the template's loop, each option escaped once per
    language instead of on every view. Lines joined without the last line break."""
    rows = _controls("checkbox", name, options)
    html = "\n".join(checked if value in selected else plain for value, plain, checked in rows)
    return Markup(html)  # noqa: S704 - made of escaped values only


def select_options(name: str, options: Iterable[Any], selected: Any) -> Markup:
    """The <option>s of components/select.html (``selected`` is the chosen value), as the
    template's loop writes them; see checkbox_items."""
    rows = _controls("option", name, options)
    html = "\n".join(chosen if value == selected else plain for value, plain, chosen in rows)
    return Markup(html)  # noqa: S704 - made of escaped values only


def _new_gettext(autoescape_cache: dict[tuple[str, bool, str], str]) -> Any:
    """Jinja2's newstyle ``gettext`` (jinja2.ext._make_new_gettext: the translation, made
    Markup when autoescaping, then always ``% variables``), called directly as ``_`` rather
    than through the i18n extension's alias and two ``Context.call`` hops; a message without
    variables is kept per language, as it always renders the same."""

    @pass_context
    def _gettext(context: Context, string: str, /, **variables: Any) -> str:
        autoescape = context.eval_ctx.autoescape
        if not variables:
            key = (current_locale(), autoescape, string)
            found = autoescape_cache.get(key)
            if found is None:
                rv = gettext(string)
                # The catalogs' messages are the code base's own markup, as in Jinja2's
                # i18n extension; the variables are escaped by Markup's % operator.
                found = autoescape_cache[key] = (Markup(rv) if autoescape else rv) % {}  # noqa: S704
            return found
        rv = gettext(string)
        if autoescape:
            rv = Markup(rv)  # noqa: S704
        return rv % variables  # type: ignore[no-any-return]

    return _gettext


def build_environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html"], default_for_string=True, default=True),
        extensions=["jinja2.ext.i18n", "jinja2.ext.do"],
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        # The templates ship with the code: no stat() of every template (and of each
        # imported component) on every render to see whether it changed.
        auto_reload=False,
    )
    env.install_gettext_callables(gettext, ngettext, newstyle=True)  # type: ignore[attr-defined]
    # Templates only hold literal message ids, so this cache is bounded by the catalogs.
    fast_gettext = _new_gettext({})
    env.globals.update(gettext=fast_gettext, _=fast_gettext)
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
    env.globals.update(
        locales=LOCALES,
        current_csrf_token=lambda: _CSRF.get(),
        checkbox_items=checkbox_items,
        select_options=select_options,
    )
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
