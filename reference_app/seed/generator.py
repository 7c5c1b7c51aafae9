"""The deterministic generator: rows and event payloads drawn from one ``random.Random``."""

from __future__ import annotations

import random
from collections.abc import Sequence

import sqlalchemy as sa

from cqrs_kit.eventlog import event_log
from reference_app.read.schema import order_analytics, order_detail, order_summary
from reference_app.seed.catalogue import (
    _ADJECTIVES,
    _CANCEL_NOTES,
    _CANCELLED_CONFIRMED,
    _CANCELLED_PENDING,
    _CARRIERS,
    _CITIES,
    _FIRST,
    _LAST,
    _LINES,
    _MATERIALS,
    _NOUNS,
    _STAFF_SHARE,
    _STREETS,
    _UNITS,
    _Customer,
    _Product,
)
from reference_app.seed.sinks import _Rows, _Sink
from reference_app.seed.tables import (
    _ANALYTICS_COLUMNS,
    _DETAIL_COLUMNS,
    _EVENT_COLUMNS,
    _HISTORY_COLUMNS,
    _ITEM_COLUMNS,
    _ORDER_COLUMNS,
    _PRODUCT_COLUMNS,
    _SUMMARY_COLUMNS,
    _USER_COLUMNS,
)
from reference_app.seed.values import (
    _DAY_US,
    _HOUR_US,
    _NOW_US,
    _START_US,
    _UUID_BITS,
    _UUID_MASK,
    _money,
)
from reference_app.seed.world import SPAN_DAYS
from reference_app.write.schema import (
    order_items,
    order_status_history,
    orders,
    products,
    users,
)


class _Generator:
    """Draws the dataset from one ``random.Random`` and hands the rows to the sinks.

    ``sinks`` maps table names to where their rows go. It may hold a part of the dataset:
    the write model's tables, the event log, the read models, in any combination. The rows
    of the other parts are not built, but every random number is drawn all the same, so
    each part is the same as when everything is generated at once.
    """

    def __init__(self, rng: random.Random, sinks: dict[str, _Sink]) -> None:
        self.sinks = sinks
        self.values = (
            sinks.get("orders") or sinks.get("event_log") or sinks["order_summary"]
        ).values
        self.rng = rng
        self.customers: list[_Customer] = []
        self.products: list[_Product] = []
        self.events = 0
        self.items = 0
        self.changes = 0
        # Event ids: one random v4 UUID whose last 48 bits count the events. Unique, and
        # inserted in order, so the unique index on event_id grows at its end.
        self.id_prefix = rng.getrandbits(128) & _UUID_MASK & ~0xFFFF_FFFF_FFFF | _UUID_BITS

    def _insert(self, table: sa.Table, columns: Sequence[str], rows: _Rows) -> None:
        sink = self.sinks.get(table.name)
        if sink is not None:
            sink.insert(table, columns, rows)

    def _append(self, rows: _Rows) -> None:
        self._insert(event_log, _EVENT_COLUMNS, rows)
        self.events += len(rows)

    # -- users and products --------------------------------------------------------------

    def add_users(self, count: int) -> None:
        rng, values = self.rng, self.values
        user_rows: _Rows = []
        event_rows: _Rows = []
        meta = values.json('{"source": "seed", "command_type": "RegisterUser"}')
        for user_id in range(1, count + 1):
            first, last = rng.choice(_FIRST), rng.choice(_LAST)
            name = f"{first} {last}"
            email = f"{first}.{last}.{user_id}@example.com".lower()
            is_staff = rng.random() < _STAFF_SHARE
            registered, registered_json = values.stamp(
                _START_US - rng.randrange(SPAN_DAYS * _DAY_US)
            )
            city, postal_code, country = rng.choice(_CITIES)
            line1 = f"{rng.randint(1, 250)} {rng.choice(_STREETS)}"
            self.customers.append(
                _Customer(
                    name=name,
                    address=(line1, city, postal_code, country),
                    created_json=f'"customer_name": "{name}"',
                    created_address=(
                        f'{{"line1": "{line1}", "city": "{city}", '
                        f'"postal_code": "{postal_code}", "country": "{country}"}}'
                    ),
                    detail_json=f'"customer_name":"{name}","customer_email":"{email}"',
                    detail_address=(
                        f'{{"line1":"{line1}","city":"{city}","postal_code":"{postal_code}",'
                        f'"country":"{country}"}}'
                    ),
                )
            )
            user_rows.append((user_id, name, email, is_staff, registered))
            payload = (
                f'{{"user_id": {user_id}, "name": "{name}", "email": "{email}", '
                f'"is_staff": {"true" if is_staff else "false"}, '
                f'"registered_at": "{registered_json}"}}'
            )
            event_rows.append(
                (
                    values.uuid(self.id_prefix, self.events + user_id),
                    "user.registered",
                    1,
                    "user",
                    str(user_id),
                    values.json(payload),
                    meta,
                    registered,
                )
            )
        self._insert(users, _USER_COLUMNS, user_rows)
        self._append(event_rows)

    def add_products(self, count: int) -> None:
        rng, values = self.rng, self.values
        product_rows: _Rows = []
        event_rows: _Rows = []
        meta = values.json('{"source": "seed", "command_type": "AddProduct"}')
        added, _ = values.stamp(_START_US - (SPAN_DAYS + 30) * _DAY_US)
        for product_id in range(1, count + 1):
            name = f"{rng.choice(_ADJECTIVES)} {rng.choice(_MATERIALS)} {rng.choice(_NOUNS)}"
            # Mostly cheap things, a few expensive ones: 1.00 to ~500.00.
            cents = int(100 + 49_900 * rng.random() ** 3)
            price = _money(cents)
            self.products.append(
                _Product(
                    cents=cents,
                    created_prefix=(
                        f'{{"product_id": {product_id}, "product_name": "{name}", '
                        f'"unit_price": "{price}", "quantity": '
                    ),
                    detail_prefix=(
                        f'{{"product_id":{product_id},"product_name":"{name}",'
                        f'"unit_price":"{price}","quantity":'
                    ),
                )
            )
            product_rows.append((product_id, name, values.money(cents), True))
            payload = f'{{"product_id": {product_id}, "name": "{name}", "price": "{price}"}}'
            event_rows.append(
                (
                    values.uuid(self.id_prefix, self.events + product_id),
                    "product.added",
                    1,
                    "product",
                    str(product_id),
                    values.json(payload),
                    meta,
                    added,
                )
            )
        self._insert(products, _PRODUCT_COLUMNS, product_rows)
        self._append(event_rows)

    # -- orders ----------------------------------------------------------------------------

    def placed_times(self, count: int) -> list[int]:
        """When each order is placed, ascending (so ids grow with time)."""
        span, random_ = SPAN_DAYS * _DAY_US, self.rng.random
        return sorted([_START_US + int(span * random_()) for _ in range(count)])

    def customers_of(self, count: int) -> list[int]:
        """The customer (0-based) of each order: a few order much more than most."""
        rng, n = self.rng, len(self.customers)
        random_ = rng.random
        ranking = list(range(n))
        rng.shuffle(ranking)  # the busiest customers are spread over the ids
        return [ranking[int(n * random_() ** 2)] for _ in range(count)]

    def add_orders(  # noqa: PLR0912, PLR0915 - one hot loop, kept flat for speed
        self,
        first_id: int,
        placed: Sequence[int],
        customers: Sequence[int],
        analytics: dict[tuple[int, str], list[int]],
    ) -> None:
        """Generate the orders ``first_id, first_id + 1, ...``, placed at ``placed``."""
        random_ = self.rng.random
        sinks = self.sinks
        modelling, itemizing, logging, reading = (
            "orders" in sinks,
            "order_items" in sinks,
            "event_log" in sinks,
            "order_summary" in sinks,
        )
        values = self.values
        stamp, money, as_json, new_id = values.stamp, values.money, values.json, values.uuid
        id_prefix, number = self.id_prefix, self.events
        catalogue, people = self.products, self.customers
        n_products = len(catalogue)
        most_lines = min(5, n_products)
        created_meta = values.json('{"source": "seed", "command_type": "CreateOrder"}')
        changed_meta = values.json('{"source": "seed", "command_type": "UpdateOrderStatus"}')
        summary_values = sinks["order_summary"].values if reading else values
        summary_money = summary_values.money
        same_stamps = summary_values is values or type(summary_values) is type(values)

        order_rows: _Rows = []
        item_rows: _Rows = []
        history_rows: _Rows = []
        event_rows: _Rows = []
        summary_rows: _Rows = []
        detail_rows: _Rows = []

        for offset, placed_us in enumerate(placed):
            order_id = first_id + offset
            user_index = customers[offset]
            customer = people[user_index]
            user_id = user_index + 1

            # -- lines, by ascending product id
            count = min(_LINES[int(random_() * 100)], most_lines)
            chosen: set[int] = set()
            while len(chosen) < count:
                chosen.add(int(random_() * n_products))
            total = 0
            created_items = []
            detail_items = []
            for index in sorted(chosen):
                product = catalogue[index]
                units = _UNITS[int(random_() * 100)]
                line_cents = product.cents * units
                total += line_cents
                if itemizing:
                    item_rows.append((order_id, index + 1, units, money(product.cents)))
                if logging:
                    created_items.append(f"{product.created_prefix}{units}}}")
                if reading:
                    detail_items.append(
                        f'{product.detail_prefix}{units},"line_total":"{_money(line_cents)}"}}'
                    )
            total_text = _money(total)

            # -- status changes: (from, to, note as JSON, when), as far as NOW allows
            roll = random_()
            at = placed_us + int((0.1 + 23.9 * random_()) * _HOUR_US)
            if roll < _CANCELLED_PENDING:
                steps = [("pending", "cancelled", _CANCEL_NOTES[order_id % 4], at)]
            elif roll < _CANCELLED_CONFIRMED:
                cancelled = at + int((1 + 47 * random_()) * _HOUR_US)
                steps = [
                    ("pending", "confirmed", "null", at),
                    ("confirmed", "cancelled", _CANCEL_NOTES[order_id % 4], cancelled),
                ]
            else:
                shipped = at + int((12 + 60 * random_()) * _HOUR_US)
                delivered = shipped + int((24 + 120 * random_()) * _HOUR_US)
                tracking = f'"{_CARRIERS[order_id % 5]} tracking {order_id:010d}"'
                steps = [
                    ("pending", "confirmed", "null", at),
                    ("confirmed", "shipped", tracking, shipped),
                    ("shipped", "delivered", "null", delivered),
                ]
            while steps and steps[-1][3] >= _NOW_US:
                steps.pop()
            status = steps[-1][1] if steps else "pending"
            placed_at, placed_json = stamp(placed_us)
            changes = [stamp(step[3]) for step in steps]
            self.items += count
            self.changes += len(steps)

            # -- write model
            if modelling:
                line1, city, postal_code, country = customer.address
                order_rows.append(
                    (
                        order_id,
                        user_id,
                        status,
                        money(total),
                        line1,
                        city,
                        postal_code,
                        country,
                        placed_at,
                    )
                )
                history_rows.append((order_id, None, "pending", None, placed_at))
                history_rows.extend(
                    (
                        order_id,
                        from_status,
                        to_status,
                        None if note == "null" else note[1:-1],
                        changed_at,
                    )
                    for (from_status, to_status, note, _), (changed_at, _) in zip(
                        steps, changes, strict=True
                    )
                )

            # -- events
            if logging:
                stream_id = str(order_id)
                number += 1
                event_rows.append(
                    (
                        new_id(id_prefix, number),
                        "order.created",
                        1,
                        "order",
                        stream_id,
                        as_json(
                            f'{{"order_id": {order_id}, "user_id": {user_id}, '
                            f"{customer.created_json}, "
                            f'"items": [{", ".join(created_items)}], "total": "{total_text}", '
                            f'"shipping_address": {customer.created_address}, '
                            f'"status": "pending", "placed_at": "{placed_json}"}}'
                        ),
                        created_meta,
                        placed_at,
                    )
                )
                for (from_status, to_status, note, _), (changed_at, changed_json) in zip(
                    steps, changes, strict=True
                ):
                    number += 1
                    event_rows.append(
                        (
                            new_id(id_prefix, number),
                            "order.status_changed",
                            1,
                            "order",
                            stream_id,
                            as_json(
                                f'{{"order_id": {order_id}, "from_status": "{from_status}", '
                                f'"to_status": "{to_status}", "note": {note}, '
                                f'"changed_at": "{changed_json}", "placed_at": "{placed_json}", '
                                f'"total": "{total_text}"}}'
                            ),
                            changed_meta,
                            changed_at,
                        )
                    )

            # -- read models
            if reading:
                history_json = [
                    '{"from_status":null,"to_status":"pending","note":null,'
                    f'"changed_at":"{placed_json}"}}'
                ]
                history_json.extend(
                    f'{{"from_status":"{from_status}","to_status":"{to_status}",'
                    f'"note":{note},"changed_at":"{changed_json}"}}'
                    for (from_status, to_status, note, _), (_, changed_json) in zip(
                        steps, changes, strict=True
                    )
                )
                summary_rows.append(
                    (
                        order_id,
                        user_id,
                        status,
                        customer.name,
                        summary_money(total),
                        count,
                        placed_at if same_stamps else summary_values.stamp(placed_us)[0],
                    )
                )
                detail_rows.append(
                    (
                        order_id,
                        user_id,
                        f'{{"order_id":{order_id},"user_id":{user_id},{customer.detail_json},'
                        f'"status":"{status}","total":"{total_text}",'
                        f'"shipping_address":{customer.detail_address},'
                        f'"placed_at":"{placed_json}","items":[{",".join(detail_items)}],'
                        f'"history":[{",".join(history_json)}]}}',
                    )
                )
                # The order counts in its day's bucket of its status; the buckets of the
                # statuses it passed through exist too, emptied (as the projection leaves them).
                day = placed_us // _DAY_US
                for step in steps:
                    if (day, step[0]) not in analytics:
                        analytics[day, step[0]] = [0, 0]
                bucket = analytics.get((day, status))
                if bucket is None:
                    analytics[day, status] = [1, total]
                else:
                    bucket[0] += 1
                    bucket[1] += total

        self._insert(orders, _ORDER_COLUMNS, order_rows)
        self._insert(order_items, _ITEM_COLUMNS, item_rows)
        self._insert(order_status_history, _HISTORY_COLUMNS, history_rows)
        if logging:
            self._append(event_rows)
        self._insert(order_summary, _SUMMARY_COLUMNS, summary_rows)
        self._insert(order_detail, _DETAIL_COLUMNS, detail_rows)

    def add_analytics(self, analytics: dict[tuple[int, str], list[int]]) -> None:
        """Insert the daily analytics, summed over every order."""
        sink = self.sinks.get(order_analytics.name)
        if sink is None:
            return
        values = sink.values
        rows = [
            (values.date(day), status, count, values.money(cents))
            for (day, status), (count, cents) in sorted(analytics.items())
        ]
        sink.insert(order_analytics, _ANALYTICS_COLUMNS, rows)
