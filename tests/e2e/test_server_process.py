"""``python -m reference_app serve`` as a real process: it serves, and stops cleanly on SIGTERM."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import httpx

from reference_app.config import ENV_PREFIX, Settings
from reference_app.container import build_container, close_container, create_schema
from reference_app.write.messages import AddProduct, IssueApiToken, RegisterUser
from tests.e2e.conftest import ADDRESS

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _prepare(env: dict[str, str]) -> tuple[str, int]:
    """Create the schema, a user with a token and a product, as an operator would."""
    container = build_container(Settings.from_env(env))
    try:
        create_schema(container)
        mediator = container.mediator()
        user_id = mediator.send(RegisterUser(name="Alice", email="alice@example.com"))
        product_id = mediator.send(AddProduct(name="Tea", price=Decimal("2.50")))
        return mediator.send(IssueApiToken(user_id=user_id)), product_id
    finally:
        close_container(container)


def _wait_until_serving(process: subprocess.Popen[bytes], url: str, log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the server exited with {process.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(f"{url}/openapi.json", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.05)
    raise AssertionError(f"the server did not answer within 30 s:\n{log.read_text()}")


def _start(argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as output:
        return subprocess.Popen(  # noqa: S603 - our own module, fixed arguments
            [sys.executable, "-m", "reference_app", *argv],
            cwd=log.parent,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )


def _stop(process: subprocess.Popen[bytes], log: Path) -> str:
    """SIGTERM ``process``; assert it exits with 0 and logged no traceback; return its log."""
    process.send_signal(signal.SIGTERM)
    try:
        status = process.wait(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    output = log.read_text()
    assert status == 0, output
    assert "Traceback" not in output, output
    return output


def test_server_and_worker_processes_serve_orders_and_stop_cleanly_on_sigterm(
    tmp_path: Path,
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX)}
    env.update(
        ORDERS_DATA_DIR=str(tmp_path / "data"),
        # order_summary is applied by the worker process only, order_detail by the server.
        ORDERS_PROJECTIONS="order_summary=async",
        ORDERS_EMBEDDED_WORKER="false",
        ORDERS_LOG_FORMAT="json",
        PYTHONPATH=str(ROOT),
    )
    token, product_id = _prepare(env)
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    server_log, worker_log = tmp_path / "server.log", tmp_path / "worker.log"
    server = _start(["serve", "--port", str(port)], env, server_log)
    worker = _start(["worker"], env, worker_log)
    try:
        _wait_until_serving(server, url, server_log)
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}) as client:
            created = client.post(
                "/orders",
                json={
                    "items": [{"productId": product_id, "quantity": 3}],
                    "shippingAddress": ADDRESS,
                },
            )
            assert created.status_code == 201, created.text
            order_id = created.json()["orderId"]
            fresh = {"X-Consistency-Token": created.headers["X-Consistency-Token"]}

            detail = client.get(f"/orders/{order_id}", headers=fresh)
            assert detail.status_code == 200, detail.text
            assert detail.json()["total"] == "7.50"
            listed = client.get("/orders", headers=fresh)  # waits for the worker process
            assert listed.status_code == 200, f"{listed.text}\n{worker_log.read_text()}"
            assert [i["orderId"] for i in listed.json()["items"]] == [order_id]
    finally:
        server_output = _stop(server, server_log)
        _stop(worker, worker_log)
    assert '"event": "dispatch"' in server_output, "dispatches are logged, as JSON"
