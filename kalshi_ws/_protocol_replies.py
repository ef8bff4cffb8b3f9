"""Replies to commands, routed to the family of the command each answers (sans-I/O).

A reply names its command by ``id`` (older servers answered update_subscription
without it: then the sid finds the command). ``subscribed`` and ``unsubscribed`` go to
the subscribe and unsubscribe families whatever their id; ``ok`` and ``error`` to the
family of the command they answer. An ``error`` scoped to a live sid that matches no
command, or that is terminal (:data:`~kalshi_ws._protocol_tables.TERMINAL_ERRORS`), is the
subscription's: reported as :class:`~kalshi_ws.models.SubscriptionError`, and it may end
or re-create the subscription.

Not thread-safe: only the protocol calls it, serialised by the client's lock.
"""

from __future__ import annotations

from typing import Any

from . import _wire
from ._protocol_sequencing import MAX_SEQ_DIGITS, Sequencer, millis
from ._protocol_subscribe import SubscribeCommands, UnsubscribeCommands
from ._protocol_tables import TERMINAL_ERRORS, Pending, Sub, Tables, logger
from ._protocol_update import UpdateCommands
from .exceptions import CommandError
from .models import Channel


class ReplyRouter:
    """Hands each reply to the part of the protocol that handles it."""

    def __init__(self, tables: Tables, sequencer: Sequencer, subscribes: SubscribeCommands,
                 unsubscribes: UnsubscribeCommands, updates: UpdateCommands) -> None:
        self._tables = tables
        self._subs = tables.subs
        self._sequencer = sequencer
        self._subscribes = subscribes
        self._unsubscribes = unsubscribes
        self._updates = updates

    def route(self, wire_type: str, frame: dict[str, Any]) -> None:
        """A reply (``wire_type``: subscribed, unsubscribed, ok or error) to a command."""
        command_id, sid, seq, payload = (frame.get("id"), frame.get("sid"), frame.get("seq"),
                                         frame.get("msg"))
        sub = self._subs.get(sid) if type(sid) is int else None
        if sub is not None and seq is not None:
            self._count_reply(sub, seq)
        pending = self._tables.pending.get(command_id) if type(command_id) is int else None
        if wire_type == "subscribed":
            self._subscribes.on_subscribed(pending, payload, frame.get("sending_ts_ms"))
        elif wire_type == "unsubscribed":
            self._unsubscribes.on_unsubscribed(pending, sid)
        elif wire_type == "ok":
            if pending is None and command_id is None and type(sid) is int:
                pending = self._updates.pending_for(sid)  # older servers sent no id
            if pending is None:
                logger.debug("'ok' reply %r matches no pending command", command_id)
            else:
                pending.family.on_ok(pending, frame, sid, payload)
        else:
            self._on_error(pending, frame, sid, payload)

    def _count_reply(self, sub: Sub, seq: Any) -> None:
        """A sid-scoped reply's ``seq``: it consumes that number of the sid's sequence.

        Read as data frames' seqs are (a digit string is the number). On a sid whose
        data carry no seq (ticker, fill, market_position, user_order) the replies'
        numbers are ignored, so that unnumbered data never look out of order.
        """
        if type(seq) is str and seq.isascii() and seq.isdigit() and \
                len(seq) <= MAX_SEQ_DIGITS:
            seq = int(seq)
        if type(seq) is not int or seq <= sub.last_seq:
            return
        if not sub.last_seq and isinstance(sub.channel, Channel) and not sub.channel.sequenced:
            return
        self._sequencer.reply_seq(sub, seq)  # replies consume sequence numbers too

    def _on_error(self, pending: Pending | None, frame: dict[str, Any], sid: Any,
                  payload: Any) -> None:
        code = _error_code(payload.get("code") if type(payload) is dict else None)
        text = payload.get("msg") if type(payload) is dict else payload
        text = _error_text(text)
        command_id = frame.get("id") if type(frame.get("id")) is int else None
        error = CommandError(code, text, command_id=command_id,
                             sid=sid if type(sid) is int else None,
                             markets=error_markets(payload),
                             sending_ts_ms=millis(frame.get("sending_ts_ms")))
        sub = self._subs.get(sid) if type(sid) is int else None
        if pending is None and command_id is None and type(sid) is int:
            pending = self._updates.pending_for(sid)  # older servers sent no id
        if pending is not None:
            pending.family.on_error(pending, code, text, error, sid)
        if sub is not None and (pending is None or code in TERMINAL_ERRORS):
            # A terminal error ends the subscription whatever command it answers.
            self._subscribes.subscription_error(sub, code, text, error)
        elif pending is None:
            logger.warning("Kalshi error %d (%s) for command %r matches nothing pending",
                           code, text, command_id)


#: An error text longer than this is cut (a hostile reply cannot make every error huge).
_MAX_ERROR_TEXT = 1000


def _error_text(value: Any) -> str:
    """Kalshi's error text (``msg.msg``, or a plain string ``msg``), at most 1,000
    characters; "(no message)" if there is none."""
    if not isinstance(value, str) or not value:
        return "(no message)"
    return value if len(value) <= _MAX_ERROR_TEXT else value[:_MAX_ERROR_TEXT] + "..."


def _error_code(value: Any) -> int:
    """Kalshi's error code, read as integers are read elsewhere ("25" is 25); 0 if none."""
    if type(value) is int:
        return value
    try:
        return _wire.to_int(value)
    except (TypeError, ValueError):
        logger.warning("an error reply's code cannot be read: %r", value)
        return 0


def error_markets(payload: Any) -> tuple[str, ...]:
    """The markets an ``error`` reply names (``msg.market_ticker`` / ``msg.market_tickers``)."""
    if type(payload) is not dict:
        return ()
    names: list[str] = []
    single = payload.get("market_ticker")
    if isinstance(single, str) and single:
        names.append(single)
    several = payload.get("market_tickers")
    if isinstance(several, list):
        names.extend(m for m in several if isinstance(m, str) and m)
    return tuple(dict.fromkeys(names))
