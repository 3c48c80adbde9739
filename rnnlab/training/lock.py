"""One training process per workdir: :class:`WorkdirLock` (``workdir/lock`` names the holder's pid and host)."""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import json
import os
import socket

from absl import logging

from rnnlab.training.workdir import LOCK_FILE


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class WorkdirLock:
    """One training process per workdir: an exclusive ``flock`` on ``workdir/lock``.

    The file holds the holder's ``{"pid", "host", "since"}``. The kernel drops
    a ``flock`` when its process dies (even by SIGKILL), so on the same host a
    lock file nobody holds is stale and is taken over. A lock written by
    another host (a shared file system) is refused while its file exists,
    since its process cannot be checked from here.

    Args:
      workdir: the run's directory (created if missing; removed again on release
        if it was created here and is still empty).
      process: with several hosts, process ``i > 0`` locks ``lock.process<i>``.

    Raises (on enter):
      RuntimeError: another process holds the workdir (the message names it).
    """

    def __init__(self, workdir: str, process: int = 0):
        self.workdir = workdir
        name = LOCK_FILE if process == 0 else f"{LOCK_FILE}.process{process}"
        self.path = os.path.join(workdir, name)
        self._file = None
        self._created_workdir = False

    def _holder(self) -> dict:
        try:
            with open(self.path) as f:
                return json.loads(f.read() or "{}")
        except (OSError, ValueError):
            return {}

    def _refuse(self, holder: dict, why: str) -> RuntimeError:
        who = f"pid {holder.get('pid', '?')} on host {holder.get('host', '?')} (since {holder.get('since', '?')})"
        return RuntimeError(f"{self.workdir} is in use by {who}: {why}. One process trains in a workdir "
                            f"at a time; wait for it or use another --workdir.")

    def __enter__(self) -> "WorkdirLock":
        self._make_workdir()
        host = socket.gethostname()
        while True:
            try:
                f = open(self.path, "a+")
            except FileNotFoundError:  # a holder that had made the workdir removed it as it released it
                self._make_workdir()
                continue
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                locked = True
            except BlockingIOError:
                locked = False
            # The holder may have released (removed) the file between our open and flock: retry.
            try:
                current = os.path.samestat(os.fstat(f.fileno()), os.stat(self.path))
            except FileNotFoundError:
                current = False
            if locked and current:
                break
            f.close()
            if current:
                self._release_workdir()
                raise self._refuse(self._holder(), "it holds " + self.path)
        holder = self._holder()
        if holder and holder.get("host") not in (None, host):
            fcntl.flock(f, fcntl.LOCK_UN)
            f.close()
            self._release_workdir()
            raise self._refuse(holder, f"its lock {self.path} comes from another host; if that process "
                                       "no longer runs, delete the file")
        if holder:
            alive = "still alive, but not holding it" if _pid_alive(int(holder.get("pid", 0) or 0)) else "dead"
            logging.warning("taking over the stale lock %s of pid %s on %s (%s)",
                            self.path, holder.get("pid"), holder.get("host"), alive)
        f.seek(0)
        f.truncate()
        since = datetime.datetime.now().isoformat(timespec="seconds")
        f.write(json.dumps({"pid": os.getpid(), "host": host, "since": since}))
        f.flush()
        self._file = f
        return self

    def _make_workdir(self) -> None:
        with contextlib.suppress(FileExistsError):  # made already, or by another process at this very moment
            os.makedirs(self.workdir)
            self._created_workdir = True

    def _release_workdir(self) -> None:
        if self._created_workdir:
            with contextlib.suppress(OSError):
                os.rmdir(self.workdir)  # only if still empty

    def __exit__(self, *exc) -> None:
        if self._file is None:
            return
        with contextlib.suppress(OSError):
            os.remove(self.path)  # while still holding it: no one else has taken this file
        fcntl.flock(self._file, fcntl.LOCK_UN)
        self._file.close()
        self._file = None
        self._release_workdir()
