"""Every SQL difference between SQLite and PostgreSQL that a query needs, in one place.

Queries elsewhere use these constructs and never look at the dialect: each construct compiles
to the right SQL for the connection it runs on (SQLAlchemy ``@compiles``), and the few steps
that are more than one expression (percentiles, session tuning, advisory locks) are functions
that take the connection.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd
from sqlalchemy import (
    Connection,
    Date,
    DateTime,
    Float,
    Integer,
    Select,
    cast,
    func,
    literal_column,
    or_,
    select,
    text,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import InstrumentedAttribute
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import ColumnClause, ColumnElement, FunctionElement
from sqlalchemy.types import NullType

LIKE_ESCAPE = "\\"
ANALYTICS_WORK_MEM = "64MB"
"""PostgreSQL sort memory for large aggregates (percentiles sort every value)."""


# Constants are written into the SQL rather than bound: a grouped expression must read the same
# in SELECT and GROUP BY, and each compilation would otherwise bind a parameter of its own.
_UTC: ColumnClause[Any] = literal_column("'UTC'")
_HOUR: ColumnClause[Any] = literal_column("'hour'")
_HOUR_FORMAT: ColumnClause[Any] = literal_column("'%Y-%m-%d %H:00:00'")


def _is_postgres(connection: Connection) -> bool:
    return connection.dialect.name == "postgresql"


class utc_day(FunctionElement[Any]):
    """The UTC calendar day of a timestamp column."""

    type = Date()
    inherit_cache = True


@compiles(utc_day)
def _utc_day_sqlite(element: utc_day, compiler: SQLCompiler, **kw: Any) -> str:
    # SQLite stores UTC text: its date() is the UTC day.
    return compiler.process(func.date(*element.clauses), **kw)


@compiles(utc_day, "postgresql")
def _utc_day_postgres(element: utc_day, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(cast(func.timezone(_UTC, *element.clauses), Date), **kw)


class utc_hour(FunctionElement[Any]):
    """The start of the UTC hour of a timestamp column (text on SQLite, a timestamp on PG)."""

    type = DateTime()
    inherit_cache = True


@compiles(utc_hour)
def _utc_hour_sqlite(element: utc_hour, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(func.strftime(_HOUR_FORMAT, *element.clauses), **kw)


@compiles(utc_hour, "postgresql")
def _utc_hour_postgres(element: utc_hour, compiler: SQLCompiler, **kw: Any) -> str:
    truncated = func.date_trunc(_HOUR, func.timezone(_UTC, *element.clauses))
    return compiler.process(truncated, **kw)


class elapsed_ms(FunctionElement[Any]):
    """Milliseconds from ``started`` to ``finished``, exact to the microsecond on both."""

    type = Float()
    inherit_cache = True


@compiles(elapsed_ms)
def _elapsed_ms_sqlite(element: elapsed_ms, compiler: SQLCompiler, **kw: Any) -> str:
    # julianday() is off by tens of microseconds, so whole seconds and microseconds
    # (characters 21-26 of the stored text) are subtracted separately.
    started, finished = element.clauses
    seconds = cast(func.strftime("%s", finished), Integer) - cast(
        func.strftime("%s", started), Integer
    )
    micros = cast(func.substr(finished, 21, 6), Integer) - cast(
        func.substr(started, 21, 6), Integer
    )
    return compiler.process(seconds * 1000.0 + micros / 1000.0, **kw)


@compiles(elapsed_ms, "postgresql")
def _elapsed_ms_postgres(element: elapsed_ms, compiler: SQLCompiler, **kw: Any) -> str:
    # date_part gives a double (extract a slower numeric); callers round to 3 decimals.
    started, finished = element.clauses
    return compiler.process(func.date_part("epoch", finished - started) * 1000, **kw)


class contains_text(ColumnElement[bool]):
    """Whether a text column contains ``term``, ignoring case in every alphabet.

    PostgreSQL uses ILIKE (which its trigram GIN indexes serve). SQLite's LIKE folds ASCII
    letters only, so a term with other cased letters ("été") becomes a GLOB pattern with a
    class per letter; GLOB is six times slower than LIKE, so it is used only then.
    """

    # Untyped: with a Boolean type SQLite would render "... = 1" around the comparison.
    type = NullType()  # type: ignore[assignment]
    inherit_cache = False  # the SQL depends on the term (LIKE or GLOB)

    def __init__(self, column: ColumnElement[Any] | InstrumentedAttribute[Any], term: str) -> None:
        self.column = column
        self.term = term


@compiles(contains_text)
def _contains_sqlite(element: contains_text, compiler: SQLCompiler, **kw: Any) -> str:
    if _folds_beyond_ascii(element.term):
        return compiler.process(element.column.op("GLOB")(glob_pattern(element.term)), **kw)
    pattern = f"%{escape_like(element.term)}%"
    return compiler.process(element.column.like(pattern, escape=LIKE_ESCAPE), **kw)


@compiles(contains_text, "postgresql")
def _contains_postgres(element: contains_text, compiler: SQLCompiler, **kw: Any) -> str:
    pattern = f"%{escape_like(element.term)}%"
    return compiler.process(element.column.ilike(pattern, escape=LIKE_ESCAPE), **kw)


def escape_like(term: str) -> str:
    """``term`` with the LIKE wildcards ``%`` and ``_`` and the escape character escaped."""
    return (
        term.replace(LIKE_ESCAPE, LIKE_ESCAPE * 2)
        .replace("%", f"{LIKE_ESCAPE}%")
        .replace("_", f"{LIKE_ESCAPE}_")
    )


def glob_pattern(term: str) -> str:
    """A SQLite GLOB pattern matching ``term`` anywhere, ignoring case for every alphabet.

    A character class per cased letter folds any letter whose upper and lower forms are
    single characters. GLOB's own specials (``* ? [``) are matched literally through a class.
    """
    parts = ["*"]
    for char in term:
        variants = sorted(v for v in {char, char.lower(), char.upper()} if len(v) == 1)
        if len(variants) > 1:
            parts.append(f"[{''.join(variants)}]")
        elif char in "*?[":
            parts.append(f"[{char}]")
        else:
            parts.append(char)
    parts.append("*")
    return "".join(parts)


def _folds_beyond_ascii(term: str) -> bool:
    """Whether ``term`` has a letter with case outside ASCII (SQLite's LIKE folds only ASCII)."""
    return any(not char.isascii() and char.lower() != char.upper() for char in term)


def percentile_stats(
    connection: Connection, rows: Select[Any, Any], shares: Sequence[float]
) -> pd.DataFrame:
    """Count, mean and the ``shares`` percentiles of column ``d`` per value of the first column.

    ``rows`` selects two columns: a group value (any name) and ``d``. Columns of the result:
    ``value``, ``count``, ``mean``, then one per share. Percentiles interpolate linearly, like
    pandas' default quantile, on both databases.
    """
    dimension = str(rows.selected_columns[0].key)
    found = rows.subquery()
    value, measure = found.c[dimension], found.c.d
    columns = ["value", "count", "mean", *(f"p{share}" for share in shares)]
    if _is_postgres(connection):
        # percentile_cont interpolates like pandas; the percentiles share one sort.
        statement = select(
            value,
            func.count(),
            func.avg(measure),
            *(func.percentile_cont(share).within_group(measure) for share in shares),
        ).group_by(value)
        return pd.DataFrame(connection.execute(statement).all(), columns=columns)
    # SQLite has no percentile function: number each group's values in order (a window
    # sort, in SQLite's C code) and fetch only the two neighbours of each percentile.
    ranked = select(
        value.label("value"),
        measure.label("d"),
        (func.row_number().over(partition_by=value, order_by=measure) - 1).label("i"),
        func.count().over(partition_by=value).label("n"),
        func.avg(measure).over(partition_by=value).label("mean"),
    ).subquery()
    lows = [cast((ranked.c.n - 1) * share, Integer) for share in shares]
    wanted = or_(*(ranked.c.i == low + step for low in lows for step in (0, 1)))
    groups: dict[Any, tuple[int, float, dict[int, float]]] = {}
    for group, found_d, index, size, mean in connection.execute(
        select(ranked.c.value, ranked.c.d, ranked.c.i, ranked.c.n, ranked.c.mean).where(wanted)
    ):
        groups.setdefault(group, (size, mean, {}))[2][index] = float(found_d)
    records = [
        (group, size, mean, *(_interpolate(ordered, size, share) for share in shares))
        for group, (size, mean, ordered) in groups.items()
    ]
    return pd.DataFrame(records, columns=columns)


def _interpolate(ordered: dict[int, float], size: int, share: float) -> float:
    """The ``share`` quantile from the values around it, by position in the sorted group."""
    position = (size - 1) * share
    low = int(position)
    below = ordered[low]
    return below + (position - low) * (ordered.get(low + 1, below) - below)


def tune_for_aggregates(connection: Connection) -> None:
    """Prepare a read connection for a few large aggregates (PostgreSQL; SQLite needs nothing).

    A few big aggregates lose more to JIT compilation (~70 ms) than they gain, and
    percentiles sort every value: give the sorts memory, not disk. ``SET LOCAL`` ends with
    the transaction.
    """
    if _is_postgres(connection):
        connection.exec_driver_sql("SET LOCAL jit = off")
        connection.exec_driver_sql(f"SET LOCAL work_mem = '{ANALYTICS_WORK_MEM}'")


def advisory_lock(connection: Connection, key: int, *, shared: bool = False) -> None:
    """Hold lock ``key`` until the caller's write transaction ends.

    PostgreSQL takes a transaction-level advisory lock (``shared`` ones do not exclude each
    other, only the exclusive one). SQLite needs none: batchnb's write transactions begin with
    ``BEGIN IMMEDIATE``, which already excludes every other writer.
    """
    if not _is_postgres(connection):
        return
    function = "pg_advisory_xact_lock_shared" if shared else "pg_advisory_xact_lock"
    connection.execute(text(f"SELECT {function}(:key)"), {"key": key})


__all__ = [
    "LIKE_ESCAPE",
    "advisory_lock",
    "contains_text",
    "elapsed_ms",
    "escape_like",
    "glob_pattern",
    "percentile_stats",
    "tune_for_aggregates",
    "utc_day",
    "utc_hour",
]
