"""Run a few blocking calls side by side: a pool's lanes each open their own connections,
so preparing them one after another would cost N round trips."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any


def run_all(calls: list[Callable[[], Any]]) -> None:
    """Call each (on its own thread: each opens its own connections) and re-raise the
    first failure once all have ended."""
    errors: list[BaseException] = []

    def one(call: Any) -> None:
        try:
            call()
        except BaseException as exc:  # re-raised below, on the caller's thread
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(c,), daemon=True) for c in calls]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
