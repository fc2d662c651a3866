"""Production rows in a SQL table or view, read through SQLAlchemy (any database it has a dialect for).

One table holds every production row: the features, the target (null until its label arrives, by an
``UPDATE``), ``data.timestamp_column`` and optionally the prediction. Batches are cut from it either by
a column naming each row's batch (``data.batch_column``) or as fixed time buckets of the timestamp
(``data.batch_every``); from there on a batch is what a batch file is, and
:func:`~kaizen.data.window.load_window` gives it the same schema and value checks.

**Bounded reading.** The window asks for batches newest first and stops once it has what it needs
(:meth:`SqlSource.newest_batches`). Each next batch is found by one query that the timestamp's
index answers from its newest end (``ORDER BY ts DESC LIMIT 1`` / ``MAX(ts) WHERE ts < ...``) and
each batch is read by one query on its key or its time range (``WHERE``), so a cycle reads the
batches it uses (and those it rejects on the way) and never the whole table. Index the timestamp
column, and the batch column when there is one.

- ``batch_column``: batches are ordered by their newest timestamp; a batch's name is its key as text.
  Write a batch in one transaction. Rows with a null key or a null timestamp belong to no batch.
- ``batch_every``: a batch is the rows of one bucket ``[start, start + every)``, buckets aligned to
  1970-01-01 UTC; it is named by its start (``2026-03-02T00:00:00Z``). A bucket is read once it has
  ended by the clock, so a cycle never judges half a day. A naive timestamp is taken as UTC; rows
  with a null timestamp belong to no bucket.

Within a batch rows come back ordered by timestamp, then by the table's primary key; without one,
rows of equal timestamp are put in the order of their values' hash, so the same rows always give
the same content digest. Every query sees the rows committed when it runs: a label written by an
``UPDATE`` is read by the next cycle and changes its digest.

The reference and golden sets are whole tables of the same database (or files). Label files
(``data.labels = "separate"``) stay files. The URL is ``data.sql_url`` or, for one with a password,
the environment variable named by ``data.sql_url_env``, read when the source first connects; every
message shows it with its password masked (:func:`kaizen.redact.redact`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from kaizen.data.files import LabelFiles, read_table
from kaizen.data.source import Batch, Source
from kaizen.errors import DataError
from kaizen.redact import redact

if TYPE_CHECKING:
    from kaizen.policy import DataSpec

__all__ = ["SqlSource", "Table"]

_SHOWN = 12  # names listed in a message


@dataclass(frozen=True)
class Table:
    """A table or view of the source's database: ``name``, or ``schema.name``."""

    name: str

    @property
    def parts(self) -> tuple[str | None, str]:
        schema, dot, name = self.name.partition(".")
        return (schema, name) if dot else (None, self.name)


def _names(names: Any) -> str:
    names = [str(n) for n in names]
    return ", ".join(map(repr, names[:_SHOWN])) + (f" and {len(names) - _SHOWN} more" if len(names) > _SHOWN else "")


def _utc(value: Any) -> pd.Timestamp:
    """A timestamp from the database as a naive UTC :class:`pandas.Timestamp` (a naive one is taken as UTC)."""
    t = pd.Timestamp(value)
    return t.tz_convert("UTC").tz_localize(None) if t.tzinfo is not None else t


def _tie_order(frame: pd.DataFrame, timestamp: str | None) -> pd.DataFrame:
    """``frame`` in timestamp order, rows of equal timestamp in the order of their values' hash (stable)."""
    if len(frame) < 2:
        return frame
    h = pd.util.hash_pandas_object(frame, index=False).to_numpy()
    keys: tuple[np.ndarray, ...] = (h,)
    if timestamp and timestamp in frame.columns:
        t = pd.to_datetime(frame[timestamp], utc=True, errors="coerce").dt.tz_localize(None)
        keys = (h, t.to_numpy(dtype="datetime64[ns]").astype("int64"))
    order = np.lexsort(keys)
    if (order == np.arange(len(frame))).all():
        return frame
    return frame.iloc[order].reset_index(drop=True)


class SqlSource(LabelFiles, Source):
    """Production batches from one table (or view); the reference and golden sets from tables or files.

    ``production``: the table; ``timestamp``: its timestamp column; exactly one of ``batch_column`` (a column
    naming each row's batch) and ``batch_seconds`` (time buckets this long). ``reference``/``golden``: a
    :class:`Table` of the same database or a file :class:`~pathlib.Path`. Exactly one of ``url`` and ``url_env``
    (an environment variable holding the URL, read at the first query). ``labels``: a folder of label files.
    ``clock``: now, in UTC (which time buckets have ended). No I/O until a method needs the database.
    """

    def __init__(self, *, production: Table, timestamp: str, reference: Table | Path,
                 golden: Table | Path | None = None, batch_column: str | None = None,
                 batch_seconds: int | None = None, url: str | None = None, url_env: str | None = None,
                 labels: Path | None = None, clock: Callable[[], datetime] | None = None) -> None:
        if (url is None) == (url_env is None):
            raise ValueError(f"SqlSource needs exactly one of url and url_env; got {url_env=} and "
                             f"url={'set' if url else None}")
        if (batch_column is None) == (batch_seconds is None):
            raise ValueError(f"SqlSource needs exactly one of batch_column and batch_seconds; got {batch_column=} "
                             f"and {batch_seconds=}")
        if batch_seconds is not None and (batch_seconds < 1 or int(batch_seconds) != batch_seconds):
            raise ValueError(f"batch_seconds must be a whole number of seconds >= 1; got {batch_seconds=}")
        self.production = production
        self.timestamp = timestamp
        self.reference_at = reference
        self.golden_at = golden
        self.batch_column = batch_column
        self.batch_seconds = int(batch_seconds) if batch_seconds is not None else None
        self.url = url
        self.url_env = url_env
        self.labels_path = labels
        self.clock = clock or (lambda: datetime.now(UTC))
        self._engine: Any = None
        self._conn: Any = None
        self._tables: dict[str, Any] = {}
        self._keys: dict[str, Any] = {}  # batch name -> its key's value, as the database gave it

    @classmethod
    def from_spec(cls, d: DataSpec, *, clock: Callable[[], datetime] | None = None) -> SqlSource:
        """The source of a policy's ``[data]`` (``production_table`` set; :mod:`kaizen.policy` checked the rest)."""
        return cls(production=Table(d.production_table), timestamp=d.timestamp_column,  # type: ignore[arg-type]
                   reference=Table(d.reference_table) if d.reference_table else d.reference,  # type: ignore[arg-type]
                   golden=Table(d.golden_table) if d.golden_table else d.golden,
                   batch_column=d.batch_column, batch_seconds=d.batch_seconds, url=d.sql_url,
                   url_env=d.sql_url_env, labels=d.labels_path if d.labels == "separate" else None, clock=clock)

    # -- where things are -------------------------------------------------------------------------

    @property
    def database(self) -> str:
        """The database for messages: the URL with its password masked, or the variable that holds it."""
        return redact(self.url) if self.url else f"${self.url_env}"

    def where(self, at: Table | Path | None) -> str:
        return f"table {at.name!r} of {self.database}" if isinstance(at, Table) else str(at)

    def describe(self, part: str) -> str:
        return self.where({"reference": self.reference_at, "golden": self.golden_at, "production": self.production,
                           "labels": self.labels_path}[part])

    # -- the connection ---------------------------------------------------------------------------

    def _url(self) -> str:
        if self.url:
            return self.url
        url = os.environ.get(self.url_env or "")
        if not url:
            raise DataError(f"{self.where(self.production)}: data.sql_url_env names the environment variable "
                            f"{self.url_env}, which is not set")
        return url

    def _error(self, where: str, what: str, exc: BaseException) -> DataError:
        lines = str(exc).strip().splitlines()
        return DataError(redact(f"{where}: {what} ({type(exc).__name__}: {lines[0] if lines else ''})"))

    def _connection(self) -> Any:
        if self._conn is None:
            import sqlalchemy as sa
            from sqlalchemy.exc import SQLAlchemyError
            from sqlalchemy.pool import NullPool

            url = self._url()
            try:
                self._engine = sa.create_engine(url, poolclass=NullPool)  # one connection, closed by close()
                self._conn = self._engine.connect()
            except (SQLAlchemyError, ImportError, OSError, ValueError) as exc:
                self.close()
                raise self._error(self.database, "cannot connect", exc) from None
        return self._conn

    def _run(self, where: str, query: Callable[[Any], Any]) -> Any:
        """``query(connection)``; a database error is a DataError naming ``where``. The transaction a query
        begins is ended at once: the source holds no lock or snapshot between queries."""
        from sqlalchemy.exc import SQLAlchemyError

        conn = self._connection()
        try:
            return query(conn)
        except (SQLAlchemyError, OSError) as exc:
            raise self._error(where, "cannot read", exc) from None
        finally:
            try:
                conn.rollback()
            except SQLAlchemyError:  # a connection the error broke: close() discards it
                pass

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            finally:
                self._conn = None
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None
        self._tables.clear()

    # -- tables -----------------------------------------------------------------------------------

    def _table(self, at: Table, key: str) -> Any:
        """The reflected table ``at`` (its columns and types); DataError naming ``key`` when there is none."""
        if at.name in self._tables:
            return self._tables[at.name]
        import sqlalchemy as sa

        schema, name = at.parts

        def reflect(conn: Any) -> Any:
            try:
                return sa.Table(name, sa.MetaData(), schema=schema, autoload_with=conn)
            except sa.exc.NoSuchTableError:
                found = sa.inspect(conn)
                names = sorted([*found.get_table_names(schema=schema), *found.get_view_names(schema=schema)])
                raise DataError(f"{self.where(at)}: no such table or view ({key}); the database has "
                                f"{_names(names) if names else 'none'}") from None

        table = self._run(self.where(at), reflect)
        self._tables[at.name] = table
        return table

    def _order(self, table: Any) -> list[Any]:
        """ORDER BY of a read: the timestamp (when the table has it), then the primary key."""
        ts = [table.c[self.timestamp]] if self.timestamp in table.c else []
        return [*ts, *table.primary_key.columns]

    def _frame(self, at: Table, table: Any, query: Any) -> pd.DataFrame:
        frame = self._run(self.where(at), lambda conn: pd.read_sql(query, conn))
        frame.columns = [str(c) for c in frame.columns]  # plain str: SQLAlchemy names are a str subclass
        return frame if len(table.primary_key.columns) else _tie_order(frame, self.timestamp)

    def whole(self, at: Table, key: str) -> pd.DataFrame:
        """Every row of table ``at`` (the reference or golden set); ``key`` is the setting that names it."""
        import sqlalchemy as sa

        table = self._table(at, key)
        return self._frame(at, table, sa.select(table).order_by(*self._order(table)))

    def _production(self) -> Any:
        """The production table, checked: it has the timestamp (a date or timestamp column) and batch columns."""
        known = self.production.name in self._tables
        table = self._table(self.production, "data.production_table")
        if known:
            return table
        import sqlalchemy as sa

        where = self.where(self.production)
        missing = [(c, k) for c, k in ((self.timestamp, "data.timestamp_column"),
                                       (self.batch_column, "data.batch_column")) if c and c not in table.c]
        if missing:
            self._tables.pop(self.production.name)
            raise DataError(f"{where}: has no column {', '.join(f'{c!r} ({k})' for c, k in missing)}; its columns "
                            f"are {_names(table.c.keys())}")
        kind = table.c[self.timestamp].type
        if not isinstance(kind, sa.DateTime | sa.Date):
            self._tables.pop(self.production.name)
            raise DataError(f"{where}: column {self.timestamp!r} (data.timestamp_column) must be a DATE or "
                            f"TIMESTAMP column; got {kind}")
        if self.batch_seconds and not isinstance(kind, sa.DateTime) and self.batch_seconds % 86400:
            self._tables.pop(self.production.name)
            raise DataError(f"{where}: column {self.timestamp!r} (data.timestamp_column) holds dates: "
                            f"data.batch_every must be whole days; got {self.batch_seconds} s")
        return table

    def production_columns(self) -> list[str]:
        """The production table's columns as a batch has them (the batch column is a batch's name, not data)."""
        return [c for c in self._production().c.keys() if c != self.batch_column]

    # -- Source -----------------------------------------------------------------------------------

    def reference(self) -> pd.DataFrame:
        at = self.reference_at
        df = self.whole(at, "data.reference_table") if isinstance(at, Table) else read_table(at)
        if df.empty:
            raise DataError(f"{self.where(at)}: the reference set has no rows")
        return df

    def golden(self) -> pd.DataFrame | None:
        at = self.golden_at
        if at is None:
            return None
        return self.whole(at, "data.golden_table") if isinstance(at, Table) else read_table(at)

    def batch_names(self) -> list[str]:
        """Every batch, oldest first: a query per batch over the whole table (the window uses
        :meth:`newest_batches`)."""
        return list(reversed(list(self.newest_batches())))

    def newest_batches(self) -> Iterator[str]:
        return self._newest_buckets() if self.batch_seconds else self._newest_keys()

    def _newest_keys(self) -> Iterator[str]:
        """The key of the newest row not in a batch already listed, one query per batch."""
        import sqlalchemy as sa

        table = self._production()
        ts, key = table.c[self.timestamp], table.c[self.batch_column]
        seen: list[Any] = []
        while True:
            q = sa.select(key).where(ts.is_not(None), key.is_not(None))
            if seen:
                q = q.where(key.not_in(seen))
            q = q.order_by(ts.desc()).limit(1)
            row = self._run(self.where(self.production), lambda conn, q=q: conn.execute(q).first())
            if row is None:
                return
            seen.append(row[0])
            name = str(row[0])
            self._keys[name] = row[0]
            yield name

    def _newest_buckets(self) -> Iterator[str]:
        """The bucket of the newest row before the last bucket listed, starting with the buckets that have ended."""
        import sqlalchemy as sa

        table = self._production()
        ts = table.c[self.timestamp]
        bound = self._bucket(_utc(self.clock()))  # the bucket the clock is in has not ended
        while True:
            q = sa.select(sa.func.max(ts)).where(ts < self._bind(table, bound))
            top = self._run(self.where(self.production), lambda conn, q=q: conn.execute(q).scalar())
            if top is None:
                return
            bound = self._bucket(_utc(top))
            yield f"{bound:%Y-%m-%dT%H:%M:%SZ}"

    def _bucket(self, t: pd.Timestamp) -> pd.Timestamp:
        return t.floor(pd.Timedelta(seconds=self.batch_seconds))

    def _bind(self, table: Any, t: pd.Timestamp) -> Any:
        """A naive UTC instant as the timestamp column compares: a date, an aware or a naive datetime."""
        import sqlalchemy as sa

        kind = table.c[self.timestamp].type
        if not isinstance(kind, sa.DateTime):
            return t.date()
        return t.to_pydatetime().replace(tzinfo=UTC) if kind.timezone else t.to_pydatetime()

    def _where(self, table: Any, name: str) -> Any | None:
        """The rows of batch ``name``, as a WHERE clause; None when ``name`` cannot be one of this table's."""
        if self.batch_seconds:
            try:
                start = _utc(name)
            except (ValueError, TypeError):
                return None
            if self._bucket(start) != start or f"{start:%Y-%m-%dT%H:%M:%SZ}" != name:
                return None
            ts = table.c[self.timestamp]
            end = start + pd.Timedelta(seconds=self.batch_seconds)
            return (ts >= self._bind(table, start)) & (ts < self._bind(table, end))
        key = table.c[self.batch_column]
        if name in self._keys:
            return key == self._keys[name]
        try:
            return key == key.type.python_type(name)
        except (NotImplementedError, TypeError, ValueError):
            return key == name

    def read_batch(self, name: str) -> Batch:
        import sqlalchemy as sa

        table = self._production()
        where = self._where(table, name)
        if where is None:
            return Batch(name, None, (f"is not a time bucket of data.batch_every ({self.batch_seconds} s) in "
                                      f"{self.where(self.production)}",))
        columns = [c for c in table.c if c.name != self.batch_column]
        frame = self._frame(self.production, table,
                            sa.select(*columns).where(where).order_by(*self._order(table)))
        return Batch(name, frame)

    def count_rows(self, name: str) -> int | None:
        """How many rows batch ``name`` has, without reading them (None: not one of this table's names)."""
        import sqlalchemy as sa

        table = self._production()
        where = self._where(table, name)
        if where is None:
            return None
        q = sa.select(sa.func.count()).select_from(table).where(where)
        return int(self._run(self.where(self.production), lambda conn: conn.execute(q).scalar()))
