"""Progress lines of long work: how much is done, the time spent and the time left."""

from __future__ import annotations

import time


def duration(seconds: float) -> str:
    """`7 min 05 s`, or `42 s` under a minute."""
    minutes, seconds = divmod(int(round(seconds)), 60)
    return f"{minutes} min {seconds:02d} s" if minutes else f"{seconds} s"


class Stopwatch:
    """Progress lines of a long loop: `{what}: done/total unit, spent, about left` at the rate
    so far, at most every `every_s` seconds and at the end; silent for work shorter than
    `quiet_s`."""

    def __init__(self, what: str, progress, quiet_s: float = 20.0, every_s: float = 10.0):
        self.what, self.progress, self.quiet, self.every = what, progress, quiet_s, every_s
        self.started = self.last = time.perf_counter()

    def update(self, done: int, total: int, unit: str) -> None:
        now = time.perf_counter()
        if now - self.started < self.quiet or (now - self.last < self.every and done < total):
            return
        self.last = now
        spent = now - self.started
        left = spent * (total - done) / max(done, 1)
        self.progress(f"{self.what}: {done:,}/{total:,} {unit}, {duration(spent)}"
                      + (f", about {duration(left)} left" if done < total else ""))
