"""Writing the user's files safely: atomically (a temporary file beside the target, flushed,
fsync'ed and renamed over it, so a crash or a full disk leaves the previous file intact), with
the permissions a new file would get, and a check before any work that the target can be written.

Used by :mod:`deepff.io` (models, checkpoints), the MNIST download, plots and the ``deepff``
command; :mod:`deepff.io` re-exports them. :func:`write_or_recover` keeps a file that cannot be
written where asked (a full disk after an hour of training) in a recovery folder instead.
"""

from __future__ import annotations

import errno
import os
import stat
import tempfile
import time

__all__ = ["atomic_write", "check_writable", "write_or_recover", "recovery_folders"]


def _umask():
    try:  # Linux: read it without changing it (os.umask would, for every thread)
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    umask = os.umask(0o022)
    os.umask(umask)
    return umask


def _new_file_mode(path):
    """Permissions for the file replacing ``path``: its own, or 0666 less the umask."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        return 0o666 & ~_umask()


def _write_protected(path):
    """True for an existing file that its owner has marked read-only (also when running as root)."""
    if not os.path.exists(path):   # e.g. a dangling symbolic link: nothing to protect
        return False
    try:
        return not os.access(path, os.W_OK) or not os.stat(path).st_mode & 0o222
    except OSError:
        return False


def _link_target(path):
    """The file a symbolic link at ``path`` names (followed to the end), else ``path`` itself."""
    return os.path.realpath(path) if os.path.islink(path) else path


def check_writable(path, probe=False):
    """Raise unless :func:`atomic_write` may write ``path``.

    Parameters
    ----------
    path : str or path-like
    probe : bool, default False
        Also create (and remove) a temporary file in the target's folder,
        to find an unwritable folder before any work is done.

    Raises
    ------
    OSError
        Naming ``path``: it is a folder, its folder is missing or not
        writable, or it is an existing write-protected file (never replaced,
        whoever runs deepff).
    """
    path = os.fspath(path)
    shown, path = path, _link_target(path)
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise IsADirectoryError(errno.EISDIR, "is a folder, not a file", shown)
    if os.path.exists(path) and not os.path.isfile(path):
        raise OSError(errno.EINVAL, "is not a regular file (a device, pipe or socket); deepff does not replace it",
                      shown)
    if not os.path.isdir(folder):
        raise FileNotFoundError(errno.ENOENT, f"its folder {folder} does not exist", shown)
    if os.path.lexists(path) and _write_protected(path):
        raise PermissionError(errno.EACCES, "the file is write-protected; deepff does not replace it", shown)
    if probe:
        try:
            fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=folder)
        except OSError as exc:
            raise type(exc)(exc.errno, f"cannot create files in its folder ({exc.strerror})", shown) from None
        os.close(fd)
        os.unlink(tmp)


def atomic_write(path, write):
    """Write a file atomically: temp file in the same folder, fsync, rename.

    Parameters
    ----------
    path : str or path-like
        Target; replaced only once the new content is fully on disk. Its
        permissions are kept (a new file gets 0666 less the umask). An
        existing write-protected file is never replaced.
    write : callable
        ``write(fileobj)`` writes the content to a binary file object.

    Raises
    ------
    OSError
        (or whatever ``write`` raises) with the target untouched and the
        temporary file removed; an OSError names ``path``, never the
        temporary file.
    """
    path = os.fspath(path)
    check_writable(path)
    path = _link_target(path)        # through a symbolic link: the file it names is replaced, the link kept
    folder = os.path.dirname(os.path.abspath(path))
    mode = _new_file_mode(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise type(exc)(exc.errno, f"cannot create files in its folder ({exc.strerror})", path) from None
    try:
        with os.fdopen(fd, "wb") as fh:
            try:
                os.fchmod(fh.fileno(), mode)
            except (AttributeError, OSError):  # pragma: no cover - Windows
                pass
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError) and exc.filename == tmp:  # name the user's file, not ours
            raise type(exc)(exc.errno, exc.strerror, path) from None
        raise
    try:  # make the rename itself durable
        dfd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass


def recovery_folders():
    """Where a file that could not be written after training is saved instead, in order of preference.

    ``$DEEPFF_RECOVERY_DIR`` when set, then the current folder (where the
    user looks first, and which outlives a reboot), then the home folder,
    then the temporary folder (on another disk, often, when the others are
    full). Folders that do not exist are left out.

    Returns
    -------
    list of str
    """
    candidates = [os.environ.get("DEEPFF_RECOVERY_DIR"), os.getcwd(), os.path.expanduser("~"),
                  tempfile.gettempdir()]
    seen, folders = set(), []
    for folder in candidates:
        if folder and os.path.isdir(folder) and os.path.realpath(folder) not in seen:
            seen.add(os.path.realpath(folder))
            folders.append(folder)
    return folders


def write_or_recover(write_to, path):
    """Write a file with ``write_to(path)``; when that fails, write it to a recovery folder instead.

    A run that trained for an hour must not lose its model because the
    output folder is full or gone: the content goes to the first of
    :func:`recovery_folders` that takes it, under a new name
    (``NAME.recovered-YYYYmmdd-HHMMSS.EXT``) that replaces nothing.

    Parameters
    ----------
    write_to : callable
        ``write_to(target)`` writes the whole file at ``target`` (atomically,
        as :func:`save` does) or raises OSError.
    path : str or path-like
        Where the user asked for the file.

    Returns
    -------
    recovered : str or None
        None when ``path`` was written; else where the file is now.
    error : OSError or None
        Why ``path`` could not be written.

    Raises
    ------
    OSError
        The first error, when no recovery folder could take the file either.
    """
    path = os.fspath(path)
    try:
        write_to(path)
        return None, None
    except OSError as exc:
        error = exc
    stem, ext = os.path.splitext(os.path.basename(path))
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for folder in recovery_folders():
        for n in range(100):
            name = f"{stem}.recovered-{stamp}{'' if n == 0 else f'-{n}'}{ext}"
            target = os.path.join(folder, name)
            if not os.path.lexists(target):
                break
        else:
            continue
        try:
            write_to(target)
            return target, error
        except OSError:
            continue
    raise error
