"""The peak RSS of a process while a block runs: the tests' bounded-memory checks and the
benchmarks' memory figures sample it the same way."""

from __future__ import annotations

import threading

import psutil


class RssPeak:
    """``with RssPeak(pid) as rss:`` samples the process's RSS every ``every_s`` seconds in a
    thread; ``growth`` is the peak over the RSS when the block began."""

    def __init__(self, pid: int, every_s: float = 0.02) -> None:
        self.process = psutil.Process(pid)
        self.every_s = every_s
        self.base = self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(self.every_s):
            self.peak = max(self.peak, self.process.memory_info().rss)

    def __enter__(self) -> RssPeak:
        self.base = self.peak = self.process.memory_info().rss
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def growth(self) -> int:
        return self.peak - self.base
