"""A load writer for the reference app: ``python -m tests.integration.order_writer``.

Usage::

    python -m tests.integration.order_writer --seconds 60 --seed 3

Builds the app's container from the ``ORDERS_*`` environment (for the load test:
PostgreSQL URLs, every projection ``async``, ``ORDERS_EMBEDDED_WORKER=false``, so that
``python -m reference_app worker`` processes do the projecting), registers a few users
and adds a few products, then, for ``--seconds``, sends ``CreateOrder`` and
``UpdateOrderStatus`` commands (legal transitions only) through the mediator, one after the
other. Prints the number of those commands (the set-up ones not counted) on stdout, as its
only output.

A command that fails is a bug here (every one is valid), so it ends the process with a
traceback and a non-zero status.
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Sequence
from decimal import Decimal

from reference_app.config import Settings
from reference_app.container import build_container, close_container, configure_logging
from reference_app.write.domain import Address, OrderId, OrderStatus, can_transition
from reference_app.write.messages import (
    AddProduct,
    CreateOrder,
    OrderLine,
    RegisterUser,
    UpdateOrderStatus,
)

USERS = 4
PRODUCTS = 5
ADDRESS = Address(line1="1 Rue de Rivoli", city="Paris", postal_code="75001", country="FR")


def run(seconds: float, seed: int) -> int:
    """Send commands for ``seconds``; return how many were sent."""
    settings = Settings.from_env().model_copy(update={"log_level": "warning"})
    configure_logging(settings)
    rng = random.Random(seed)
    container = build_container(settings)
    try:
        send = container.mediator().send
        users = [
            send(RegisterUser(name=f"Writer {seed} user {i}", email=f"w{seed}u{i}@example.com"))
            for i in range(USERS)
        ]
        products = [
            send(
                AddProduct(name=f"Product {seed}-{i}", price=Decimal(rng.randint(100, 9999)) / 100)
            )
            for i in range(PRODUCTS)
        ]
        sent = 0
        open_orders: dict[OrderId, OrderStatus] = {}
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if open_orders and rng.random() < 0.5:
                order_id = rng.choice(list(open_orders))
                moves = [s for s in OrderStatus if can_transition(open_orders[order_id], s)]
                status = rng.choice(moves)
                send(UpdateOrderStatus(order_id=order_id, status=status, note=f"load {seed}"))
                if any(can_transition(status, s) for s in OrderStatus):
                    open_orders[order_id] = status
                else:
                    del open_orders[order_id]
            else:
                lines = tuple(
                    OrderLine(product_id=product_id, quantity=rng.randint(1, 5))
                    for product_id in rng.sample(products, rng.randint(1, 3))
                )
                order_id = send(
                    CreateOrder(user_id=rng.choice(users), items=lines, shipping_address=ADDRESS)
                )
                open_orders[order_id] = OrderStatus.PENDING
            sent += 1
    finally:
        close_container(container)
    return sent


def main(argv: Sequence[str] | None = None) -> None:
    """Parse the arguments, send commands, print how many were sent."""
    parser = argparse.ArgumentParser(prog="python -m tests.integration.order_writer")
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    print(run(args.seconds, args.seed))


if __name__ == "__main__":
    main()
