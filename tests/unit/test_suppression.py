"""The suppression rules under hypothesis: no published cell or total has fewer than k
users, every cell below k is suppressed, published values are the true ones, a published
total sits only over published cells (its row minus the published cells reveals nothing),
and a cell reads the same whatever period is asked: so the answers for any set of periods
together never determine a suppressed cell."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from api.open.suppression import FLAG, Count, Published, suppress

DAYS = [f"2024-01-{d:02d}" for d in range(1, 8)]
SERVICES = ["parking", "kiosk", "bikes"]


@st.composite
def tables(draw: st.DrawFn) -> tuple[dict[tuple[str, str], set[int]], int]:
    """Per (day, service) the set of its users (from a small pool, so rows share users)."""
    k = draw(st.integers(5, 12))
    keys = draw(st.sets(st.tuples(st.sampled_from(DAYS), st.sampled_from(SERVICES)),
                        min_size=1, max_size=15))
    users = {key: draw(st.sets(st.integers(0, 40), min_size=1, max_size=25)) for key in keys}
    return users, k


def counts(users: dict[tuple[str, str], set[int]], uses: dict[tuple[str, str], int]
           ) -> tuple[dict[tuple[str, str], Count], dict[str, Count]]:
    cells = {key: Count(len(u) + uses[key], len(u)) for key, u in users.items()}
    totals: dict[str, Count] = {}
    for service in {s for _, s in users}:
        row = [key for key in users if key[1] == service]
        totals[service] = Count(sum(cells[key].uses for key in row),
                                len(set().union(*(users[key] for key in row))))
    return cells, totals


Table = tuple[dict[tuple[str, str], set[int]], int]


def suppressed(table: Table, data: st.DataObject) -> tuple[
        int, dict[tuple[str, str], Count], dict[str, Count],
        dict[tuple[str, str], Published], dict[str, Published]]:
    """k, the true cells and totals (uses: a use per user plus some), and what is shown."""
    users, k = table
    cells, totals = counts(users, {key: data.draw(st.integers(0, 30)) for key in users})
    return k, cells, totals, *suppress(cells, totals, k)


@settings(max_examples=400, deadline=None)
@given(tables(), st.data())
def test_no_published_figure_has_fewer_than_k_users(table: Table, data: st.DataObject
                                                    ) -> None:
    k, cells, totals, shown, shown_totals = suppressed(table, data)
    assert set(shown) == set(cells) and set(shown_totals) == set(totals)
    for key, published in shown.items():
        if cells[key].users < k:
            assert published.uses == FLAG and published.users == FLAG
        if published.users != FLAG:
            assert published.users >= k
            assert (published.uses, published.users) == (cells[key].uses, cells[key].users)
        assert (published.uses == FLAG) == (published.users == FLAG)
    for service, published in shown_totals.items():
        if published.users != FLAG:
            assert published.users >= k and published.uses == totals[service].uses


@settings(max_examples=400, deadline=None)
@given(tables(), st.data())
def test_a_total_minus_its_published_cells_reveals_nothing(
        table: Table, data: st.DataObject) -> None:
    _, cells, _, shown, shown_totals = suppressed(table, data)
    for service, total in shown_totals.items():
        if total.uses == FLAG:
            continue
        row = [key for key in shown if key[1] == service]
        # What an attacker learns, the total minus the published cells, is nothing hidden.
        assert all(shown[key].uses != FLAG for key in row)
        assert int(total.uses) == sum(int(shown[key].uses) for key in row) == sum(
            cells[key].uses for key in row)


@settings(max_examples=300, deadline=None)
@given(tables(), st.data())
def test_answers_for_any_periods_never_determine_a_suppressed_cell(
        table: Table, data: st.DataObject) -> None:
    """Ask for several periods (sets of days): each cell reads the same in every answer, and
    no published total covers a suppressed cell, so a suppressed cell is in no published
    sum: subtracting totals of overlapping periods cannot isolate it."""
    users, k = table
    uses = {key: data.draw(st.integers(0, 30)) for key in users}
    everything, _ = counts(users, uses)
    first: dict[tuple[str, str], Published] = {}
    for _ in range(data.draw(st.integers(2, 5))):
        days = data.draw(st.sets(st.sampled_from(DAYS), min_size=1))
        part = {key: u for key, u in users.items() if key[0] in days}
        if not part:
            continue
        cells, totals = counts(part, uses)
        shown, shown_totals = suppress(cells, totals, k)
        for key, published in shown.items():
            assert first.setdefault(key, published) == published  # the same in every answer
        for service, total in shown_totals.items():
            if total.uses != FLAG:
                covered = [key for key in cells if key[1] == service]
                assert all(everything[key].users >= k for key in covered)


def test_the_rule_on_a_small_table() -> None:
    cells = {("d1", "s"): Count(40, 12), ("d2", "s"): Count(9, 3), ("d3", "s"): Count(30, 10)}
    shown, totals = suppress(cells, {"s": Count(79, 20), "t": Count(5, 5)}, 10)
    # d2 is below k: it reads c, and so does the total it is part of (79 - 70 would be d2).
    assert [shown[(d, "s")].uses for d in ("d1", "d2", "d3")] == [40, FLAG, 30]
    assert totals["s"] == Published(FLAG, FLAG) and totals["t"] == Published(FLAG, FLAG)
    full, full_totals = suppress({("d1", "s"): Count(40, 12)}, {"s": Count(40, 12)}, 10)
    assert full[("d1", "s")].uses == 40 and full_totals["s"] == Published(40, 12)
