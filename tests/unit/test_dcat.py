"""The DCAT-AP graph from facts alone (`api/open/dcat.py`): licences, and catalogues that
know little or nothing still valid against the DCAT-AP 3.0 shapes."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from rdflib import URIRef
from rdflib.namespace import DCAT, DCTERMS, FOAF, RDF

from api.catalog import OpenData, Pilot, Service
from api.kpis.periods import Grain, buckets, from_ns, to_ns
from api.open.annex import interfaces
from api.open.catalogue import usage_window
from api.open.dcat import PilotFacts, Span, catalogue
from api.open.vocabulary import licence_of
from api.options import KpiOptions
from tests.api.test_dcat import check

BASE = "https://open.example"


@pytest.mark.parametrize(("text", "uri", "types"), [
    ("CC-BY-4.0", "http://creativecommons.org/licenses/by/4.0/", ("Attribution",)),
    ("CC0-1.0", "http://creativecommons.org/publicdomain/zero/1.0/", ("PublicDomain",)),
    ("https://www.dati.gov.it/iodl/2.0/", "https://www.dati.gov.it/iodl/2.0/", ()),
    ("https://example.org/my licence", "https://example.org/my%20licence", ()),
    ("MIT", "http://spdx.org/licenses/MIT", ()),
])
def test_a_licence_is_an_spdx_id_or_a_url(text: str, uri: str, types: tuple[str, ...]
                                          ) -> None:
    assert licence_of(text) == (URIRef(uri), types)


def test_a_catalogue_without_pilots_is_valid() -> None:
    graph = catalogue(BASE, [], "citypilot")
    check(graph, accepted=None)  # recommendations unmet: no dataset to serve, no place
    assert set(graph.subjects(RDF.type, DCAT.Dataset)) == set()
    assert set(graph.subjects(RDF.type, DCAT.DataService)) == {URIRef(f"{BASE}/catalog#ogc")}


def test_a_pilot_known_only_by_its_id_is_valid() -> None:
    bare = PilotFacts(Pilot(id="p9"), (), (), None, None, None, None, None, False)
    graph = catalogue(BASE, [bare], "citypilot")
    check(graph, accepted=None)  # recommendations unmet: no place, period or contact
    assert {str(d) for d in graph.subjects(RDF.type, DCAT.Dataset)} == {
        f"{BASE}/catalog#p9.inventory"}
    assert "RESTRICTED" in str(graph.value(URIRef(f"{BASE}/catalog#p9.inventory"),
                                           DCTERMS.accessRights))


def test_every_dataset_and_distribution_of_a_full_pilot_is_valid() -> None:
    pilot = Pilot(id="p1", name="Città", operator="Acme Mobilità", services=(
        Service(id="bike"),), open=OpenData(
        open_data=True, open_kinds=("noise",), licence="https://example.org/licence",
        contact_email="data@example.org"))
    day = 86400 * 10**9
    full = PilotFacts(pilot, ("noise",), ("noise_laeq",), (-8.7, 40.6, -8.6, 40.7),
                      Span(0, 9 * day), Span(day, 9 * day), Span(day, 10 * day),
                      (day, 10 * day), True)
    graph = catalogue(f"{BASE}/", [full], publisher_name="Città di Prova")
    check(graph)
    assert len(set(graph.subjects(RDF.type, DCAT.Distribution))) == 5
    licences = set(graph.objects(None, DCTERMS.license))
    assert URIRef("https://example.org/licence") in licences
    # The catalogue is the installation's; the pilot's datasets are its operator's.
    assert {str(graph.value(o, FOAF.name)) for o in graph.objects(
        URIRef(f"{BASE}/catalog"), DCTERMS.publisher)} == {"Città di Prova"}
    datasets = set(graph.subjects(RDF.type, DCAT.Dataset))
    assert datasets and {str(graph.value(o, FOAF.name)) for d in datasets
                         for o in graph.objects(d, DCTERMS.publisher)} == {"Acme Mobilità"}


def test_the_usage_link_asks_for_what_one_request_may() -> None:
    berlin = Pilot(id="p1", timezone="Europe/Berlin")
    day = 86400 * 10**9
    two_years = Span(to_ns(datetime(2023, 3, 1, 12, tzinfo=UTC)),
                     to_ns(datetime(2025, 3, 30, 12, tzinfo=UTC)))
    lo, hi = usage_window(two_years, berlin, KpiOptions(), 0)
    assert from_ns(hi, ZoneInfo("Europe/Berlin")).isoformat() == "2025-03-31T00:00:00+02:00"
    assert (hi - lo) / day <= KpiOptions().max_days  # 399 local days, one DST change
    assert len(buckets(lo, hi, Grain.DAY, ZoneInfo("Europe/Berlin"))) == 399
    # without any use yet: the last 30 local days
    now = to_ns(datetime(2024, 6, 10, 12, tzinfo=UTC))
    lo, hi = usage_window(None, berlin, KpiOptions(), now)
    assert from_ns(lo, ZoneInfo("Europe/Berlin")).isoformat() == "2024-05-12T00:00:00+02:00"
    assert from_ns(hi, ZoneInfo("Europe/Berlin")).isoformat() == "2024-06-11T00:00:00+02:00"


def test_the_tender_annex_names_the_catalogue() -> None:
    links = dict(interfaces(Pilot(id="p1"), BASE))
    assert links["DCAT-AP catalogue of the open datasets (with a viewer key)"] == \
        f"{BASE}/catalog.ttl"
