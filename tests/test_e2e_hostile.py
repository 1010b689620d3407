"""End to end, hostile uploads (issue 10): in the real app, a model card that names `os:system` and a zip that lies
about its entry sizes are each refused with a message in the page, nothing runs, and the server keeps answering.

The hostile card's command would create a marker file; the test proves it never appears.
"""

from __future__ import annotations

import io
import json
import struct
import urllib.request
import zipfile
from pathlib import Path

import pytest

from core.models import load_model, save_bundle
from test_e2e_app import CHROMIUM, _assert_clean, _shot, _wait_idle, app_url, browser  # noqa: F401

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium (`make test` installs it)"),
]


def _hostile_card_zip(tmp_path: Path, marker: Path) -> Path:
    folder = save_bundle(load_model("toy-gan", "cpu"), tmp_path / "hostile")
    card = json.loads((folder / "card.json").read_text())
    card.update(architecture="factory:os:system", hparams={"command": f"touch {marker}"})
    (folder / "card.json").write_text(json.dumps(card))
    archive = tmp_path / "hostile-card.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.write(folder / "card.json", "card.json")
        zf.write(folder / "model.safetensors", "model.safetensors")
    return archive


def _lying_zip(tmp_path: Path) -> Path:
    """8 MB of deflated zeros whose local and central headers claim 100 bytes."""
    card = (save_bundle(load_model("toy-gan", "cpu"), tmp_path / "liar") / "card.json").read_bytes()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("card.json", card)
        zf.writestr("model.safetensors", b"\0" * (8 << 20))
    data = bytearray(buf.getvalue())
    for sig, size_at, name_len_at, name_at in ((b"PK\x03\x04", 22, 26, 30), (b"PK\x01\x02", 24, 28, 46)):
        at = data.find(sig)
        while at >= 0:
            (name_len,) = struct.unpack("<H", data[at + name_len_at:at + name_len_at + 2])
            if bytes(data[at + name_at:at + name_at + name_len]) == b"model.safetensors":
                data[at + size_at:at + size_at + 4] = struct.pack("<I", 100)
            at = data.find(sig, at + 4)
    archive = tmp_path / "lying.zip"
    archive.write_bytes(bytes(data))
    return archive


def _healthy(url: str) -> bool:
    with urllib.request.urlopen(f"{url}/_stcore/health", timeout=10) as resp:
        return resp.read().strip() == b"ok"


def _upload(page, archive: Path) -> str:
    """Upload `archive` in the sidebar; return the text of the sidebar's error box."""
    page.locator('[data-testid="stSidebar"] input[type="file"]').set_input_files(str(archive))
    error = page.locator('[data-testid="stSidebar"] [data-testid="stAlertContentError"]').first
    error.wait_for(timeout=120_000)
    _wait_idle(page)
    return error.inner_text()


def test_hostile_uploads_end_in_the_error_box_and_the_server_stays_up(app_url, tmp_path):  # noqa: F811
    marker = tmp_path / "pwned"
    with browser(tmp_path) as (_, page):
        page.goto(app_url)
        _wait_idle(page)
        page.locator('[data-testid="stSidebar"]').get_by_text("Upload", exact=True).click()
        _wait_idle(page)

        text = _upload(page, _hostile_card_zip(tmp_path, marker))
        assert "factory 'os:system'" in text and "LETHE_TRUST_FACTORIES=os" in text
        assert "uploads" not in text and "zoo" not in text.lower()  # no server temp path, no zoo-restore advice
        _assert_clean(page, "hostile card upload")
        _shot(page, "hostile-01-card")
        assert not marker.exists()
        assert _healthy(app_url)

        page.reload()
        _wait_idle(page)
        page.locator('[data-testid="stSidebar"]').get_by_text("Upload", exact=True).click()
        _wait_idle(page)
        text = _upload(page, _lying_zip(tmp_path))
        assert "cannot be unpacked" in text
        _assert_clean(page, "lying zip upload")
        _shot(page, "hostile-02-lying-zip")
        assert _healthy(app_url)
