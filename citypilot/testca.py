"""A self-signed CA and a broker certificate for test pilots (`citypilot gateway ca`).

Made with the `openssl` command (present wherever Mosquitto is; no Python crypto package
needed): an EC P-256 CA, and a server certificate signed by it naming the broker's DNS names
and IP addresses. Not for production: a real deployment uses certificates from the city's PKI
or a public CA, and keeps its CA key off the broker.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import tempfile
from pathlib import Path


class CaError(Exception):
    """openssl is missing or failed, or the files exist; the message says which."""


def _openssl(*args: str, cwd: Path) -> None:
    binary = shutil.which("openssl")
    if binary is None:
        raise CaError("openssl not found: install it (`apt-get install openssl`)")
    done = subprocess.run([binary, *args], cwd=cwd, capture_output=True, text=True,
                          check=False)
    if done.returncode != 0:
        raise CaError(f"openssl {args[0]} failed: {done.stderr.strip()}")


def make_ca(out: Path, hosts: list[str], *, days: int = 825, force: bool = False
            ) -> list[Path]:
    """A self-signed CA (ca.crt, ca.key) and a server certificate signed by it (server.crt,
    server.key) naming `hosts` (DNS names or IP addresses). Test pilots only."""
    names = {n: out / n for n in ("ca.crt", "ca.key", "server.crt", "server.key")}
    clash = [p for p in names.values() if p.exists()]
    if clash and not force:
        raise CaError(f"{clash[0]} exists; `--force` replaces the CA and certificate")
    out.mkdir(parents=True, exist_ok=True)
    san = ",".join(f"IP:{h}" if h.replace(".", "").isdigit() or ":" in h else f"DNS:{h}"
                   for h in hosts)
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    with tempfile.TemporaryDirectory(dir=out) as tmp:
        work = Path(tmp)
        _openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt", "-days",
                 str(days), "-subj", "/O=citypilot/CN=citypilot test CA (not for production)",
                 "-addext", "basicConstraints=critical,CA:TRUE",
                 "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=work)
        _openssl("req", *ec, "-keyout", "server.key", "-out", "server.csr",
                 "-subj", f"/O=citypilot/CN={hosts[0]}", cwd=work)
        (work / "server.ext").write_text(
            "basicConstraints=critical,CA:FALSE\n"
            "keyUsage=critical,digitalSignature,keyEncipherment\n"
            "extendedKeyUsage=serverAuth\nsubjectKeyIdentifier=hash\n"
            f"authorityKeyIdentifier=keyid,issuer\nsubjectAltName={san}\n")
        _openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                 "-set_serial", f"0x{secrets.token_hex(16)}", "-days", str(days),
                 "-extfile", "server.ext", "-out", "server.crt", cwd=work)
        for name, path in names.items():
            mode = 0o600 if name == "ca.key" else 0o640 if name == "server.key" else 0o644
            os.chmod(work / name, mode)
            os.replace(work / name, path)
    return list(names.values())
