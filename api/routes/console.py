"""The built-in console: its page at `/` and its static assets under `/console/`.

The console is plain HTML, CSS and JavaScript in `api/console/` (no build step, no CDN, so it
works without internet access) that reads only the public `/api/v1` routes and the OGC API
inventory (`/ogc`, for its device map, drawn without tiles) with the key the user enters.
These routes serve the files and need no key: they hold no data. The page gets a strict
Content-Security-Policy (scripts, styles and requests to this origin only), so a crafted
dead-letter payload shown in the console can never run as script.
"""

from __future__ import annotations

import re
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

from api.problems import Problem

router = APIRouter(include_in_schema=False)

CONSOLE_DIR = Path(__file__).resolve().parent.parent / "console"
_MEDIA_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml",
                ".txt": "text/plain; charset=utf-8"}
# One path segment, a known suffix: nothing outside CONSOLE_DIR can be named.
_ASSET = re.compile(r"[a-z][a-z0-9_-]{0,63}\.(html|js|css|svg|txt)")
_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
# no-cache: browsers revalidate (cheap, with ETag) so an upgrade never meets a stale script.
# (nosniff, no-referrer and DENY framing: on every answer, `api.guard`.)
_HEADERS = {"Cache-Control": "no-cache"}


def _file(name: str) -> FileResponse:
    path = CONSOLE_DIR / name
    if not _ASSET.fullmatch(name) or not path.is_file():
        raise Problem(404, f"no console file {name[:70]!r}")
    headers = dict(_HEADERS)
    if path.suffix == ".html":
        headers["Content-Security-Policy"] = _CSP
    return FileResponse(path, media_type=_MEDIA_TYPES[path.suffix], headers=headers)


@router.get("/")
async def page() -> FileResponse:
    """The console page (open: it holds no data; the user's key unlocks the API)."""
    return _file("index.html")


@router.get("/console/{name}")
async def asset(name: str) -> FileResponse:
    """A script, style sheet, icon or licence of the console."""
    return _file(name)
