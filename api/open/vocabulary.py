"""The controlled terms the DCAT-AP catalogue (`dcat.py`) uses, and the licences it knows.

EU Publications Office authority tables (data theme, file type, access right, language,
planned availability), ADMS licence types, IANA media types and the OGC standards the data
services conform to: the URIs with the English labels those vocabularies give them. A
registry licence is an SPDX id or a URL; the SPDX ids listed map to their canonical URIs
and licence types, any other id to its SPDX licence-list URI.
"""

from __future__ import annotations

from urllib.parse import quote

from rdflib import Namespace, URIRef
from rdflib.namespace import DCAT, DCTERMS, FOAF, SKOS, XSD

GSP = Namespace("http://www.opengis.net/ont/geosparql#")
DCATAP = Namespace("http://data.europa.eu/r5r/")
VCARD = Namespace("http://www.w3.org/2006/vcard/ns#")
EU = "http://publications.europa.eu/resource/authority/"
IANA = "https://www.iana.org/assignments/media-types/"
ADMS_LICENCE = "http://purl.org/adms/licencetype/"
# (scheme URI, scheme title) of each controlled vocabulary used.
SCHEMES = {
    "data-theme": (f"{EU}data-theme", "Data theme"),
    "file-type": (f"{EU}file-type", "File type"),
    "access-right": (f"{EU}access-right", "Access right"),
    "language": (f"{EU}language", "Language"),
    "planned-availability": (f"{EU}planned-availability", "Planned availability"),
    "licencetype": (f"{ADMS_LICENCE}1.0", "Licence type"),
}
THEMES = {"REGI": "Regions and cities", "ENVI": "Environment",
          "GOVE": "Government and public sector", "TECH": "Science and technology"}
# file type, its label, IANA media type
FORMATS = {"geojson": ("GEOJSON", "GeoJSON", "application/geo+json"),
           "json": ("JSON", "JSON", "application/json"),
           "csv": ("CSV", "CSV", "text/csv")}
# SPDX id: (licence URI, ADMS licence types)
LICENCES = {
    "CC-BY-4.0": ("http://creativecommons.org/licenses/by/4.0/", ("Attribution",)),
    "CC-BY-SA-4.0": ("http://creativecommons.org/licenses/by-sa/4.0/",
                     ("Attribution", "ShareAlike")),
    "CC0-1.0": ("http://creativecommons.org/publicdomain/zero/1.0/", ("PublicDomain",)),
    "ODbL-1.0": ("http://opendatacommons.org/licenses/odbl/1-0/",
                 ("Attribution", "ShareAlike")),
    "DL-DE-BY-2.0": ("https://www.govdata.de/dl-de/by-2-0", ("Attribution",)),
}
LICENCE_TYPES = {"Attribution": "Attribution", "ShareAlike": "Share-alike",
                 "PublicDomain": "Public domain"}
METADATA_LICENCE = "CC0-1.0"  # the catalogue's own records: portals may republish them
STANDARDS = {
    "ogc": ("http://www.opengis.net/spec/ogcapi-features-1/1.0",
            "OGC API - Features - Part 1: Core"),
    "sta": ("http://www.opengis.net/spec/iot_sensing/1.1",
            "OGC SensorThings API Part 1: Sensing, version 1.1"),
}
CONTEXT = {"dcat": str(DCAT), "dct": str(DCTERMS), "foaf": str(FOAF), "skos": str(SKOS),
           "vcard": str(VCARD), "xsd": str(XSD), "gsp": str(GSP), "dcatap": str(DCATAP)}


def licence_of(text: str) -> tuple[URIRef, tuple[str, ...]]:
    """The licence URI for an SPDX id or a URL, and its ADMS licence types (when known)."""
    if text in LICENCES:
        uri, types = LICENCES[text]
        return URIRef(uri), types
    if text.startswith(("http://", "https://")):
        return URIRef(quote(text, safe=":/?#[]@!$&'()*+,;=%~")), ()
    return URIRef(f"http://spdx.org/licenses/{quote(text, safe='')}"), ()
