"""The data directory's write probe."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from fedserver.datadir import probe_writable


def test_processes_starting_together_on_one_data_directory_all_pass_the_probe(tmp_path):
    # `run --role web` and `run --role worker` start together on one data directory (the scale-out path);
    # with one fixed probe name, one process's unlink removed the other's probe and it refused to start
    # ("not writable (No such file or directory)"), seen in bench/inbox_ingest.py --processes 2.
    def probe_many(_: int) -> None:
        for _ in range(40):
            probe_writable(tmp_path)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(probe_many, range(8)))
    assert list(tmp_path.iterdir()) == []  # no probe left behind
