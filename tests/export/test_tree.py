"""Public visibility when imported replies are older than their parents, point outside, or loop."""

from __future__ import annotations

import pytest

from comments.models import CommentStatus as S
from comments.threads import visible_ids

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(
    ("rows", "shown"),
    [
        ([(1, None, S.approved), (2, 1, S.approved), (3, 2, S.pending), (4, 3, S.approved)], {1, 2}),
        ([(5, 9, S.approved), (9, None, S.approved), (3, 5, S.approved)], {3, 5, 9}),  # child ids below parents
        ([(5, 9, S.approved), (9, None, S.spam), (3, 5, S.approved)], set()),
        ([(5, 6, S.approved), (6, 5, S.approved)], set()),  # a cycle shows nothing (and terminates)
        ([(5, 77, S.approved)], set()),  # parent outside the thread
    ],
)
def test_visible_ids_in_any_order(rows, shown) -> None:
    assert visible_ids(rows) == shown
    assert visible_ids(list(reversed(rows))) == shown
