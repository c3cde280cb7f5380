"""The DCAT-AP 3.0 catalogue of the open interfaces, as an rdflib graph: pure, no I/O.

One `dcat:Catalog` at `<public_url>/catalog`; per pilot the caller may see, up to three
`dcat:Dataset`s — the device inventory (OGC API – Features), the environmental observations
of its shown kinds (SensorThings API) and the suppressed usage aggregates (`/open/v1/usage`)
— each with its `dcat:Distribution`s; and a `dcat:DataService` per API (`/ogc`,
`/sta/v1.1`) that serves them. Every id is a URI under the public URL: `<public>/catalog#…`
(the document itself answers there, so the ids resolve). What the caller may not see is
never in the facts handed in (`catalogue.py` builds them from the caller's scope).

The controlled terms used (`vocabulary.py`: EU data themes, file types, access rights,
languages, planned availability; IANA media types; licences and ADMS licence types; the
standards) are described in the graph itself — type, label, scheme — so that the catalogue validates
against the DCAT-AP SHACL shapes (range and vocabulary constraints) without background
knowledge, and a harvester can show their labels.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlencode

from rdflib import BNode, Graph, Literal, Namespace, URIRef
from rdflib.namespace import DCAT, DCTERMS, FOAF, RDF, SKOS, XSD

from api.catalog import Pilot
from api.kpis.periods import from_ns
from api.open.suppression import RULE
from api.open.vocabulary import (
    ADMS_LICENCE,
    CONTEXT,
    DCATAP,
    EU,
    FORMATS,
    GSP,
    IANA,
    LICENCE_TYPES,
    METADATA_LICENCE,
    SCHEMES,
    STANDARDS,
    THEMES,
    VCARD,
    licence_of,
)

CATALOG_PATH = "/catalog"
STA_PATH = "/sta/v1.1"
MIN_SIDE = 0.001  # degrees (about 100 m): the smallest box drawn around devices


@dataclass(frozen=True, slots=True)
class Span:
    """When a dataset has data: [start, end] in integer nanoseconds."""

    start_ns: int
    end_ns: int


@dataclass(frozen=True, slots=True)
class PilotFacts:
    """What the caller may see of one pilot, gathered by `catalogue.py`."""

    pilot: Pilot
    kinds: tuple[str, ...]  # the telemetry kinds shown (the observations dataset)
    metrics: tuple[str, ...]  # the metrics of those kinds
    bbox: tuple[float, float, float, float] | None  # west, south, east, north (CRS84)
    inventory: Span | None
    observations: Span | None
    usage: Span | None
    usage_window: tuple[int, int] | None  # the usage link's [start, end); None: no dataset
    public: bool  # every dataset of it is shown without a key too




def _time(ns: int) -> Literal:
    text = from_ns(ns).isoformat().replace("+00:00", "Z")
    return Literal(text, datatype=XSD.dateTime)


class _Builder:
    """The graph under construction; each controlled term is described once."""

    def __init__(self, public_url: str) -> None:
        self.base = public_url.rstrip("/")
        self.g = Graph()
        for prefix, ns in CONTEXT.items():
            self.g.bind(prefix, Namespace(ns))
        self._described: set[URIRef] = set()

    def id(self, fragment: str) -> URIRef:
        return URIRef(f"{self.base}{CATALOG_PATH}#{fragment}")

    def url(self, path: str, **query: str) -> URIRef:
        return URIRef(f"{self.base}{path}" + (f"?{urlencode(query)}" if query else ""))

    def add(self, s: URIRef | BNode, p: URIRef, o: URIRef | BNode | Literal) -> None:
        self.g.add((s, p, o))

    def text(self, s: URIRef | BNode, p: URIRef, value: str) -> None:
        self.add(s, p, Literal(value, lang="en"))

    def term(self, uri: str, label: str, scheme: str | None, *types: URIRef) -> URIRef:
        """A controlled term: its types, label and (for a SKOS concept) its scheme."""
        ref = URIRef(uri)
        if ref in self._described:
            return ref
        self._described.add(ref)
        for t in types:
            self.add(ref, RDF.type, t)
        if scheme is not None:
            self.add(ref, RDF.type, SKOS.Concept)
            self.text(ref, SKOS.prefLabel, label)
            self.add(ref, SKOS.inScheme, self.scheme(scheme))
        else:
            self.text(ref, DCTERMS.title, label)
        return ref

    def scheme(self, scheme: str) -> URIRef:
        uri, title = SCHEMES[scheme]
        ref = URIRef(uri)
        if ref not in self._described:
            self._described.add(ref)
            self.add(ref, RDF.type, SKOS.ConceptScheme)
            self.text(ref, DCTERMS.title, title)
        return ref

    def theme(self, code: str) -> URIRef:
        return self.term(f"{EU}data-theme/{code}", THEMES[code], "data-theme")

    def licence(self, text: str) -> URIRef:
        ref, types = licence_of(text)
        if ref not in self._described:
            self._described.add(ref)
            self.add(ref, RDF.type, DCTERMS.LicenseDocument)
            for t in types:
                self.add(ref, DCTERMS.type, self.term(
                    f"{ADMS_LICENCE}{t}", LICENCE_TYPES[t], "licencetype"))
        return ref

    def standard(self, which: str) -> URIRef:
        uri, title = STANDARDS[which]
        return self.term(uri, title, None, DCTERMS.Standard)

    def access(self, public: bool) -> URIRef:
        code, label = ("PUBLIC", "public") if public else ("RESTRICTED", "restricted")
        return self.term(f"{EU}access-right/{code}", label, "access-right",
                         DCTERMS.RightsStatement)

    def location(self, box: tuple[float, float, float, float], name: str) -> BNode:
        """A box, at least `MIN_SIDE` degrees a side: one device's point is a box around
        it (a polygon without area is not a valid geometry)."""
        west, south, east, north = box
        pad_x, pad_y = max(0.0, MIN_SIDE - (east - west)) / 2, \
            max(0.0, MIN_SIDE - (north - south)) / 2
        west, east = west - pad_x, east + pad_x
        south, north = max(-90.0, south - pad_y), min(90.0, north + pad_y)
        node = BNode(name)
        self.add(node, RDF.type, DCTERMS.Location)
        ring = ", ".join(f"{x:.6f} {y:.6f}" for x, y in (
            (west, south), (east, south), (east, north), (west, north), (west, south)))
        self.add(node, DCAT.bbox, Literal(f"POLYGON(({ring}))", datatype=GSP.wktLiteral))
        self.add(node, DCAT.centroid, Literal(
            f"POINT({(west + east) / 2:.6f} {(south + north) / 2:.6f})",
            datatype=GSP.wktLiteral))
        return node

    def period(self, span: Span, name: str) -> BNode:
        node = BNode(name)
        self.add(node, RDF.type, DCTERMS.PeriodOfTime)
        self.add(node, DCAT.startDate, _time(span.start_ns))
        self.add(node, DCAT.endDate, _time(span.end_ns))
        return node


def _contact(b: _Builder, pilot: Pilot) -> BNode | None:
    published = pilot.published
    if published.contact_name is None and published.contact_email is None:
        return None
    node = BNode(f"{pilot.id}-contact")  # stable labels: the same answer for the same data
    b.add(node, RDF.type, VCARD.Kind)
    b.add(node, VCARD.fn, Literal(published.contact_name or published.contact_email or ""))
    if published.contact_email:
        b.add(node, VCARD.hasEmail, URIRef(f"mailto:{published.contact_email}"))
    return node


def _publisher(b: _Builder, name: str, key: str = "publisher") -> URIRef:
    ref = b.id(key)
    b.add(ref, RDF.type, FOAF.Agent)
    b.add(ref, FOAF.name, Literal(name))
    return ref


@dataclass(frozen=True, slots=True)
class _Family:
    key: str
    title: str
    description: str
    keywords: tuple[str, ...]
    themes: tuple[str, ...]
    span: Span | None
    # (key, format, access URL, the DataService that serves it or None)
    distributions: tuple[tuple[str, str, URIRef, str | None], ...]


def _families(b: _Builder, f: PilotFacts) -> list[_Family]:
    p = f.pilot
    name = p.name or p.id
    out = [_Family(
        "inventory", f"{name}: device inventory",
        f"The sensors and counters of the pilot {name} and their gateways: kind or service, "
        "the metrics each measures with their units, operator, network, make, installation "
        "day, last seen, and availability and completeness over the last 30 days; one "
        "GeoJSON feature per device (WGS 84), from the OGC API - Features collection "
        "`devices`.",
        ("inventory", "sensors", "IoT", "smart city", "infrastructure"),
        ("REGI", "TECH"), f.inventory,
        (("geojson", "geojson", b.url("/ogc/collections/devices/items", pilot=p.id),
          "ogc"),))]
    if f.kinds:
        kinds = ", ".join(k.replace("_", " ") for k in f.kinds)
        out.append(_Family(
            "observations", f"{name}: environmental observations",
            f"The readings of the pilot {name}'s sensors ({kinds}), per device and metric "
            "with its unit of measurement, as OGC SensorThings API 1.1 Things, Datastreams "
            "and Observations.",
            (*(k.replace("_", " ") for k in f.kinds), *f.metrics, "observations"),
            ("ENVI", "REGI"), f.observations, (("json", "json", b.url(STA_PATH), "sta"),)))
    if f.usage_window is not None:
        lo, hi = f.usage_window
        query = {"pilot": p.id, "start": from_ns(lo).isoformat().replace("+00:00", "Z"),
                 "end": from_ns(hi).isoformat().replace("+00:00", "Z")}
        k = p.published.open_min_users
        out.append(_Family(
            "usage", f"{name}: use of public services (suppressed aggregates)",
            f"Uses and distinct pseudonymous users of the pilot {name}'s public services per "
            "service and local day, with per-service totals over the period asked for "
            "(`start`, `end`). Small counts are suppressed: " + RULE.format(k=k) + " The "
            "access URLs give the period covered; any other period can be asked for. The "
            "SensorThings API serves the same daily counts as Datastreams `uses` and `users` "
            "of a Thing per service.",
            ("end-user pull", "service use", "statistics", "suppressed counts"),
            ("GOVE", "REGI"), f.usage,
            (("json", "json", b.url("/open/v1/usage", **query), None),
             ("csv", "csv", b.url("/open/v1/usage", **query, format="csv"), None),
             ("sta", "json", b.url(STA_PATH), "sta"))))
    return out


def _dataset(b: _Builder, f: PilotFacts, fam: _Family, publisher: URIRef,
             contact: BNode | None, services: dict[str, URIRef]) -> URIRef:
    p = f.pilot
    ref = b.id(f"{p.id}.{fam.key}")
    b.add(ref, RDF.type, DCAT.Dataset)
    b.add(ref, DCTERMS.identifier, Literal(str(ref)))
    b.text(ref, DCTERMS.title, fam.title)
    b.text(ref, DCTERMS.description, fam.description)
    for word in dict.fromkeys((*fam.keywords, p.name or p.id)):
        b.text(ref, DCAT.keyword, word)
    for code in fam.themes:
        b.add(ref, DCAT.theme, b.theme(code))
    b.add(ref, DCTERMS.publisher, publisher if p.operator is None else _publisher(
        b, p.operator, f"{p.id}.operator"))
    b.add(ref, DCTERMS.accessRights, b.access(
        f.public or (fam.key == "usage" and p.published.open_data)))
    if contact is not None:
        b.add(ref, DCAT.contactPoint, contact)
    if f.bbox is not None:
        b.add(ref, DCTERMS.spatial, b.location(f.bbox, f"{p.id}-{fam.key}-place"))
    if fam.span is not None:
        b.add(ref, DCTERMS.temporal, b.period(fam.span, f"{p.id}-{fam.key}-period"))
        if fam.key != "usage":  # its span ends at the next local midnight
            b.add(ref, DCTERMS.modified, _time(fam.span.end_ns))
    licence = b.licence(p.published.licence)
    for key, fmt, url, service in fam.distributions:
        dist = b.id(f"{p.id}.{fam.key}.{key}")
        b.add(ref, DCAT.distribution, dist)
        _distribution(b, dist, fmt, url, licence, fam.title)
        if service is not None:
            b.add(dist, DCAT.accessService, services[service])
            b.add(services[service], DCAT.servesDataset, ref)
    return ref


def _distribution(b: _Builder, dist: URIRef, fmt: str, url: URIRef, licence: URIRef,
                  title: str) -> None:
    code, label, media = FORMATS[fmt]
    b.add(dist, RDF.type, DCAT.Distribution)
    b.text(dist, DCTERMS.title, f"{title} ({label})")
    b.text(dist, DCTERMS.description, f"{title}, as {label}.")
    b.add(dist, DCAT.accessURL, url)
    b.add(dist, DCTERMS.format, b.term(f"{EU}file-type/{code}", label, "file-type",
                                       DCTERMS.MediaTypeOrExtent))
    b.add(dist, DCAT.mediaType, b.term(f"{IANA}{media}", media, None, DCTERMS.MediaType))
    b.add(dist, DCTERMS.license, licence)
    b.add(dist, DCATAP.availability, b.term(
        f"{EU}planned-availability/AVAILABLE", "available", "planned-availability"))


def _service(b: _Builder, key: str, title: str, description: str, endpoint: URIRef,
             themes: tuple[str, ...], keywords: tuple[str, ...], publisher: URIRef
             ) -> URIRef:
    ref = b.id(key)
    b.add(ref, RDF.type, DCAT.DataService)
    b.text(ref, DCTERMS.title, title)
    b.text(ref, DCTERMS.description, description)
    b.add(ref, DCAT.endpointURL, endpoint)
    b.add(ref, DCAT.endpointDescription, b.url("/openapi.json"))
    b.add(ref, DCTERMS.conformsTo, b.standard(key))
    b.add(ref, DCTERMS.publisher, publisher)
    for code in themes:
        b.add(ref, DCAT.theme, b.theme(code))
    for word in keywords:
        b.text(ref, DCAT.keyword, word)
    return ref


def _union(boxes: Sequence[tuple[float, float, float, float]]
           ) -> tuple[float, float, float, float] | None:
    if not boxes:
        return None
    return (min(x[0] for x in boxes), min(x[1] for x in boxes),
            max(x[2] for x in boxes), max(x[3] for x in boxes))


def catalogue(public_url: str, facts: Sequence[PilotFacts], publisher_name: str
              ) -> Graph:
    """The catalogue of these pilots' open datasets and the services that serve them."""
    b = _Builder(public_url)
    cat = URIRef(f"{b.base}{CATALOG_PATH}")
    publisher = _publisher(b, publisher_name)
    b.add(cat, RDF.type, DCAT.Catalog)
    b.text(cat, DCTERMS.title, f"{publisher_name}: open data of the Smart City pilots")
    b.text(cat, DCTERMS.description, (
        "The open interfaces of the Smart City pilots: per pilot, the device inventory (OGC "
        "API - Features), the environmental observations (OGC SensorThings API) and the "
        "use of its public services as aggregates with small counts suppressed."))
    b.add(cat, DCTERMS.publisher, publisher)
    b.add(cat, FOAF.homepage, b.url("/"))
    b.add(b.url("/"), RDF.type, FOAF.Document)
    b.add(cat, DCTERMS.language, b.term(f"{EU}language/ENG", "English", "language",
                                        DCTERMS.LinguisticSystem))
    b.add(cat, DCAT.themeTaxonomy, b.scheme("data-theme"))
    b.add(cat, DCTERMS.license, b.licence(METADATA_LICENCE))
    families = [(f, fam) for f in facts for fam in _families(b, f)]
    services = {"ogc": _service(
        b, "ogc", "Infrastructure inventory (OGC API - Features)",
        "The devices and gateways of the pilots as GeoJSON features (OGC API - Features "
        "Part 1: Core, GeoJSON), with paging, bbox and datetime filters.",
        b.url("/ogc"), ("REGI", "TECH"), ("OGC API - Features", "inventory", "GeoJSON"),
        publisher)}
    if any(d[3] == "sta" for _, fam in families for d in fam.distributions):
        services["sta"] = _service(
            b, "sta", "Observations (OGC SensorThings API 1.1)",
            "The pilots' sensors, their datastreams with units of measurement and their "
            "observations, and the suppressed daily counts of service use, read-only (OGC "
            "SensorThings API 1.1).",
            b.url(STA_PATH), ("ENVI", "REGI"), ("SensorThings", "observations"), publisher)
    for ref in services.values():
        b.add(cat, DCAT.service, ref)
    boxes = [f.bbox for f in facts if f.bbox is not None]
    if (box := _union(boxes)) is not None:
        b.add(cat, DCTERMS.spatial, b.location(box, "catalog-place"))
    contacts = {f.pilot.id: _contact(b, f.pilot) for f in facts}
    ends = []
    for f, fam in families:
        b.add(cat, DCAT.dataset, _dataset(b, f, fam, publisher, contacts[f.pilot.id],
                                          services))
        ends += [fam.span.end_ns] if fam.span and fam.key != "usage" else []
    if ends:
        b.add(cat, DCTERMS.modified, _time(max(ends)))
    return b.g


def turtle(graph: Graph) -> str:
    return graph.serialize(format="turtle")


def jsonld(graph: Graph) -> str:
    return graph.serialize(format="json-ld", context=CONTEXT, indent=2)
