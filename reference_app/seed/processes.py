"""Two processes: the loads shared with a second Python process, and its entry point.

When the write and read databases are two SQLite files, this process appends the event
log and the order lines while a second one (:class:`_Part`, which runs :func:`_seed_part`)
writes the read models and the rest of the write model into a scratch file, copied into
the write database at the end.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
import traceback
from collections.abc import Iterable, Sequence
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from reference_app.seed.errors import SeedError
from reference_app.seed.generator import _Generator
from reference_app.seed.loading import _load, _Plan
from reference_app.seed.sinks import _drop_indexes, _Sink, _SqliteSink
from reference_app.seed.tables import _APPENDED_TABLES, _COPIED_TABLES, _READ_TABLES, _TABLES

if TYPE_CHECKING:
    from reference_app.seed.seeding import Progress


def _load_in_processes(
    write_engine: sa.Engine,
    write_path: str,
    read_path: str,
    plan: _Plan,
    progress: Progress | None,
) -> _Generator:
    """Load the event log and order lines here, the rest in a second process, side by side.

    The split evens the loads: the event log is ~80% of the write database's bytes. The
    second process writes its write-model tables to a scratch file beside the write
    database (a database has one writer at a time); they are copied in at the end, record
    by record (a few percent of the time of inserting them), and the scratch file deleted.
    """
    scratch = f"{write_path}.seed-model"
    _remove_database(scratch)
    part = _Part(plan, {scratch: (_COPIED_TABLES, True), read_path: (_READ_TABLES, False)})

    def both(done: int, total: int) -> None:
        if not part.running(wait=0):
            part.check()  # stop at once if it failed (when it is done, this returns)
        if progress is not None:
            progress(min(done, part.done), total)

    def copy_model(sinks: dict[sa.Engine, _Sink]) -> None:
        reported = -1
        while part.running():
            if progress is not None and part.done != reported:
                reported = part.done
                progress(reported, plan.orders)
        part.check()
        sink = sinks[write_engine]
        if not isinstance(sink, _SqliteSink):  # what _sink() makes of a pysqlite file
            msg = f"cannot copy the write model into {sink!r}"
            raise TypeError(msg)
        sink.copy(scratch, _COPIED_TABLES)

    try:
        return _load({write_engine: list(_APPENDED_TABLES)}, plan, both, copy_model)
    finally:
        part.stop()
        _remove_database(scratch)


def _remove_database(path: str) -> None:
    for name in (path, f"{path}-journal", f"{path}-wal", f"{path}-shm"):
        with contextlib.suppress(FileNotFoundError):
            os.remove(name)


class _Part:
    """Some of the tables, loaded into a SQLite file by a second Python process.

    A plain ``python -c`` subprocess rather than :mod:`multiprocessing`: this process may
    have threads (so no fork), and a spawned one would import the caller's ``__main__``
    script again. It gets its task as JSON, and reports on its standard output, one line a
    message: ``progress <orders>``, then ``done`` or ``error <traceback as JSON>``. A thread
    here reads them.
    """

    def __init__(self, plan: _Plan, files: dict[str, tuple[Sequence[sa.Table], bool]]) -> None:
        task = {
            "files": [
                {"path": path, "tables": [table.name for table in tables], "create": create}
                for path, (tables, create) in files.items()
            ],
            "plan": asdict(plan),
            "sys_path": sys.path,
        }
        self._process = subprocess.Popen(  # noqa: S603 - this interpreter, our own code
            [sys.executable, "-c", _PART_MAIN, json.dumps(task)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
        )
        self.done = 0
        self._outcome: str | None = None  # "done", or the error the process reported
        self._listener = threading.Thread(
            target=self._listen, args=(self._process.stdout,), name="seed part"
        )
        self._listener.start()

    def _listen(self, lines: Iterable[bytes]) -> None:
        for line in lines:
            kind, _, value = line.decode().rstrip("\n").partition(" ")
            if kind == "progress":
                self.done = int(value)
            elif kind == "error":
                self._outcome = json.loads(value)
            elif kind == "done":
                self._outcome = "done"

    def running(self, wait: float = 0.2) -> bool:
        """Wait a moment (``wait`` seconds at most) for the process; whether it still runs."""
        self._listener.join(wait)
        return self._listener.is_alive()

    def check(self) -> None:
        """Wait until the process is done.

        Raises:
            SeedError: The process failed (its traceback is in the message).
        """
        self._listener.join()
        status = self._process.wait()
        if self._outcome == "done" and status == 0:
            return
        said = self._outcome or "it ended without a word"
        msg = (
            f"a process seeding part of the databases failed (exit status {status}); seed "
            f"new databases again. It said: {said}"
        )
        raise SeedError(msg)

    def stop(self) -> None:
        """End the process if it still runs (after a failure here), and wait for it."""
        if self._process.poll() is None and self._outcome != "done":
            self._process.terminate()
        self._process.wait()
        self._listener.join()
        if self._process.stdout is not None:
            self._process.stdout.close()


_PART_MAIN = (
    "import json, sys; task = json.loads(sys.argv[1]); sys.path[:] = task['sys_path']; "
    "from reference_app.seed.processes import _seed_part; _seed_part(task)"
)


def _seed_part(task: dict[str, Any]) -> None:
    """A second process: generate some tables into a SQLite file (see :class:`_Part`).

    Args:
        task: ``path`` (the database file), ``tables`` (their names), ``create`` (create
            them first, without their indexes), ``plan`` (a :class:`_Plan` as a dict).
    """
    # The messages get this process's standard output to themselves: print() and the like
    # go to its standard error.
    messages = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    engines: dict[sa.Engine, list[sa.Table]] = {}
    try:
        for file in task["files"]:
            engine = sa.create_engine(sa.URL.create("sqlite+pysqlite", database=file["path"]))
            tables = engines[engine] = [_TABLES[name] for name in file["tables"]]
            if file["create"]:
                with engine.begin() as connection:
                    for table in tables:
                        table.create(connection)
                _drop_indexes(engine, tables)
        _load(
            engines,
            _Plan(**task["plan"]),
            lambda done, _total: print(f"progress {done}", file=messages),
        )
    except BaseException as exc:  # noqa: BLE001 - reported to the parent, which raises
        text = "".join(traceback.format_exception(exc))
        print(f"error {json.dumps(text)}", file=messages)
        raise SystemExit(1) from None
    else:
        print(f"progress {task['plan']['orders']}", file=messages)
        print("done", file=messages)
    finally:
        for engine in engines:
            engine.dispose()
        messages.close()
