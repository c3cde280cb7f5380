"""`citypilot report evaluation` and `GET /api/v1/reports/evaluation` as a user meets them:
the file, progress on stderr, roles and pilot-limited keys, problem+json for bad requests."""

from __future__ import annotations

import io
from pathlib import Path

import openpyxl
import pytest
from pypdf import PdfReader

from api.kpis.periods import rfc3339
from tests.api.conftest import Live
from tests.api.test_cli import REGISTRY, env, run  # noqa: F401 (env is a fixture)
from tests.contract.test_kpis import BERLIN
from tests.reports.conftest import BASELINE
from tests.reports.conftest import PERIOD_QUERY as PERIOD


def test_cli_writes_each_format_with_progress(env: dict[str, str],  # noqa: F811
                                              tmp_path: Path) -> None:
    (tmp_path / "registry.yaml").write_text(REGISTRY)
    run(env, "registry", "load", str(tmp_path / "registry.yaml"))
    html = tmp_path / "r.html"
    code, _, err = run(env, "report", "evaluation", "--pilot", "p1", "--period",
                       "2024-01-15/2024-01-22", "--baseline", "2024-01-01/2024-01-08",
                       "--format", "html", "--out", str(html))
    assert code == 0, err
    assert "period: availability" in err and "baseline: usage_events" in err
    assert f"wrote {html}" in err and "With and without the pilot" in html.read_text()
    pdf = tmp_path / "r.pdf"
    code, _, err = run(env, "report", "evaluation", "--pilot", "p1", "--period",
                       "2024-01-15/2024-01-22", "--lang", "it", "--out", str(pdf))
    assert code == 0, err
    assert PdfReader(pdf).trailer["/Root"]["/Lang"] == "it"
    code, _, err = run(env, "report", "evaluation", "--pilot", "p1", "--period",
                       "2024-01-15/2024-01-22", "--format", "xlsx", "--out",
                       str(tmp_path / "r.xlsx"))
    assert code == 0 and "with_and_without" in openpyxl.load_workbook(
        tmp_path / "r.xlsx").sheetnames
    for args, message in ((("--period", "2024-01-22/2024-01-15"), "after the start"),
                          (("--period", "2024-01-15"), "START/END"),
                          (("--period", "2024-01-15/2024-01-22", "--lang", "de"), "--lang"),
                          (("--period", "2024-01-15/2024-01-22", "--format", "doc"),
                           "--format"),
                          (("--period", "2020-01-01/2024-01-22"), "longer than")):
        code, _, err = run(env, "report", "evaluation", "--pilot", "p1", *args)
        assert code == 2 and message in err, (args, err)
    code, _, err = run(env, "report", "evaluation", "--pilot", "nobody", "--period",
                       "2024-01-15/2024-01-22")
    assert code == 2 and "no pilot 'nobody'" in err


async def test_http_serves_each_format_to_viewers(live: Live) -> None:
    base = {"baseline_start": rfc3339(BASELINE[0], BERLIN),
            "baseline_end": rfc3339(BASELINE[1], BERLIN)}
    html = await live.get("/api/v1/reports/evaluation", "viewer", **PERIOD, **base)
    assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")
    assert "official station DEBE010" in html.text and html.headers["content-language"] == "en"
    xlsx = await live.get("/api/v1/reports/evaluation", "viewer", **PERIOD, format="xlsx")
    assert "summary" in openpyxl.load_workbook(io.BytesIO(xlsx.content)).sheetnames
    pdf = await live.get("/api/v1/reports/evaluation", "operator", **PERIOD, format="pdf",
                         lang="it")
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert PdfReader(io.BytesIO(pdf.content)).trailer["/Root"]["/Lang"] == "it"
    assert 'filename="citypilot-evaluation-p1-20240115-20240122.pdf"' in \
        pdf.headers["content-disposition"]


@pytest.mark.parametrize(("who", "params", "status", "field"), [
    (None, PERIOD, 401, None),
    ("viewer_p2", PERIOD, 403, None),
    ("viewer", {**PERIOD, "pilot": "nobody"}, 404, None),
    ("viewer", {**PERIOD, "end": PERIOD["start"]}, 422, "query.end"),
    ("viewer", {**PERIOD, "baseline_start": PERIOD["start"]}, 422, "query.baseline_end"),
    ("viewer", {**PERIOD, "baseline_start": PERIOD["end"], "baseline_end": PERIOD["start"]},
     422, "query.baseline_start"),
    ("viewer", {**PERIOD, "lang": "de"}, 422, "query.lang"),
    ("viewer", {**PERIOD, "format": "doc"}, 422, "query.format"),
    ("viewer", {**PERIOD, "start": "2020-01-01T00:00:00Z"}, 422, "query.start"),
])
async def test_bad_report_requests_are_problems(live: Live, who: str | None,
                                                params: dict[str, str], status: int,
                                                field: str | None) -> None:
    answer = await live.get("/api/v1/reports/evaluation", who, **params)
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    if field:
        assert field in [e["field"] for e in answer.json()["errors"]]
