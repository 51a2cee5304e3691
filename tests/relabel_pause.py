"""Test helper: run `uxcx` and freeze it (SIGSTOP) at one point of a relabel job, for the kill tests.

These points last micro- to milliseconds, too short to hit by watching the file system, so the job
stops itself there and the test SIGKILLs it. The hooks only stop the process; nothing the job
writes changes. Used only by tests/test_relabel.py; nothing in the package knows about it.

    python -m tests.relabel_pause POINT -- relabel INPUT -o OUTPUT ...

POINT is one of
    marker:K   chunk K's data files are in place, its marker is written but not yet renamed
    part:N     N chunk files have been appended to the output and rejects being assembled
    rename     both final files are assembled and the rejects renamed into place; the output not yet
    rmtree:N   the output is in place; N files of the state folder have been removed
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
from typing import Any


def _stop() -> None:
    os.kill(os.getpid(), signal.SIGSTOP)


def install(point: str) -> None:
    """Patch the one call at which the job must stop."""
    name, _, arg = point.partition(":")
    if name in ("marker", "rename"):
        target = f"{int(arg):08d}.json.tmp" if name == "marker" else "output.assembling"
        real_replace = os.replace

        def replace(src: Any, dst: Any, *a: Any, **kw: Any) -> None:
            if os.path.basename(os.fsdecode(src)) == target:
                _stop()
            real_replace(src, dst, *a, **kw)

        os.replace = replace
    elif name == "part":
        from classifier.relabel_io import FinalWriter

        real_add, left = FinalWriter.add_file, [int(arg)]

        def add_file(self: FinalWriter, part: Any) -> None:
            real_add(self, part)
            left[0] -= 1
            if left[0] == 0:
                _stop()

        FinalWriter.add_file = add_file  # type: ignore[method-assign]
    elif name == "rmtree":
        real_rmtree, real_unlink = shutil.rmtree, os.unlink
        count, active = [int(arg)], [False]

        def unlink(path: Any, *a: Any, **kw: Any) -> None:
            real_unlink(path, *a, **kw)
            if active[0]:
                count[0] -= 1
                if count[0] == 0:
                    _stop()

        def rmtree(path: Any, *a: Any, **kw: Any) -> None:
            active[0] = os.fsdecode(path).endswith(".partial")
            try:
                real_rmtree(path, *a, **kw)
            finally:
                active[0] = False

        os.unlink, shutil.rmtree = unlink, rmtree  # type: ignore[assignment]
    else:
        raise SystemExit(f"unknown point {point!r}")


def main(argv: list[str]) -> int:
    point, dashes, *args = argv
    assert dashes == "--", "usage: python -m tests.relabel_pause POINT -- relabel ..."
    install(point)
    from cli.main import main as uxcx

    return uxcx(args)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
