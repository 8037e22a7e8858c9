"""The CPU accounting of the benchmarks: /proc/stat read as the kernel documents it, readings
turned into core-seconds of this process and of the rest of the machine, and the line that says
what share of the work the sampler is."""

from __future__ import annotations

import time

import pytest

from reviewer.bench import cpu

STAT = """cpu  100 10 40 800 50 0 5 5 7 3
cpu0 50 5 20 400 25 0 2 3 0 0
intr 12345
"""


def test_busy_is_everything_but_idle_and_iowait_guest_counted_once():
    busy, total = cpu.parse_proc_stat(STAT, ticks_per_second=100)
    # user nice system idle iowait irq softirq steal: guest (7) and guest_nice (3) are
    # already inside user and nice, so they are not added again; steal (5) is neither
    assert total == pytest.approx((100 + 10 + 40 + 800 + 50 + 0 + 5) / 100)
    assert busy == pytest.approx((100 + 10 + 40 + 0 + 5) / 100)


def test_a_reading_pair_splits_this_process_from_the_rest_of_the_machine():
    before = cpu.CpuTimes(wall=10.0, process=1.0, machine_busy=100.0, machine_total=200.0)
    after = cpu.CpuTimes(wall=12.0, process=3.5, machine_busy=103.8, machine_total=204.0)
    use = cpu.CpuUse.between(before, after)
    assert use.wall == pytest.approx(2.0) and use.process == pytest.approx(2.5)
    assert use.others == pytest.approx(1.3) and use.busy_share == pytest.approx(0.95)
    both = cpu.NO_USE + use + cpu.CpuUse(wall=6.0, process=1.0, others=0.5, busy_share=0.55)
    assert both.wall == pytest.approx(8.0) and both.process == pytest.approx(3.5)
    assert both.others == pytest.approx(1.8)
    assert both.busy_share == pytest.approx((0.95 * 2 + 0.55 * 6) / 8)  # weighted by wall time


def test_readings_inside_one_clock_tick_leave_the_machine_unknown():
    before = cpu.CpuTimes(wall=0.0, process=0.0, machine_busy=5.0, machine_total=9.0)
    after = cpu.CpuTimes(wall=0.001, process=0.001, machine_busy=5.0, machine_total=9.0)
    use = cpu.CpuUse.between(before, after)
    assert use.others is None and use.busy_share is None
    summed = use + cpu.CpuUse(wall=1.0, process=0.5, others=0.1, busy_share=0.9)
    assert summed.others is None and summed.busy_share is None  # no half-known sum
    assert cpu.per_image_line(summed, 1).endswith("(no /proc/stat)")


def test_without_proc_stat_only_this_process_is_counted():
    before = cpu.CpuTimes(wall=0.0, process=0.0, machine_busy=None, machine_total=None)
    after = cpu.CpuTimes(wall=1.0, process=0.4, machine_busy=None, machine_total=None)
    use = cpu.CpuUse.between(before, after)
    assert use.others is None and use.busy_share is None
    assert cpu.per_image_line(use, 100) == (
        "CPU: 4.00 core-ms per image in this process (no /proc/stat)"
    )


def test_the_line_gives_the_sampler_share_of_the_work():
    use = cpu.CpuUse(wall=3.0, process=2.5, others=0.5, busy_share=0.97)
    line = cpu.per_image_line(use, 1000, sampler_ms=2.4, io_seconds=0.6)
    assert line.startswith(
        "CPU: 3.00 core-ms per image (2.50 this process, 0.60 of it the I/O thread; "
        "0.50 the rest of the machine), cores 97% busy; the sampler alone needs 2.40 "
        "core-ms per image, 80% of this"
    )


def test_a_reading_sees_this_process_work():
    before = cpu.read_times()
    deadline = time.process_time() + 0.05
    while time.process_time() < deadline:  # 50 ms of this process's CPU
        pass
    after = cpu.read_times()
    use = cpu.CpuUse.between(before, after)
    assert use.process >= 0.05 and use.wall >= 0.05
    if before.machine_busy is not None:  # Linux: /proc/stat saw the machine busy that long
        assert after.machine_busy - before.machine_busy >= 0.03  # a tick or two of slack
        assert 0 < use.busy_share <= 1
