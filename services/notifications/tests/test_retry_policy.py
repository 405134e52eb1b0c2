"""What happens to a webhook delivery that fails, on a real database (SQLite and PostgreSQL) with
real HTTP receivers on loopback: the artisan who owns a dead delivery sends it again."""

from __future__ import annotations

from typing import Any

from fabkit.auth import Role
from fabkit.testing import assert_problem

from .conftest import Receiver, Service, eventually, make_settings, running


async def _deliveries(svc: Service, headers: dict[str, str], sub_id: str, status: str, n: int):  # type: ignore[no-untyped-def]
    r = await svc.client.get(f"/v1/subscriptions/{sub_id}/deliveries", headers=headers)
    items = [d for d in r.json()["items"] if d["status"] == status]
    return items if len(items) >= n else None


async def test_the_owner_sends_a_dead_delivery_again_under_the_same_webhook_id(
    database_url: str, receivers: Any
) -> None:
    receiver: Receiver = await receivers(default_status=500)
    async with running(make_settings(database_url, delivery_max_attempts=2)) as svc:
        me = svc.artisan("art-o")
        created = await svc.subscribe("art-o", channels=[{"type": "webhook", "url": receiver.url}])
        await svc.client.post(f"/v1/subscriptions/{created['id']}/test", headers=me)
        [dead] = await eventually(lambda: _deliveries(svc, me, created["id"], "dead", 1))
        assert dead["attempts"] == 2 and len(receiver.requests) == 2
        path = f"/v1/deliveries/{dead['id']}/redeliver"

        # Another artisan cannot tell it exists; other roles are refused; no token, 401.
        assert_problem(await svc.client.post(path, headers=svc.artisan("art-x")), 404, dead["id"])
        assert_problem(
            await svc.client.post(path, headers=svc.identities.headers(Role.LANDLORD, "ll-1")),
            403,
            "artisan",
        )
        assert_problem(await svc.client.post(path), 401, "bearer token")
        assert_problem(
            await svc.client.post("/v1/deliveries/no-such-id/redeliver", headers=me),
            404,
            "No delivery with id no-such-id.",
        )
        assert len(receiver.requests) == 2

        receiver.default_status = 204
        r = await svc.client.post(path, headers=me)
        assert r.status_code == 200, r.text
        again = r.json()
        assert again["id"] == dead["id"] and again["status"] == "pending"
        assert again["attempts"] == 0 and again["event_id"] == dead["event_id"]
        [done] = await eventually(lambda: _deliveries(svc, me, created["id"], "delivered", 1))
        assert done["id"] == dead["id"] and done["attempts"] == 1
        assert [q.headers["webhook-id"] for q in receiver.requests] == [dead["id"]] * 3
        bodies = {q.body for q in receiver.requests}
        assert len(bodies) == 1, "the same message every time"

        # Delivered now: not dead, so nothing to send again.
        r = await svc.client.post(path, headers=me)
        assert_problem(r, 409, "Only dead deliveries can be redelivered; this one is delivered.")
        assert len(receiver.requests) == 3
        metrics = (await svc.client.get("/metrics")).text
        assert 'notifications_deliveries_total{channel="webhook",outcome="redelivered"}' in metrics


async def test_a_dead_delivery_of_a_deleted_search_is_no_longer_the_owners_to_resend(
    database_url: str, receivers: Any
) -> None:
    receiver: Receiver = await receivers(default_status=500)
    async with running(make_settings(database_url, delivery_max_attempts=1)) as svc:
        me = svc.artisan("art-del")
        created = await svc.subscribe(
            "art-del", channels=[{"type": "webhook", "url": receiver.url}]
        )
        await svc.client.post(f"/v1/subscriptions/{created['id']}/test", headers=me)
        [dead] = await eventually(lambda: _deliveries(svc, me, created["id"], "dead", 1))
        r = await svc.client.delete(f"/v1/subscriptions/{created['id']}", headers=me)
        assert r.status_code == 204, r.text
        r = await svc.client.post(f"/v1/deliveries/{dead['id']}/redeliver", headers=me)
        assert_problem(r, 404, f"No delivery with id {dead['id']}.")
        assert len(receiver.requests) == 1
