"""Uniform access to a data set's files, whether in a zip archive or a directory.

Official archives are read directly (no manual unzip): ``SourceFiles("ml-1m.zip")`` finds
``ml-1m/ratings.dat`` inside the zip, and ``SourceFiles("ml-1m/")`` finds it on disk.

>>> import io, zipfile, tempfile, pathlib
>>> p = pathlib.Path(tempfile.mkdtemp()) / "toy.zip"
>>> with zipfile.ZipFile(p, "w") as z:
...     z.writestr("toy/ratings.dat", "1::2::5::10\\n")
>>> src = SourceFiles(p)
>>> src.read_bytes("ratings.dat")
b'1::2::5::10\\n'
>>> src.display("ratings.dat").endswith("toy.zip!toy/ratings.dat")
True
"""

from __future__ import annotations

import zipfile
import zlib
from pathlib import Path

from llmrec.errors import DataError


class SourceFiles:
    """Files of one data set, found by base name in a zip archive or a directory tree."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise DataError("no such file or directory", path=self.path)
        self.is_zip = self.path.is_file() and zipfile.is_zipfile(self.path)
        if self.path.is_file() and not self.is_zip:
            what = ("not a readable zip archive (truncated or corrupt?)" if self.path.suffix.lower() == ".zip"
                    else "expected a zip archive or a directory")
            raise DataError(what, path=self.path)
        if self.is_zip:
            try:
                with zipfile.ZipFile(self.path) as z:
                    self._members = [n for n in z.namelist() if not n.endswith("/")]
            except (zipfile.BadZipFile, OSError, EOFError) as exc:
                raise DataError(f"corrupt zip archive ({exc})", path=self.path,
                                hint="download the archive again") from None
        else:
            self._members = [str(p.relative_to(self.path)) for p in self.path.rglob("*") if p.is_file()]

    def find(self, *names: str) -> str | None:
        """Return the shallowest member whose base name matches one of ``names`` (case-insensitive)."""
        wanted = {n.lower() for n in names}
        hits = [m for m in self._members if Path(m).name.lower() in wanted]
        if not hits:
            return None
        return min(hits, key=lambda m: (m.count("/"), names.index(next(n for n in names if n.lower() == Path(m).name.lower()))))

    def require(self, *names: str) -> str:
        """Like :meth:`find` but raise :class:`DataError` naming the expected file."""
        member = self.find(*names)
        if member is None:
            raise DataError(
                f"file {' or '.join(names)} not found",
                path=self.path,
                hint="point to the official archive or the directory that holds its files",
            )
        return member

    def has(self, *names: str) -> bool:
        return self.find(*names) is not None

    def read_bytes(self, *names: str) -> bytes:
        member = self.require(*names)
        if self.is_zip:
            try:
                with zipfile.ZipFile(self.path) as z:
                    return z.read(member)
            except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
                raise DataError(f"corrupt compressed data ({type(exc).__name__}: {exc})", path=self.display(*names),
                                hint="download the archive again") from None
        try:
            return (self.path / member).read_bytes()
        except OSError as exc:
            raise DataError(f"cannot read ({exc.strerror})", path=self.path / member) from None

    def display(self, *names: str) -> str:
        """Human-readable location of a member, for error messages."""
        member = self.find(*names) or names[0]
        return f"{self.path}!{member}" if self.is_zip else str(self.path / member)


def documented_encoding(raw: bytes, documented: str, where: str) -> str:
    r"""The encoding to decode ``raw`` with, given the data set's documented one.

    * documented latin-1 (MovieLens 100K/1M): a copy re-encoded as UTF-8 (valid UTF-8 with
      non-ASCII characters, which latin-1 text practically never is) is read as UTF-8, so its
      titles do not turn into mojibake ("CafÃ©");
    * documented UTF-8: bytes that are not UTF-8 fail with the file, line and byte named.

    >>> documented_encoding("Café".encode("utf-8"), "latin-1", "movies.dat")
    'utf-8'
    >>> documented_encoding("Café".encode("latin-1"), "latin-1", "movies.dat")
    'latin-1'
    >>> documented_encoding(b"ok\nCaf\xe9", "utf-8", "movies.csv")
    Traceback (most recent call last):
        ...
    llmrec.errors.DataError: movies.csv:2: not UTF-8 text (byte 0xe9), but this data set is documented as UTF-8 (re-encode the file, e.g. iconv -f latin1 -t utf-8)
    """
    enc = documented.lower().replace("_", "-")
    if enc in ("latin-1", "latin1", "iso-8859-1", "cp1252"):
        if raw.isascii():
            return documented
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError:
            return documented
        return "utf-8"
    try:
        raw.decode(enc)
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise DataError(f"not UTF-8 text (byte 0x{raw[exc.start]:02x}), but this data set is documented as UTF-8",
                        path=where, line=line, hint="re-encode the file, e.g. iconv -f latin1 -t utf-8") from None
    return documented
