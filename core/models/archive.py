"""Moving a saved model as one file: zip a model folder for download, unpack an upload into a model folder.

A saved model is `model.safetensors` + `card.json` (see `core.models.checkpoint`). An archive is a zip holding
those two files (at any depth: zips made by hand often wrap them in a folder). Unpacking reads only those two
members by name and writes them into a fresh folder, so a crafted archive cannot write elsewhere, and loading
still goes through `load_bundle`'s validation.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path, PurePosixPath

from core.errors import BadCheckpoint
from core.models.checkpoint import CARD, WEIGHTS

MAX_UPLOAD_BYTES = 512 * 1024 * 1024


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


def _from_zip(data: bytes) -> dict[str, bytes]:
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        raise BadCheckpoint("The uploaded archive is not a valid zip file.", "Zip the model folder again.") from exc
    found: dict[str, bytes] = {}
    with zf:
        for info in zf.infolist():
            name = PurePosixPath(info.filename).name
            if name in (WEIGHTS, CARD) and not info.is_dir():
                if name in found:
                    raise BadCheckpoint(f"The archive holds more than one {name}.", "Zip exactly one model folder.")
                if info.file_size > MAX_UPLOAD_BYTES:
                    raise BadCheckpoint(f"{name} in the archive is larger than {MAX_UPLOAD_BYTES >> 20} MB.",
                                        "Upload a smaller model or load it by path instead.")
                found[name] = zf.read(info)
    return found


def unpack_model(files: dict[str, bytes], dest_root: str | Path) -> Path:
    """Write an uploaded model into `dest_root/<content hash>/` and return that folder (a loadable model spec).

    `files` maps uploaded file names to their bytes: either one `.zip` archive, or `model.safetensors` and
    `card.json` themselves. The folder name is a hash of the content, so uploading the same model twice reuses it.
    """
    zips = [name for name in files if name.lower().endswith(".zip")]
    if len(zips) > 1 or (zips and len(files) > 1):
        raise BadCheckpoint("Upload either one zip archive or the two files model.safetensors and card.json.",
                            "Remove the extra files from the upload.")
    found = _from_zip(files[zips[0]]) if zips else {PurePosixPath(k).name: v for k, v in files.items()}
    missing = [name for name in (WEIGHTS, CARD) if name not in found]
    if missing:
        raise BadCheckpoint(f"The upload lacks {' and '.join(missing)}.",
                            "A saved model is model.safetensors plus card.json (or a zip of both).")
    digest = hashlib.sha1(found[WEIGHTS] + found[CARD]).hexdigest()[:16]
    folder = Path(dest_root) / digest
    folder.mkdir(parents=True, exist_ok=True)
    for name in (WEIGHTS, CARD):
        (folder / name).write_bytes(found[name])
    return folder
