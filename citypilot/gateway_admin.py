"""`citypilot gateway add|revoke|collector|ca`: gateway credentials on a Mosquitto broker.

The file editing is `ingest.gateway.credentials`; this module reads the settings, registers a
new gateway in the catalogue and talks to the operator. `ca` (citypilot/testca.py) makes a
self-signed CA and a server certificate: test pilots only.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import orjson
import typer

from citypilot.settings import Settings, SettingsError, load
from citypilot.testca import CaError, make_ca
from ingest.gateway.credentials import (
    COLLECTOR_USER,
    GatewayError,
    add_gateway,
    new_password,
    revoke_gateway,
    set_collector,
)
from ingest.topics import PREFIX


def register(catalog_url: str, pilot: str, gateway: str) -> str:
    """Put the gateway (and its pilot, when new) in the catalogue; says what it did. The
    registry's other facts (timezone, devices, ...) are kept: `citypilot registry load`
    fills them in."""
    # The catalogue is the API's: loaded only by `add`, never by the agent.
    from api.catalog import Catalog, CatalogError, Gateway, Pilot, Registry

    try:
        catalog = Catalog(catalog_url)
        try:
            known = catalog.pilot(pilot)
            entry = Gateway.model_validate({"id": gateway})
            if known is None:
                new = Pilot.model_validate({"id": pilot, "gateways": [entry]})
                done = f"new pilot {pilot} registered with gateway {gateway}"
            elif any(g.id == gateway for g in known.gateways):
                return f"gateway {pilot}/{gateway} was already registered"
            else:
                new = known.model_copy(update={"gateways": (*known.gateways, entry)})
                done = f"gateway {gateway} registered in pilot {pilot}"
            catalog.load(Registry.model_validate({"pilots": [new]}))
            return done
        finally:
            catalog.close()
    except CatalogError as exc:
        raise GatewayError(str(exc)) from None


# -- command line ----------------------------------------------------------------------------
admin_app = typer.Typer(add_completion=False, help="The gateway agent (`citypilot gateway "
                        "--pilot P --gateway G --upstream URL`) and gateway credentials on the "
                        "Mosquitto broker (`add`, `revoke`, `collector`, `ca`).")

ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="TOML config file "
                                                "(or CITYPILOT_CONFIG)")]
PasswordFileOpt = Annotated[Path | None, typer.Option(
    "--password-file", help="the gateways' Mosquitto password file "
    "[CITYPILOT_MOSQUITTO_PASSWORD_FILE]")]
AclFileOpt = Annotated[Path | None, typer.Option(
    "--acl-file", help="Mosquitto ACL file [CITYPILOT_MOSQUITTO_ACL_FILE]")]
PilotOpt = Annotated[str, typer.Option("--pilot", help="pilot id")]
GatewayOpt = Annotated[str, typer.Option("--gateway", help="gateway id, unique per pilot")]
RELOAD = ("reload the broker so it reads the change (SIGHUP): `docker compose kill -s HUP "
          "mosquitto`, or `systemctl reload mosquitto` on a Debian host")


def _files(config: Path | None, password_file: Path | None, acl_file: Path | None
           ) -> tuple[Path, Path, Settings]:
    try:
        s = load(config)
    except SettingsError as exc:
        typer.echo(f"citypilot: configuration error: {exc}", err=True)
        raise typer.Exit(2) from None
    return password_file or s.mosquitto_password_file, acl_file or s.mosquitto_acl_file, s


def _fail(exc: Exception) -> typer.Exit:
    typer.echo(f"citypilot: {exc}", err=True)
    return typer.Exit(1)


@admin_app.command("add")
def add(pilot: PilotOpt, gateway: GatewayOpt, password_file: PasswordFileOpt = None,
        acl_file: AclFileOpt = None, config: ConfigOpt = None,
        rotate: Annotated[bool, typer.Option(help="give an existing gateway a new "
                                             "password")] = False,
        as_json: Annotated[bool, typer.Option("--json", help="print "
                                              "{username, password, ...} as JSON")] = False,
        ) -> None:
    """Create a gateway's MQTT credentials and ACL section; print the password once."""
    pw_file, acl, s = _files(config, password_file, acl_file)
    try:
        user, password = add_gateway(pw_file, acl, pilot, gateway, rotate=rotate)
    except (GatewayError, OSError) as exc:
        raise _fail(exc) from None
    try:
        typer.echo(f"catalogue: {register(s.catalog_url, pilot, gateway)}", err=True)
    except GatewayError as exc:  # the credentials exist: say what is left to do
        typer.echo(f"citypilot: gateway created but not registered in the catalogue ({exc});"
                   " add it with `citypilot registry load`", err=True)
    if as_json:
        sys.stdout.write(orjson.dumps({"pilot": pilot, "gateway": gateway, "username": user,
                                       "password": password}).decode() + "\n")
    else:
        sys.stdout.write(password + "\n")
    typer.echo(f"gateway {pilot}/{gateway}: MQTT username {user!r}; the password above is "
               "shown only now (store it on the gateway). It may publish below "
               f"{PREFIX}/{pilot}/{gateway}/ only. Files: {pw_file}, {acl}", err=True)
    typer.echo(RELOAD, err=True)


@admin_app.command("revoke")
def revoke(pilot: PilotOpt, gateway: GatewayOpt, password_file: PasswordFileOpt = None,
           acl_file: AclFileOpt = None, config: ConfigOpt = None) -> None:
    """Remove a gateway's credentials and ACL section."""
    pw_file, acl, _ = _files(config, password_file, acl_file)
    try:
        found = revoke_gateway(pw_file, acl, pilot, gateway)
    except (GatewayError, OSError) as exc:
        raise _fail(exc) from None
    if not found:
        typer.echo(f"citypilot: gateway {pilot}/{gateway} has no credentials", err=True)
        raise typer.Exit(1)
    typer.echo(f"gateway {pilot}/{gateway} revoked; new connections are refused once the "
               "broker has reloaded", err=True)
    typer.echo(RELOAD, err=True)


@admin_app.command("collector")
def collector(password_file: PasswordFileOpt = None, acl_file: AclFileOpt = None,
              config: ConfigOpt = None,
              collector_file: Annotated[Path | None, typer.Option(
                  "--collector-password-file", help="the collectors' Mosquitto password "
                  "file [CITYPILOT_MOSQUITTO_COLLECTOR_PASSWORD_FILE]")] = None,
              password_stdin: Annotated[bool, typer.Option(
                  "--password-stdin", help="read the password from stdin (e.g. the one in "
                  ".env) instead of making one")] = False) -> None:
    """Set the collectors' account (`citypilot-collector`) password in the collectors'
    password file; print a made one once. Writes the ACL and an empty gateways' password
    file when missing, and takes the account out of the gateways' file."""
    pw_file, acl, s = _files(config, password_file, acl_file)
    own = collector_file or s.mosquitto_collector_password_file
    password = sys.stdin.readline().strip() if password_stdin else new_password()
    if not password or ":" in password:
        raise _fail(GatewayError("the password must be one non-empty line without ':'"))
    try:
        set_collector(own, pw_file, acl, password)
    except (GatewayError, OSError) as exc:
        raise _fail(exc) from None
    if not password_stdin:
        sys.stdout.write(password + "\n")
    typer.echo(f"collector account {COLLECTOR_USER!r} set in {own}", err=True)
    typer.echo(RELOAD, err=True)


@admin_app.command("ca")
def ca(out: Annotated[Path, typer.Option("--out", help="directory for ca.crt, ca.key, "
                                         "server.crt, server.key")],
       host: Annotated[list[str] | None, typer.Option(
           "--host", help="a name or IP gateways use for the broker (repeat); default: "
           "localhost, mosquitto, 127.0.0.1")] = None,
       days: Annotated[int, typer.Option(min=1, max=3650, help="validity")] = 825,
       force: Annotated[bool, typer.Option(help="replace existing files")] = False) -> None:
    """A self-signed CA and broker certificate, FOR TEST PILOTS ONLY."""
    try:
        paths = make_ca(out, host or ["localhost", "mosquitto", "127.0.0.1"], days=days,
                        force=force)
    except (CaError, OSError) as exc:
        raise _fail(exc) from None
    for path in paths:
        sys.stdout.write(f"{path}\n")
    typer.echo("test pilots only: a self-signed CA. Give ca.crt to every gateway and "
               "collector (CITYPILOT_MQTT_CA_FILE); keep ca.key off the broker.", err=True)
