"""Getting the City's CSV onto disk and into a DataFrame, whichever way it was exported."""

from __future__ import annotations

import codecs
import csv
import hashlib
import http.client
import logging
import re
import shutil
import ssl
import urllib.error
import urllib.request
from pathlib import Path

import pandas as pd

from building_energy.data import columns
from building_energy.data.columns import NUMERIC_COLUMNS
from building_energy.data.schema import DataValidationError
from building_energy.files import check_writable, naming_destination, replacing

logger = logging.getLogger(__name__)

_ENCODINGS = ("utf-8-sig", "cp1252")
# The archived file's name in the shared data folder, whatever name the copy is given.
ARCHIVED_FILE_NAME = "2016_Building_Energy_Benchmarking.csv"
# How much of a file tells a binary one from text, and the signature of a zip archive such as an .xlsx.
_SNIFFED_BYTES = 4096
_ZIP_MAGIC = b"PK\x03\x04"
_BINARY_NUL_SHARE = 0.01
_MISSING_MARKERS = ("", "NULL", "null", "NaN", "nan", "N/A", "n/a", "NA")
# "88,434" and "1,234,567.5" are grouped thousands; "1,2" or "88.434,0" (a decimal comma) is not a number here.
_GROUPED_THOUSANDS = r"[+-]?\d{1,3}(?:,\d{3})+(?:\.\d*)?"
# A header read as one column holding one of these was written with another separator.
_OTHER_SEPARATORS = {";": "semicolon", "|": "vertical bar"}


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _column_key(name: str) -> str:
    # "SiteEnergyUse(kBtu)" (archive) and "siteenergyuse_kbtu" (portal API) share the key "siteenergyusekbtu".
    return re.sub(r"[^0-9a-z]", "", name.lower())


def _canonical_names() -> dict[str, str]:
    names: set[str] = set(columns.MODEL_INPUTS + columns.METER_COLUMNS + columns.QUALITY_COLUMNS)
    names |= {columns.BUILDING_ID, "DataYear", "ZipCode", "PropertyName", "Address", "City", "State"}
    names |= {"TaxParcelIdentificationNumber", "YearsENERGYSTARCertified"}
    return {_column_key(name): name for name in names}


def normalise_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """Rename the columns of any export of the data set to the archived names."""
    canonical = _canonical_names()
    renames = {col: canonical.get(_column_key(str(col)), str(col).strip()) for col in frame.columns}
    headers_by_name: dict[str, list[str]] = {}
    for header, name in renames.items():
        headers_by_name.setdefault(name, []).append(str(header))
    clashes = {name: headers for name, headers in headers_by_name.items() if len(headers) > 1}
    if clashes:
        described = "; ".join(
            f"{' and '.join(map(repr, headers))} both mean {name}" for name, headers in clashes.items()
        )
        raise DataValidationError(f"two columns hold the same field: {described}; keep one of each")
    return frame.rename(columns=renames)


def _check_header(path: Path, header: list[str]) -> None:
    """Refuse a header pandas would read without a word but wrong: another separator than the comma (every
    line one column) and a column named twice (pandas renames the second ``YearBuilt.1``, which the model
    then never reads)."""
    if len(header) == 1:
        for separator, name in _OTHER_SEPARATORS.items():
            if separator in header[0]:
                raise DataValidationError(
                    f"{path}: the header is one column holding {name}s; save the file comma-separated"
                )
    names = [name.strip() for name in header if name.strip()]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise DataValidationError(f"{path}: column(s) {repeated} appear more than once in the header; keep one of each")


def field_separator(path: Path, encoding: str) -> str:
    """A tab when the header has tabs and no comma (Excel's "Unicode text" and "Text (tab delimited)"
    exports), else a comma."""
    with path.open(newline="", encoding=encoding) as handle:
        header = handle.readline()
    return "\t" if "\t" in header and "," not in header else ","


def check_records(path: Path, encoding: str, separator: str = ",") -> None:
    """Refuse what pandas would read wrong without a word: a record with values beyond the header's columns
    (an unquoted comma shifts every later field of the row), and a blank line between records (every CSV
    line number reported after it would be off by one). Empty trailing fields, as some exports write at the
    end of every line, are fine."""
    with path.open(newline="", encoding=encoding) as handle:
        reader = csv.reader(handle, delimiter=separator, skipinitialspace=True)
        try:
            header = next(reader, [])
            _check_header(path, header)
            blank_line = None
            for record in reader:
                if not "".join(record).strip():
                    blank_line = blank_line or reader.line_num
                    continue
                if blank_line is not None:
                    raise DataValidationError(f"{path}: CSV line {blank_line} is blank between records; remove it")
                if any(value.strip() for value in record[len(header) :]):
                    raise DataValidationError(
                        f"{path}: CSV line {reader.line_num} has {len(record)} values for {len(header)} columns "
                        "(a comma inside a value that is not quoted?)"
                    )
        except csv.Error as error:
            raise DataValidationError(f"{path}: not a readable CSV ({error})") from error


def parse_numbers(
    frame: pd.DataFrame, judged: tuple[str, ...] = NUMERIC_COLUMNS
) -> tuple[pd.DataFrame, dict[int, list[str]]]:
    """Turn the numeric columns into floats; return the cells of the ``judged`` columns that are not numbers,
    by row position. Such a cell in another column becomes blank, with a warning."""
    parsed = frame.copy()
    problems: dict[int, list[str]] = {}
    for column in NUMERIC_COLUMNS:
        if column not in parsed.columns or pd.api.types.is_numeric_dtype(parsed[column]):
            continue
        text = parsed[column].astype("string").str.strip()
        text = text.mask(text.str.fullmatch(_GROUPED_THOUSANDS, na=False), text.str.replace(",", "", regex=False))
        text = text.mask(text.isin(_MISSING_MARKERS))
        numbers = pd.to_numeric(text, errors="coerce")
        unreadable = (numbers.isna() & text.notna()).to_numpy().nonzero()[0]
        if column not in judged and len(unreadable):
            logger.warning(
                "%s: %d cell(s) are not numbers (first %r), read as blank; the column is not used here",
                column,
                len(unreadable),
                frame[column].iloc[unreadable[0]],
            )
            unreadable = unreadable[:0]
        for position in unreadable:
            value = frame[column].iloc[position]
            problems.setdefault(int(position), []).append(f"{column}={value!r} is not a number")
        parsed[column] = numbers.astype("float64")
    return parsed, problems


def read_buildings_csv(
    path: Path, judged_numbers: tuple[str, ...] = NUMERIC_COLUMNS
) -> tuple[pd.DataFrame, dict[int, list[str]]]:
    """Read a CSV in the City's format: archived or current portal export, UTF-8, Windows-1252 or UTF-16
    with a byte-order mark, comma- or tab-separated.

    Returns the frame (numeric columns parsed) and the unparseable cells of ``judged_numbers`` by row position
    (see ``parse_numbers``).
    """
    path = Path(path)
    if not path.is_file():
        raise DataValidationError(f"{path}: {'is a directory, not a CSV' if path.is_dir() else 'no such file'}")
    if path.stat().st_size == 0:
        raise DataValidationError(f"{path}: the file is empty")
    last_error: Exception | None = None
    with path.open("rb") as handle:
        start = handle.read(_SNIFFED_BYTES)
    # Excel's "Unicode text" export: UTF-16 with a byte-order mark, which neither 8-bit encoding reads right.
    utf16 = start[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
    # Windows-1252 decodes any byte, so a workbook or an image would otherwise come out as a "CSV" of garbage
    # columns and be refused for missing the City's.
    if start.startswith(_ZIP_MAGIC):
        raise DataValidationError(f"{path}: an Excel workbook or other zip archive, not a CSV; save it as CSV")
    # A share, not any NUL: one stray NUL in a cell is that row's problem, not the file's.
    nuls = start.count(0)
    if not utf16 and nuls > 1 and nuls > _BINARY_NUL_SHARE * len(start):
        raise DataValidationError(
            f"{path}: a binary file (or UTF-16 without a byte-order mark), not a text CSV; save it as CSV"
        )
    encodings = ("utf-16",) if utf16 else _ENCODINGS
    for encoding in encodings:
        try:
            separator = field_separator(path, encoding)
            check_records(path, encoding, separator)
            # index_col=False: a trailing comma on every line must not turn the first column into the index.
            frame = pd.read_csv(
                path,
                sep=separator,
                encoding=encoding,
                dtype=str,
                keep_default_na=False,
                skipinitialspace=True,
                index_col=False,
            )
            break
        except UnicodeDecodeError as error:
            last_error = error
        except pd.errors.EmptyDataError as error:
            raise DataValidationError(f"{path}: the file has no header and no rows") from error
        except pd.errors.ParserError as error:
            raise DataValidationError(f"{path}: not a readable CSV ({error})") from error
    else:
        raise DataValidationError(f"{path}: unknown text encoding ({last_error})")
    if frame.empty:
        raise DataValidationError(f"{path}: the file has a header but no rows")
    # No City field holds a line break: one inside a value means a quote was left open and swallowed rows.
    spans_lines = frame.apply(lambda column: column.str.contains("[\r\n]", regex=True, na=False)).any(axis=1)
    if spans_lines.any():
        first = int(spans_lines.to_numpy().nonzero()[0][0])
        raise DataValidationError(
            f"{path}: the record at CSV line {first + 2} has a value spanning several lines (an unbalanced "
            "quote?); fix the quoting"
        )
    try:
        frame = normalise_columns(frame)
    except DataValidationError as error:
        raise DataValidationError(f"{path}: {error}") from error
    frame = frame.replace(dict.fromkeys(_MISSING_MARKERS, None))
    return parse_numbers(frame, judged_numbers)


def _copy_atomically(source: Path, destination: Path) -> None:
    with source.open("rb") as original, replacing(destination) as copy, naming_destination(destination):
        shutil.copyfileobj(original, copy)


def _download(url: str, destination: Path, timeout: float = 120.0) -> None:
    logger.info("downloading %s", url)
    check_writable(destination)  # named before the network is tried: its errors would hide this one
    with urllib.request.urlopen(url, timeout=timeout) as response, replacing(destination) as out:  # noqa: S310 (URL comes from config)
        # HTTP answers say how long they are; a file: URL (a mirror on disk) does not.
        announced, received = getattr(response, "length", None), 0
        # Read outside naming_destination: a network error stays one, whatever its errno.
        while chunk := response.read(1 << 20):
            received += len(chunk)
            with naming_destination(destination):
                out.write(chunk)
        # urllib ends the read quietly when the server closes early; only the announced length tells (a chunked
        # answer cut short raises IncompleteRead on its own).
        if announced is not None and received < announced:
            raise ConnectionError(f"the transfer stopped after {received:,} of {announced:,} bytes")


def fetch_data(
    destination: Path,
    shared_dir: Path,
    url: str,
    expected_sha256: str,
) -> Path:
    """Put the raw CSV at ``destination``: reuse it, copy it from ``shared_dir`` or download it.

    The archived copy must match ``expected_sha256``; a portal download is today's export, which the
    City keeps editing, so its checksum is logged rather than enforced.
    """
    destination = Path(destination)
    if destination.is_file() and sha256_file(destination) == expected_sha256:
        logger.info("data already in place: %s", destination)
        return destination
    shared_copy = Path(shared_dir) / ARCHIVED_FILE_NAME
    if shared_copy.is_file():
        actual = sha256_file(shared_copy)
        if actual != expected_sha256:
            raise DataValidationError(f"{shared_copy}: SHA-256 {actual} does not match the expected {expected_sha256}")
        _copy_atomically(shared_copy, destination)
        logger.info("copied %s -> %s (SHA-256 verified)", shared_copy, destination)
        return destination
    if destination.is_file():
        logger.warning("%s is not the archived file (checksum differs); using it as is", destination)
        return destination
    try:
        _download(url, destination)
    # The network's failures (no route, DNS, refused, HTTP errors, a cut transfer); the destination's own
    # (a folder that cannot be created) stay OSErrors naming that path.
    except (urllib.error.URLError, http.client.HTTPException, ConnectionError, TimeoutError, ssl.SSLError) as error:
        cause = error.reason if isinstance(error, urllib.error.URLError) else error
        raise DataValidationError(
            f"no archived copy at {shared_copy}, and downloading {url} failed ({cause})"
        ) from error
    logger.warning(
        "downloaded today's portal export (SHA-256 %s); it differs from the archived copy",
        sha256_file(destination),
    )
    return destination
