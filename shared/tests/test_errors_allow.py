"""A 405 names every method its path answers, not only those of the first route that matched."""

from __future__ import annotations

import httpx
from fastapi import APIRouter, FastAPI

from fabkit.errors import install_problem_handlers
from fabkit.testing import assert_problem


def _app() -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)
    router = APIRouter(prefix="/v1/things")

    # FastAPI registers one route per method: GET is found first for /v1/things/{id}, and
    # Starlette's own 405 would say `Allow: GET` although PATCH and DELETE are there too.
    @router.get("/{thing_id}")
    async def get_thing(thing_id: str) -> dict[str, str]:
        return {"id": thing_id}

    @router.patch("/{thing_id}")
    async def update_thing(thing_id: str) -> dict[str, str]:
        return {"id": thing_id}

    @router.delete("/{thing_id}", status_code=204)
    async def delete_thing(thing_id: str) -> None:
        return None

    @router.post("")
    async def create_thing() -> dict[str, str]:
        return {"id": "1"}

    @router.get("/{thing_id}/parts/{part}")
    async def get_part(thing_id: str, part: int) -> dict[str, str]:
        return {"id": thing_id}

    app.include_router(router)
    return app


async def _call(method: str, path: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.request(method, path)


async def test_allow_lists_every_method_of_the_path() -> None:
    response = await _call("PUT", "/v1/things/42")

    body = assert_problem(
        response, 405, "PUT is not allowed on /v1/things/42", "GET, PATCH, DELETE"
    )
    assert response.headers["allow"] == "GET, PATCH, DELETE"
    assert body["instance"] == "/v1/things/42"


async def test_allow_stays_with_the_methods_of_its_own_path() -> None:
    collection = await _call("DELETE", "/v1/things")
    nested = await _call("POST", "/v1/things/42/parts/7")

    assert_problem(collection, 405)
    assert collection.headers["allow"] == "POST"
    assert_problem(nested, 405)
    assert nested.headers["allow"] == "GET"


async def test_a_path_no_route_has_is_still_a_404() -> None:
    response = await _call("PUT", "/v1/nothing-here")

    assert_problem(response, 404)
    assert "allow" not in response.headers
