"""Counts the statements a fedserver process sends to PostgreSQL, by call site (bench/orders.py
--count-statements puts this directory on the servers' PYTHONPATH).

Active only when FEDSERVER_BENCH_STATEMENTS names a directory: every statement asyncpg sends (a
prepared one, a plain one such as BEGIN or COMMIT, an executemany) is counted under the three
innermost functions of this project that led to it, and the counts are written to
`<directory>/<pid>.json` twice a second. It wraps asyncpg's private `Connection._execute`, so it
belongs to the bench, never to the server.
"""

import os

if os.environ.get("FEDSERVER_BENCH_STATEMENTS"):
    import collections
    import json
    import sys
    import threading
    import time

    import asyncpg.connection

    _counts: collections.Counter = collections.Counter()
    _root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

    def _site() -> str:
        frame, names = sys._getframe(2), []
        while frame is not None and len(names) < 3:
            path = frame.f_code.co_filename
            if path.startswith(_root) and "/bench/" not in path:
                names.append(frame.f_code.co_name)
            frame = frame.f_back
        return " <- ".join(names) or "?"

    _connection = asyncpg.connection.Connection
    _execute, _plain, _many = _connection._execute, _connection.execute, _connection.executemany

    async def _counted_execute(self, *args, **kwargs):
        _counts[_site()] += 1
        return await _execute(self, *args, **kwargs)

    async def _counted_plain(self, query, *args, **kwargs):
        if not args:  # with arguments it goes through _execute, counted there
            _counts[f"{query.split(None, 1)[0].rstrip(';')}: {_site()}"] += 1
        return await _plain(self, query, *args, **kwargs)

    async def _counted_many(self, *args, **kwargs):
        _counts[f"executemany: {_site()}"] += 1
        return await _many(self, *args, **kwargs)

    _connection._execute, _connection.execute, _connection.executemany = \
        _counted_execute, _counted_plain, _counted_many
    _path = os.path.join(os.environ["FEDSERVER_BENCH_STATEMENTS"], f"{os.getpid()}.json")

    def _dump() -> None:
        while True:
            time.sleep(0.5)
            with open(_path + ".new", "w") as out:
                json.dump(dict(_counts), out)
            os.replace(_path + ".new", _path)

    threading.Thread(target=_dump, daemon=True, name="statement-counts").start()
