"""Moving a saved model as one file: zip a model folder for download, unpack an upload into a model folder.

A saved model is `model.safetensors` + `card.json` (see `core.models.checkpoint`). An archive is a zip holding
those two files (at any depth: zips made by hand often wrap them in a folder). Unpacking reads only those two
members by name and writes them into a fresh folder, so a crafted archive cannot write elsewhere; each member is
decompressed in chunks and abandoned once it passes the size cap, so an archive that lies about its sizes costs
no more than the cap; loading still goes through `load_bundle`'s validation.
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

from core.errors import ZIP_MEMBER_ERRORS, BadCheckpoint
from core.models.checkpoint import CARD, WEIGHTS

MAX_UPLOAD_BYTES = 512 * 1024 * 1024  # an upload (archive, or the two files) and everything unpacked from it
MAX_ENTRIES = 10_000  # archive members looked at (a zip's directory can list millions)
CHUNK = 1 << 20


def zip_model(folder: str | Path) -> bytes:
    """The two files of a saved model folder as zip bytes (members `model.safetensors` and `card.json`)."""
    folder = Path(folder)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name in (WEIGHTS, CARD):
            if not (folder / name).is_file():
                raise BadCheckpoint(f"{folder} has no {name}.", "Only a complete saved model can be zipped.")
            zf.write(folder / name, arcname=name)
    return buf.getvalue()


def _from_zip(data: bytes, staging: Path) -> dict[str, Path]:
    """Unpack the two model files from zip bytes into `staging`, each through `_unpack_capped` (the header's
    sizes are not trusted); return name -> unpacked file."""
    fix = "Zip the model folder again (zip -r model.zip FOLDER), without a password."
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError) as exc:
        raise BadCheckpoint("The uploaded archive is not a valid zip file.", fix) from exc
    found: dict[str, Path] = {}
    budget = MAX_UPLOAD_BYTES
    with zf:
        for info in zf.infolist()[:MAX_ENTRIES]:
            name = PurePosixPath(info.filename).name
            if name in (WEIGHTS, CARD) and not info.is_dir():
                if name in found:
                    raise BadCheckpoint(f"The archive holds more than one {name}.", "Zip exactly one model folder.")
                found[name] = staging / name
                budget -= _unpack_capped(zf, info, found[name], budget, fix)
    return found


def _unpack_capped(zf: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path, cap: int, fix: str) -> int:
    """Decompress one entry into `target` chunk by chunk, stopping as soon as it passes `cap` bytes whatever its
    header claims (so memory stays at one chunk); return its size. Encrypted, corrupt or unsupported entries
    become BadCheckpoint."""
    name = PurePosixPath(info.filename).name
    if info.flag_bits & 0x1:
        raise BadCheckpoint(f"{name} in the archive is encrypted.", fix)
    size = 0
    try:
        with zf.open(info) as member, target.open("wb") as out:
            while chunk := member.read(CHUNK):
                size += len(chunk)
                if size > cap:
                    raise BadCheckpoint(f"{name} in the archive unpacks to more than the upload limit of "
                                        f"{MAX_UPLOAD_BYTES >> 20} MB (Lethe stops reading there).",
                                        "Upload a smaller model, or load it by folder path.")
                out.write(chunk)
    except BadCheckpoint:
        raise
    except ZIP_MEMBER_ERRORS as exc:
        raise BadCheckpoint(f"{name} in the archive cannot be unpacked ({type(exc).__name__}: {str(exc)[:120]}).",
                            fix) from exc
    return size


def unpack_model(files: dict[str, bytes], dest_root: str | Path) -> Path:
    """Write an uploaded model into `dest_root/<content hash>/` and return that folder (a loadable model spec).

    `files` maps uploaded file names to their bytes: either one `.zip` archive, or `model.safetensors` and
    `card.json` themselves. Files are unpacked into a staging folder first and moved into place once complete;
    the folder name is a hash of the content, so uploading the same model twice reuses it.
    """
    zips = [name for name in files if name.lower().endswith(".zip")]
    if len(zips) > 1 or (zips and len(files) > 1):
        raise BadCheckpoint("Upload either one zip archive or the two files model.safetensors and card.json.",
                            "Remove the extra files from the upload.")
    total = sum(len(v) for v in files.values())
    if total > MAX_UPLOAD_BYTES:
        raise BadCheckpoint(f"The upload is {total >> 20} MB; Lethe accepts at most {MAX_UPLOAD_BYTES >> 20} MB.",
                            "Load a larger model by folder path instead.")
    dest_root = Path(dest_root)
    dest_root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest_root, prefix=".staging-") as tmp:
        staging = Path(tmp)
        if zips:
            found = _from_zip(files[zips[0]], staging)
        else:
            found = {}
            for key, value in files.items():
                found[PurePosixPath(key).name] = staging / PurePosixPath(key).name
                found[PurePosixPath(key).name].write_bytes(value)
        missing = [name for name in (WEIGHTS, CARD) if name not in found]
        if missing:
            raise BadCheckpoint(f"The upload lacks {' and '.join(missing)}.",
                                "A saved model is model.safetensors plus card.json (or a zip of both).")
        digest = hashlib.sha1()
        for name in (WEIGHTS, CARD):
            with found[name].open("rb") as fh:
                while chunk := fh.read(CHUNK):
                    digest.update(chunk)
        folder = dest_root / digest.hexdigest()[:16]
        folder.mkdir(exist_ok=True)
        for name in (WEIGHTS, CARD):
            os.replace(found[name], folder / name)
    return folder
