"""The progress helper draws nothing unless asked to and standard error is a terminal."""

from __future__ import annotations

import os
import select
import sys

from fedserver import progress


def test_no_bar_and_no_output_when_standard_error_is_not_a_terminal(capsys):
    assert not progress.drawing()
    with progress.progress("working", total=3) as advance:
        advance()
        advance(2, total=4, description="still working")
    assert capsys.readouterr() == ("", "")


def test_a_terminal_gets_a_bar_unless_it_is_switched_off(monkeypatch):
    leader, follower = os.openpty()
    terminal = os.fdopen(follower, "w")
    monkeypatch.setattr(sys, "stderr", terminal)
    try:
        assert progress.drawing() and not progress.drawing(enabled=False)
        with progress.progress("off", total=2, enabled=False) as advance:
            advance(2)
        with progress.progress("copying", as_bytes=True) as advance:
            advance(0, total=2048, description="copying media")
            advance(2048)
        terminal.flush()
        drawn = _read_all(leader)
    finally:
        terminal.close()
        os.close(leader)
    assert "copying media" in drawn and "off" not in drawn, repr(drawn)


def _read_all(fd: int) -> str:
    """What the terminal received (it may come in several pieces); never blocks on one that got nothing."""
    received = bytearray()
    while select.select([fd], [], [], 0.5)[0]:
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        received += chunk
    return received.decode(errors="replace")
