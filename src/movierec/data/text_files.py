"""Reading delimited text files with errors that name the file and line.

Large rating files go through pyarrow's multi-threaded CSV reader (fast path); only
when that fails or the result looks wrong is the file scanned again line by line to
say exactly which line is bad. Small files (movies, users) are scanned line by line directly.
Line numbers are 1-based and count the header line, as a text editor shows them.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from movierec.errors import DataError

_UNIT_SEP = "\x1f"  # stands in for multi-character separators ("::") in the fast path


@dataclass(frozen=True)
class TableFile:
    """One delimited file: its fields in order and how to read them."""

    path: Path
    fields: tuple[str, ...]
    sep: str
    header: bool = False
    numeric: tuple[str, ...] = ()
    encoding: str = "utf-8"
    quoted: bool = False

    def error(self, message: str, line: int | None = None) -> DataError:
        """A :class:`DataError` naming this file and, when known, the line."""
        return DataError(message, path=self.path, line=line)

    def require(self) -> None:
        """Raise a :class:`DataError` when the file does not exist."""
        if not self.path.is_file():
            raise self.error("file not found")

    # -- line by line --------------------------------------------------------------

    def _lines(self) -> Iterator[str]:
        """Decoded lines (with their line ends); a decoding error names its line."""
        with open(self.path, "rb") as fh:
            for number, raw in enumerate(fh, start=1):
                try:
                    yield raw.decode(self.encoding)
                except UnicodeDecodeError as exc:
                    message = f"not valid {self.encoding} text ({exc.reason})"
                    raise self.error(message, number) from None

    def split_records(self) -> Iterator[tuple[int, list[str]]]:
        """(line number, fields) of every non-blank line, header included."""
        if self.quoted:
            reader = csv.reader(self._lines(), delimiter=self.sep, strict=True)
            try:
                for fields in reader:
                    if fields and any(f.strip() for f in fields):
                        yield reader.line_num, fields
            except csv.Error as exc:
                raise self.error(str(exc), reader.line_num) from None
            return
        for number, line in enumerate(self._lines(), start=1):
            line = line.rstrip("\r\n")
            if line.strip():
                yield number, line.split(self.sep)

    def records(self) -> Iterator[tuple[int, list[str]]]:
        """Validated data records: right number of fields, numeric fields are numbers."""
        numeric = [(i, name) for i, name in enumerate(self.fields) if name in self.numeric]
        n = len(self.fields)
        rows = self.split_records()
        if self.header:
            next(rows, None)
        for number, fields in rows:
            if len(fields) != n:
                raise self.error(
                    f"expected {n} fields separated by {self.sep!r}, found {len(fields)}", number
                )
            for i, name in numeric:
                if not _is_number(fields[i]):
                    raise self.error(f"{name} {fields[i]!r} is not a number", number)
            yield number, fields

    def line_of(self, row: int) -> int | None:
        """Line number of the ``row``-th data record (0-based), for errors found later."""
        for i, (number, _) in enumerate(self.split_records_after_header()):
            if i == row:
                return number
        return None

    def split_records_after_header(self) -> Iterator[tuple[int, list[str]]]:
        """:meth:`split_records` without the header line (unvalidated)."""
        rows = self.split_records()
        if self.header:
            next(rows, None)
        return rows

    def header_fields(self) -> list[str]:
        """The first line's fields (the header); an empty file is an error."""
        first = next(self.split_records(), None)
        if first is None:
            raise self.error("file is empty")
        return [f.strip() for f in first[1]]

    # -- whole table ------------------------------------------------------------------

    def read(self, fast: bool = False) -> pd.DataFrame:
        """All records as a DataFrame: text fields as str, numeric fields as float64."""
        self.require()
        if fast:
            return self._read_fast()
        rows = [fields for _, fields in self.records()]
        frame = pd.DataFrame(rows, columns=list(self.fields), dtype=object)
        for name in self.fields:
            frame[name] = frame[name].astype("float64" if name in self.numeric else str)
        return frame

    def _read_fast(self) -> pd.DataFrame:
        """pyarrow's multi-threaded CSV reader: much faster than pandas' C parser on
        ml-25m sized files."""
        source: str | io.BytesIO = str(self.path)
        sep = self.sep
        if len(sep) > 1:
            source = io.BytesIO(self.path.read_bytes().replace(sep.encode(), _UNIT_SEP.encode()))
            sep = _UNIT_SEP
        types = {n: (pa.float64() if n in self.numeric else pa.string()) for n in self.fields}
        try:
            table = pacsv.read_csv(
                source,
                read_options=pacsv.ReadOptions(
                    skip_rows=1 if self.header else 0,
                    column_names=list(self.fields),
                    encoding=self.encoding,
                ),
                parse_options=pacsv.ParseOptions(
                    delimiter=sep, quote_char='"' if self.quoted else False
                ),
                convert_options=pacsv.ConvertOptions(
                    column_types=types, strings_can_be_null=False, quoted_strings_can_be_null=False
                ),
            )
        except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
            raise self._locate(str(exc)) from None
        frame = table.to_pandas()
        for name in self.fields:
            col = frame[name]
            bad = (
                ~np.isfinite(col.to_numpy())
                if name in self.numeric
                else (col.isna() | (col == "")).to_numpy()
            )
            if bad.any():
                raise self._locate(f"bad value in field {name!r}", int(np.argmax(bad)))
        return frame

    def _locate(self, fallback: str, row: int | None = None) -> DataError:
        """Scan line by line for the first bad record; otherwise report ``fallback``."""
        try:
            for i, (number, fields) in enumerate(self.records()):
                if i == row:
                    return self.error(f"empty or invalid value in {_first_empty(self, fields)}",
                                      number)
        except DataError as exc:
            return exc
        return self.error(f"could not parse: {fallback}")


def _is_number(text: str) -> bool:
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False


def _first_empty(table: TableFile, fields: list[str]) -> str:
    for name, value in zip(table.fields, fields, strict=True):
        if not value.strip():
            return f"field {name!r}"
    return "a field"


def require_columns(table: TableFile, found: Iterable[str], required: Iterable[str]) -> None:
    """Header check: every required column is present (error on line 1 otherwise)."""
    found = list(found)
    missing = [c for c in required if c not in found]
    if missing:
        raise table.error(
            f"missing column(s) {', '.join(missing)}; header has {', '.join(found)}", 1
        )


def check_range(table: TableFile, frame: pd.DataFrame, column: str, lo: float, hi: float) -> None:
    """Ratings outside the source's scale are a data error, not something to clip.

    Args:
        table: The file ``frame`` was read from (for the error's line).
        frame: Its records, in file order.
        column: The column to check.
        lo: Smallest allowed value.
        hi: Largest allowed value.

    Raises:
        DataError: Names the first value out of range and its line.
    """
    values = frame[column].to_numpy()
    bad = (values < lo) | (values > hi)
    if bad.any():
        row = int(np.argmax(bad))
        raise table.error(
            f"{column} {values[row]:g} is off the scale {lo:g}-{hi:g}", table.line_of(row)
        )


def check_unique(table: TableFile, frame: pd.DataFrame, columns: list[str], what: str) -> None:
    """Duplicate keys (movie ids, (user, movie) pairs) would silently double-count.

    Args:
        table: The file ``frame`` was read from (for the error's line).
        frame: Its records, in file order.
        columns: The columns that together form the key.
        what: What a key is, for the message ("movie id", "rating of (user, movie)").

    Raises:
        DataError: Names the first repeated key, its line and the line it first appeared.
    """
    keys = _key_codes(frame, columns)
    ordered = np.sort(keys)
    if not (ordered[1:] == ordered[:-1]).any():  # sorting is the fast check; locate only on error
        return
    dup = pd.Series(keys).duplicated().to_numpy()
    row = int(np.argmax(dup))
    first = int(np.argmax(keys == keys[row]))
    value = ", ".join(str(frame[c].iat[row]) for c in columns)
    raise table.error(
        f"duplicate {what} {value} (first on line {table.line_of(first)})", table.line_of(row)
    )


def check_known(
    table: TableFile, frame: pd.DataFrame, column: str, known: pd.Series, what: str
) -> None:
    """Ratings must refer to movies (users) the catalogue file lists.

    Args:
        table: The file ``frame`` was read from (for the error's line).
        frame: Its records, in file order.
        column: The id column to check.
        known: The ids the other file lists.
        what: What the id is ("movie", "user"), for the message.

    Raises:
        DataError: Names the first unknown id and its line.
    """
    values = pa.array(frame[column].astype(str))
    bad = ~pc.is_in(values, value_set=pa.array(known.astype(str))).to_numpy(zero_copy_only=False)
    if bad.any():
        row = int(np.argmax(bad))
        raise table.error(
            f"{what} {frame[column].iat[row]!r} is not in the {what}s file", table.line_of(row)
        )


def _key_codes(frame: pd.DataFrame, columns: list[str]) -> np.ndarray:
    """One int64 per row identifying its key; hashing ints is much faster than tuples.

    Integer-looking ids (all of MovieLens) are used as numbers; others are factorized.
    """
    codes = np.zeros(len(frame), dtype=np.int64)
    for name in columns:
        col_codes = _as_ints(frame[name])
        if col_codes is None or col_codes.min(initial=0) < 0:
            col_codes = pd.factorize(frame[name])[0].astype(np.int64)
        span = int(col_codes.max(initial=0)) + 1
        if int(codes.max(initial=0)) >= (1 << 62) // span:  # would overflow: renumber first
            codes = pd.factorize(codes)[0].astype(np.int64)
        codes = codes * span + col_codes
    return codes


def _as_ints(column: pd.Series) -> np.ndarray | None:
    """The ids as int64 if each one is the canonical text of an integer ("7", not "007")."""
    text = pa.array(column.astype(str))
    try:
        ints = pc.cast(text, pa.int64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    if not pc.all(pc.equal(pc.cast(ints, pa.string()), text)).as_py():
        return None
    return ints.to_numpy(zero_copy_only=False)
