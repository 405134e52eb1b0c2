"""What the figures were measured on."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
from datetime import UTC, datetime


def describe() -> dict[str, str]:
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem_gib = "?"
    try:
        with open("/proc/meminfo", encoding="utf-8") as handle:
            kb = int(handle.readline().split()[1])
            mem_gib = f"{kb / 1024 / 1024:.0f}"
    except (OSError, ValueError, IndexError):
        pass
    java_bin = shutil.which("java") or "/usr/bin/java"
    java = subprocess.run(  # noqa: S603 - a fixed argument list
        [java_bin, "-version"],
        capture_output=True,
        text=True,
        check=False,
    ).stderr.splitlines()
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": f"{os.cpu_count()} cores, {cpu}",
        "memory": f"{mem_gib} GiB",
        "os": platform.platform(),
        "python": platform.python_version(),
        "java": java[0] if java else "unknown",
    }
