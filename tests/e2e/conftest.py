"""The reference app over HTTP: a container, its schema, a few users and products, a client.

``make_world`` builds everything the way the app runs (settings from ``ORDERS_*`` variables,
the container, the FastAPI app) on SQLite files under a temporary directory or on fresh
PostgreSQL databases, and seeds it through the mediator: two customers, a staff member,
their API tokens, and three products.
"""

from __future__ import annotations

import uuid
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from reference_app.config import Settings
from reference_app.container import Container, build_container, close_container, create_schema
from reference_app.http import create_app
from reference_app.write.domain import ProductId, UserId
from reference_app.write.messages import AddProduct, IssueApiToken, RegisterUser
from tests.databases import Database, postgres_database

with warnings.catch_warnings():
    # Starlette 1.x prefers httpx2 for its TestClient and warns (once, at import) when it
    # falls back to httpx, which is what the dev extras install.
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

__all__ = [
    "ADDRESS",
    "TestClient",
    "World",
    "make_world",
    "postgres_database",
    "postgres_env",
    "postgres_urls",
    "sqlite_env",
]

ADDRESS = {"line1": "1 Rue de Rivoli", "city": "Paris", "postalCode": "75001", "country": "FR"}
SECRET = "e2e-tests-cursor-secret-0123456789"  # noqa: S105 - a test-only signing key


@dataclass
class World:
    """A running app with its users.

    Attributes:
        client: The test client (its lifespan is running).
        container: The app's container.
        alice: Headers authenticating Alice (a customer).
        bob: Headers authenticating Bob (a customer).
        staff: Headers authenticating Stella (staff).
        alice_id: Alice's id.
        bob_id: Bob's id.
        products: Three product ids, priced 2.50, 10.00 and 99.99.
    """

    client: TestClient
    container: Container
    alice: dict[str, str]
    bob: dict[str, str]
    staff: dict[str, str]
    alice_id: UserId
    bob_id: UserId
    products: list[ProductId]

    def order(self, headers: Mapping[str, str], *lines: tuple[int, int]) -> tuple[int, str]:
        """Place an order; return its id and consistency token."""
        body = {
            "items": [{"productId": p, "quantity": q} for p, q in lines or [(self.products[0], 1)]],
            "shippingAddress": ADDRESS,
        }
        response = self.client.post("/orders", json=body, headers=headers)
        assert response.status_code == 201, response.text
        return response.json()["orderId"], response.headers["X-Consistency-Token"]


def sqlite_env(directory: Path, **extra: str) -> dict[str, str]:
    """``ORDERS_*`` variables for embedded SQLite databases under ``directory``."""
    return {"ORDERS_DATA_DIR": str(directory), **extra}


@contextmanager
def make_world(env: Mapping[str, str]) -> Iterator[World]:
    """Build the app from ``env`` (``ORDERS_*`` variables), seed users and products, serve it."""
    container = build_container(Settings.from_env(env))
    try:
        create_schema(container)
        mediator = container.mediator()

        def user(name: str, *, staff: bool = False) -> tuple[UserId, dict[str, str]]:
            user_id = mediator.send(
                RegisterUser(name=name, email=f"{name.lower()}@example.com", is_staff=staff)
            )
            token = mediator.send(IssueApiToken(user_id=user_id))
            return user_id, {"Authorization": f"Bearer {token}"}

        alice_id, alice = user("Alice")
        bob_id, bob = user("Bob")
        _, staff = user("Stella", staff=True)
        products = [
            mediator.send(AddProduct(name=name, price=Decimal(price)))
            for name, price in [("Tea", "2.50"), ("Teapot", "10.00"), ("Samovar", "99.99")]
        ]
        with TestClient(create_app(container)) as client:
            yield World(client, container, alice, bob, staff, alice_id, bob_id, products)
    finally:
        close_container(container)


@pytest.fixture
def postgres_urls(postgres_database: Database) -> Iterator[tuple[str, str]]:
    """A fresh write database and a second, separate read database on the same server."""
    admin = sa.create_engine(postgres_database.sync_url, isolation_level="AUTOCOMMIT")
    name = f"{postgres_database.name}_read_{uuid.uuid4().hex[:4]}"
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        read_url = make_url(postgres_database.sync_url).set(database=name)
        yield postgres_database.sync_url, read_url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def postgres_env(urls: tuple[str, str], directory: Path, **extra: str) -> dict[str, str]:
    """``ORDERS_*`` variables for the PostgreSQL databases ``urls`` (write, read)."""
    return {
        "ORDERS_DATA_DIR": str(directory),
        "ORDERS_WRITE_DATABASE_URL": urls[0],
        "ORDERS_READ_DATABASE_URL": urls[1],
        "ORDERS_CURSOR_SECRET": SECRET,
        **extra,
    }
