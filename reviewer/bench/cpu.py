"""CPU time around a benchmark's timed work: is a stage bound by the machine's cores?

`read_times` reads this process's CPU seconds (every thread, user and system) and, on Linux,
the whole machine's busy and total core-seconds from ``/proc/stat``; `CpuUse.between` turns
two readings into what the work used: core-seconds of this process, of everything else on
the machine (a PostgreSQL server on the same host, say) and the share of all cores that were
busy. When the cores are busy all the time, overlapping stages cannot make the work faster:
only spending fewer core-seconds per image can.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

PROC_STAT = Path("/proc/stat")
# /proc/stat's first line: cpu user nice system idle iowait irq softirq steal (guest and
# guest_nice are already inside user and nice). Steal is time a virtual machine's cores ran
# someone else: neither busy here nor available, so it is left out of both.
IDLE_FIELDS = (3, 4)  # idle, iowait
COUNTED_FIELDS = 7  # up to softirq


def parse_proc_stat(text: str, ticks_per_second: float) -> tuple[float, float]:
    """Pure: (busy, total) core-seconds since boot from ``/proc/stat``'s text, steal left out."""
    line = next(line for line in text.splitlines() if line.startswith("cpu "))
    ticks = [int(value) for value in line.split()[1 : 1 + COUNTED_FIELDS]]
    total = sum(ticks)
    busy = total - sum(ticks[i] for i in IDLE_FIELDS)
    return busy / ticks_per_second, total / ticks_per_second


@dataclass(frozen=True)
class CpuTimes:
    """One reading: wall clock (`time.perf_counter`), this process's CPU seconds, the machine's
    core-seconds."""

    wall: float
    process: float
    machine_busy: float | None  # None where /proc/stat cannot be read
    machine_total: float | None


def read_times() -> CpuTimes:
    wall, process = time.perf_counter(), time.process_time()
    try:
        text = PROC_STAT.read_text()
    except OSError:
        return CpuTimes(wall, process, None, None)
    busy, total = parse_proc_stat(text, os.sysconf("SC_CLK_TCK"))
    return CpuTimes(wall, process, busy, total)


@dataclass(frozen=True)
class CpuUse:
    """What some work used: wall seconds, core-seconds of this process and of the rest of
    the machine (None without /proc/stat), the busy share of all cores (0 to 1)."""

    wall: float
    process: float
    others: float | None
    busy_share: float | None

    @classmethod
    def between(cls, before: CpuTimes, after: CpuTimes) -> CpuUse:
        wall, process = after.wall - before.wall, after.process - before.process
        if before.machine_busy is None or after.machine_busy is None:
            return cls(wall, process, None, None)
        busy = after.machine_busy - before.machine_busy
        total = after.machine_total - before.machine_total
        if total <= 0:  # both readings inside one clock tick: the machine's share unknown
            return cls(wall, process, None, None)
        return cls(wall, process, max(busy - process, 0.0), busy / total)

    def __add__(self, other: CpuUse) -> CpuUse:
        """Both pieces of work together (the busy share weighted by their wall time)."""
        if not self.wall or not other.wall:
            return other if not self.wall else self
        wall = self.wall + other.wall
        if self.others is None or other.others is None:
            return CpuUse(wall, self.process + other.process, None, None)
        share = (self.busy_share * self.wall + other.busy_share * other.wall) / wall
        return CpuUse(wall, self.process + other.process, self.others + other.others, share)


NO_USE = CpuUse(0.0, 0.0, 0.0, 0.0)  # nothing yet: the start of a sum


def per_image_line(
    use: CpuUse, images: int, sampler_ms: float | None = None, io_seconds: float | None = None
) -> str:
    """Pure: core-ms per image of this process (``io_seconds``: of it the I/O thread's) and
    of the rest of the machine, how busy the cores were, and (given the sampler's own core-ms
    per image) the sampler's share of it all: while every core stays busy, that share is the
    rate the work gets against the sampler alone, however well its stages overlap."""
    process_ms = 1000 * use.process / images
    io = f", {1000 * io_seconds / images:.2f} of it the I/O thread" if io_seconds else ""
    if use.others is None:
        return f"CPU: {process_ms:.2f} core-ms per image in this process{io} (no /proc/stat)"
    others_ms = 1000 * use.others / images
    line = (
        f"CPU: {process_ms + others_ms:.2f} core-ms per image ({process_ms:.2f} this process"
        f"{io}; {others_ms:.2f} the rest of the machine), cores {100 * use.busy_share:.0f}% busy"
    )
    if sampler_ms:
        share = sampler_ms / (process_ms + others_ms)
        line += (
            f"; the sampler alone needs {sampler_ms:.2f} core-ms per image, {100 * share:.0f}%"
            " of this: while every core stays busy, that is about the share of the sampler's"
            " rate the work gets, however well its stages overlap"
        )
    return line
