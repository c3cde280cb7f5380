"""The catalogue: registry files in TOML and YAML, API keys hashed, checked, revoked, expired."""

from __future__ import annotations

import sqlite3
from datetime import date
from pathlib import Path

import pytest

from api.catalog import (
    Catalog,
    CatalogError,
    KeyState,
    OpenData,
    Pilot,
    RegistryError,
    Role,
    parse_registry,
    split_key,
)

TOML = """
[[pilots]]
id = "aveiro"
name = "Aveiro"
population = 80000
timezone = "Europe/Lisbon"
lighting_baseline_kwh_per_day = 120.5

[[pilots.services]]
id = "parking"
capacity = 120

[[pilots.devices]]
id = "aq-1"
gateway = "gw1"
kind = "air_quality"
location = "Praça do Peixe"
lat = 40.64
lon = -8.65
interval_s = 300
installed = 2024-03-01
operator = "Aveiro Municipality"
network = "LoRaWAN"
manufacturer = "Libelium"
model = "Smart Environment PRO"

[pilots.open]
open_data = true
open_kinds = ["air_quality", "noise"]
contact_email = "opendata@cm-aveiro.example"
"""

YAML = """
pilots:
  - id: tartu
    timezone: Europe/Tallinn
    gateways: [{id: gw9, name: Town hall}]
    devices:
      - {id: pk1, gateway: gw9, kind: parking, capacity: 40, interval_s: 600,
         installed: 2024-05-02}
    open: {open_kinds: [parking], open_min_users: 5, licence: CC0-1.0}
"""


@pytest.fixture
def catalog(tmp_path: Path) -> Catalog:
    return Catalog(f"sqlite:///{tmp_path / 'sub' / 'catalog.db'}")


def test_registry_from_toml_and_yaml(catalog: Catalog) -> None:
    assert catalog.load(parse_registry(TOML, ".toml")) == ["aveiro"]
    assert catalog.load(parse_registry(YAML, ".yaml")) == ["tartu"]
    aveiro, tartu = catalog.pilots()
    assert aveiro.population == 80000 and aveiro.services[0].capacity == 120
    assert [g.id for g in aveiro.gateways] == ["gw1"]  # declared by its device
    assert tartu.gateways[0].name == "Town hall" and tartu.devices[0].capacity == 40
    assert aveiro.devices[0].installed == date(2024, 3, 1)
    assert tartu.devices[0].installed == date(2024, 5, 2)
    device = aveiro.devices[0]
    assert (device.operator, device.network, device.manufacturer, device.model) == (
        "Aveiro Municipality", "LoRaWAN", "Libelium", "Smart Environment PRO")
    # The open-data table: defaults where it is silent; open only when it says so.
    assert aveiro.published == OpenData(open_data=True, open_kinds=("air_quality", "noise"),
                                        contact_email="opendata@cm-aveiro.example")
    assert (aveiro.published.open_min_users, aveiro.published.licence) == (10, "CC-BY-4.0")
    assert not tartu.published.open_data and tartu.published.open_min_users == 5
    assert tartu.published.licence == "CC0-1.0"
    assert not Pilot(id="x").published.open_data  # nothing is public by default
    # Loading a pilot again replaces it, other pilots stay.
    catalog.load(parse_registry('[[pilots]]\nid = "aveiro"\n', ".toml"))
    assert catalog.pilot("aveiro") is not None and catalog.pilot("aveiro").devices == ()  # type: ignore[union-attr]
    assert catalog.delete_pilot("tartu") and not catalog.delete_pilot("tartu")
    assert [p.id for p in catalog.pilots()] == ["aveiro"]


@pytest.mark.parametrize(("text", "suffix", "message"), [
    ('[[pilots]]\nid = "a b"\n', ".toml", "pilots.0.id"),
    ('[[pilots]]\nid = "a"\ntimezone = "Mars/Base"\n', ".toml",
     "'Mars/Base' is not an IANA time zone"),
    ('[[pilots]]\nid = "a"\ncolour = "red"\n', ".toml", "pilots.0.colour"),
    ("pilots: [{id: a, devices: [{id: d, gateway: g, interval_s: -1}]}]", ".yaml",
     "interval_s"),
    ("pilots: [{id: a, devices: [{id: d, gateway: g}, {id: d, gateway: g}]}]", ".yml",
     "listed twice"),
    ('[[pilots]]\nid = "a"\n[[pilots.devices]]\nid = "d"\ngateway = "g"\ninstalled = "soon"\n',
     ".toml", "pilots.0.devices.0.installed"),
    ('[[pilots]]\nid = "a"\n[pilots.open]\nopen_min_users = 4\n', ".toml",
     "pilots.0.open.open_min_users: open_min_users is 4: it must be at least 5"),
    ("pilots: [{id: a, open: {open_data: true, open_kinds: [event]}}]", ".yaml",
     "open_kinds lists 'event': only telemetry kinds"),
    ("pilots: [{id: a, open: {contact_email: nobody}}]", ".yaml",
     "pilots.0.open.contact_email"),
    ("pilots: [{id: a, open: {public: true}}]", ".yaml", "pilots.0.open.public"),
    ("pilots = [", ".toml", "not valid TOML"),
    ("pilots: [", ".yaml", "not valid YAML"),
])
def test_bad_registry_names_the_entry(text: str, suffix: str, message: str) -> None:
    with pytest.raises(RegistryError, match=message):
        parse_registry(text, suffix)


def test_keys_are_stored_hashed_and_verified(catalog: Catalog) -> None:
    record, key = catalog.create_key("city of X", Role.VIEWER, pilots=frozenset({"aveiro"}))
    assert key.startswith("cpk_") and split_key(key)[0] == record.id
    rows = sqlite3.connect(catalog.path).execute("SELECT * FROM api_keys").fetchall()
    assert key.split("_", 2)[2] not in repr(rows)  # the secret is nowhere in the file
    assert catalog.verify(key) == record and catalog.verify(key) == record  # cached path
    assert catalog.verify(key[:-1] + ("A" if key[-1] != "A" else "B")) is None
    assert catalog.verify("cpk_000000000000_x") is None and catalog.verify("Bearer") is None
    assert record.may_read("aveiro") and not record.may_read("tartu")
    other = Catalog(f"sqlite:///{catalog.path}")  # another process: the same answer
    assert other.verify(key) == record


def test_revoke_and_expiry_take_effect_at_once(catalog: Catalog) -> None:
    record, key = catalog.create_key("ops", Role.OPERATOR, expires_ns=2_000, now_ns=1_000)
    assert record.state(1_999) is KeyState.ACTIVE and record.state(2_000) is KeyState.EXPIRED
    other = Catalog(f"sqlite:///{catalog.path}")
    assert other.verify(key) is not None  # verified and cached in the other process
    assert catalog.revoke(record.id) and not catalog.revoke(record.id)
    checked = other.verify(key)
    assert checked is not None and checked.state(1_500) is KeyState.REVOKED
    assert [k.id for k in catalog.keys()] == [record.id]


def test_roles_rank() -> None:
    assert Role.ADMIN.allows(Role.OPERATOR) and Role.OPERATOR.allows(Role.VIEWER)
    assert not Role.VIEWER.allows(Role.OPERATOR)


def test_catalog_url_must_be_sqlite(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="sqlite:///"):
        Catalog("influxdb://h:8086/catalog")
    (tmp_path / "file").write_text("x")
    with pytest.raises(CatalogError, match="cannot open"):
        Catalog(f"sqlite:///{tmp_path / 'file' / 'catalog.db'}")
