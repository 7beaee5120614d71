"""One step of `streamflow up` run in a thread while the stack starts, its failure reported where it is
awaited: the steps of a start that do not depend on each other overlap on 2 cores instead of queueing."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Background(Generic[T]):
    """``fn()`` in a daemon thread, started at once. :meth:`result` waits for it and returns its value,
    or raises the exception it raised (in the caller's thread, where it can be reported)."""

    def __init__(self, name: str, fn: Callable[[], T]) -> None:
        self.name = name
        self._fn = fn
        self._value: T | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._value = self._fn()
        except BaseException as error:  # re-raised by result(), in the caller's thread
            self._error = error

    @property
    def done(self) -> bool:
        return not self._thread.is_alive()

    def result(self) -> T:
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._value  # type: ignore[return-value]
