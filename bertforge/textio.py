"""Reading user text: files, directories, `.gz` and stdin, checked as UTF-8.

Every decoding error names the file and the byte offset of the first bad byte.
"""

from __future__ import annotations

import gzip
import sys
import zlib
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from bertforge.errors import DataError

STDIN = "-"
SUFFIXES = (".txt", ".gz")


def utf8_error(source: str | Path, error: UnicodeDecodeError, base: int = 0) -> DataError:
    """The one message for undecodable input: file, offending byte and its offset (`base` +
    the error's position in the decoded bytes), with the fix that fits: a multi-byte
    character cut off at the very end means a truncated file, anything else another encoding."""
    where = "decompressed offset" if str(source).endswith(".gz") else "offset"
    offset, bad = base + error.start, error.object[error.start]
    if error.reason == "unexpected end of data":
        return DataError(
            f"'{source}' ends in the middle of a multi-byte UTF-8 character (byte 0x{bad:02x} "
            f"at {where} {offset}): the file was cut short, e.g. by an interrupted copy; copy "
            "it again, or drop its incomplete last line"
        )
    return DataError(
        f"'{source}' is not valid UTF-8: byte 0x{bad:02x} at {where} {offset}; re-encode it, "
        f"e.g. `iconv -f latin1 -t utf-8 {source}`"
    )


def resolve_files(paths: Iterable[str | Path], suffixes: tuple[str, ...] = SUFFIXES) -> list[Path]:
    """Files as given; directories expand to their files with `suffixes` (default *.txt, *.gz),
    recursively and sorted."""
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(f for f in path.rglob("*") if f.suffix in suffixes and f.is_file())
            if not found:
                kinds = " or ".join(f"*{s}" for s in suffixes)
                raise DataError(f"directory '{path}' has no {kinds} files; add text to it")
            files += found
        elif path.is_file():
            files.append(path)
        else:
            raise DataError(f"input file '{path}' does not exist; check the path")
    if not files:
        raise DataError("no input files given; pass at least one text file or directory")
    return files


def open_binary(path: Path) -> BinaryIO:
    """Open for reading bytes, decompressing `.gz` on the fly."""
    if path.suffix == ".gz":
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return path.open("rb")


def decode_lines(
    path: Path, on_bad: Callable[[], None] | None = None, hint: str = ""
) -> Iterator[tuple[str, int]]:
    """(line without its ending, its size in bytes) for every line of one file (`.gz`
    decompressed; a UTF-8 byte order mark dropped). Invalid UTF-8 is a DataError naming the
    byte (`hint` appended), unless `on_bad` is given: the line is then decoded with
    replacement characters and `on_bad()` called."""
    offset = 0  # in decompressed bytes for .gz
    try:
        with open_binary(path) as fh:
            for raw in fh:
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError as e:
                    if on_bad is None:
                        raise DataError(f"{utf8_error(path, e, offset)}{hint}") from None
                    line = raw.decode("utf-8", "replace")
                    on_bad()
                if offset == 0:
                    line = line.removeprefix("\ufeff")
                offset += len(raw)
                yield line.rstrip("\r\n"), len(raw)
    except (OSError, EOFError, zlib.error) as e:
        raise DataError(f"cannot read '{path}': {e}") from None


def iter_lines(path: Path) -> Iterator[str]:
    """Stream the non-blank lines of one file (`.gz` decompressed), line endings stripped."""
    return (line for line, _ in decode_lines(path) if line.strip())


def read_text(path: str | Path) -> str:
    """A whole file (`-` = stdin) as checked UTF-8."""
    if str(path) == STDIN:
        source, data = "<stdin>", sys.stdin.buffer.read()
    else:
        if Path(path).is_dir():
            raise DataError(f"'{path}' is a directory; pass a text file (one text per line)")
        (p,) = resolve_files([path])
        try:
            with open_binary(p) as fh:
                source, data = str(p), fh.read()
        except (OSError, EOFError, zlib.error) as e:
            raise DataError(f"cannot read '{p}': {e}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise utf8_error(source, e) from None


def read_lines(path: str | Path) -> list[str]:
    """One text per line, line endings stripped; an input with no text is an error."""
    lines = read_text(path).splitlines()
    if not any(line.strip() for line in lines):
        raise DataError(f"'{path}' is empty; expected one text per line")
    return lines
