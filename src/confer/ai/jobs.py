"""The AI worker's inference queue: finals first, then API requests, then partials.

One model, one inference thread: order decides latency. A final caption is what people read
and what the transcript keeps, so it goes first. API requests come next (their number is
bounded by the parent, which answers 503 past the bound). Partials are a nicety: only the newest
per speaker is kept, and they run only when nothing else waits.
"""

from __future__ import annotations

import threading
from collections import OrderedDict, deque
from typing import Any


class JobQueue:
    def __init__(self, max_finals: int = 64) -> None:
        self._cond = threading.Condition()
        self._finals: deque[Any] = deque()
        self._requests: deque[Any] = deque()
        self._partials: OrderedDict[int, Any] = OrderedDict()
        self._closed = False
        self.max_finals = max_finals
        self.dropped = 0

    def put_final(self, job: Any) -> None:
        with self._cond:
            if len(self._finals) >= self.max_finals:
                self._finals.popleft()  # hopelessly behind: the oldest caption is lost
                self.dropped += 1
            self._finals.append(job)
            self._partials.pop(job.stream.key, None)
            self._cond.notify()

    def put_partial(self, job: Any) -> None:
        with self._cond:
            self._partials.pop(job.stream.key, None)
            self._partials[job.stream.key] = job
            self._cond.notify()

    def put_request(self, job: Any) -> None:
        with self._cond:
            self._requests.append(job)
            self._cond.notify()

    def get(self) -> tuple[str, Any] | None:
        """Block until a job is ready; None once closed."""
        with self._cond:
            while True:
                if self._finals:
                    return "final", self._finals.popleft()
                if self._requests:
                    return "request", self._requests.popleft()
                if self._partials:
                    _, job = self._partials.popitem(last=False)
                    return "partial", job
                if self._closed:
                    return None
                self._cond.wait()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def __len__(self) -> int:
        with self._cond:
            return len(self._finals) + len(self._requests) + len(self._partials)
