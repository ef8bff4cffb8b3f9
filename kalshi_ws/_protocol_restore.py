"""The restore plan: re-creating subscriptions on a new connection (sans-I/O).

When a connection is lost, every live subscription (and every one being re-created)
becomes the plan; on the next connection each is subscribed again
(:attr:`~kalshi_ws._protocol_tables.Purpose.RESTORE`) and, once every reply is in, the outcome
(:class:`RestoreDone`: old sid to new sid, and what failed) is ready for the client's
``Reconnected`` announcement.

Not thread-safe: only the protocol calls it, serialised by the client's lock.
"""

from __future__ import annotations

from collections.abc import Mapping

import attrs

from ._protocol_subscribe import NO_MARKETS_LEFT, SubscribeCommands
from ._protocol_tables import Purpose, Sub, Tables, logger


@attrs.frozen
class RestoreDone:
    """Every subscription to restore after a reconnect has been answered."""

    sid_map: Mapping[int, int]
    failed: tuple[tuple[int, str], ...]


class RestorePlan:
    """What to restore on the next connection, and the restore under way.

    Args:
        tables: The protocol's shared tables.
        subscribes: Sends the restoring subscribes (the protocol reports each one that
            settles to :meth:`settled`).
    """

    def __init__(self, tables: Tables, subscribes: SubscribeCommands) -> None:
        self.tables = tables
        self._subscribes = subscribes
        self._templates: list[Sub] = []
        self._sid_map: dict[int, int] = {}
        self._failed: list[tuple[int, str]] = []
        #: The outcome once every reply of the restore under way is in, else None.
        self.result: RestoreDone | None = None

    def keep(self) -> None:
        """The connection is gone: what is live or being re-created becomes the plan."""
        keep = {id(s): s for s in self._templates}
        for sub in self.tables.subs.values():
            keep[id(sub)] = sub
        for pending in self.tables.pending.values():
            if pending.template is not None and pending.purpose.recreates:
                keep[id(pending.template)] = pending.template
        self._templates = sorted(keep.values(), key=lambda s: s.sid)

    def forget(self) -> None:
        """Drop the plan (there will be no next connection)."""
        self._templates = []

    def begin(self) -> int:
        """Send one subscribe per subscription of the plan; returns how many were sent.

        A subscription whose every market was removed is not re-sent (that would widen
        it to all markets) and is reported as failed. With nothing to restore at all,
        :attr:`result` is ready at once.
        """
        plan, self._templates = self._templates, []
        self._sid_map = {}
        self._failed = []
        self.result = None
        if not plan:
            self.result = RestoreDone(sid_map={}, failed=())
            return 0
        queued = 0
        for template in plan:
            if template.emptied:
                # Without markets it cannot be subscribed again as it was: a ticker
                # subscription would widen to every market, a book one is refused.
                logger.warning("not restoring %s subscription (old sid %d): no markets left",
                               template.channel, template.user_sid)
                self._failed.append((template.user_sid, NO_MARKETS_LEFT))
                continue
            self._subscribes.recreate(template, Purpose.RESTORE)
            queued += 1
        return queued

    def settled(self, template: Sub, new_sid: int | None, failure: str) -> None:
        """One restoring subscribe settled: with its new sid, or failed."""
        if new_sid is not None:
            self._sid_map[template.user_sid] = new_sid
        else:
            self._failed.append((template.user_sid, failure))

    def all_in(self) -> bool:
        """Whether every restoring subscribe is answered; if so, :attr:`result` is set."""
        if any(p.purpose is Purpose.RESTORE for p in self.tables.pending.values()):
            return False
        self.result = RestoreDone(sid_map=dict(self._sid_map), failed=tuple(self._failed))
        return True
