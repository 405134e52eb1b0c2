"""Notifications API input and output models."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, EmailStr, Field, field_validator, model_validator

from fabkit.schemas import StrictInput
from notifications.domain import (
    Channel,
    DeliveryKind,
    DeliveryStatus,
    Feature,
    Frequency,
    SiteKind,
    SpaceKind,
)
from notifications.domain import SubscriptionStatus as Status
from notifications.models import FeedItem, Subscription, VisitSlot
from notifications.webhooks import secret_key

TRADE_RE = re.compile(r"^[a-z][a-z0-9_]{1,59}$")
Trade = Annotated[str, Field(pattern=TRADE_RE.pattern, examples=["woodwork"])]
Arrondissement = Annotated[int, Field(ge=1, le=20)]
SiteId = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,64}$", examples=["a3f1c2d4"])]
# The bounds of the portal board's filters (inventory's search parameters), so every board
# search can be saved; a unit's own figures are bounded tighter by inventory. Numbers are strict:
# JSON numbers only (lax mode would read `false` as 0 and "60" as 60).
Surface = Annotated[float, Field(strict=True, ge=0, le=100_000, description="m²")]
# A webhook secret: base64 of at least 24 random bytes after its prefix (see `secret_key`).
SECRET_PATTERN = r"^whsec_(?:[A-Za-z0-9+/]{4}){8,}(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$"  # noqa: S105
Rent = Annotated[
    float, Field(strict=True, ge=0, le=100_000, description="€ per m² per year, excluding charges")
]
MinCeiling = Annotated[
    float,
    Field(
        strict=True,
        ge=2,
        le=12,
        description="Metres; a unit whose ceiling height is unknown does not meet it.",
    ),
]
MinFloorLoad = Annotated[
    float,
    Field(
        strict=True,
        ge=150,
        le=5_000,
        description="kg per m²; a unit whose floor load is unknown does not meet it.",
    ),
]
MinPower = Annotated[
    float,
    Field(
        strict=True,
        ge=0,
        le=2_000,
        description="kVA; a unit whose electrical power is unknown does not meet it.",
    ),
]

# Logistics minimums, within inventory's bounds of a site's logistics (its `LogisticsIn`).
QuayWithin = Annotated[
    int,
    Field(
        strict=True,
        ge=0,
        le=5_000,
        description="Metres: the unit's site is at most this far from a river quay; a site "
        "whose distance is unknown does not meet it.",
    ),
]
MinFreightWeight = Annotated[
    float,
    Field(
        strict=True,
        ge=0.5,
        le=60,
        description="Tonnes: the site's access takes freight vehicles at least this heavy; "
        "unknown does not meet it.",
    ),
]
MinFreightHeight = Annotated[
    float,
    Field(
        strict=True,
        ge=1,
        le=6,
        description="Metres: the site's access takes freight vehicles at least this tall; "
        "unknown does not meet it.",
    ),
]


def _no_repeats(values: list[Any], what: str) -> list[Any]:
    if len(set(values)) != len(values):
        raise ValueError(f"{what} must not repeat a value")
    return sorted(values)


class CriteriaIn(StrictInput):
    """What a vacancy must be like; every criterion left out accepts any value."""

    arrondissements: list[Arrondissement] = Field(default_factory=list, max_length=20)
    site_kinds: list[SiteKind] = Field(default_factory=list, max_length=10)
    trades: list[Trade] = Field(
        default_factory=list,
        max_length=30,
        description="Your trades: a unit matches when it allows at least one (or any trade).",
    )
    min_surface_m2: Surface | None = None
    max_surface_m2: Surface | None = None
    max_rent_eur_m2_year: Rent | None = None
    features: list[Feature] = Field(default_factory=list, max_length=4)
    site_ids: list[SiteId] = Field(
        default_factory=list,
        max_length=20,
        description="Inventory site ids: a unit matches when it is on one of them (any site "
        "when empty).",
    )
    min_ceiling_height_m: MinCeiling | None = None
    min_floor_load_kg_m2: MinFloorLoad | None = None
    min_power_kva: MinPower | None = None
    step_free_access: bool = Field(default=False, description="Same as features: step_free_access")
    space_kind: SpaceKind | None = Field(
        default=None,
        description="What the search is for: `workshop` (also when left out) or `stall`, the "
        "seasonal sales stalls let for a period. A search gets the vacancies of its kind only.",
    )
    rail_siding: bool = Field(default=False, strict=True, description="The site has a rail siding.")
    river_quay_within_m: QuayWithin | None = None
    petite_ceinture: bool = Field(
        default=False,
        strict=True,
        description="A petite-ceinture station is on or next to the site.",
    )
    min_freight_weight_t: MinFreightWeight | None = None
    min_freight_height_m: MinFreightHeight | None = None
    cargo_bike_parking: bool = Field(
        default=False, strict=True, description="The site has at least one cargo-bike space."
    )

    @field_validator("arrondissements")
    @classmethod
    def _arr(cls, v: list[int]) -> list[int]:
        return _no_repeats(v, "arrondissements")

    @field_validator("site_kinds", "trades", "features", "site_ids")
    @classmethod
    def _lists(cls, v: list[Any]) -> list[Any]:
        return _no_repeats(v, "this list")

    @model_validator(mode="after")
    def _ranges(self) -> CriteriaIn:
        if (
            self.min_surface_m2 is not None
            and self.max_surface_m2 is not None
            and self.min_surface_m2 > self.max_surface_m2
        ):
            raise ValueError("min_surface_m2 must not exceed max_surface_m2")
        if self.step_free_access and Feature.STEP_FREE_ACCESS not in self.features:
            self.features = sorted([*self.features, Feature.STEP_FREE_ACCESS])
        return self


class WebhookChannelIn(StrictInput):
    type: Literal["webhook"]
    url: str = Field(
        min_length=10,
        max_length=2000,
        description="Where alerts are posted (http or https); it must resolve to public "
        "addresses only.",
        # Documented here, checked when saved (with a clearer message than a pattern's).
        json_schema_extra={"pattern": "^[Hh][Tt][Tt][Pp][Ss]?://"},
        examples=["https://example.org/hooks/fab"],
    )
    secret: str | None = Field(
        default=None,
        max_length=200,
        # Documented here; `_secret` checks it and says what is wrong.
        json_schema_extra={"pattern": SECRET_PATTERN},
        description="Your own whsec_<base64> signing secret (24 random bytes or more); one is "
        "generated when left out. It is shown once, in the response that creates it.",
    )

    @field_validator("secret")
    @classmethod
    def _secret(cls, v: str | None) -> str | None:
        if v is not None:
            secret_key(v)
        return v


class EmailChannelIn(StrictInput):
    type: Literal["email"]
    address: EmailStr | None = Field(
        default=None, description="Defaults to the contact e-mail of your leasing profile."
    )


class FeedChannelIn(StrictInput):
    type: Literal["feed"]


ChannelIn = Annotated[
    WebhookChannelIn | EmailChannelIn | FeedChannelIn, Field(discriminator="type")
]


# At most one channel of each type; JSON Schema can say only that no two are identical.
Channels = Annotated[
    list[ChannelIn], Field(min_length=1, max_length=3, json_schema_extra={"uniqueItems": True})
]


def _one_per_type(channels: list[Any]) -> list[Any]:
    kinds = [c.type for c in channels]
    if len(set(kinds)) != len(kinds):
        raise ValueError("give each channel type at most once")
    return channels


SUBSCRIPTION_EXAMPLE: dict[str, Any] = {
    "name": "Atelier bois, Est parisien",
    "criteria": {
        "arrondissements": [11, 12, 19, 20],
        "site_kinds": ["hotel_industriel", "cite_artisanale"],
        "trades": ["woodwork"],
        "min_surface_m2": 60,
        "max_surface_m2": 250,
        "max_rent_eur_m2_year": 150,
        "features": ["goods_lift"],
        "min_ceiling_height_m": 3.5,
        "min_floor_load_kg_m2": 500,
        "min_power_kva": 36,
        "step_free_access": True,
    },
    "channels": [
        {"type": "webhook", "url": "https://example.org/hooks/fabrique"},
        {"type": "email", "address": "camille@atelier-martin.fr"},
        {"type": "feed"},
    ],
    "frequency": "instant",
}


class SubscriptionCreate(StrictInput):
    """A saved search: what a vacancy must be like, and where to send its alerts."""

    model_config = ConfigDict(json_schema_extra={"examples": [SUBSCRIPTION_EXAMPLE]})

    name: str = Field(min_length=1, max_length=120, examples=["Atelier bois, Est parisien"])
    criteria: CriteriaIn = Field(default_factory=CriteriaIn)
    channels: Channels = Field(description="Each channel type at most once.")
    frequency: Frequency = Frequency.INSTANT

    _channels = field_validator("channels")(_one_per_type)


class SubscriptionPatch(StrictInput):
    """Only the fields given change; `channels` replaces every channel."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "name": "Atelier bois, tout Paris",
                    "criteria": {"trades": ["woodwork"], "min_surface_m2": 80},
                    "channels": [{"type": "email"}, {"type": "feed"}],
                    "frequency": "daily",
                }
            ]
        }
    )

    name: str | None = Field(default=None, min_length=1, max_length=120)
    criteria: CriteriaIn | None = None
    channels: Channels | None = Field(
        default=None,
        description=(
            "Replaces every channel, each type at most once. A webhook keeps its secret while "
            "its URL is unchanged."
        ),
    )
    frequency: Frequency | None = None

    @field_validator("channels")
    @classmethod
    def _channels(cls, v: list[Any] | None) -> list[Any] | None:
        return None if v is None else _one_per_type(v)


class ChannelOut(BaseModel):
    type: Channel
    enabled: bool
    url: str | None = None
    address: str | None = None


class SubscriptionOut(BaseModel):
    id: str
    artisan_id: str
    name: str
    status: Status
    frequency: Frequency
    criteria: dict[str, Any]
    channels: list[ChannelOut]
    disabled_reason: str | None
    version: int
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, sub: Subscription) -> SubscriptionOut:
        """The subscription as the API shows it: channels listed, the secret never."""
        return cls(
            id=sub.id,
            artisan_id=sub.artisan_id,
            name=sub.name,
            status=Status(sub.status),
            frequency=Frequency(sub.frequency),
            criteria=sub.criteria,
            channels=_channels_of(sub),
            disabled_reason=sub.disabled_reason,
            version=sub.version,
            created_at=sub.created_at,
            updated_at=sub.updated_at,
        )


def _channels_of(sub: Subscription) -> list[ChannelOut]:
    channels = []
    if sub.webhook_url:
        channels.append(
            ChannelOut(type=Channel.WEBHOOK, enabled=sub.webhook_enabled, url=sub.webhook_url)
        )
    if sub.email_enabled or sub.email_address:
        channels.append(
            ChannelOut(type=Channel.EMAIL, enabled=sub.email_enabled, address=sub.email_address)
        )
    if sub.feed_enabled:
        channels.append(ChannelOut(type=Channel.FEED, enabled=True))
    return channels


class SubscriptionCreated(SubscriptionOut):
    webhook_secret: str | None = Field(
        description="The webhook signing secret. Shown only in this response: store it now."
    )

    @classmethod
    def with_secret(cls, sub: Subscription, secret: str | None) -> SubscriptionCreated:
        """The subscription, with the webhook secret made by this change (if any)."""
        return cls(**SubscriptionOut.of(sub).model_dump(), webhook_secret=secret)


class DeliveryOut(BaseModel):
    id: str = Field(description="Also the webhook-id header: stable across retries.")
    event_id: str
    kind: DeliveryKind
    channel: Channel
    status: DeliveryStatus
    artisan_id: str
    subscription_id: str | None
    vacancy_id: str | None
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    last_status_code: int | None
    batch_id: str | None
    created_at: datetime
    delivered_at: datetime | None


class TestSendOut(BaseModel):
    deliveries: list[DeliveryOut]


class FeedItemOut(BaseModel):
    id: int
    kind: DeliveryKind
    title: str
    body: dict[str, Any]
    subscription_id: str | None
    created_at: datetime
    read: bool
    read_at: datetime | None

    @classmethod
    def of(cls, item: FeedItem) -> FeedItemOut:
        """A feed row as the API shows it (`read` spelled out)."""
        assert item.id is not None, "a feed item has its id once flushed"
        return cls(
            id=item.id,
            kind=DeliveryKind(item.kind),
            title=item.title,
            body=item.body,
            subscription_id=item.subscription_id,
            created_at=item.created_at,
            read=item.read_at is not None,
            read_at=item.read_at,
        )


class FeedPage(BaseModel):
    items: list[FeedItemOut]
    unread: int
    next_before: int | None = Field(description="Pass as `before` to read older items.")


class MarkedRead(BaseModel):
    marked: int


class ExportOut(BaseModel):
    """Everything notifications holds about the caller (`GET /v1/me/export`); secrets are
    shown as `"<kept, not exported>"`."""

    service: str = Field(description="Always `notifications`.")
    subject: str = Field(description="The token's subject.")
    generated_at: datetime
    records: dict[str, list[dict[str, Any]]] = Field(
        description="By kind: subscriptions, feed, deliveries (with their target), "
        "artisan_copy, guest_subscriptions, erasures, erased_artisan."
    )


class KeptOut(BaseModel):
    kind: str
    why: str


class ErasureOut(BaseModel):
    """The answer of `DELETE /v1/me`: the same erasure again while nothing new is held."""

    erasure_id: str
    status: str = Field(description="`done`: erased in the request's transaction.")
    erased_at: datetime
    kept: list[KeptOut]


class RetentionRuleOut(BaseModel):
    """One retention rule (docs/privacy.md's register says the same)."""

    rule: str
    table: str
    data: str = Field(description="What the table holds that this rule is about.")
    retention: str = Field(description="How long it is kept, and what happens then.")
    legal_basis: str
    period_days: int | None = Field(description="None: no period (kept, or follows leasing).")
    applied_by_job: bool = Field(description="Whether the daily job applies it here.")


class RetentionRuleResultOut(BaseModel):
    rule: str
    table: str
    count: int = Field(description="Rows deleted or cleared.")
    error: str | None = Field(description="The error's type when the rule failed this run.")


class RetentionReportOut(BaseModel):
    """One run of the retention job (`POST /v1/privacy/retention/run`)."""

    now: datetime = Field(description="The instant the rules were applied as of.")
    ok: bool = Field(description="False when a rule failed (the others still ran).")
    rules: list[RetentionRuleResultOut]


class DigestsFlushed(BaseModel):
    made_due: int


# Alerts without an account (guest subscribers) ----------------------------------------------

GuestLanguage = Literal["fr", "en"]

GUEST_SUBSCRIPTION_EXAMPLE: dict[str, Any] = {
    "email": "camille@example.org",
    "criteria": {"arrondissements": [11, 20], "trades": ["woodwork"], "min_surface_m2": 60},
    "language": "fr",
    "name": "Ateliers bois, 11e et 20e, 60 m² et plus",
}


class GuestSubscriptionCreate(StrictInput):
    """Ask for e-mail alerts without an account: a confirmation e-mail goes to the address,
    and nothing else is sent to it before its link is followed and confirmed."""

    model_config = ConfigDict(json_schema_extra={"examples": [GUEST_SUBSCRIPTION_EXAMPLE]})

    email: EmailStr = Field(max_length=320, examples=["camille@example.org"])
    criteria: CriteriaIn = Field(default_factory=CriteriaIn)
    language: GuestLanguage = Field(default="fr", description="Of the e-mails: fr or en.")
    name: str | None = Field(
        default=None,
        min_length=1,
        max_length=120,
        description="What the e-mails call this search (the portal writes the criteria in "
        "words); a generic name when left out.",
    )


class GuestSubscriptionAccepted(BaseModel):
    """The same answer whether the address is new, pending or confirmed."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "status": "confirmation_sent",
                    "detail": "A confirmation e-mail is on its way to this address. Nothing "
                    "else will be sent to it until its link is opened and the alerts confirmed.",
                    "expires_in_s": 172800,
                }
            ]
        }
    )

    status: Literal["confirmation_sent"] = "confirmation_sent"
    detail: str
    expires_in_s: int = Field(description="How long the confirmation link stays valid.")


class GuestConfirmationOut(BaseModel):
    """A pending request, as its confirmation page shows it (the address is not repeated)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "status": "pending",
                    "name": "Ateliers bois, 11e et 20e, 60 m² et plus",
                    "criteria": GUEST_SUBSCRIPTION_EXAMPLE["criteria"],
                    "language": "fr",
                    "expires_at": "2026-12-03T22:00:00Z",
                }
            ]
        }
    )

    status: Literal["pending"] = "pending"
    name: str
    criteria: dict[str, Any]
    language: GuestLanguage
    expires_at: datetime


class GuestConfirmed(BaseModel):
    """The alerts are on: the saved search made, and how to stop it."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "status": "confirmed",
                    "subscription_id": "5b0f1c8e-3c55-4c8e-9a52-2a43c1d8b6a1",
                    "name": "Ateliers bois, 11e et 20e, 60 m² et plus",
                    "criteria": GUEST_SUBSCRIPTION_EXAMPLE["criteria"],
                    "language": "fr",
                    "unsubscribe_url": "http://127.0.0.1:8003/v1/unsubscribe/5b0f1c8e-….Zm9v",
                }
            ]
        }
    )

    status: Literal["confirmed"] = "confirmed"
    subscription_id: str
    name: str
    criteria: dict[str, Any]
    language: GuestLanguage
    unsubscribe_url: str = Field(description="The one-click link every alert e-mail carries.")


# Open data -------------------------------------------------------------------------------------


class DemandFileOut(BaseModel):
    name: str = Field(examples=["demand.csv"])
    dataset: str
    title: str
    format: str
    media_type: str
    url: str = Field(description="Where to download it (stable).")
    schema_url: str = Field(description="Its Table Schema (the format of schema.data.gouv.fr).")
    licence: dict[str, str]
    generated_at: datetime
    sha256: str = Field(description="SHA-256 of the file, also its ETag.")
    rows: int
    min_people: int = Field(
        description="A cell behind fewer people than this publishes no count (secret=true)."
    )
    supply: str = Field(
        description="read, not configured or unavailable: whether the supply columns are filled."
    )


class DemandCatalogue(BaseModel):
    licence: dict[str, str]
    files: list[DemandFileOut]


# Workshop visits -------------------------------------------------------------------------------

VisitLanguage = Literal["fr", "en"]

VISIT_EXAMPLE: dict[str, Any] = {
    "slot_id": "slot-berlier-2026-12-12",
    "site_id": "a3f1c2d4",
    "site_name": "Hôtel industriel Berlier",
    "site_address": "26 rue Bruneseau",
    "postcode": "75013",
    "arrondissement": 13,
    "latitude": 48.826,
    "longitude": 2.383,
    "host_kind": "site",
    "unit_id": None,
    "title": "Visite des ateliers bois et céramique",
    "description": "Le gardien vous fait visiter trois ateliers et la cour de livraison.",
    "starts_at": "2026-12-12T09:00:00Z",
    "ends_at": "2026-12-12T10:30:00Z",
    "capacity": 12,
    "places_left": 5,
    "languages": ["fr", "en"],
    "accessibility": ["wheelchair", "hearing_loop"],
    "accessibility_notes": "Ascenseur jusqu'au 3e étage.",
    "trades": ["woodwork", "ceramics"],
    "status": "scheduled",
}


class VisitOut(BaseModel):
    """A workshop visit a site or one of its tenants opens: when, where, in which languages,
    how accessible, and the places still free."""

    model_config = ConfigDict(json_schema_extra={"examples": [VISIT_EXAMPLE]})

    slot_id: str
    site_id: str
    site_name: str
    site_address: str
    postcode: str
    arrondissement: int | None
    latitude: float | None
    longitude: float | None
    host_kind: str = Field(
        description="site: the landlord opens it; tenant: an artisan opens their workshop."
    )
    unit_id: str | None = Field(description="The workshop visited; none for a site-wide visit.")
    title: str
    description: str
    starts_at: datetime = Field(description="UTC")
    ends_at: datetime = Field(description="UTC")
    capacity: int
    places_left: int = Field(ge=0, description="Places still free (0: the visit is full).")
    languages: list[str]
    accessibility: list[str] = Field(description="e.g. wheelchair, hearing_loop")
    accessibility_notes: str | None
    trades: list[str]
    status: str = Field(description="scheduled or cancelled (by the host)")

    @classmethod
    def of(cls, slot: VisitSlot) -> VisitOut:
        return cls(
            slot_id=slot.slot_id,
            site_id=slot.site_id,
            site_name=slot.site_name,
            site_address=slot.site_address,
            postcode=slot.postcode,
            arrondissement=slot.arrondissement,
            latitude=slot.latitude,
            longitude=slot.longitude,
            host_kind=slot.host_kind,
            unit_id=slot.unit_id,
            title=slot.title,
            description=slot.description,
            starts_at=slot.starts_at,
            ends_at=slot.ends_at,
            capacity=slot.capacity,
            places_left=max(slot.capacity - slot.booked, 0),
            languages=list(slot.languages),
            accessibility=list(slot.accessibility),
            accessibility_notes=slot.accessibility_notes,
            trades=list(slot.trades),
            status=slot.status,
        )


class VisitBookingCreate(StrictInput):
    """Book places on a visit with an e-mail address (no account): a confirmation e-mail with
    the cancellation link goes to it, and a reminder the day before."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"email": "camille@example.org", "language": "fr", "places": 2}]
        }
    )

    email: EmailStr = Field(max_length=320, examples=["camille@example.org"])
    language: VisitLanguage = Field(default="fr", description="Of the e-mails: fr or en.")
    places: int = Field(default=1, strict=True, ge=1, le=4, description="1 to 4 people.")


class VisitBookingOut(BaseModel):
    """A booking made: the address is not repeated, the cancellation link is only in the
    e-mail."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "booking_id": "5b0c7f0e-8a3e-4f57-9d7b-3f2f6a0c1d2e",
                    "status": "booked",
                    "places": 2,
                    "visit": VISIT_EXAMPLE,
                    "detail": "Your places are booked. A confirmation e-mail with the "
                    "cancellation link is on its way, and a reminder comes the day before.",
                }
            ]
        }
    )

    booking_id: str
    status: Literal["booked"] = "booked"
    places: int
    visit: VisitOut
    detail: str


class VisitCancel(StrictInput):
    """Cancel a booking with the token of its e-mail's link (`/visites/annuler/<token>`)."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"token": "q3R0c1o5Yh..."}]})

    token: str = Field(min_length=1, max_length=200)


class VisitCancelled(BaseModel):
    """The booking is cancelled (also when it already was: the link can be opened twice)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "status": "cancelled",
                    "slot_id": "slot-berlier-2026-12-12",
                    "places_freed": 2,
                    "detail": "Your booking is cancelled and its places are free again.",
                }
            ]
        }
    )

    status: Literal["cancelled"] = "cancelled"
    slot_id: str
    places_freed: int = Field(description="0 when it was cancelled already.")
    detail: str


class HostedBookingOut(BaseModel):
    """One booking on a hosted visit, as its host sees it."""

    email: str
    places: int
    language: str
    booked_at: datetime


class HostedVisitOut(BaseModel):
    """A visit the caller hosts, with who booked it (only its host sees the addresses)."""

    visit: VisitOut
    places_booked: int
    bookings_count: int
    bookings: list[HostedBookingOut]
