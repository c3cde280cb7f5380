"""What the API does against hostile clients, in one place: rate limits per client address,
request size limits, and the security headers on every answer.

- `RateLimit`: a moving window of the `limits` library, in memory per API process, per
  client address; beyond it a 429 problem with `Retry-After`. The open interfaces count every
  request (`open_rate_limit`); API keys count failed authentications (`auth_failure_limit`),
  and an address that spent them gets the 429 before its next key is even checked (so
  guessing keys costs the guesser the window, and the API no scrypt hash per guess).
- `guard`, a middleware: a query string longer than MAX_QUERY_BYTES is a 414, a body longer
  than MAX_BODY_BYTES a 413, a body without a Content-Length a 411 (uvicorn then holds a
  body to its declared length); and every answer carries `X-Content-Type-Options: nosniff`,
  `Referrer-Policy: no-referrer` and `X-Frame-Options: DENY` (the console's page adds its
  Content-Security-Policy with `frame-ancestors 'none'`, `api/routes/console.py`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable

from fastapi import Request, Response
from limits import RateLimitItem, parse_many
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from api.problems import Problem, problem_response

MAX_QUERY_BYTES = 4096  # the longest query any route needs is a few hundred bytes
MAX_BODY_BYTES = 1 << 20  # a registry document of hundreds of pilots fits
SECURITY_HEADERS = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
                    "X-Frame-Options": "DENY"}


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


class RateLimit:
    """So many `rule` per client address (module doc); `what` names what is counted."""

    def __init__(self, rule: str, what: str) -> None:
        self.rules = parse_many(rule)
        self.what = what
        self.limiter = MovingWindowRateLimiter(MemoryStorage())

    def check(self, client: str) -> None:
        """Count one, and raise the 429 when it is one too many."""
        for rule in self.rules:
            if not self.limiter.hit(rule, self.what, client):
                self._refuse(rule, client)

    def refuse_when_spent(self, client: str) -> None:
        """Raise the 429 when the client has no hit left; count nothing."""
        for rule in self.rules:
            if not self.limiter.test(rule, self.what, client):
                self._refuse(rule, client)

    def count(self, client: str) -> None:
        for rule in self.rules:
            self.limiter.hit(rule, self.what, client)

    def _refuse(self, rule: RateLimitItem, client: str) -> None:
        reset, _ = self.limiter.get_window_stats(rule, self.what, client)
        wait = max(1, math.ceil(reset - time.time()))
        raise Problem(429, f"too many {self.what} from {client} (more than {rule}): retry "
                      f"in {wait} s",
                      headers={"Retry-After": str(wait)})


async def guard(request: Request, call_next: Callable[[Request], Awaitable[Response]]
                ) -> Response:
    """The size limits and the security headers (module doc), as an HTTP middleware."""
    response = _too_large(request) or await call_next(request)
    response.headers.update(SECURITY_HEADERS)
    return response


def _too_large(request: Request) -> Response | None:
    query = request.scope.get("query_string", b"")
    if len(query) > MAX_QUERY_BYTES:
        return problem_response(request, 414, f"the query string has {len(query)} bytes; "
                                f"the limit is {MAX_QUERY_BYTES}")
    length = request.headers.get("content-length")
    if length is None:
        if "transfer-encoding" in request.headers:
            return problem_response(request, 411, "send the body with a Content-Length "
                                    "(chunked bodies are not accepted)")
        return None
    if not length.isdigit() or int(length) > MAX_BODY_BYTES:
        return problem_response(request, 413, f"the body has {length} bytes; the limit is "
                                f"{MAX_BODY_BYTES}")
    return None
