"""Password-file logins for the embedded broker's site listener: an amqtt auth plugin.

The file is Mosquitto's (`user:$7$...` lines, as `mosquitto_passwd` 2.0 writes them; read and
checked by `credentials.py`, which writes the gateways' password file the same way), re-read
at every CONNECT so that an edit counts without a restart. No username, an unknown one or a wrong
password: the CONNECT is refused. The agent's own subscriber logs in with a secret made for
the process (`own_user`, `own_password`), never written anywhere.

Loaded by amqtt from its dotted path (`broker.py`), so amqtt is imported only when a site
listener runs.
"""

from __future__ import annotations

import hmac
import logging
from dataclasses import dataclass
from pathlib import Path

from amqtt.plugins.base import BaseAuthPlugin
from amqtt.session import Session

from ingest.gateway.credentials import read_passwords, verify_hash

log = logging.getLogger(__name__)


class PasswordFileAuth(BaseAuthPlugin):  # type: ignore[misc]  # amqtt ships no types
    @dataclass
    class Config:
        password_file: str = ""
        own_user: str = ""
        own_password: str = ""

    async def authenticate(self, *, session: Session) -> bool:
        config: PasswordFileAuth.Config = self.config
        user, password = session.username or "", session.password or ""
        if not user:
            log.warning("site listener: anonymous client %s refused", session.client_id)
            return False
        if user == config.own_user:
            return hmac.compare_digest(password.encode(), config.own_password.encode())
        try:
            hashes = dict(read_passwords(Path(config.password_file)))
        except OSError as exc:
            log.error("site listener: password file unreadable (%s): every login refused", exc)
            return False
        if user in hashes and verify_hash(password, hashes[user]):
            return True
        log.warning("site listener: login of %r refused (unknown user or wrong password)", user)
        return False
