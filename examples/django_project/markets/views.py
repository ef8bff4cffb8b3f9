"""Views: the latest prices, and the client's health. Requests never wait on Kalshi."""

from __future__ import annotations

import os

from django.http import HttpRequest, JsonResponse

from .kalshi import first_update, kalshi, latest


def markets(request: HttpRequest) -> JsonResponse:
    """The newest ticker of every market; ``?wait=S`` waits up to S s on a cold start."""
    kalshi.get()  # connects on the first request of this process
    wait = min(float(str(request.GET.get("wait", "0"))), 10.0)
    if wait:
        first_update.wait(wait)
    return JsonResponse({"markets": dict(latest), "pid": os.getpid()})


def health(request: HttpRequest) -> JsonResponse:
    """The client's state and counters."""
    client = kalshi.get()
    stats = client.stats()
    return JsonResponse({"state": client.state, "pid": os.getpid(),
                         "reconnects": stats.reconnects,
                         "received": stats.total().received,
                         "dropped": stats.total().dropped})
