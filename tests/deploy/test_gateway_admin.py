"""`citypilot gateway add|revoke|collector|ca` as an operator runs them: the password is
printed once on stdout (notes on stderr), the hash is the one `mosquitto_passwd` writes, the
files are replaced whole and keep their mode, and the shipped examples are what the code
writes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from api.catalog import Catalog, Registry
from citypilot.gateway_admin import admin_app
from ingest.gateway.credentials import (
    BASE_ACL,
    mosquitto_hash,
    read_passwords,
    verify_hash,
    with_section,
)
from tests.servers import ShippedMosquitto, find_binary

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "mosquitto"
root = typer.Typer()
root.add_typer(admin_app, name="gateway")


def run(*args: str, catalog: Path | None = None) -> tuple[int, str, str]:
    env = {"CITYPILOT_CATALOG_URL": f"sqlite:///{catalog}"} if catalog else {}
    result = CliRunner().invoke(root, ["gateway", *args], env=env)
    return result.exit_code, result.stdout, result.stderr


def files(tmp: Path) -> list[str]:
    return ["--password-file", str(tmp / "passwd"), "--acl-file", str(tmp / "acl")]


@pytest.fixture(autouse=True)
def _catalog_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`add` registers in the catalogue; never the working directory's."""
    monkeypatch.setenv("CITYPILOT_CATALOG_URL", f"sqlite:///{tmp_path / 'catalog.db'}")


def test_our_hash_and_mosquitto_passwd_agree(tmp_path: Path) -> None:
    pwfile = tmp_path / "passwd"
    subprocess.run([find_binary("mosquitto_passwd", "mosquitto"), "-c", "-b", str(pwfile),
                    "alice", "s3cret"], check=True)
    (user, theirs), = read_passwords(pwfile)
    assert user == "alice" and theirs.startswith("$7$101$")
    assert verify_hash("s3cret", theirs) and not verify_hash("s3creT", theirs)
    ours = mosquitto_hash("s3cret")
    assert ours.split("$")[:3] == theirs.split("$")[:3] and len(ours) == len(theirs)
    assert verify_hash("s3cret", ours)  # and the broker accepts ours: tests/deploy/conftest


def test_add_prints_the_password_once_and_writes_both_files(tmp_path: Path) -> None:
    code, out, err = run("add", "--pilot", "p1", "--gateway", "gw1", *files(tmp_path))
    assert code == 0, err
    password = out.strip()
    assert len(out.splitlines()) == 1 and len(password) >= 40
    assert "p1.gw1" in err and "SIGHUP" in err and password not in err
    (user, hashed), = read_passwords(tmp_path / "passwd")
    assert user == "p1.gw1" and verify_hash(password, hashed)
    assert (tmp_path / "acl").read_text() == with_section(BASE_ACL, "p1", "gw1")
    assert oct((tmp_path / "passwd").stat().st_mode & 0o777) == "0o640"
    code, _, err = run("add", "--pilot", "p1", "--gateway", "gw1", *files(tmp_path))
    assert code == 1 and "--rotate" in err


def test_same_gateway_id_under_two_pilots_is_two_identities(tmp_path: Path) -> None:
    for pilot in ("p1", "p2"):
        assert run("add", "--pilot", pilot, "--gateway", "gw1", *files(tmp_path))[0] == 0
    assert [u for u, _ in read_passwords(tmp_path / "passwd")] == ["p1.gw1", "p2.gw1"]
    assert (tmp_path / "acl").read_text() == (DEPLOY / "aclfile.example").read_text()


def test_add_registers_the_pilot_when_new_and_keeps_its_facts(tmp_path: Path) -> None:
    catalog = Catalog(f"sqlite:///{tmp_path / 'catalog.db'}")
    catalog.load(Registry.model_validate({"pilots": [
        {"id": "p1", "timezone": "Europe/Lisbon", "gateways": [{"id": "gw0"}]}]}))
    for pilot, gw in (("p1", "gw1"), ("p2", "gw1"), ("p2", "gw1")):
        code, _, err = run("add", "--pilot", pilot, "--gateway", gw, "--rotate",
                           *files(tmp_path))
        assert code == 0 and "catalogue:" in err
    assert "already registered" in err
    p1, p2 = catalog.pilot("p1"), catalog.pilot("p2")
    assert p1 is not None and p2 is not None
    assert p1.timezone == "Europe/Lisbon" and [g.id for g in p1.gateways] == ["gw0", "gw1"]
    assert [g.id for g in p2.gateways] == ["gw1"]
    catalog.close()


def test_revoke_removes_only_that_gateway_and_keeps_the_mode(tmp_path: Path) -> None:
    for pilot in ("p1", "p2"):
        run("add", "--pilot", pilot, "--gateway", "gw1", *files(tmp_path))
    os.chmod(tmp_path / "acl", 0o644)
    code, _, err = run("revoke", "--pilot", "p1", "--gateway", "gw1", *files(tmp_path))
    assert code == 0 and "SIGHUP" in err
    assert [u for u, _ in read_passwords(tmp_path / "passwd")] == ["p2.gw1"]
    assert (tmp_path / "acl").read_text() == with_section(BASE_ACL, "p2", "gw1")
    assert oct((tmp_path / "acl").stat().st_mode & 0o777) == "0o644"
    assert run("revoke", "--pilot", "p1", "--gateway", "gw1", *files(tmp_path))[0] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == [".passwd.lock", "acl", "catalog.db",
                                                          "passwd"]


def test_ids_outside_the_topic_grammar_are_refused(tmp_path: Path) -> None:
    code, out, err = run("add", "--pilot", "p1/x", "--gateway", "gw1", *files(tmp_path))
    assert code == 1 and out == "" and "does not match" in err
    assert run("add", "--pilot", "p.1", "--gateway", "gw1", *files(tmp_path))[0] == 1


def test_collector_password_from_stdin_in_its_own_file(tmp_path: Path) -> None:
    # An older version kept the account in the gateways' file: it is taken out of it.
    (tmp_path / "passwd").write_text(f"citypilot-collector:{mosquitto_hash('old')}\n")
    own = ["--collector-password-file", str(tmp_path / "collectors.passwd")]
    result = CliRunner().invoke(root, ["gateway", "collector", "--password-stdin",
                                       *files(tmp_path), *own], input="from-the-env-file\n")
    assert result.exit_code == 0 and result.stdout == ""
    (user, hashed), = read_passwords(tmp_path / "collectors.passwd")
    assert user == "citypilot-collector" and verify_hash("from-the-env-file", hashed)
    assert read_passwords(tmp_path / "passwd") == []
    assert (tmp_path / "acl").read_text() == BASE_ACL


def test_collector_writes_the_files_the_broker_needs_to_start(tmp_path: Path) -> None:
    own = ["--collector-password-file", str(tmp_path / "collectors.passwd")]
    code, out, _ = run("collector", *files(tmp_path), *own)
    assert code == 0 and verify_hash(out.strip(), read_passwords(
        tmp_path / "collectors.passwd")[0][1])
    assert (tmp_path / "passwd").read_text() == ""  # no gateway yet, but the file exists


def test_ca_writes_a_chain_openssl_verifies_and_refuses_to_overwrite(tmp_path: Path) -> None:
    code, out, err = run("ca", "--out", str(tmp_path), "--host", "broker.example.org")
    assert code == 0 and "test pilots only" in err
    assert [Path(p).name for p in out.split()] == ["ca.crt", "ca.key", "server.crt",
                                                   "server.key"]
    assert oct((tmp_path / "ca.key").stat().st_mode & 0o777) == "0o600"
    done = subprocess.run(["openssl", "verify", "-CAfile", str(tmp_path / "ca.crt"),
                           "-verify_hostname", "broker.example.org",
                           str(tmp_path / "server.crt")], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert run("ca", "--out", str(tmp_path))[0] == 1


def test_shipped_config_is_started_with_only_paths_and_ports_changed(tmp_path: Path) -> None:
    server = ShippedMosquitto(tmp_path, tmp_path / "auth", tmp_path / "certs")
    changed = {old.split()[0] for old, _ in server.rewritten}
    assert changed == {"password_file", "acl_file", "persistence_location", "cafile",
                       "certfile", "keyfile", "listener"}
    text = ShippedMosquitto.SHIPPED.read_text()
    for line in ("allow_anonymous false", "persistence true", "max_queued_messages 0",
                 "per_listener_settings true", "listener 1883 127.0.0.1", "listener 8883",
                 "listener 8884", "use_username_as_clientid true"):
        assert f"\n{line}\n" in text


def test_cli_entry_point_needs_no_web_stack() -> None:
    code = ("import sys, citypilot.gateway_admin; "
            "print(sorted(m for m in ('fastapi', 'uvicorn', 'starlette') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"
