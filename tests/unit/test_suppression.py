"""The suppression rules under hypothesis: no published cell or total has fewer than k
users, every cell below k is suppressed, published values are the true ones, and a
published total never sits over exactly one suppressed cell (its row minus the published
cells would be that cell)."""

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
def test_a_total_minus_its_published_cells_never_reveals_one_cell(
        table: Table, data: st.DataObject) -> None:
    _, cells, _, shown, shown_totals = suppressed(table, data)
    for service, total in shown_totals.items():
        if total.uses == FLAG:
            continue
        row = [key for key in shown if key[1] == service]
        hidden = [key for key in row if shown[key].uses == FLAG]
        # What an attacker learns: the total minus the published cells...
        published = sum(int(shown[key].uses) for key in row if shown[key].uses != FLAG)
        difference = int(total.uses) - published
        assert difference == sum(cells[key].uses for key in hidden)
        # ...is the sum of no cell or of two or more: never one suppressed cell's value.
        assert len(hidden) != 1


def test_the_rule_on_a_small_table() -> None:
    cells = {("d1", "s"): Count(40, 12), ("d2", "s"): Count(9, 3), ("d3", "s"): Count(30, 10)}
    shown, totals = suppress(cells, {"s": Count(79, 20)}, 10)
    # d2 is below k; d3 (the smaller of the others) is hidden too, so 79 - 40 is two days.
    assert [shown[(d, "s")].uses for d in ("d1", "d2", "d3")] == [40, FLAG, FLAG]
    assert totals["s"].uses == 79
