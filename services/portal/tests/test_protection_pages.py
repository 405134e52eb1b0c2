"""The no-net-loss pages' pure parts (the balance's rows and Paris's net over time, the
project and delivery forms, the landlord's compensation, the open-data list) and their pages
rendered in French from answers shaped like inventory's and notifications'."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, date, datetime
from types import SimpleNamespace
from typing import Any

import pytest
from starlette.datastructures import FormData

from portal import charts
from portal import landlord_forms as forms
from portal.clients import UpstreamRefused
from portal.i18n import set_locale
from portal.pages.opendata import published, size_text
from portal.pages.protection import (
    balance_view,
    delivery_refusal,
    month_name,
    paris_series,
    project_labels,
    project_lines,
    project_refusal,
    read_delivery_form,
    read_project_form,
    signed,
    what_to_do,
)
from portal.rendering import ENV
from portal.schemas import OpenDataCatalogue, Project, SurfaceBalance, SurfaceFlags
from portal.sessions import SignedIn

TODAY = date(2026, 12, 2)
SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture(autouse=True)
def _french() -> None:
    set_locale("fr")


def page(template: str, **context: Any) -> str:
    user = SignedIn(
        sub="o1", name="Sophie Lambert", email="s@example.org", email_verified=True,
        roles=frozenset({"officer"}), access_token="t", csrf_token="csrf-1",
    )  # fmt: skip
    return ENV.get_template(template).render(
        request=None, lang="fr", path="/", query=[], tile_url=None, tile_attribution="",
        user=user, csrf_token="csrf-1", **context,
    )  # fmt: skip


def month(m: str, net: float, cumulative: float) -> dict[str, Any]:
    gains, losses = max(net, 0), max(-net, 0)
    return {"month": m, "gains_m2": gains, "losses_m2": losses, "net_m2": net,
            "cumulative_net_m2": cumulative}  # fmt: skip


BALANCE = SurfaceBalance.model_validate(
    {
        "period_from": None,
        "period_to": None,
        "as_of": "2026-12-02",
        "rows": [
            {
                "arrondissement": 12, "label": "Paris 12e", "gains_m2": 300, "losses_m2": 500,
                "net_m2": -200, "compensated_m2": 300, "uncompensated_m2": 200,
                "uncompensated_losses": 1, "compensations_delivered_m2": 100,
                "compensations_planned_m2": 200, "late_m2": 200, "late_compensations": 1,
                "series": [month("2026-03", 300, 300), month("2026-10", -500, -200)],
            },
            {
                "arrondissement": 11, "label": "Paris 11e", "gains_m2": 1200.5, "losses_m2": 0,
                "net_m2": 1200.5, "series": [month("2026-06", 1200.5, 1200.5)],
            },
        ],
    }
)  # fmt: skip


def test_a_balance_has_its_sign_and_paris_adds_up_the_months() -> None:
    assert signed(1200.5) == "+1\u202f200,5"
    assert signed(-200) == "\u2212200"
    assert signed(0) == "0"
    assert paris_series(BALANCE.rows) == [
        (date(2026, 3, 1), 300.0),
        (date(2026, 6, 1), 1500.5),
        (date(2026, 10, 1), 1000.5),
    ]
    assert month_name(date(2026, 10, 1)) == "octobre 2026"


def test_negative_values_get_ticks_below_zero_and_points_under_the_axis() -> None:
    assert charts.span_ticks(-200, 300) == [-200.0, -100.0, 0.0, 100.0, 200.0, 300.0]
    assert charts.span_ticks(-450, 0)[0] <= -450 and charts.span_ticks(-450, 0)[-1] == 0
    assert charts.span_ticks(10, 90) == charts.nice_ticks(90)
    chart = charts.step_chart(
        [charts.Series("12e", [(date(2026, 3, 1), 300.0), (date(2026, 10, 1), -200.0)])],
        chart_id="c", title="t", desc="d", unit="m²", number=signed, day=month_name,
    )  # fmt: skip
    svg = ET.fromstring(chart.svg)  # noqa: S314 - our own output
    zero = next(
        float(line.get("y1", "0"))
        for line in svg.iter(SVG + "line")
        if line.get("stroke-width") == "1"
    )
    ys = [float(c.get("cy", "0")) for c in svg.iter(SVG + "circle")]
    assert ys[0] < zero < ys[1]  # 300 above the 0 line, −200 under it
    assert chart.rows == [["mars 2026", "+300"], ["octobre 2026", "\u2212200"]]


def test_balance_page_shows_each_arrondissement_the_totals_and_the_chart() -> None:
    html = page("officer/balance.html", **balance_view(BALANCE))
    assert "Solde net de Paris\u00a0: +1\u202f000,5 m²" in html
    assert "Voir les 2 signalements" in html
    # 12e: lost 500, delivered 100, planned on time 0, late 200 (1), uncompensated 200 (1)
    row12 = html.split('<th scope="row">12e arrondissement</th>')[1].split("</tr>")[0]
    cells = [c.split(">", 1)[1].split("<")[0] for c in row12.split("<td")[1:]]
    assert cells == ["500", "100", "0", "200 (1)", "200 (1)", "300", "\u2212200"]
    svg = html.split('<figure class="chart-figure">')[1].split("<figcaption")[0].strip()
    parsed = ET.fromstring(svg)  # noqa: S314 - our own page
    names = [g.get("data-series") for g in parsed.iter(SVG + "g") if g.get("data-series")]
    assert names == ["Tout Paris", "12e arrondissement"]
    assert "octobre 2026" in html


def test_flags_page_says_what_to_do_and_links_the_unit_and_the_delivery_form() -> None:
    flags = SurfaceFlags.model_validate(
        {
            "as_of": "2026-12-02", "uncompensated_losses": 1, "late_compensations": 1,
            "flags": [
                {"kind": "late_compensation", "arrondissement": 12, "m2": 200, "unit_id": "u-1",
                 "ledger_id": 3, "compensation_id": "c-1", "project_id": "p-1",
                 "recorded_at": "2026-01-05T10:00:00Z", "due_on": "2026-06-30",
                 "reason": "Lot B4 <b>", "what_to_do": "…"},
                {"kind": "uncompensated_loss", "arrondissement": 12, "m2": 200, "unit_id": "u-2",
                 "ledger_id": 4, "compensation_id": None, "project_id": None,
                 "recorded_at": "2026-10-01T10:00:00Z", "due_on": None,
                 "reason": "Bâtiment condamné", "what_to_do": "…"},
            ],
        }
    )  # fmt: skip
    project = Project(
        id="p-1", name="Bercy-Charenton", arrondissement=12, committed_m2=20000,
        delivery_on=date(2032, 12, 31), status="planned",
    )  # fmt: skip
    html = page(
        "officer/flags.html", flags=flags, losses=[flags.flags[1]], late=[flags.flags[0]],
        projects={"p-1": project}, what_to_do=what_to_do, done="delivered",
    )  # fmt: skip
    assert "Au 2 décembre 2026\u00a0: 1 perte non compensée, 1 compensation en retard." in html
    assert "200 m² attendus le 30 juin 2026 dans le 12e arrondissement" in html
    assert '<a href="/officer/compensations/c-1/delivery">' in html
    assert '<a href="/units/u-2">Le lot qui a perdu les m²</a>' in html
    assert "Lot B4 &lt;b&gt;" in html and "Bercy-Charenton" in html
    assert "Demandez au bailleur" in html and "Cherchez de nouveaux m²" in html
    assert "La compensation est marquée livrée" in html


def test_project_form_is_checked_in_words_and_the_apis_422_goes_beside_its_field() -> None:
    bad = read_project_form(
        FormData(name="B", arrondissement="21", committed_m2="beaucoup",
                 delivery_on="31/12/2032", status="soon", description="")
    )  # fmt: skip
    assert sorted(bad.errors) == ["arrondissement", "committed_m2", "delivery_on", "name", "status"]
    assert "au moins 2 caractères" in bad.errors["name"]
    good = read_project_form(
        FormData(name="Ordener-Poissonniers", arrondissement="18", committed_m2="12 500,5",
                 delivery_on="2031-06-30", status="planned", description="")
    )  # fmt: skip
    assert good.errors == {}
    assert good.body == {
        "name": "Ordener-Poissonniers", "arrondissement": 18, "committed_m2": 12500.5,
        "delivery_on": "2031-06-30", "status": "planned", "description": None,
    }  # fmt: skip
    errors = [{"field": "body.committed_m2", "message": "too big", "type": "less_than_equal"}]
    project_refusal(good, UpstreamRefused("inventory", 422, "Bad.", errors=errors))
    assert list(good.errors) == ["committed_m2"]
    with pytest.raises(UpstreamRefused):
        project_refusal(good, UpstreamRefused("inventory", 409, "Conflict."))


def test_projects_page_shows_kept_against_promised_with_a_bar_and_errors_by_field() -> None:
    p = Project(
        id="p-1", name="Bercy-Charenton", arrondissement=12, committed_m2=20000, kept_m2=5000,
        units=3, shortfall_m2=15000, delivery_on=date(2032, 12, 31), status="under_construction",
    )  # fmt: skip
    lines = project_lines([p])
    assert lines[0].share == "25"
    bar = ET.fromstring(lines[0].bar)  # noqa: S314 - our own output
    assert bar.find(SVG + "title").text == "5\u202f000 m² gardés sur 20\u202f000 m² promis"  # type: ignore[union-attr]
    form = read_project_form(FormData(name="", arrondissement="12", committed_m2="1",
                                      delivery_on="2030-01-01", status="planned"))  # fmt: skip
    html = page(
        "officer/projects.html", lines=lines, form=form,
        labels=project_labels(), key="k", status_names={"under_construction": "en construction"},
        status_options=[("planned", "prévu")], arrondissement_options=[("12", "12e")], done="",
    )  # fmt: skip
    assert "5\u202f000 m² gardés sur 20\u202f000 m² promis (25\u00a0%)" in html
    assert 'id="f-name-error"' in html and 'aria-invalid="true"' in html
    assert '<a href="#f-name">Nom du projet' in html
    assert "en construction" in html


def test_delivery_form_needs_a_unit_and_no_future_day() -> None:
    form = read_delivery_form(FormData(unit_id="", delivered_on="2027-01-01"), TODAY)
    assert sorted(form.errors) == ["delivered_on", "unit_id"]
    ok = read_delivery_form(FormData(unit_id="u-9", delivered_on=""), TODAY)
    assert ok.errors == {} and ok.body == {"unit_id": "u-9"}
    delivery_refusal(
        ok, UpstreamRefused("inventory", 422, "Unit u-9 is in the 11th arrondissement; "
                            "'unit_id' must name a unit in the 12th.")
    )  # fmt: skip
    assert "autre arrondissement" in ok.errors["unit_id"]


UNIT = SimpleNamespace(surface_m2=200.0, use_class="production", status="available")


def test_the_production_m2_a_change_removes() -> None:
    assert forms.production_loss(UNIT, {"surface_m2": 150}) == 50
    assert forms.production_loss(UNIT, {"status": "withdrawn"}) == 200
    assert forms.production_loss(UNIT, {"use_class": "other"}) == 200
    assert forms.production_loss(UNIT, {"surface_m2": 250}) == 0
    assert forms.production_loss(UNIT, {"status": "leased"}) == 0


def compensation(**values: str) -> forms.UnitForm:
    sent = {"comp_m2": "60", "comp_status": "planned", "comp_due_on": "2027-06-30",
            "comp_description": "Lot B4", "comp_project": "", **values}  # fmt: skip
    form = forms.UnitForm()
    forms.read_compensation(form, FormData(sent), loss_m2=50, arrondissement=12, today=TODAY)
    return form


def test_a_compensation_is_checked_and_sent_in_the_losss_arrondissement() -> None:
    good = compensation()
    assert good.errors == {}
    assert good.body["compensation"] == {
        "m2": 60.0, "arrondissement": 12, "status": "planned", "due_on": "2027-06-30",
        "description": "Lot B4", "project_id": None,
    }  # fmt: skip
    short = compensation(comp_m2="40", comp_status="delivered", comp_description="x")
    assert "au moins autant" in short.errors["comp_m2"]
    assert "dans le futur" in short.errors["comp_due_on"]
    assert "au moins 3 caractères" in short.errors["comp_description"]
    empty = forms.UnitForm()
    forms.read_compensation(empty, FormData({}), loss_m2=50, arrondissement=12, today=TODAY)
    assert empty.errors == {} and "compensation" not in empty.body
    needless = forms.UnitForm()
    forms.read_compensation(needless, FormData({"comp_m2": "10"}), loss_m2=0,
                            arrondissement=12, today=TODAY)  # fmt: skip
    assert "ne demande donc pas de compensation" in needless.errors["comp_m2"]


def test_inventorys_refusal_of_a_loss_goes_beside_the_compensation() -> None:
    errors = [{"field": "body.compensation", "type": "compensation_required", "message": "x"}]
    field, text = forms.compensation_problem(422, "No net loss of production surface: …", errors)  # type: ignore[misc]
    assert field == "comp_m2" and "la surface de production doit être préservée" in text
    with_loss = forms.compensation_problem(422, "No net loss …", errors, 12.5)
    assert with_loss is not None and "retire 12,5\u00a0m² de surface de production" in with_loss[1]
    assert (
        forms.compensation_problem(
            422, "Development project 'X' is in the 11th arrondissement, not the 12th; …", []
        )
        is None
    )
    found = forms.compensation_problem(
        422, "No development project with id p; check 'compensation.project_id' …", []
    )
    assert found is not None and found[0] == "comp_project"
    assert forms.compensation_problem(409, "reference taken", []) is None


def test_open_data_lists_each_file_with_its_absolute_url_and_describes_it() -> None:
    licence = {"name": "etalab-2.0", "title": "Licence Ouverte / Open Licence version 2.0",
               "path": "https://www.etalab.gouv.fr/licence-ouverte-open-licence"}  # fmt: skip

    def entry(name: str, dataset: str, fmt: str) -> dict[str, Any]:
        return {"name": name, "dataset": dataset, "title": dataset.title(), "format": fmt,
                "media_type": "text/csv; charset=utf-8", "url": f"/v1/open-data/{name}",
                "schema_url": f"/v1/open-data/schemas/{dataset}.json", "licence": licence,
                "generated_at": "2026-12-02T03:00:00Z", "sha256": "ab", "rows": 1234}  # fmt: skip

    stock = OpenDataCatalogue.model_validate(
        {"licence": licence, "files": [entry("vacancies.csv", "vacancies", "csv"),
                                       entry("surface-ledger.csv", "surface-ledger", "csv")]}
    )  # fmt: skip
    demand = OpenDataCatalogue.model_validate(
        {"licence": licence, "files": [entry("demand.csv", "demand", "csv")]}
    )
    files = published(
        [("inventory", stock), ("notifications", demand)],
        {"inventory": "https://api.example.org/inventory", "notifications": "https://n.example"},
    )
    assert [f.file.dataset for f in files] == ["surface-ledger", "vacancies", "demand"]
    assert files[0].url == "https://api.example.org/inventory/v1/open-data/surface-ledger.csv"
    assert files[2].schema_url == "https://n.example/v1/open-data/schemas/demand.json"
    assert "enregistrée sans compensation" in files[0].description
    assert "2 décembre 2026" in files[0].generated
    assert size_text(None) == "—" and size_text(2500) == "2,5\u00a0ko"
    html = page("open_data.html", files=files, licence=licence,
                bases={"inventory": "https://i", "notifications": "https://n"},
                demand_missing=False)  # fmt: skip
    assert "combien de m² de production chaque arrondissement a gagnés ou perdus" in html
    assert 'href="https://api.example.org/inventory/v1/open-data/surface-ledger.csv"' in html
    assert "1\u202f234" in html and "Licence Ouverte" in html
    assert datetime(2026, 12, 2, tzinfo=UTC)  # the files' day, as the catalogue gives it
