"""The published results of calls for applications, for anyone (no login): every call whose
results are out, and each call's anonymised table (rank, points per criterion, outcome, the
ground and the landlord's text wherever the order was not followed), its jury and its appeal
deadline. Every figure is leasing's public `GET /v1/results` and `GET /v1/calls/{id}/results`;
no name of an applicant is ever asked for, so none can be shown."""

from __future__ import annotations

import asyncio
import math

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from portal.clients import UpstreamNotFound, leasing
from portal.i18n import gettext
from portal.pages.deps import UpstreamsDep
from portal.pages.offers import moment
from portal.pages.officer import outcome_text
from portal.rendering import render
from portal.results_view import decision_words, results_view
from portal.schemas import Listing

router = APIRouter(include_in_schema=False)
_ = gettext

PAGE_SIZE = 20


WORDS = {"outcome_text": outcome_text, "moment": moment, "decision_words": decision_words}


@router.get("/results", response_class=HTMLResponse)
async def results_list(request: Request, upstreams: UpstreamsDep) -> HTMLResponse:
    raw = request.query_params.get("page", "1")
    page = int(raw) if raw.isdigit() and int(raw) >= 1 else 1
    found = await leasing.list_results(upstreams, PAGE_SIZE, (page - 1) * PAGE_SIZE)
    answers = await asyncio.gather(
        asyncio.gather(*(leasing.get_listing(upstreams, r.unit_id) for r in found.items)),
        asyncio.gather(*(leasing.call_results(upstreams, r.call_id) for r in found.items)),
    )
    listings: list[Listing | None] = list(answers[0])
    outcomes = [r.outcome if r is not None else "" for r in answers[1]]
    return render(
        request,
        "results.html",
        {
            "items": list(zip(found.items, listings, outcomes, strict=True)),
            "total": found.total,
            "page": page,
            "pages": max(1, math.ceil(found.total / PAGE_SIZE)),
            **WORDS,
        },
    )


@router.get("/results/{call_id}", response_class=HTMLResponse)
async def results_page(call_id: str, request: Request, upstreams: UpstreamsDep) -> HTMLResponse:
    results = await leasing.call_results(upstreams, call_id)
    if results is None:
        raise UpstreamNotFound("leasing", "no published results for this call")
    listing = await leasing.get_listing(upstreams, results.unit_id) if results.unit_id else None
    return render(
        request,
        "results_call.html",
        {"listing": listing, "results": results, "view": results_view(results), **WORDS},
    )
