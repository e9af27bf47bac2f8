"""Importing a county directory from the desk (command centre only): upload a zip, see the
import's own verdict and what would change, then confirm; only the confirmation imports.

The upload is read from the stream with its own cap (the service's form limit is 1 MiB).
The confirmation carries the server-held upload's id and the CSRF token, never the file.
After the import the county index is rebuilt here; other instances follow the county
version (App._follow_imports).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import aiohttp_jinja2
from aiohttp import BodyPartReader, web
from aiohttp_session import get_session

from bot.county.diff import county_diff
from bot.county.files import CountyData, CountyFileError
from bot.county.store import import_county, load_county
from bot.notify.texts import t
from handlers.web.context import DESK_KEY, centre_only
from handlers.web.county_zip import MAX_ZIP, ZipRefused, read_county
from handlers.web.security import CSRF_FIELD, csrf_matches, csrf_ok
from handlers.web.staff import Staff
from handlers.web.uploads import TTL_SECONDS, Upload

log = logging.getLogger(__name__)
_FORM_SLACK = 64 * 1024  # the form's other fields and multipart headers
TABLES = {"communities": "communities", "grids": "grids", "places": "places",
          "boundaries": "boundaries", "people": "people", "assignments": "assignments",
          "calendar": "calendar", "households": "households", "partners": "partners",
          "partner areas": "partner_areas", "partner contacts": "partner_contacts",
          }  # store.import_county's tables -> desk.tbl_*


def add_routes(desk: web.Application) -> None:
    desk.router.add_get("/county/upload", upload_page)
    desk.router.add_post("/county/upload", check)
    desk.router.add_post("/county/upload/{key:[\\w-]{8,64}}", apply)


def table_label(name: str) -> str:
    """The import report's tables in the desk's words (a table added later shows its name)."""
    return t(f"desk.tbl_{TABLES[name]}") if name in TABLES else name


def _page(request: web.Request, status: int = 200, **ctx: Any) -> web.Response:
    base: dict[str, Any] = {"tab": "upload", "error": "", "problems": [], "diff": None,
                            "key": "", "county": "", "file_name": "", "others": False,
                            "report": None, "minutes": TTL_SECONDS // 60,
                            "table_label": table_label}
    return aiohttp_jinja2.render_template("county_upload.html", request, {**base, **ctx},
                                          status=status)


async def upload_page(request: web.Request) -> web.StreamResponse:
    await centre_only(request)
    return _page(request)


async def _read_form(request: web.Request) -> tuple[str, bytes]:
    """(file name, bytes) of the upload; the CSRF field must come first and match."""
    if (request.content_length or 0) > MAX_ZIP + _FORM_SLACK:
        raise ZipRefused(t("desk.zip_too_big", mb=MAX_ZIP // (1024 * 1024)))
    try:
        reader = await request.multipart()
    except (AssertionError, ValueError, KeyError):
        raise web.HTTPBadRequest from None
    session = await get_session(request)
    csrf_seen = False
    while (part := await reader.next()) is not None:
        if not isinstance(part, BodyPartReader):
            raise web.HTTPBadRequest
        if part.name == CSRF_FIELD:
            sent = await _capped(part, 256)
            if sent is None or not csrf_matches(session, sent.decode(errors="replace")):
                raise web.HTTPForbidden
            csrf_seen = True
        elif part.name == "file" and csrf_seen:
            data = await _capped(part, MAX_ZIP)
            if data is None:
                raise ZipRefused(t("desk.zip_too_big", mb=MAX_ZIP // (1024 * 1024)))
            if not data:
                raise ZipRefused(t("desk.zip_none"))
            return (part.filename or "")[:100], data
    if not csrf_seen:
        raise web.HTTPForbidden
    raise ZipRefused(t("desk.zip_none"))


async def _capped(part: BodyPartReader, cap: int) -> bytes | None:
    """The part's bytes, or None past `cap` (a sent length may be absent or lie)."""
    data = bytearray()
    while chunk := await part.read_chunk():
        data.extend(chunk)
        if len(data) > cap:
            return None
    return bytes(data)


def _source(staff: Staff, file_name: str) -> str:
    return f"desk upload {file_name or 'county.zip'} by person {staff.person_id}"


async def check(request: web.Request) -> web.StreamResponse:
    staff = await centre_only(request)
    state = request.app[DESK_KEY]
    try:
        file_name, data = await _read_form(request)
        county: CountyData = await asyncio.to_thread(read_county, data,
                                                     _source(staff, file_name))
    except ZipRefused as no:  # shown on the form, like any other answer to it
        return _page(request, error=str(no))
    except CountyFileError as e:
        return _page(request, problems=e.problems)
    async with state.app.deps.reader()() as s:
        diff = county_diff(await load_county(s), county)
    key = state.uploads.hold(Upload(staff.person_id, file_name, data,
                                    state.app.deps.clock().timestamp()))
    # what the comparison leaves to the import's report
    others = bool(county.calendar or county.households or county.partners)
    return _page(request, diff=diff, key=key, file_name=file_name, county=county.name,
                 others=others)


async def apply(request: web.Request) -> web.StreamResponse:
    staff = await centre_only(request)
    if not await csrf_ok(request):
        raise web.HTTPForbidden
    state = request.app[DESK_KEY]
    upload = state.uploads.take(request.match_info["key"], staff.person_id,
                                state.app.deps.clock().timestamp())
    if upload is None:
        return _page(request, 410, error=t("desk.up_expired"))
    try:
        county = await asyncio.to_thread(read_county, upload.data,
                                         _source(staff, upload.file_name))
    except (ZipRefused, CountyFileError):  # the same bytes read the same way: not expected
        return _page(request, 410, error=t("desk.up_expired"))
    async with state.app.deps.sm() as s, s.begin():
        report = await import_county(s, county)
    try:
        await state.app.deps.county.refresh()
    except Exception:  # imported all the same: App._follow_imports tries again shortly
        log.exception("county index reload after a desk import failed")
    return _page(request, report=report)
