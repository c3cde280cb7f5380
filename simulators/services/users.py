"""Pseudonymous users of a public service, who come back the way real users do.

Each use is by a returning user with the service's repeat probability, otherwise by someone new.
A returning user is drawn from everyone the service has seen (a bounded memory of the most
recent `memory` users: who has not come back for a long time has moved away). So the share of
a period's users who had used the service before settles, after a few weeks of history, a
little below the repeat probability, whatever the volume: about 0.25 for a kiosk used by
visitors, about 0.75 for EV chargers with their regulars. Ids are stable hashes of (seed,
pilot, service, index): pseudonymous, derived from nothing personal, the same for a seed.
"""

from __future__ import annotations

import hashlib
import random


class UserPool:
    """The users of one service in one pilot."""

    def __init__(self, salt: str, rng: random.Random, returning: float,
                 memory: int = 10_000) -> None:
        self._salt, self._rng, self.returning = salt, rng, returning
        self._known: list[str] = []
        self._memory, self._oldest = memory, 0
        self.created = 0

    def pick(self) -> str:
        """The user of the next use."""
        rng, known = self._rng, self._known
        if known and rng.random() < self.returning:
            return known[rng.randrange(len(known))]
        self.created += 1
        digest = hashlib.blake2b(f"{self._salt}:{self.created}".encode(), digest_size=8)
        user = "u" + digest.hexdigest()
        if len(known) < self._memory:
            known.append(user)
        else:
            known[self._oldest] = user
            self._oldest = (self._oldest + 1) % self._memory
        return user
