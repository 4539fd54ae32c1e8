"""All-or-nothing export folders: build in `<out>.partial`, rename into place only when complete.

A cancelled, crashed or disk-full export therefore never leaves a folder that looks finished.
"""

from __future__ import annotations

import errno
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from studio.engine.errors import StudioError

PARTIAL_SUFFIX = ".partial"


def partial_path(final: Path) -> Path:
    return final.with_name(final.name + PARTIAL_SUFFIX)


@contextmanager
def staged_output(final: Path, *, export_errors: bool = True) -> Iterator[Path]:
    """Yield an empty staging folder; on success it replaces `final`, on any failure it is removed.

    A failed write becomes an export error (`write_error`); with `export_errors=False` the OSError itself goes
    on, for callers that word it their own way (training reports a full disk as a run error)."""
    staging = partial_path(final)
    shutil.rmtree(staging, ignore_errors=True)
    try:
        staging.mkdir(parents=True)
        yield staging
        _replace(staging, final)
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        if not export_errors:
            raise
        raise write_error(exc, final) from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _replace(staging: Path, final: Path) -> None:
    """Swap the finished folder in; an older export of the same kind is removed only after the swap."""
    old = final.with_name(final.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        final.rename(old)
    staging.rename(final)
    shutil.rmtree(old, ignore_errors=True)


def write_error(exc: OSError, target: Path) -> StudioError:
    """A plain-language error for a failed write, with disk-full called out because it is the usual cause."""
    if exc.errno == errno.ENOSPC:
        return StudioError(
            what="The disk filled up before the export was finished.",
            why=f"Studio ran out of space while writing {target}. Nothing half-written was kept.",
            actions=[
                "Free some disk space (a merged model needs a few times the model's size) and try again.",
                "Export to another disk with --out.",
            ],
            code="disk_full",
        )
    return StudioError(
        what=f"Studio could not write the export to {target}.",
        why=exc.strerror or str(exc),
        actions=["Check that you may write to that folder.", "Export somewhere else with --out."],
        code="export_write_failed",
    )
