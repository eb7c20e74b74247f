"""A real filesystem that runs out of space, for the tests of what a full disk must not cost.

:func:`mounted` mounts a 1 MiB tmpfs (root only: CI runs as root; elsewhere
the tests skip, and in CI a failed mount fails them, see ``_needs``), and
:func:`fill` fills it, so that writes there fail with ENOSPC for real.
"""

from __future__ import annotations

import errno
import os
import subprocess

from _needs import require


def mounted(tmp_path):
    """Yield a folder on a freshly mounted 1 MiB tmpfs, unmounted afterwards (a fixture's body)."""
    folder = tmp_path / "full"
    folder.mkdir()
    require(hasattr(os, "geteuid") and os.geteuid() == 0, area="full-disk tests",
            reason="mounting a small tmpfs needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(folder)],
                          capture_output=True, text=True)
    require(done.returncode == 0, area="full-disk tests", reason=f"mount failed: {done.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def fill(folder, leave=0):
    """Fill ``folder``'s filesystem until at most ``leave`` bytes are free."""
    with open(folder / "filler", "wb") as fh:
        try:
            while True:
                st = os.statvfs(folder)
                free = st.f_bavail * st.f_frsize
                if free <= leave:
                    break
                fh.write(b"\0" * min(65536, free - leave))
                fh.flush()
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
