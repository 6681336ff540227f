"""Progress of long stages: a rich progress bar on a terminal, plain periodic lines otherwise.

    with spark_progress(spark, "encode"):        # Spark tasks done / total of the active stages
        df.toArrow()

    bar = Progress("tokenizers trained", total=40)
    bar.update(done=12, failed=1)
    bar.close()

No Prefect here: flows pass their own logger's `info` as `log` when they want the lines in
the flow run's logs.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager


class Progress:
    """One counter with a total: a rich bar when stdout is a TTY, else a line every `every` seconds
    (and at close) through `log` (default: print)."""

    def __init__(self, label: str, total: int | None = None, *, unit: str = "", every: float = 10.0,
                 log: Callable[[str], None] | None = None, tty: bool | None = None):
        self.label, self.total, self.unit, self.every = label, total, unit, every
        self.log = log or (lambda s: print(s, flush=True))
        self.done = self.failed = 0
        self._last_line = 0.0
        self._last_text = ""
        self._bar = None
        if sys.stdout.isatty() if tty is None else tty:
            from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
            from rich.progress import Progress as RichProgress

            self._bar = RichProgress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                     TextColumn("{task.fields[extra]}"), TimeElapsedColumn(), transient=False)
            self._task = self._bar.add_task(label, total=total, extra="")
            self._bar.start()

    def text(self) -> str:
        of = f"/{self.total}" if self.total is not None else ""
        unit = f" {self.unit}" if self.unit else ""
        failed = f", {self.failed} failed" if self.failed else ""
        return f"{self.label}: {self.done}{of}{unit}{failed}"

    def update(self, done: int | None = None, *, total: int | None = None, failed: int | None = None,
               advance: int = 0) -> None:
        if total is not None:
            self.total = total
        if failed is not None:
            self.failed = failed
        self.done = (self.done if done is None else done) + advance
        if self._bar is not None:
            self._bar.update(self._task, completed=self.done, total=self.total,
                             extra=f"{self.failed} failed" if self.failed else "")
            return
        now = time.monotonic()
        text = self.text()
        if text != self._last_text and now - self._last_line >= self.every:
            self.log(text)
            self._last_line, self._last_text = now, text

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
        elif self.text() != self._last_text:
            self.log(self.text())
            self._last_text = self.text()


def stage_counts(tracker) -> tuple[int, int, int]:
    """(completed, total, failed) tasks over the stages the status tracker reports active."""
    done = total = failed = 0
    for sid in tracker.getActiveStageIds():
        info = tracker.getStageInfo(sid)
        if info is not None:
            done += info.numCompletedTasks
            total += info.numTasks
            failed += info.numFailedTasks
    return done, total, failed


@contextmanager
def spark_progress(spark, label: str, *, interval: float = 1.0, every: float = 10.0,
                   log: Callable[[str], None] | None = None, tty: bool | None = None):
    """Show the task progress of the Spark jobs run inside the block (a polling thread on
    `sparkContext.statusTracker()`; stages that finish between polls count as done)."""
    tracker = spark.sparkContext.statusTracker()
    bar = Progress(label, None, unit="Spark tasks done", every=every, log=log, tty=tty)
    stop = threading.Event()
    seen: dict[int, tuple[int, int, int]] = {}

    def poll():
        while not stop.wait(interval):
            try:
                for sid in tracker.getActiveStageIds():
                    info = tracker.getStageInfo(sid)
                    if info is not None:
                        seen[sid] = (info.numCompletedTasks, info.numTasks, info.numFailedTasks)
            except Exception:  # the session may be stopping; progress is best effort
                return
            if seen:
                bar.update(sum(v[0] for v in seen.values()), total=sum(v[1] for v in seen.values()),
                           failed=sum(v[2] for v in seen.values()))

    thread = threading.Thread(target=poll, name=f"spark-progress-{label}", daemon=True)
    thread.start()
    ok = False
    try:
        yield bar
        ok = True
    finally:
        stop.set()
        thread.join(timeout=5)
        if ok and seen:  # the block finished: every stage it started is complete
            total = sum(v[1] for v in seen.values())
            bar.update(total, total=total)
        bar.close()
