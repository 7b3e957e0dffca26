"""Keyset pagination in SQL: the rows after the sort key of the last row a page returned.

A list sorted on (c1, c2, …) ending in a unique column continues with `after_key`, an
index range on both back ends, instead of skipping `OFFSET` rows; a page stays correct
while rows are added.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

__all__ = ["after_key"]


def after_key(columns: Sequence[sa.ColumnElement[Any]], values: Sequence[Any]) -> sa.ColumnElement:
    """`(c1, c2, …) > (v1, v2, …)` spelled out, since SQLite and PostgreSQL both take it so."""
    clauses = []
    for i, column in enumerate(columns):
        equal = [columns[j] == values[j] for j in range(i)]
        clauses.append(sa.and_(*equal, column > values[i]))
    return sa.or_(*clauses)
