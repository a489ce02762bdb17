"""Bad input gives one line naming the file, the line and what to do (issue 13):
bytes that are not UTF-8 anywhere in a file, control characters in a header,
stray quotes, and errors that would echo a value from the file."""

from __future__ import annotations

import gzip

import pytest
from helpers import run

from crmkit.errors import EXIT_DATA, InputError

HEADER = "order_id,customer_id,date,amount"


def _one_line(r, code: int) -> str:
    assert r.exit_code == code, (r.exit_code, r.stderr)
    assert "Traceback" not in r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), r.stderr
    return lines[0]


# --- bytes that are not UTF-8, wherever they are ----------------------------------------


def _big_utf8_with_bad_byte(bad_row: int, rows: int = 60_000) -> tuple[bytes, int, int]:
    """A UTF-8 file of well over 1 MiB (the sniffing sample) with 0xFF inside data row
    ``bad_row`` (0-based): (bytes, its line number, the byte offset of 0xFF)."""
    lines = [HEADER] + [
        f"T{i},C{i % 500},2024-01-{i % 28 + 1:02d},{i % 97}.50" for i in range(rows)
    ]
    before = ("\n".join(lines[: bad_row + 1]) + "\n").encode()
    offset = len(before) + 2  # inside "T1..." after two characters
    data = ("\n".join(lines) + "\n").encode()
    data = data[:offset] + b"\xff" + data[offset:]
    return data, bad_row + 2, offset  # line 1 is the header


@pytest.mark.parametrize("route", ["import", "segment"])
def test_a_bad_byte_after_the_first_mib_names_its_line(tmp_path, route):
    data, line, offset = _big_utf8_with_bad_byte(59_990)
    assert offset > (1 << 20) + 100_000  # well past the sample the encoding is told from
    src = tmp_path / "big.csv"
    src.write_bytes(data)
    if route == "import":
        r = run("import", "transactions", src, "--store", tmp_path / "s")
    else:
        r = run("segment", "--transactions", src, "--as-of", "2024-02-01")
    msg = _one_line(r, EXIT_DATA)
    assert f"big.csv:{line}: a byte that is not UTF-8 (0xFF at byte {offset:,})" in msg
    assert "--encoding" in msg
    assert not (tmp_path / "s" / "transactions").exists()


def test_a_bad_byte_in_a_compressed_file_names_the_users_file_and_line(tmp_path):
    data, line, offset = _big_utf8_with_bad_byte(50_000)
    src = tmp_path / "big.csv.gz"
    src.write_bytes(gzip.compress(data))
    msg = _one_line(run("import", "transactions", src, "--store", tmp_path / "s"), EXIT_DATA)
    # the line and offset of the text inside; the name the user gave, not the unpacked copy
    assert f"big.csv.gz:{line}: a byte that is not UTF-8 (0xFF at byte {offset:,})" in msg
    assert "_tmp" not in msg and "crmkit-in" not in msg


def test_other_errors_of_a_compressed_file_name_the_users_file(tmp_path):
    src = tmp_path / "other.csv.gz"
    src.write_bytes(gzip.compress(b"a,b\n1,2\n"))
    msg = _one_line(run("import", "transactions", src, "--store", tmp_path / "s"), EXIT_DATA)
    assert msg.startswith(f"Error: {src}: no customer_id column recognised"), msg


def test_first_bad_utf8_agrees_with_python_at_any_chunk_size(tmp_path):
    from crmkit.ingest.source import first_bad_utf8

    text = "a,é\n中,😀\n" * 3
    for cut in range(len(text.encode()) + 1):
        data = text.encode()
        data = data[:cut] + b"\x80" + data[cut:]
        try:
            data.decode()
            expected = None
        except UnicodeDecodeError as exc:
            expected = (data[: exc.start].count(b"\n") + 1, exc.start, data[exc.start])
        (tmp_path / "f").write_bytes(data)
        for chunk in (1, 2, 3, 7, 1 << 20):
            assert first_bad_utf8(tmp_path / "f", chunk=chunk) == expected, (cut, chunk)


# --- control characters in a header -------------------------------------------------------


@pytest.mark.parametrize(
    ("encoding", "route"),
    [("utf-8", "segment"), ("utf-16", "import"), ("utf-16", "segment")],
)
def test_a_nul_in_a_header_name_is_refused_and_shown(tmp_path, encoding, route):
    src = tmp_path / "n.csv"
    src.write_bytes(f"{HEADER},no\x00te\nT1,C1,2024-01-01,5,x\n".encode(encoding))
    if route == "import":
        r = run("import", "transactions", src, "--store", tmp_path / "s")
    else:
        r = run("segment", "--transactions", src, "--as-of", "2024-02-01")
    msg = _one_line(r, EXIT_DATA)
    assert "\x00" not in r.stderr
    assert "n.csv:1: a control character in the name of column 5 ('no\\x00te')" in msg


def test_an_escape_sequence_in_a_header_never_reaches_the_terminal(tmp_path):
    src = tmp_path / "e.csv"
    src.write_bytes(f"{HEADER},\x1b]8;;http://evil.example\x07x\nT1,C1,2024-01-01,5,y\n".encode())
    msg = _one_line(run("import", "transactions", src, "--store", tmp_path / "s"), EXIT_DATA)
    assert "\x1b" not in msg and "\x07" not in msg
    assert "column 5" in msg and "\\x1b" in msg


def test_every_error_message_shows_control_characters_escaped():
    text = str(InputError("bad value 'a\x00b\x1b[2Jc\x9bd'", file="f.csv", line=3))
    assert text == "f.csv:3: bad value 'a\\x00b\\x1b[2Jc\\x9bd'"
