"""Reading and fetching the City's CSV."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import http.server
import os
import socket
import ssl
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd
import pytest

from building_energy.data.columns import NUMERIC_COLUMNS
from building_energy.data.io import fetch_data, read_buildings_csv, sha256_file
from building_energy.data.schema import DataValidationError

EXPECTED_SHA256 = "e0736a3096f5f0b1a6c408622c70d2643cdad68904cd4a7e5b7c3cafb393194a"


def test_archived_file_has_the_expected_shape_and_checksum(data_path: Path, raw_buildings: pd.DataFrame) -> None:
    assert sha256_file(data_path) == EXPECTED_SHA256
    assert raw_buildings.shape == (3376, 46)
    assert pd.api.types.is_float_dtype(raw_buildings["PropertyGFATotal"])


def _as_portal_export(raw_text: pd.DataFrame, path: Path) -> None:
    """Today's portal style: API field names, thousands separators, Windows-1252 text."""
    portal = raw_text.copy()
    for column in ("PropertyGFATotal", "SiteEnergyUse(kBtu)", "Electricity(kWh)"):
        portal[column] = pd.to_numeric(portal[column]).map(lambda v: "" if pd.isna(v) else f"{v:,.6g}")
    portal.columns = [c.lower().replace("(", "_").replace(")", "").replace("/", "_") for c in portal.columns]
    portal.loc[0, "propertyname"] = "Café Mayflower"
    portal.to_csv(path, index=False, encoding="cp1252")


def test_portal_export_reads_like_the_archive(data_path: Path, raw_buildings: pd.DataFrame, tmp_path: Path) -> None:
    raw_text = pd.read_csv(data_path, dtype=str, keep_default_na=False)
    portal_path = tmp_path / "portal.csv"
    _as_portal_export(raw_text, portal_path)

    portal, problems = read_buildings_csv(portal_path)

    assert problems == {}
    assert list(portal.columns) == list(raw_buildings.columns)
    assert portal.loc[0, "PropertyName"] == "Café Mayflower"
    for column in ("PropertyGFATotal", "SiteEnergyUse(kBtu)"):
        pd.testing.assert_series_equal(portal[column], raw_buildings[column], rtol=1e-5)
    assert set(NUMERIC_COLUMNS) <= set(portal.columns)


def test_unparseable_numbers_are_reported_by_line(tmp_path: Path, data_path: Path) -> None:
    text = pd.read_csv(data_path, dtype=str, keep_default_na=False).head(5)
    text.loc[2, "PropertyGFATotal"] = "big"
    path = tmp_path / "bad.csv"
    text.to_csv(path, index=False)
    _, problems = read_buildings_csv(path)
    assert problems == {2: ["PropertyGFATotal='big' is not a number"]}


@pytest.mark.parametrize("content", ["", "OSEBuildingID,PropertyGFATotal\n"])
def test_empty_files_are_refused(tmp_path: Path, content: str) -> None:
    path = tmp_path / "empty.csv"
    path.write_text(content)
    with pytest.raises(DataValidationError, match=r"empty|no rows"):
        read_buildings_csv(path)


def test_fetch_copies_from_shared_and_verifies(data_path: Path, tmp_path: Path) -> None:
    destination = tmp_path / "raw" / data_path.name
    fetch_data(destination, data_path.parent, "http://127.0.0.1:9/unused", EXPECTED_SHA256)
    assert sha256_file(destination) == EXPECTED_SHA256


def test_fetch_refuses_a_corrupted_shared_copy(data_path: Path, tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / data_path.name).write_bytes(data_path.read_bytes()[:-10])
    with pytest.raises(DataValidationError, match="does not match"):
        fetch_data(tmp_path / "raw" / data_path.name, shared, "http://127.0.0.1:9/unused", EXPECTED_SHA256)
    assert not (tmp_path / "raw" / data_path.name).exists()


def test_fetch_finds_the_archived_copy_whatever_the_destination_is_called(data_path: Path, tmp_path: Path) -> None:
    destination = tmp_path / "raw" / "buildings.csv"
    fetch_data(destination, data_path.parent, "http://127.0.0.1:9/unused", EXPECTED_SHA256)
    assert sha256_file(destination) == EXPECTED_SHA256


def test_a_failed_download_names_the_archive_it_looked_for_and_the_url(tmp_path: Path) -> None:
    # Port 9 (discard) on loopback: nothing listens, the connection is refused at once.
    url, archive = "http://127.0.0.1:9/2016.csv", tmp_path / "no-shared" / "2016_Building_Energy_Benchmarking.csv"
    with pytest.raises(DataValidationError) as failure:
        fetch_data(tmp_path / "raw" / "x.csv", tmp_path / "no-shared", url, EXPECTED_SHA256)
    assert str(failure.value).startswith(f"no archived copy at {archive}, and downloading {url} failed (")
    assert "refused" in str(failure.value)
    assert not (tmp_path / "raw" / "x.csv").exists()


@pytest.fixture
def portal_server(data_path: Path) -> Iterator[str]:
    """A real HTTP server on loopback standing in for the City's portal."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(data_path.parent))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/{data_path.name}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.integration
def test_fetch_downloads_when_shared_is_absent(portal_server: str, data_path: Path, tmp_path: Path) -> None:
    destination = tmp_path / "raw" / data_path.name
    fetch_data(destination, tmp_path / "no-shared", portal_server, EXPECTED_SHA256)
    assert hashlib.sha256(destination.read_bytes()).hexdigest() == EXPECTED_SHA256


@contextlib.contextmanager
def one_answer_server(answer: Callable[[socket.socket], None], tls: ssl.SSLContext | None = None) -> Iterator[int]:
    """A real server on a loopback port (yielded) that reads one request and lets ``answer`` write the reply."""
    listener = socket.create_server(("127.0.0.1", 0))

    def serve_once() -> None:
        connection, _ = listener.accept()
        with tls.wrap_socket(connection, server_side=True) if tls else connection as client:
            client.recv(65536)
            answer(client)

    thread = threading.Thread(target=serve_once, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        listener.close()
        thread.join(timeout=30)


# The first 256 KiB of what the header says is a 10 MB answer.
_CUT_SHORT = b"HTTP/1.1 200 OK\r\nContent-Length: 10000000\r\n\r\n" + b"x" * (1 << 18)


def _tls_then_garbage(client: socket.socket) -> None:
    client.sendall(_CUT_SHORT)
    # Beneath TLS, on the same connection: a record header of an unknown type, then garbage.
    with socket.socket(fileno=os.dup(client.fileno())) as raw:
        raw.sendall(b"\x99\x03\x03\x00\x10" + b"\x00" * 16)


@pytest.fixture
def trusted_tls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ssl.SSLContext:
    """A server context with a fresh certificate for 127.0.0.1 that this process trusts like any other."""
    certificate, key = tmp_path / "portal.pem", tmp_path / "portal.key"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1"),
            *("-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(certificate)),
        ],
        check=True,
        capture_output=True,
    )
    # OpenSSL reads it whenever urllib builds its default context.
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certificate, key)
    return context


def _failed_download(url: str, tmp_path: Path) -> DataValidationError:
    destination = tmp_path / "raw" / "2016.csv"
    with pytest.raises(DataValidationError) as failure:
        fetch_data(destination, tmp_path / "no-shared", url, EXPECTED_SHA256)
    message = str(failure.value)
    assert message.startswith(f"no archived copy at {tmp_path / 'no-shared'}/"), message
    assert f"downloading {url} failed (" in message, message
    assert list((tmp_path / "raw").iterdir()) == []  # neither a file nor its temporary
    return failure.value


@pytest.mark.integration
def test_a_tls_failure_mid_download_is_a_network_failure_not_the_data_file(
    trusted_tls: ssl.SSLContext, tmp_path: Path
) -> None:
    """An ``ssl.SSLError`` carries errno 1, EPERM's number: it was once reported as the data file's permission
    error."""
    with one_answer_server(_tls_then_garbage, trusted_tls) as port:
        error = _failed_download(f"https://127.0.0.1:{port}/2016.csv", tmp_path)
    assert isinstance(error.__cause__, ssl.SSLError)
    assert "SSL" in str(error) and "Permission denied" not in str(error)


@pytest.mark.integration
def test_a_download_cut_short_is_refused_not_kept(tmp_path: Path) -> None:
    """The server closes the connection a fortieth of the way through the length it announced: urllib reads
    that as the end of the file, which must not become the data."""
    with one_answer_server(lambda client: client.sendall(_CUT_SHORT)) as port:
        error = _failed_download(f"http://127.0.0.1:{port}/2016.csv", tmp_path)
    assert str(error).endswith("failed (the transfer stopped after 262,144 of 10,000,000 bytes)"), error


def test_an_unbalanced_quote_is_a_file_error(tmp_path: Path) -> None:
    path = tmp_path / "quotes.csv"
    path.write_text('PrimaryPropertyType,PropertyGFATotal,YearBuilt\n"Hotel,1000,1990\nOffice,"2000,1980\n')
    with pytest.raises(DataValidationError, match="record at CSV line 2 has a value spanning several lines"):
        read_buildings_csv(path)


HEADER = "OSEBuildingID,PrimaryPropertyType,PropertyGFATotal,YearBuilt\n"


def test_a_trailing_comma_on_every_line_shifts_nothing(tmp_path: Path) -> None:
    path = tmp_path / "trailing.csv"
    path.write_text(HEADER + "7,Hotel,88434,1927,\n8,Office,1000,1990,\n")
    frame, problems = read_buildings_csv(path)
    assert problems == {}
    assert frame.to_dict("list") == {
        "OSEBuildingID": [7.0, 8.0],
        "PrimaryPropertyType": ["Hotel", "Office"],
        "PropertyGFATotal": [88434.0, 1000.0],
        "YearBuilt": [1927.0, 1990.0],
    }


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        # Once, the first such row made pandas take the ids for an index and shift every column left.
        ("7,Hotel, Inc,88434,1927\n8,Office,1000,1990\n", "CSV line 2 has 5 values for 4 columns"),
        ("7,Hotel,88434,1927\n8,Office, Inc,1000,1990\n", "CSV line 3 has 5 values for 4 columns"),
        # Every line number after it would be off by one.
        ("7,Hotel,88434,1927\n\n8,Office,big,1990\n", "CSV line 3 is blank between records"),
    ],
    ids=["first row too long", "later row too long", "blank line"],
)
def test_records_pandas_would_misread_are_refused_by_line(tmp_path: Path, rows: str, message: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(HEADER + rows)
    with pytest.raises(DataValidationError, match=message):
        read_buildings_csv(path)


def test_blank_lines_at_the_end_are_fine(tmp_path: Path) -> None:
    path = tmp_path / "end.csv"
    path.write_text(HEADER + "7,Hotel,88434,1927\n\n\n")
    assert len(read_buildings_csv(path)[0]) == 1


def test_two_headers_for_one_field_are_refused_naming_both(tmp_path: Path) -> None:
    path = tmp_path / "twice.csv"
    path.write_text(
        "OSEBuildingID,PrimaryPropertyType,YearBuilt,year_built,PropertyGFATotal\n7,Hotel,1927,1927,88434\n"
    )
    with pytest.raises(DataValidationError, match="'YearBuilt' and 'year_built' both mean YearBuilt"):
        read_buildings_csv(path)


def test_one_header_named_twice_is_refused_not_renamed(tmp_path: Path) -> None:
    # pandas would read the second as "YearBuilt.1", a column the model never reads.
    path = tmp_path / "twice.csv"
    path.write_text("OSEBuildingID,PrimaryPropertyType,YearBuilt,PropertyGFATotal,YearBuilt\n7,Hotel,1927,88434,1990\n")
    with pytest.raises(DataValidationError, match=r"column\(s\) \['YearBuilt'\] appear more than once in the header"):
        read_buildings_csv(path)


@pytest.mark.parametrize(("separator", "name"), [(";", "semicolons"), ("|", "vertical bars")])
def test_a_file_with_another_separator_is_refused_saying_which(tmp_path: Path, separator: str, name: str) -> None:
    path = tmp_path / "other.csv"
    path.write_text(HEADER.replace(",", separator) + separator.join(["7", "Hotel", "88434", "1927"]) + "\n")
    with pytest.raises(DataValidationError, match=f"the header is one column holding {name}; save the file comma"):
        read_buildings_csv(path)


def test_a_utf16_export_reads_like_utf8(tmp_path: Path) -> None:
    text = HEADER + "7,Café Hotel,88434,1927\n"
    utf8, utf16 = tmp_path / "utf8.csv", tmp_path / "utf16.csv"
    utf8.write_text(text, encoding="utf-8")
    utf16.write_text(text, encoding="utf-16")
    pd.testing.assert_frame_equal(read_buildings_csv(utf16)[0], read_buildings_csv(utf8)[0])
    assert read_buildings_csv(utf16)[0]["PrimaryPropertyType"].tolist() == ["Café Hotel"]


def test_a_directory_is_not_called_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataValidationError, match=rf"^{tmp_path}: is a directory, not a CSV$"):
        read_buildings_csv(tmp_path)


def test_a_binary_file_is_refused_but_a_stray_nul_in_a_cell_is_not(tmp_path: Path) -> None:
    without_bom = tmp_path / "utf16-without-bom.csv"
    without_bom.write_bytes((HEADER + "7,Hotel,88434,1927\n").encode("utf-16-le"))
    with pytest.raises(DataValidationError, match=r"utf16-without-bom.csv: a binary file \(or UTF-16 without a"):
        read_buildings_csv(without_bom)
    stray = tmp_path / "stray.csv"
    stray.write_bytes((HEADER + "7,Hotel,88434,1927\n8,Hot\x00el,1000,1950\n").encode())
    frame, problems = read_buildings_csv(stray)
    assert len(frame) == 2 and problems == {}


def test_only_grouped_thousands_lose_their_commas(tmp_path: Path) -> None:
    path = tmp_path / "commas.csv"
    rows = ['7,Hotel,"88,434",1927', '8,Office,"1,234,567.5",1990', '9,Office,"88.434,0",1990', '10,Office,"1,2",1990']
    path.write_text(HEADER + "\n".join(rows) + "\n")
    frame, problems = read_buildings_csv(path)
    assert frame["PropertyGFATotal"].tolist()[:2] == [88434.0, 1234567.5]
    # A decimal comma is not silently read as a thousands separator (88.434 sq ft, or 12 for 1,2).
    assert problems == {
        2: ["PropertyGFATotal='88.434,0' is not a number"],
        3: ["PropertyGFATotal='1,2' is not a number"],
    }


@pytest.mark.parametrize("encoding", ["utf-8", "utf-16"])
def test_a_tab_separated_export_reads_like_the_csv(tmp_path: Path, encoding: str) -> None:
    # Excel's "Unicode text" is UTF-16 and tab-separated; a comma inside a value needs no quotes there.
    csv_path, tab_path = tmp_path / "buildings.csv", tmp_path / "buildings.txt"
    csv_path.write_text(HEADER + '7,"Hotel, Inc",88434,1927\n', encoding="utf-8")
    tab_path.write_text(HEADER.replace(",", "\t") + "7\tHotel, Inc\t88434\t1927\n", encoding=encoding)
    pd.testing.assert_frame_equal(read_buildings_csv(tab_path)[0], read_buildings_csv(csv_path)[0])
