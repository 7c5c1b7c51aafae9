"""Subprocesses started by tests, so that none outlives the test that started it."""

from __future__ import annotations

import subprocess

_spawned: list[subprocess.Popen[bytes]] = []


def spawn(command: list[str], **options: object) -> subprocess.Popen[bytes]:
    """Start a test's subprocess; one the test leaves running is killed at its teardown."""
    process: subprocess.Popen[bytes] = subprocess.Popen(command, **options)  # type: ignore[call-overload]  # noqa: S603 - the tests' own modules
    _spawned.append(process)
    return process


def kill_leftovers() -> None:
    """Kill the processes still running and close their pipes."""
    while _spawned:
        process = _spawned.pop()
        if process.poll() is None:
            process.kill()
            process.wait(30)
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()
