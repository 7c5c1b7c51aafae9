"""Seed the reference app with a large, deterministic dataset, fast.

Two entry points, one implementation:

- ``seed(write_engine, read_engine, *, orders, users=None, products=None, seed=0,
  progress=None, batch=10_000, projections=None, parallel=None)`` fills the databases
  behind two engines.
- ``seed_from_settings(settings, orders, users, products, seed, progress)`` does the same
  for the databases a :class:`reference_app.config.Settings` names, with its projection
  strategies (what the CLI's ``seed`` subcommand calls).

Both need *empty* databases (they create the tables when missing) and return a
:class:`SeedReport`. The same arguments always give the same data, whichever way it is
produced (batch size, one process or two).

**What is generated.** Users, products, orders with 1 to 5 lines and their status history;
every event the commands would have recorded, in the event log, with the payloads they
would have carried; and the read models those events project to, with each projection's
checkpoint at the log head. A projection rebuild reproduces the read models exactly (the
integration tests check it). Orders are placed over the 365 days before :data:`NOW`
(2025-01-01 UTC), in time order (order ids grow with ``placed_at``); each moves along the
status machine (confirmed, shipped, delivered; or cancelled) at realistic delays, as far as
:data:`NOW` allows, so recent orders are still pending. Some customers order far more than
others (the busiest of 5,000 has ~1,400 of 100,000 orders), so long order lists exist.
Each event's ``recorded_at`` is the moment it describes; an order's events are contiguous in
the log (positions follow orders, not wall-clock time across orders), which no projection
depends on. Event metadata is ``{"source": "seed", "command_type": ...}``.

**How it is fast.** A million ``CreateOrder`` commands followed by the projections would
take the better part of an hour. The seeder instead draws everything from one seeded
``random.Random``, builds rows and JSON payloads from cached fragments (no pydantic model,
no ``datetime`` per value), and bulk-inserts them with ``executemany``, one transaction per
``batch`` orders and database:

- On SQLite it writes through the ``sqlite3`` connection itself, with the values SQLAlchemy
  would store (UTC text timestamps, ``REAL`` money, hex UUIDs). The load runs with
  ``synchronous = OFF``, the rollback journal in memory instead of the WAL (which would
  write every page twice), foreign-key checks off and a 256 MiB page cache; the
  connection's settings and the file's journal mode are restored after. Elsewhere
  (PostgreSQL) it uses SQLAlchemy Core ``executemany`` with Python values; the tests check
  that both paths store the same values.
- When the write and read databases are two SQLite files, the work is split over two
  processes (from :data:`PARALLEL_FROM` orders by default; see ``parallel``): this one
  appends the event log and the order lines, while a second one (``python -c``, see
  :class:`~reference_app.seed.processes._Part`) writes the read models and the rest of the
  write model, the latter into a scratch file that is copied into the write database at
  the end (SQLite copies the records of identically defined tables and indexes as they
  are). Both run the same random sequence from the same seed and each builds only its own
  tables' rows, so the data is the same as from one process, and no rows travel between
  processes. The shares are about even; the copy costs ~4% of the work.
- Secondary indexes are dropped for the load and rebuilt once at the end.
- Event ids are one random UUID whose last 48 bits count the events, so the unique index
  on ``event_id`` grows at its end.
- Read-model rows are computed alongside the write rows and inserted directly, instead of
  replaying the log through the projections.

A seed that fails part way leaves the batches it committed (and no secondary indexes): seed
new databases again.

**Modules**, one concept each: :mod:`~reference_app.seed.seeding` (the entry points, the
report), :mod:`~reference_app.seed.world` (the fixed "now", the span, the default sizes,
the data version), :mod:`~reference_app.seed.errors`, :mod:`~reference_app.seed.generator`
(rows and payloads from one ``random.Random``), :mod:`~reference_app.seed.catalogue` (what
it draws from), :mod:`~reference_app.seed.values` (time and money as each driver is given
them), :mod:`~reference_app.seed.tables` (the tables filled, and their columns),
:mod:`~reference_app.seed.sinks` (bulk inserts into one database),
:mod:`~reference_app.seed.loading` (one load, batch by batch) and
:mod:`~reference_app.seed.processes` (the second process and its entry point).
"""

from __future__ import annotations

from reference_app.seed.errors import SeedError
from reference_app.seed.seeding import (
    PARALLEL_FROM,
    Progress,
    SeedReport,
    seed,
    seed_from_settings,
)
from reference_app.seed.world import (
    NOW,
    SEED_VERSION,
    default_products,
    default_users,
)
from reference_app.seed.world import SPAN_DAYS as SPAN_DAYS

__all__ = [
    "NOW",
    "PARALLEL_FROM",
    "SEED_VERSION",
    "Progress",
    "SeedError",
    "SeedReport",
    "default_products",
    "default_users",
    "seed",
    "seed_from_settings",
]
