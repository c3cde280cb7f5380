"""deploy/kubernetes/, checked statically (no cluster in CI): every document validates against
the vendored Kubernetes v1.30 schemas (strict: a misspelt field fails), and what a schema
cannot say: the client id comes from the pod name, each collector owns a spool volume, the
probes hit /healthz and /readyz, the API runs one replica with its catalogue volume."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from citypilot.settings import ENV_PREFIX, Settings, SettingsError, load, refuse_shipped_secrets

ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = sorted((ROOT / "deploy" / "kubernetes").glob("*.yaml"))


@cache
def schema() -> dict[str, Any]:
    return json.loads((ROOT / "tests/data/schemas/kubernetes-v1.30-strict.json").read_text())  # type: ignore[no-any-return]


def documents() -> list[dict[str, Any]]:
    return [d for f in MANIFESTS for d in yaml.safe_load_all(f.read_text()) if d]


def one(kind: str, name: str) -> dict[str, Any]:
    (doc,) = [d for d in documents() if d["kind"] == kind and d["metadata"]["name"] == name]
    return doc


@pytest.mark.parametrize("doc", documents(), ids=lambda d: f"{d['kind']}/{d['metadata']['name']}")
def test_manifest_validates_against_the_kubernetes_schema(doc: dict[str, Any]) -> None:
    root = {**schema(), "$ref": f"#/$defs/kind.{doc['kind']}"}
    assert f"kind.{doc['kind']}" in schema()["$defs"], f"no schema vendored for {doc['kind']}"
    jsonschema.validate(doc, root, cls=jsonschema.Draft202012Validator)


def test_the_schema_is_strict_enough_to_catch_a_typo() -> None:
    doc = one("StatefulSet", "citypilot-collector")
    bad = json.loads(json.dumps(doc))
    bad["spec"]["template"]["spec"]["containers"][0]["livenesProbe"] = {}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, {**schema(), "$ref": "#/$defs/kind.StatefulSet"},
                            cls=jsonschema.Draft202012Validator)


def test_collectors_have_own_identity_spool_and_probes() -> None:
    sts = one("StatefulSet", "citypilot-collector")["spec"]
    (container,) = sts["template"]["spec"]["containers"]
    assert container["args"] == ["collect"]
    client_id = {e["name"]: e for e in container["env"]}["CITYPILOT_MQTT_CLIENT_ID"]
    assert client_id["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    assert [t["metadata"]["name"] for t in sts["volumeClaimTemplates"]] == ["spool"]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    config = one("ConfigMap", "citypilot")["data"]
    assert mounts["spool"] == config["CITYPILOT_SPOOL_DIR"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    port = {p["name"]: p["containerPort"] for p in container["ports"]}["metrics"]
    assert str(port) == config["CITYPILOT_METRICS_PORT"]
    assert config["CITYPILOT_MQTT_SHARE_GROUP"]


def test_api_is_one_replica_with_its_catalogue_volume() -> None:
    dep = one("Deployment", "citypilot-api")["spec"]
    assert dep["replicas"] == 1 and dep["strategy"]["type"] == "Recreate"
    claim = {v["name"]: v for v in dep["template"]["spec"]["volumes"]}["catalog"]
    pvc = one("PersistentVolumeClaim", claim["persistentVolumeClaim"]["claimName"])
    assert pvc["spec"]["accessModes"] == ["ReadWriteOnce"]
    # The API and the rollup worker beside it (it reads the pilots' zones) share the volume.
    containers = {c["name"]: c for c in dep["template"]["spec"]["containers"]}
    assert sorted(containers) == ["api", "rollup"]
    assert containers["rollup"]["args"][0] == "rollup"
    catalog = load(None, catalog_url=one("ConfigMap", "citypilot")["data"][
        "CITYPILOT_CATALOG_URL"]).catalog_url
    for container in containers.values():
        mount = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}["catalog"]
        assert catalog.removeprefix("sqlite:///").startswith(mount + "/")


def test_every_citypilot_variable_is_a_setting_and_secrets_are_refused() -> None:
    fields = {f"{ENV_PREFIX}{n.upper()}" for n in Settings.model_fields}
    config = one("ConfigMap", "citypilot")["data"]
    secret = one("Secret", "citypilot")["stringData"]
    names = set(config) | {k for k in secret if k.startswith(ENV_PREFIX)}
    names |= {e["name"] for d in documents() if d["kind"] in ("StatefulSet", "Deployment")
              for c in d["spec"]["template"]["spec"]["containers"] for e in c.get("env", [])}
    assert names - fields == set()
    values = {k.removeprefix(ENV_PREFIX).lower(): v for k, v in {**config, **secret}.items()
              if k.startswith(ENV_PREFIX)}
    with pytest.raises(SettingsError, match="shipped default"):
        refuse_shipped_secrets(load(None, **values))
