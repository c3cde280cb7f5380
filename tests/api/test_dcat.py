"""The DCAT-AP 3.0 catalogue (`/catalog.ttl`, `/catalog.jsonld`, `/catalog`): valid against
the official SHACL shapes (vendored in tests/data/dcat-ap/, see its README) with pyshacl,
the same graph in both syntaxes, only what the caller may see, and every link it gives
under the public URL answered."""

from __future__ import annotations

import warnings
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from pyshacl import validate
from rdflib import Graph, Literal, URIRef
from rdflib.compare import isomorphic
from rdflib.namespace import DCAT, DCTERMS, RDF, SH

from api.catalog import OpenData, Role
from tests.api.conftest import P2, URL_FIXTURES, Live, start_live
from tests.api.test_open import OPENED as OPEN_P1

SHAPES = Path(__file__).parents[1] / "data" / "dcat-ap"
PUBLIC = "https://data.example.org/city"  # a prefix path too, as behind a reverse proxy
# The validation setups of the DCAT-AP validator (the Interoperable Europe testbed):
# shapes, ranges, recommendations, controlled vocabularies and deprecations; and the
# release's one-file "individual constraints" shapes, whose `sh:class rdfs:Resource` on
# URLs holds under RDFS semantics.
SETUPS = {
    "full": (("shapes.ttl", "range.ttl", "shapes_recommended.ttl",
              "mdr-vocabularies.shape.ttl", "deprecateduris.ttl"), "none"),
    "individual": (("dcat-ap-SHACL.ttl",), "rdfs"),
}
# Recommendations the catalogue cannot meet from what the registry holds: the installation
# is no EU corporate body and has no publisher type or contact of its own, pilots have no
# country or place URI, and there is no publication date of the catalogue.
ACCEPTED_WARNINGS = {DCAT.contactPoint, DCTERMS.issued, DCTERMS.publisher, DCTERMS.spatial,
                     DCTERMS.type}
# Closed kinds, their devices and metrics, the closed pilot, user ids, event types, services.
NEVER = ["u1", "u2", "u3", "u4", "u5", "u6", "session_start", "feedback", "kiosk", "event",
         "dead_letter", "bad_json", "parking", "lighting", "pk1", "pk2", "lamp1", "term1",
         "occupancy", "energy", "aq9", "#p2", "pilot=p2", "Second city", "ingest_delay_s"]
OPENED = OPEN_P1.model_copy(update={"name": "First city", "open": OpenData(
    open_data=True, open_kinds=("air_quality", "noise"), contact_name="Open data desk",
    contact_email="open@first.example")})


@pytest.fixture(params=sorted(URL_FIXTURES))
async def opened(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Live]:
    """The live API with p1 open (air quality and noise public, a contact), p2 closed."""
    url = request.getfixturevalue(URL_FIXTURES[request.param])
    async for running in start_live(url, tmp_path, pilots=(OPENED, P2), public_url=PUBLIC):
        yield running


def from_jsonld(text: str) -> Graph:
    with warnings.catch_warnings():  # rdflib 7.6's JSON-LD parser uses its own deprecated
        warnings.simplefilter("ignore", DeprecationWarning)  # ConjunctiveGraph inside
        return Graph().parse(data=text, format="json-ld")


def shapes(setup: str) -> Graph:
    graph = Graph()
    for name in SETUPS[setup][0]:
        graph.parse(SHAPES / name, format="turtle")
    return graph


def check(data: Graph, accepted: set[URIRef] | None = ACCEPTED_WARNINGS) -> None:
    """No violation in any setup; only the accepted warnings (None: any; the report on a
    failure shows all)."""
    for setup, (_, inference) in SETUPS.items():
        _, report, text = validate(data, shacl_graph=shapes(setup), inference=inference,
                                   allow_warnings=True)
        results = [r for root in report.subjects(RDF.type, SH.ValidationReport)
                   for r in report.objects(root, SH.result)]
        severe = [r for r in results if report.value(r, SH.resultSeverity) == SH.Violation]
        assert not severe, f"{setup}:\n{text}"
        warned = {report.value(r, SH.resultPath) for r in results}
        assert accepted is None or warned <= accepted, f"{setup}:\n{text}"


async def read(live: Live, who: str | None) -> tuple[Graph, str, str]:
    """The catalogue as a graph, and its Turtle and JSON-LD texts."""
    ttl = await live.get("/catalog.ttl", who)
    assert ttl.status_code == 200, ttl.text
    assert ttl.headers["content-type"] == "text/turtle; charset=utf-8"
    ld = await live.get("/catalog.jsonld", who)
    assert ld.status_code == 200, ld.text
    assert ld.headers["content-type"] == "application/ld+json"
    graph = Graph().parse(data=ttl.text, format="turtle")
    assert isomorphic(graph, from_jsonld(ld.text))
    return graph, ttl.text, ld.text


def datasets(graph: Graph) -> dict[str, URIRef]:
    return {str(d).rpartition("#")[2]: d
            for d in graph.subjects(RDF.type, DCAT.Dataset) if isinstance(d, URIRef)}


def words(graph: Graph, subject: URIRef) -> set[str]:
    return {str(k) for k in graph.objects(subject, DCAT.keyword)}


async def test_the_catalogue_is_valid_dcat_ap_3(opened: Live) -> None:
    for who in (None, "viewer", "viewer_p2"):
        graph, _, _ = await read(opened, who)
        check(graph)


async def test_without_open_data_the_catalogue_needs_a_key(live: Live) -> None:
    for path in ("/catalog.ttl", "/catalog.jsonld", "/catalog"):
        answer = await live.get(path)
        assert answer.status_code == 401, path
        assert answer.headers["content-type"] == "application/problem+json"
        assert "viewer key" in answer.json()["detail"]
        assert (await live.get(path, "viewer")).status_code == 200, path


async def test_anonymously_only_the_open_pilot_and_its_open_kinds(opened: Live) -> None:
    graph, ttl, ld = await read(opened, None)
    for text in (ttl, ld):
        for word in NEVER:
            assert word not in text, word
    found = datasets(graph)
    assert sorted(found) == ["p1.inventory", "p1.observations", "p1.usage"]
    obs = found["p1.observations"]
    assert {"air quality", "noise", "no2", "First city"} <= words(graph, obs)
    assert URIRef("http://publications.europa.eu/resource/authority/data-theme/ENVI") in \
        set(graph.objects(obs, DCAT.theme))
    usage = graph.value(found["p1.usage"], DCTERMS.description)
    assert usage is not None and "at least 10 distinct pseudonymous users" in usage
    assert '"c"' in usage and "none of its days in the period is suppressed" in usage
    for ref in found.values():
        assert graph.value(ref, DCTERMS.identifier) == Literal(str(ref))
        assert str(ref).startswith(f"{PUBLIC}/catalog#")
        contact = graph.value(ref, DCAT.contactPoint)
        assert graph.value(contact, URIRef("http://www.w3.org/2006/vcard/ns#hasEmail")) == \
            URIRef("mailto:open@first.example")
        assert "PUBLIC" in str(graph.value(ref, DCTERMS.accessRights))
        for dist in graph.objects(ref, DCAT.distribution):
            assert graph.value(dist, DCTERMS.license) == \
                URIRef("http://creativecommons.org/licenses/by/4.0/")
        period = graph.value(ref, DCTERMS.temporal)
        assert graph.value(period, DCAT.startDate) is not None, ref
    # aq1 is the one device with coordinates: the box is drawn around its point.
    place = graph.value(found["p1.inventory"], DCTERMS.spatial)
    assert str(graph.value(place, DCAT.centroid)) == "POINT(13.400000 52.520000)"
    assert str(graph.value(place, DCAT.bbox)).startswith(
        "POLYGON((13.399500 52.519500, 13.400500 52.519500, ")
    ogc, sta = (URIRef(f"{PUBLIC}/catalog#{s}") for s in ("ogc", "sta"))
    assert graph.value(ogc, DCAT.endpointURL) == URIRef(f"{PUBLIC}/ogc")
    assert graph.value(sta, DCAT.endpointURL) == URIRef(f"{PUBLIC}/sta/v1.1")
    assert set(graph.objects(ogc, DCAT.servesDataset)) == {found["p1.inventory"]}
    assert set(graph.objects(sta, DCAT.servesDataset)) == {found["p1.observations"],
                                                           found["p1.usage"]}


async def test_a_viewer_key_sees_every_pilot_it_may(opened: Live) -> None:
    graph, ttl, _ = await read(opened, "viewer")
    found = datasets(graph)
    assert {"p1.inventory", "p1.observations", "p1.usage", "p2.inventory",
            "p2.observations"} <= set(found)
    assert {"parking", "lighting", "air quality"} <= words(graph, found["p1.observations"])
    assert "RESTRICTED" in str(graph.value(found["p2.inventory"], DCTERMS.accessRights))
    # p1 with a key shows its closed kinds too: not all of that is public.
    assert "RESTRICTED" in str(graph.value(found["p1.observations"], DCTERMS.accessRights))
    assert "PUBLIC" in str(graph.value(found["p1.usage"], DCTERMS.accessRights))
    assert "u1" not in ttl and "session_start" not in ttl
    mine = datasets((await read(opened, "viewer_p2"))[0])
    assert sorted(mine) == ["p2.inventory", "p2.observations", "p2.usage"]


async def test_catalog_negotiates_its_syntax(opened: Live) -> None:
    graph, _, _ = await read(opened, None)
    ttl = await opened.client.get("/catalog", headers={"Accept": "text/turtle"})
    ld = await opened.client.get("/catalog", headers={"Accept": "application/ld+json"})
    assert ttl.headers["content-type"].startswith("text/turtle")
    assert ld.headers["content-type"] == "application/ld+json"
    assert ttl.headers["vary"] == "Accept"
    assert isomorphic(graph, Graph().parse(data=ttl.text, format="turtle"))
    assert isomorphic(graph, from_jsonld(ld.text))


async def test_every_link_under_the_public_url_answers(opened: Live) -> None:
    paths = (await opened.get("/openapi.json")).json()["paths"]
    sta = any(p.startswith("/sta/v1.1") for p in paths)
    for who in (None, "viewer"):
        graph, _, _ = await read(opened, who)
        links = {str(t).partition("#")[0] for triple in graph for t in triple
                 if isinstance(t, URIRef) and str(t).startswith(PUBLIC)}
        assert f"{PUBLIC}/ogc/collections/devices/items?pilot=p1" in links
        assert any("/open/v1/usage?" in u and "format=csv" in u for u in links)
        for url in sorted(links):
            path = url[len(PUBLIC):]
            if path.startswith("/sta/v1.1") and not sta:
                continue  # the SensorThings API is not mounted in this build yet
            parts = urlsplit(path)
            answer = await opened.client.get(parts.path or "/", params=parts.query or None,
                                             headers=opened.auth(who))
            assert answer.status_code == 200, (who, url, answer.text[:500])


async def test_the_catalogue_is_rate_limited_with_the_open_routes(sqlite_url: str,
                                                                 tmp_path: Path) -> None:
    async for live in start_live(sqlite_url, tmp_path, pilots=(OPENED,),
                                 open_rate_limit="2/minute"):
        assert (await live.get("/catalog.ttl")).status_code == 200
        assert (await live.get("/ogc/conformance")).status_code == 200
        refused = await live.get("/catalog.jsonld")
        assert refused.status_code == 429
        assert refused.headers["content-type"] == "application/problem+json"
        assert int(refused.headers["retry-after"]) >= 1


async def test_a_key_for_no_existing_pilot_reads_an_empty_catalogue(live: Live) -> None:
    _, live.keys["nowhere"] = live.catalog.create_key("nowhere", Role.VIEWER,
                                                      pilots=frozenset({"p9"}))
    graph, _, _ = await read(live, "nowhere")
    assert datasets(graph) == {}
    check(graph, accepted=None)  # recommendations unmet: nothing to serve or place
