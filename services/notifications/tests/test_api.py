"""The notifications API and delivery worker on a real database (SQLite and PostgreSQL), with a
real SMTP server and real webhook receivers; no broker needed (test sends drive the worker)."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import httpx
import uvicorn

from fabkit.auth import Role
from fabkit.testing import assert_problem
from notifications.cli import migrate
from notifications.main import create_app
from notifications.webhooks import verify

from .conftest import (
    Receiver,
    Service,
    Smtp,
    eventually,
    free_port,
    make_settings,
    provider,
    running,
    text_part,
)


def smtp_settings(smtp: Smtp) -> dict[str, Any]:
    return {"smtp_host": smtp.host, "smtp_port": smtp.port}


async def test_endpoints_need_the_right_token(database_url: str) -> None:
    async with running(make_settings(database_url)) as svc:
        sub = await svc.subscribe("art-1")
        landlord = svc.identities.headers(Role.LANDLORD, "ll-1")
        artisan = svc.artisan("art-1")
        calls = [
            ("GET", "/v1/subscriptions", None),
            ("POST", "/v1/subscriptions", {"name": "x", "channels": [{"type": "feed"}]}),
            ("PATCH", f"/v1/subscriptions/{sub['id']}", {"name": "y"}),
            ("POST", f"/v1/subscriptions/{sub['id']}/test", None),
            ("GET", "/v1/feed", None),
            ("GET", "/v1/deliveries", None),
        ]
        for method, path, body in calls:
            r = await svc.client.request(method, path, json=body)
            assert_problem(r, 401, "bearer token")
            r = await svc.client.request(method, path, json=body, headers=landlord)
            assert_problem(r, 403, "artisan")
        for method, path in [
            ("GET", "/v1/admin/deliveries/dead"),
            ("POST", "/v1/admin/deliveries/x/redeliver"),
            ("POST", "/v1/admin/digests/flush"),
        ]:
            r = await svc.client.request(method, path, headers=artisan)
            assert_problem(r, 403, "admin")
        r = await svc.client.get("/v1/admin/deliveries/dead", headers=svc.admin)
        assert r.status_code == 200 and r.json()["total"] == 0


async def test_an_artisan_sees_only_its_own_subscriptions(database_url: str) -> None:
    async with running(make_settings(database_url)) as svc:
        mine = await svc.subscribe("art-a", name="Mine")
        theirs = await svc.subscribe("art-b", name="Theirs")
        me = svc.artisan("art-a")
        r = await svc.client.get("/v1/subscriptions", headers=me)
        assert [s["name"] for s in r.json()["items"]] == ["Mine"]
        for method, suffix in [
            ("GET", ""),
            ("PATCH", ""),
            ("DELETE", ""),
            ("POST", "/pause"),
            ("POST", "/test"),
            ("GET", "/deliveries"),
        ]:
            body = {"name": "stolen"} if method == "PATCH" else None
            r = await svc.client.request(
                method, f"/v1/subscriptions/{theirs['id']}{suffix}", json=body, headers=me
            )
            assert_problem(r, 404, "No subscription")
        r = await svc.client.get(f"/v1/subscriptions/{mine['id']}", headers=me)
        assert r.status_code == 200
        r = await svc.client.get(f"/v1/subscriptions/{theirs['id']}", headers=svc.artisan("art-b"))
        assert r.json()["name"] == "Theirs"


BAD = [
    ({"criteria": {"arrondissements": [21]}}, "arrondissements"),
    ({"criteria": {"arrondissements": [3, 3]}}, "repeat"),
    ({"criteria": {"min_surface_m2": 300, "max_surface_m2": 100}}, "min_surface_m2"),
    ({"criteria": {"max_rent_eur_m2_year": -1}}, "max_rent_eur_m2_year"),
    ({"criteria": {"features": ["sauna"]}}, "features"),
    ({"criteria": {"site_kinds": ["castle"]}}, "site_kinds"),
    ({"criteria": {"trades": ["Wood Work"]}}, "trades"),
    ({"criteria": {"colour": "blue"}}, "colour"),
    ({"channels": []}, "channels"),
    ({"channels": [{"type": "feed"}, {"type": "feed"}]}, "at most once"),
    ({"channels": [{"type": "sms"}]}, "channels"),
    ({"channels": [{"type": "email", "address": "not-an-address"}]}, "address"),
    ({"channels": [{"type": "webhook", "url": "http://127.0.0.1:9/x", "secret": "abc"}]}, "whsec_"),
    ({"channels": [{"type": "webhook", "url": "ftp://127.0.0.1/hook"}]}, "scheme"),
    ({"frequency": "hourly"}, "frequency"),
    ({"name": ""}, "name"),
]


async def test_bad_input_gets_a_clear_422_and_writes_nothing(database_url: str) -> None:
    async with running(make_settings(database_url)) as svc:
        me = svc.artisan("art-v")
        base = {"name": "Search", "channels": [{"type": "feed"}]}
        for override, fragment in BAD:
            r = await svc.client.post("/v1/subscriptions", json={**base, **override}, headers=me)
            assert_problem(r, 422, fragment)
        r = await svc.client.get("/v1/subscriptions", headers=me)
        assert r.json()["total"] == 0


async def test_the_signing_secret_is_shown_once(database_url: str, receivers: Any) -> None:
    receiver: Receiver = await receivers()
    async with running(make_settings(database_url)) as svc:
        me = svc.artisan("art-s")
        created = await svc.subscribe(
            "art-s",
            channels=[{"type": "webhook", "url": receiver.url}, {"type": "feed"}],
            criteria={"arrondissements": [11, 13], "step_free_access": True},
        )
        secret = created["webhook_secret"]
        assert secret.startswith("whsec_") and len(secret) > 40
        assert created["criteria"]["features"] == ["step_free_access"]
        path = f"/v1/subscriptions/{created['id']}"
        for r in (
            await svc.client.get(path, headers=me),
            await svc.client.get("/v1/subscriptions", headers=me),
            await svc.client.patch(path, json={"name": "Renamed"}, headers=me),
        ):
            assert r.status_code == 200, r.text
            assert secret not in r.text and secret.removeprefix("whsec_") not in r.text
        assert r.json()["webhook_secret"] is None and r.json()["version"] == 2
        # a new URL gets a new secret, shown once more
        r = await svc.client.patch(
            path,
            json={"channels": [{"type": "webhook", "url": receiver.url + "/v2"}]},
            headers=me,
        )
        assert r.status_code == 200, r.text
        assert r.json()["webhook_secret"] not in (None, secret)
        assert [c["type"] for c in r.json()["channels"]] == ["webhook"]
        # your own secret is accepted as given
        own = "whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo0NTY3ODk="
        r = await svc.client.patch(
            path,
            json={"channels": [{"type": "webhook", "url": receiver.url, "secret": own}]},
            headers=me,
        )
        assert r.json()["webhook_secret"] == own
        assert (await svc.client.delete(path, headers=me)).status_code == 204
        assert_problem(await svc.client.get(path, headers=me), 404)


SSRF_URLS = [
    "http://10.0.0.1/hook",
    "http://169.254.169.254/latest/meta-data/",
    "http://[::1]:{port}/hook",
    "http://localhost:{port}/hook",
    "http://127.0.0.1:{port}/hook",
    "http://2130706433:{port}/hook",
    "http://[::ffff:127.0.0.1]:{port}/hook",
    "http://0.0.0.0:{port}/hook",
    "http://192.168.1.10/hook",
    "http://100.64.0.1/hook",
    "http://224.0.0.1/hook",
]


async def test_internal_webhook_urls_are_refused_without_a_request(
    database_url: str, receivers: Any
) -> None:
    receiver: Receiver = await receivers()
    async with running(make_settings(database_url, webhook_allowed_networks=[])) as svc:
        me = svc.artisan("art-x")
        for url in SSRF_URLS:
            body = {
                "name": "x",
                "channels": [{"type": "webhook", "url": url.format(port=receiver.port)}],
            }
            r = await svc.client.post("/v1/subscriptions", json=body, headers=me)
            assert_problem(r, 422, "internal address")
        r = await svc.client.get("/v1/subscriptions", headers=me)
        assert r.json()["total"] == 0
    assert receiver.requests == []


async def test_test_send_reaches_every_channel_signed(
    database_url: str, receivers: Any, smtp: Smtp
) -> None:
    receiver: Receiver = await receivers()
    settings = make_settings(database_url, **smtp_settings(smtp))
    async with running(settings) as svc:
        me = svc.artisan("art-t")
        created = await svc.subscribe(
            "art-t",
            channels=[
                {"type": "webhook", "url": receiver.url},
                {"type": "email", "address": "camille@atelier-martin.fr"},
                {"type": "feed"},
            ],
        )
        r = await svc.client.post(f"/v1/subscriptions/{created['id']}/test", headers=me)
        assert r.status_code == 202, r.text
        deliveries = {d["channel"]: d for d in r.json()["deliveries"]}
        assert set(deliveries) == {"webhook", "email", "feed"}

        await eventually(lambda: _async(receiver.requests and smtp.mailbox.messages))
        request = receiver.requests[0]
        assert request.headers["webhook-id"] == deliveries["webhook"]["id"]
        body = verify(created["webhook_secret"], request.headers, request.body)
        assert body["type"] == "subscription.test"
        assert body["data"]["subscription"]["id"] == created["id"]
        assert request.headers["host"] == f"127.0.0.1:{receiver.port}"

        [message] = smtp.mailbox.to("camille@atelier-martin.fr")
        assert "Test de votre alerte" in message["Subject"]
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert "envoi de test" in text_part(message, "plain") and "<html" in text_part(
            message, "html"
        )

        r = await svc.client.get("/v1/feed", headers=me)
        assert r.json()["unread"] == 1 and r.json()["items"][0]["kind"] == "test"

        r = await eventually(lambda: _deliveries(svc, me, created["id"], "delivered", 3))
        assert {d["attempts"] for d in r if d["channel"] != "feed"} == {1}


async def _async(value: Any) -> Any:
    return value


async def _deliveries(svc: Service, headers: dict[str, str], sub_id: str, status: str, n: int):  # type: ignore[no-untyped-def]
    r = await svc.client.get(f"/v1/subscriptions/{sub_id}/deliveries", headers=headers)
    items = [d for d in r.json()["items"] if d["status"] == status]
    return items if len(items) >= n else None


async def test_the_unsubscribe_link_in_an_email_works(sqlite_url: str, smtp: Smtp) -> None:
    async with running(make_settings(sqlite_url, **smtp_settings(smtp))) as svc:
        me = svc.artisan("art-u")
        created = await svc.subscribe(
            "art-u",
            channels=[{"type": "email", "address": "u@atelier-martin.fr"}, {"type": "feed"}],
        )
        await svc.client.post(f"/v1/subscriptions/{created['id']}/test", headers=me)
        await eventually(lambda: _async(smtp.mailbox.to("u@atelier-martin.fr")))
        message = smtp.mailbox.to("u@atelier-martin.fr")[0]
        link = re.search(
            r"http://notifications\.test(/v1/unsubscribe/\S+)", text_part(message, "plain")
        )
        assert link is not None
        assert message["List-Unsubscribe"] == f"<http://notifications.test{link.group(1)}>"
        assert link.group(1) in text_part(message, "html")

        page = await svc.client.get(link.group(1))
        assert page.status_code == 200 and '<form method="post"' in page.text
        r = await svc.client.get(f"/v1/subscriptions/{created['id']}", headers=me)
        assert {c["type"]: c["enabled"] for c in r.json()["channels"]}["email"] is True

        done = await svc.client.post(link.group(1), data={"List-Unsubscribe": "One-Click"})
        assert done.status_code == 200 and "Désabonnement" in done.text
        r = await svc.client.get(f"/v1/subscriptions/{created['id']}", headers=me)
        assert {c["type"]: c["enabled"] for c in r.json()["channels"]}["email"] is False

        r = await svc.client.post(f"/v1/subscriptions/{created['id']}/test", headers=me)
        assert [d["channel"] for d in r.json()["deliveries"]] == ["feed"]
        forged = link.group(1)[:-3] + "AAA"
        assert (await svc.client.post(forged)).status_code == 404
        assert (await svc.client.get(forged)).status_code == 404


async def test_feed_newest_first_with_read_and_unread(sqlite_url: str) -> None:
    async with running(make_settings(sqlite_url)) as svc:
        me, other = svc.artisan("art-f"), svc.artisan("art-g")
        created = await svc.subscribe("art-f")
        for _ in range(3):
            await svc.client.post(f"/v1/subscriptions/{created['id']}/test", headers=me)
        page = (await svc.client.get("/v1/feed", params={"limit": 2}, headers=me)).json()
        ids = [i["id"] for i in page["items"]]
        assert ids == sorted(ids, reverse=True) and page["unread"] == 3
        older = await svc.client.get("/v1/feed", params={"before": page["next_before"]}, headers=me)
        assert len(older.json()["items"]) == 1 and older.json()["items"][0]["id"] < ids[-1]

        r = await svc.client.post(f"/v1/feed/{ids[0]}/read", headers=me)
        assert r.json()["read"] is True
        assert_problem(await svc.client.post(f"/v1/feed/{ids[1]}/read", headers=other), 404)
        unread = (await svc.client.get("/v1/feed", params={"unread_only": True}, headers=me)).json()
        assert ids[0] not in [i["id"] for i in unread["items"]] and unread["unread"] == 2
        r = await svc.client.post(f"/v1/feed/{ids[0]}/unread", headers=me)
        assert r.json()["read"] is False
        r = await svc.client.post("/v1/feed/read-all", headers=me)
        assert r.json()["marked"] == 3
        assert (await svc.client.get("/v1/feed", headers=me)).json()["unread"] == 0
        assert (await svc.client.get("/v1/feed", headers=other)).json()["items"] == []


async def test_a_receiver_failing_twice_gets_the_message_once_it_recovers(
    database_url: str, receivers: Any
) -> None:
    receiver: Receiver = await receivers(statuses=[500, 503])
    async with running(make_settings(database_url)) as svc:
        me = svc.artisan("art-r")
        created = await svc.subscribe("art-r", channels=[{"type": "webhook", "url": receiver.url}])
        await svc.client.post(f"/v1/subscriptions/{created['id']}/test", headers=me)
        await eventually(lambda: _async(receiver.answered == [500, 503, 200]))
        ids = {r.headers["webhook-id"] for r in receiver.requests}
        assert len(ids) == 1
        for request in receiver.requests:
            verify(created["webhook_secret"], request.headers, request.body)
        [delivery] = await eventually(lambda: _deliveries(svc, me, created["id"], "delivered", 1))
        assert delivery["id"] in ids and delivery["attempts"] == 3


async def test_dead_after_the_last_attempt_then_redelivered_by_an_operator(
    database_url: str, receivers: Any
) -> None:
    receiver: Receiver = await receivers(default_status=500)
    async with running(make_settings(database_url, delivery_max_attempts=3)) as svc:
        me = svc.artisan("art-d")
        created = await svc.subscribe("art-d", channels=[{"type": "webhook", "url": receiver.url}])
        await svc.client.post(f"/v1/subscriptions/{created['id']}/test", headers=me)
        [dead] = await eventually(lambda: _deliveries(svc, me, created["id"], "dead", 1))
        assert dead["attempts"] == 3 and dead["last_status_code"] == 500
        assert len(receiver.requests) == 3

        r = await svc.client.get("/v1/admin/deliveries/dead", headers=svc.admin)
        assert [d["id"] for d in r.json()["items"]] == [dead["id"]]
        receiver.default_status = 204
        r = await svc.client.post(f"/v1/admin/deliveries/{dead['id']}/redeliver", headers=svc.admin)
        assert r.status_code == 200 and r.json()["status"] == "pending"
        await eventually(lambda: _deliveries(svc, me, created["id"], "delivered", 1))
        assert receiver.requests[-1].headers["webhook-id"] == dead["id"]
        r = await svc.client.post(f"/v1/admin/deliveries/{dead['id']}/redeliver", headers=svc.admin)
        assert_problem(r, 409, "Only dead deliveries")

        metrics = (await svc.client.get("/metrics")).text
        assert 'notifications_deliveries_total{channel="webhook",outcome="retry"}' in metrics
        assert 'notifications_deliveries_total{channel="webhook",outcome="dead"}' in metrics
        assert "notifications_deliveries_pending" in metrics
        assert "notifications_deliveries_dead" in metrics


async def test_a_410_disables_the_subscription_until_resumed(
    database_url: str, receivers: Any
) -> None:
    receiver: Receiver = await receivers(statuses=[410])
    async with running(make_settings(database_url)) as svc:
        me = svc.artisan("art-g")
        created = await svc.subscribe("art-g", channels=[{"type": "webhook", "url": receiver.url}])
        path = f"/v1/subscriptions/{created['id']}"
        await svc.client.post(f"{path}/test", headers=me)

        async def disabled() -> Any:
            body = (await svc.client.get(path, headers=me)).json()
            return body if body["status"] == "disabled" else None

        body = await eventually(disabled)
        assert "410" in body["disabled_reason"]
        assert len(receiver.requests) == 1
        r = await svc.client.post(f"{path}/resume", headers=me)
        assert r.json()["status"] == "active" and r.json()["disabled_reason"] is None


async def test_webhook_urls_are_checked_again_when_sending(sqlite_url: str, receivers: Any) -> None:
    receiver: Receiver = await receivers()
    async with running(make_settings(sqlite_url)) as svc:
        created = await svc.subscribe("art-h", channels=[{"type": "webhook", "url": receiver.url}])
    # The same database, served by a process that no longer allows loopback.
    async with running(make_settings(sqlite_url, webhook_allowed_networks=[])) as svc:
        me = svc.artisan("art-h")
        await svc.client.post(f"/v1/subscriptions/{created['id']}/test", headers=me)
        [dead] = await eventually(lambda: _deliveries(svc, me, created["id"], "dead", 1))
        assert "internal address" in dead["last_error"] and dead["attempts"] == 1
    assert receiver.requests == []


async def test_the_feed_streams_new_alerts_as_server_sent_events(sqlite_url: str) -> None:
    settings = make_settings(sqlite_url)
    await asyncio.to_thread(migrate, settings)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    )
    serving = asyncio.create_task(server.serve())
    try:
        await eventually(lambda: _async(server.started))
        me = provider().headers(Role.ARTISAN, "art-sse")
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            r = await client.post(
                "/v1/subscriptions",
                json={"name": "live", "channels": [{"type": "feed"}]},
                headers=me,
            )
            sub_id = r.json()["id"]
            lines: list[str] = []
            async with client.stream("GET", "/v1/feed/stream", headers=me) as stream:
                assert stream.headers["content-type"].startswith("text/event-stream")
                r = await client.post(f"/v1/subscriptions/{sub_id}/test", headers=me)
                assert r.status_code == 202
                async for line in stream.aiter_lines():
                    lines.append(line)
                    if line.startswith("data:"):
                        break
        assert "event: alert" in lines and any(line.startswith("id: ") for line in lines)
        item = json.loads(lines[-1].removeprefix("data:"))
        assert item["kind"] == "test" and item["read"] is False
    finally:
        server.should_exit = True
        await asyncio.wait_for(serving, 20)
