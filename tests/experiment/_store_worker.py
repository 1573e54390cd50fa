"""A separate process for the store's cross-process tests (run as a script by test_store.py).

    python _store_worker.py create ROOT KIND KEY COUNTER GO_FILE SLEEP
    python _store_worker.py hold ROOT KIND KEY
    python _store_worker.py die-in-create ROOT KIND KEY
    python _store_worker.py stall-in-put ROOT KIND KEY

Prints one JSON line on stdout when it has something to report.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

from crlm_bench.experiment.store import Store, atomic_write


def create(root: str, kind: str, key: str, counter: str, go_file: str, sleep: str) -> None:
    store = Store(root)
    while not Path(go_file).exists():  # start together with the other worker
        time.sleep(0.005)

    def make(workdir: Path):
        with open(counter, "a") as f:  # one line per computation
            f.write(f"{os.getpid()}\n")
        time.sleep(float(sleep))
        return {"result.txt": f"computed by {os.getpid()}".encode()}, {"pid": os.getpid()}

    entry = store.get_or_create(kind, key, make, {"what": "test"}, summary="shared")
    print(
        json.dumps({"pid": os.getpid(), "result": entry.file("result.txt").read_text(), "meta": entry.meta}),
        flush=True,
    )


def hold(root: str, kind: str, key: str) -> None:
    store = Store(root)
    with store.lock(kind, key):
        print(json.dumps({"pid": os.getpid(), "locked": True}), flush=True)
        sys.stdin.read()  # until the parent closes stdin (or kills us)


def die_in_create(root: str, kind: str, key: str) -> None:
    store = Store(root)

    def make(workdir: Path):
        with atomic_write(workdir / "progress.txt", "w") as f:
            f.write("epoch 1 done")
        os.kill(os.getpid(), signal.SIGKILL)  # killed mid-computation, after saving progress

    store.get_or_create(kind, key, make, {"what": "test"})


def stall_in_put(root: str, kind: str, key: str) -> None:
    store = Store(root)
    stage = Store._stage_file

    def stalling(self, dest, source, kind, key):  # stage "a.bin", then wait to be killed
        if dest.name == "b.bin":
            print(json.dumps({"staged": str(dest.parent)}), flush=True)
            time.sleep(3600)
        return stage(self, dest, source, kind, key)

    Store._stage_file = stalling
    store.put(kind, key, {"a.bin": b"first file", "b.bin": b"second file"}, {"what": "test"})


if __name__ == "__main__":
    command, *args = sys.argv[1:]
    commands = {"create": create, "hold": hold, "die-in-create": die_in_create, "stall-in-put": stall_in_put}
    commands[command](*args)
