"""Checksums of a checkpoint's files: the manifest written on commit and checked on restore.

orbax 0.12 cannot checksum array data: TensorStore's OCDBT checksums its own tree nodes
and manifest, and orbax's zarr3 layout the shard index, but the chunks carry none, orbax
has no option to add TensorStore's ``crc32c`` codec to them, and the JSON metadata files
(``_METADATA``, ``_sharding``, jopt's metadata) are unchecked. So every file of a committed
step folder gets a CRC-32 here, per block of ``BLOCK_BYTES`` so that the blocks hash in
parallel (``zlib.crc32`` releases the GIL). The manifest is written right after orbax's
atomic rename, itself atomically (a temporary file, then ``os.replace``), and carries a
CRC-32 of its own content. A checkpoint whose metadata promises a manifest but has none
is damaged (deleted, or the process stopped between the commit and the manifest). CRC-32
detects accidental damage (bit flips, truncation, lost files), not deliberate tampering.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import os
import re
import zlib
from typing import Any

import orbax.checkpoint as ocp
from orbax.checkpoint._src.path import atomicity

MANIFEST = "jopt_manifest.json"
MARKER = "jopt_checkpoints.json"  # marks a Checkpointer's folder, whose children are steps
BLOCK_BYTES = 1 << 26  # 64 MiB: parallel blocks without holding much memory per thread
_KIND = "jopt.train.checkpoint.manifest"


# What TensorStore (under orbax) raises on a damaged or lost file: a ValueError whose
# message says it could not open or read it. JSON's errors and lost files are named below.
_TENSORSTORE_READ = re.compile(r"Error (opening|reading) ")


def is_damage(error: BaseException) -> bool:
    """Whether an error raised while orbax reads a checkpoint comes from its files (lost,
    cut or changed), not from the caller: only those may fall back to an older step."""
    if isinstance(error, (OSError, json.JSONDecodeError, UnicodeDecodeError)):
        return True
    return type(error) is ValueError and bool(_TENSORSTORE_READ.search(str(error)))


class CheckpointCorruptedError(ValueError):
    """A checkpoint's files are damaged or unreadable.

    Attributes:
      step: the checkpoint's step.
      folder: the step's folder.
      file: the damaged file, relative to ``folder`` (None if not one file).
      reason: what is wrong with it.
      intact: the steps on disk that verified intact (filled in by ``restore``).
    """

    def __init__(self, step: int, folder: str, file: str | None, reason: str) -> None:
        self.step, self.folder, self.file, self.reason = step, folder, file, reason
        self.intact: list[int] | None = None
        super().__init__(self._message())

    def _message(self) -> str:
        where = f"file {self.file!r} of " if self.file else ""
        text = f"checkpoint {self.step} is damaged: {where}{self.folder!r}: {self.reason}"
        if self.intact is not None:
            text += f"; intact steps on disk: {self.intact}"
        return text

    def with_intact(self, intact: list[int]) -> CheckpointCorruptedError:
        """Name the intact steps in the message (the fix: restore one of them)."""
        self.intact = list(intact)
        self.args = (self._message() + "; restore one of those, or start a new folder",)
        return self


def _crc(path: str, offset: int, size: int) -> int:
    with open(path, "rb") as f:
        f.seek(offset)
        return zlib.crc32(f.read(size))


def files_in(folder: str) -> list[str]:
    """Every file under ``folder`` but the manifest, as sorted ``/``-separated relative paths."""
    found = []
    for root, _, names in os.walk(folder):
        for name in names:
            found.append(os.path.relpath(os.path.join(root, name), folder).replace(os.sep, "/"))
    return sorted(name for name in found if not name.startswith(MANIFEST))


def checksum_files(folder: str, names: list[str]) -> dict[str, dict[str, Any]]:
    """``{name: {"size": bytes, "crc32": [per-block CRC-32]}}`` for files under ``folder``."""
    sizes = {name: os.path.getsize(os.path.join(folder, name)) for name in names}
    jobs = [
        (name, offset)
        for name in names
        for offset in range(0, max(sizes[name], 1), BLOCK_BYTES)
    ]  # fmt: skip
    with concurrent.futures.ThreadPoolExecutor(min(len(jobs), os.cpu_count() or 1) or 1) as pool:
        crcs = pool.map(lambda job: _crc(os.path.join(folder, job[0]), job[1], BLOCK_BYTES), jobs)
        table: dict[str, dict[str, Any]] = {n: {"size": sizes[n], "crc32": []} for n in names}
        for (name, _), crc in zip(jobs, crcs, strict=True):
            table[name]["crc32"].append(crc)
    return table


def _digest(files: dict[str, Any]) -> int:
    return zlib.crc32(json.dumps(files, sort_keys=True).encode())


def write_manifest(folder: str) -> None:
    """Checksum every file of ``folder`` and write the manifest atomically."""
    files = checksum_files(folder, files_in(folder))
    body = {"format": _KIND, "version": 1, "files": files, "digest": _digest(files)}
    temporary = os.path.join(folder, MANIFEST + ".tmp")
    # No fsync: it would force the whole checkpoint out to disk at once (a journalling file
    # system flushes other files' data with it). A manifest lost in a power cut reads as
    # damage, so the checkpoint is skipped, never restored unchecked.
    with open(temporary, "w") as f:
        json.dump(body, f)
    os.replace(temporary, os.path.join(folder, MANIFEST))


def read_manifest(folder: str, step: int) -> dict[str, Any] | None:
    """The manifest's file table, None if there is none; damage raises."""
    path = os.path.join(folder, MANIFEST)
    if not os.path.exists(path):
        return None
    try:
        with open(path, "rb") as f:
            body = json.loads(f.read().decode())
        files = body["files"]
        intact = isinstance(files, dict) and body.get("digest") == _digest(files)
    except (ValueError, UnicodeDecodeError, KeyError, TypeError) as error:
        raise CheckpointCorruptedError(step, folder, MANIFEST, f"unreadable ({error})") from None
    if not intact:
        raise CheckpointCorruptedError(
            step, folder, MANIFEST, "the manifest's own checksum does not match its content"
        )
    return files


def verify(folder: str, step: int, files: dict[str, Any]) -> None:
    """Raise :class:`CheckpointCorruptedError` for the first file that differs from ``files``."""
    for name, entry in files.items():
        path = os.path.join(folder, name)
        if not os.path.isfile(path):
            raise CheckpointCorruptedError(step, folder, name, "missing")
        size = os.path.getsize(path)
        if size != entry["size"]:
            raise CheckpointCorruptedError(
                step, folder, name, f"has {size} bytes, {entry['size']} were saved (cut or grown)"
            )
    found = checksum_files(folder, list(files))
    for name, entry in files.items():
        if found[name]["crc32"] != entry["crc32"]:
            raise CheckpointCorruptedError(
                step, folder, name, "its CRC-32 differs from the one saved (the bytes changed)"
            )


class ManifestOnCommit(atomicity.AtomicRenameTemporaryPath):
    """orbax's atomic rename, then the manifest of the committed step (on the primary host)."""

    async def finalize(self) -> None:
        await super().finalize()
        final = os.fspath(self.get_final())
        # orbax commits each item's subfolder the same way; only the step folder gets one.
        if os.path.exists(os.path.join(os.path.dirname(final), MARKER)):
            await asyncio.to_thread(write_manifest, final)


class TolerantManager(ocp.CheckpointManager):
    """orbax's manager, reading a damaged metrics file as no metrics instead of failing.

    orbax reads every step's metrics when it opens a folder; a damaged one would make the
    folder unopenable, so the intact steps could not be restored. The restore of that step
    still fails its checksum.
    """

    def metrics(self, step: int) -> Any:
        try:
            return super().metrics(step)
        except ValueError:  # JSONDecodeError, UnicodeDecodeError
            return None
