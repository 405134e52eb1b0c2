"""What every server the local stack starts has in common: a child process in its own process
group, its log file, a controlled stop (then SIGKILL), a crash for fault tests, and a stop at
interpreter exit."""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import signal
import subprocess
from types import TracebackType
from typing import IO, Any, ClassVar, Self

log = logging.getLogger(__name__)


def signal_group(proc: subprocess.Popen[Any], sig: int) -> None:
    """Send ``sig`` to the process group ``proc`` leads (falls back to the process alone)."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        return
    except PermissionError:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(sig)


def terminate(proc: subprocess.Popen[Any], sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
    """Signal the group, wait up to ``timeout`` seconds, then SIGKILL. Returns the exit code."""
    signal_group(proc, sig)
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        log.warning("pid %s ignored signal %s for %.0fs; killing it", proc.pid, sig, timeout)
        signal_group(proc, signal.SIGKILL)
        return proc.wait(timeout=30)


class ServerProcess:
    """Base of the local servers: subclasses start ``_proc`` with its output in ``_log_fh`` and
    register ``_atexit`` when they launch it."""

    label: ClassVar[str] = "server"
    default_start_timeout: ClassVar[float] = 60.0

    _proc: subprocess.Popen[bytes] | None
    _log_fh: IO[bytes] | None

    @property
    def address(self) -> str:
        raise NotImplementedError

    def start(self, timeout: float = 60.0) -> Self:
        raise NotImplementedError

    def stop(self, timeout: float = 30.0) -> int | None:
        """Controlled shutdown: SIGTERM, wait up to ``timeout`` s, then SIGKILL."""
        proc = self._proc
        if proc is None:
            return None
        try:
            rc = terminate(proc, signal.SIGTERM, timeout)
        finally:
            self._close_log()
        log.info("%s on %s stopped (exit %s)", self.label, self.address, rc)
        return rc

    def kill(self) -> None:
        """SIGKILL the process group (no controlled shutdown; for fault tests). Data stays."""
        proc = self._proc
        if proc is None:
            return
        try:
            signal_group(proc, signal.SIGKILL)
            proc.wait(timeout=30)
        finally:
            self._close_log()

    def restart(self, timeout: float | None = None) -> Self:
        """Start again on the same ports and data (stopping first if still running)."""
        if self._proc is not None and self._proc.poll() is None:
            self.stop()
        return self.start(self.default_start_timeout if timeout is None else timeout)

    def _atexit(self) -> None:
        with contextlib.suppress(Exception):
            self.stop(timeout=15)

    def _close_log(self) -> None:
        with contextlib.suppress(Exception):
            atexit.unregister(self._atexit)
        if self._log_fh is not None:
            with contextlib.suppress(OSError):
                self._log_fh.close()
            self._log_fh = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
