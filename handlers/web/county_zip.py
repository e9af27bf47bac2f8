"""A county directory uploaded as a zip: unpacked with care, then read by the import's own
reader (bot.county.files.load_county_dir), whose messages are the ones shown.

The zip comes from a browser, so it is held to: a size cap, a cap on members and on the
unpacked total (counted while reading, not from the sizes the zip claims), no absolute or
`..` paths, and only the file names the import knows, at the top or in one folder.
"""

from __future__ import annotations

import io
import re
import tempfile
import zipfile
import zlib
from dataclasses import replace
from pathlib import Path, PurePosixPath

from bot.county import files
from bot.county.files import CountyData, CountyFileError, Problem
from bot.county.partners import PARTNERS_CSV
from bot.notify.texts import t

MAX_ZIP = 5 * 1024 * 1024
MAX_UNPACKED = 50 * 1024 * 1024
MAX_MEMBERS = 20
KNOWN = (files.GRIDS_FILE, files.PLACES_CSV, files.PLACES_XLSX, files.BOUNDARIES_FILE,
         files.HOLIDAYS_FILE, files.HOUSEHOLDS_CSV, PARTNERS_CSV)
_MB = 1024 * 1024
_DRIVE = re.compile(r"^[A-Za-z]:")


class ZipRefused(Exception):
    """Why the zip was not read at all, in the desk's words."""


def _unsafe(name: str) -> bool:
    return (name.startswith("/") or "\\" in name or "\0" in name or bool(_DRIVE.match(name))
            or ".." in PurePosixPath(name).parts)


def _skipped(name: str) -> bool:
    """What zipping a folder adds by itself: folders, macOS resource forks, hidden files."""
    path = PurePosixPath(name)
    return name.endswith("/") or path.parts[0] == "__MACOSX" or path.name.startswith(".")


def members(data: bytes) -> dict[str, bytes]:
    """The county files in the zip, by file name."""
    if len(data) > MAX_ZIP:
        raise ZipRefused(t("desk.zip_too_big", mb=MAX_ZIP // _MB))
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
        infos = zf.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError):
        raise ZipRefused(t("desk.zip_bad")) from None
    if len(infos) > MAX_MEMBERS:
        raise ZipRefused(t("desk.zip_too_many", n=MAX_MEMBERS))
    for info in infos:
        if _unsafe(info.filename):
            raise ZipRefused(t("desk.zip_unsafe", name=info.filename[:100]))
    wanted = [i for i in infos if not _skipped(i.filename)]
    if sum(i.file_size for i in wanted) > MAX_UNPACKED:
        raise ZipRefused(t("desk.zip_unpacked", mb=MAX_UNPACKED // _MB))
    folders = {PurePosixPath(i.filename).parent for i in wanted}
    if len(folders) > 1 or any(len(f.parts) > 1 for f in folders):
        raise ZipRefused(t("desk.zip_layout"))
    names = [PurePosixPath(i.filename).name for i in wanted]
    unknown = sorted(set(names) - set(KNOWN))
    if unknown:
        raise ZipRefused(t("desk.zip_unknown", names="、".join(n[:60] for n in unknown[:5]),
                           known="、".join(KNOWN)))
    twice = next((n for n in names if names.count(n) > 1), None)
    if twice:
        raise ZipRefused(t("desk.zip_twice", name=twice))
    if files.GRIDS_FILE not in names:
        raise ZipRefused(t("desk.zip_no_grids"))
    out: dict[str, bytes] = {}
    budget = MAX_UNPACKED
    for info, name in zip(wanted, names, strict=True):
        try:
            with zf.open(info) as f:
                body = f.read(budget + 1)  # the sizes a zip claims can lie
        except (zipfile.BadZipFile, zlib.error, NotImplementedError, RuntimeError, EOFError,
                ValueError):
            raise ZipRefused(t("desk.zip_bad")) from None
        if len(body) > budget:
            raise ZipRefused(t("desk.zip_unpacked", mb=MAX_UNPACKED // _MB))
        budget -= len(body)
        out[name] = body
    return out


def read_county(data: bytes, source: str) -> CountyData:
    """Parse and validate the zip as `run_bot.py import` does a directory (blocking: run it in
    a thread). Raises ZipRefused, or CountyFileError with the import's own problems."""
    found = members(data)
    with tempfile.TemporaryDirectory(prefix="county-upload-") as tmp:
        for name, body in found.items():
            (Path(tmp) / name).write_bytes(body)
        try:
            county = files.load_county_dir(tmp)
        except CountyFileError as e:
            # the problems name files as the zip does, not the place it was unpacked to
            raise CountyFileError([Problem(p.file, p.row, p.reason.replace(tmp, "").strip())
                                   for p in e.problems]) from None
    return replace(county, source=source)
