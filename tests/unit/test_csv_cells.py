"""CSV export cells (#15 item 12): every cell a spreadsheet would run as a formula is
neutralised by OWASP's rule (a single quote first, the cell quoted), and every other
cell is written exactly as the csv module writes it."""

from __future__ import annotations

import csv
import io
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from engine.projections.audit.export import csv_line, runs_as_formula

# OWASP's CSV injection rule, and ASVS 1.2.10's NUL: what a cell may not start with.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\0")

# Text that often starts like a formula or holds what CSV must quote.
tricky = st.text(alphabet=st.sampled_from(list('=+-@\t\r\n\0",; a1(')), max_size=8)
cell_text = st.one_of(
    st.text(max_size=12),
    tricky,
    st.builds(lambda c, rest: c + rest, st.sampled_from(FORMULA_START), st.text(max_size=12)),
)
cells = st.one_of(cell_text, st.none(), st.integers(-(10**6), 10**6))
rows = st.lists(cells, min_size=1, max_size=13)


def plain(values: list[Any]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerow(values)
    return out.getvalue()


def read(line: str) -> list[str]:
    (row,) = list(csv.reader(io.StringIO(line, newline="")))
    return row


def as_text(value: Any) -> str:
    return "" if value is None else str(value)


@given(rows)
def test_formula_cells_read_as_text_and_the_others_are_unchanged(values: list[Any]) -> None:
    line = csv_line(values)
    assert line.endswith("\r\n")
    parsed = read(line)
    assert len(parsed) == len(values)
    for value, cell in zip(values, parsed, strict=True):
        text = as_text(value)
        if text.startswith(FORMULA_START):
            # Neutralised: a spreadsheet shows the text, with a quote that marks it.
            assert cell == "'" + text
        else:
            assert cell == text
        assert not cell.startswith(FORMULA_START)


@given(rows)
def test_a_neutralised_cell_is_quoted_and_a_line_without_one_is_as_before(
    values: list[Any],
) -> None:
    line = csv_line(values)
    if not any(runs_as_formula(v) for v in values):
        assert line == plain(values)
        return
    # Cell by cell, the other cells keep their bytes; each formula cell is quoted.
    for value in values:
        if runs_as_formula(value):
            assert '"' + ("'" + as_text(value)).replace('"', '""') + '"' in line
        else:
            assert plain([value, ""])[:-3] in line


def test_the_rule_is_owasps() -> None:
    for start in ("=", "+", "-", "@", "\t", "\r"):
        assert runs_as_formula(start + "1+1")
        assert csv_line([start + "SUM(A1)", "x"]) == f'"\'{start}SUM(A1)",x\r\n'
    for harmless in ("", "1+1", " =1", "a=b", "'=1", "{}", "[]"):
        assert not runs_as_formula(harmless)
    assert csv_line([-5, 7]) == '"\'-5",7\r\n'
