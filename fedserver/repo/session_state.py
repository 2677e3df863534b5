"""Which pooled connections hold session state, so the pool clears it (and only there) on release."""

from __future__ import annotations

import weakref

import asyncpg

# Connections on which a LISTEN or a session advisory lock was taken. Only these get asyncpg's
# full reset query when they go back to the pool (`fedserver.db.reset_connection`); the rest
# skip that round trip.
_MARKED: weakref.WeakSet[asyncpg.Connection] = weakref.WeakSet()


def keeps_session_state(conn: asyncpg.Connection) -> None:
    """Note that `conn` holds a LISTEN or a session lock, to be cleared when the pool takes it back."""
    _MARKED.add(getattr(conn, "_con", None) or conn)  # a pool proxy wraps the connection


def holds_session_state(conn: asyncpg.Connection) -> bool:
    """Whether `conn` was marked; the mark is dropped, since the caller is about to reset it."""
    if conn in _MARKED:
        _MARKED.discard(conn)
        return True
    return False
