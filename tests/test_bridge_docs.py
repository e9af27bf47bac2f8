"""docs/bridge.md is true: its openssl signature is the service's, its curl body makes a
ticket, and its 30-line receiver takes what the service posts."""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from config.settings import Settings
from handlers.bridge.signing import SIGNATURE, sign
from models.tickets import Ticket
from tests.conftest import FakeClock
from tests.contract.bridge import Connector, bridge_stack
from tests.contract.channels import drain
from tests.procs import free_port

DOC = (Path(__file__).resolve().parent.parent / "docs" / "bridge.md").read_text(encoding="utf-8")
SECRET = re.search(r"^SECRET='([^']+)'$", DOC, re.M).group(1)  # type: ignore[union-attr]
BODY = re.search(r"^BODY='([^']+)'$", DOC, re.M).group(1)  # type: ignore[union-attr]
OPENSSL = re.search(r"^SIG=\$\((.+)\)$", DOC, re.M).group(1)  # type: ignore[union-attr]
RECEIVER = re.search(r"```python\n(.+?)```", DOC, re.S).group(1)  # type: ignore[union-attr]


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")
def test_the_openssl_line_signs_as_the_service_does() -> None:
    ts = "1772503200"
    out = subprocess.run(["sh", "-c", OPENSSL], env={"TS": ts, "BODY": BODY, "SECRET": SECRET,
                                                    "PATH": "/usr/bin:/bin"},
                         capture_output=True, text=True, check=True).stdout.strip()
    assert "sha256=" + out == sign(SECRET.encode(), int(ts), BODY.encode())[SIGNATURE]


async def test_the_curl_body_makes_a_ticket_and_the_receiver_takes_the_answer(
        loaded_settings: Settings, clock: FakeClock, tmp_path: Path) -> None:
    port = free_port()
    script = tmp_path / "receiver.py"
    script.write_text(RECEIVER.replace("9000", str(port)), encoding="utf-8")
    log = tmp_path / "receiver.log"
    with log.open("wb") as out:
        proc = await asyncio.create_subprocess_exec(sys.executable, "-u", str(script),
                                                    stdout=out, stderr=subprocess.STDOUT)
    try:
        for _ in range(200):
            try:
                _r, w = await asyncio.open_connection("127.0.0.1", port)
                w.close()
                break
            except OSError:
                await asyncio.sleep(0.05)
        # the receiver checks timestamps against the real clock
        clock.now = datetime.now(UTC)
        async with bridge_stack(loaded_settings, clock, bridge_secret=SECRET,
                                bridge_callback_url=f"http://127.0.0.1:{port}/") as stack:
            conn = Connector(stack, secret=SECRET.encode())
            posted = await conn.post(BODY.encode())
            assert posted.status == 200 and posted.body == {"ok": True}
            async with stack.app.deps.sm() as s:
                tk = (await s.scalars(select(Ticket))).one()
            await drain(stack.app, stack.clock)
        printed = log.read_text(encoding="utf-8")
        assert "[g-42] " in printed and tk.number in printed
    finally:
        proc.kill()
        await proc.wait()
