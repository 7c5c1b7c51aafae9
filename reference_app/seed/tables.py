"""The tables a seed fills, grouped by who writes them, and the column order of its rows."""

from __future__ import annotations

from cqrs_kit.eventlog import event_log
from reference_app.read.schema import order_analytics, order_detail, order_summary
from reference_app.write.schema import (
    order_items,
    order_status_history,
    orders,
    products,
    users,
)

_USER_COLUMNS = ("id", "name", "email", "is_staff", "created_at")
_PRODUCT_COLUMNS = ("id", "name", "price", "active")
_ORDER_COLUMNS = (
    "id", "user_id", "status", "total", "ship_line1", "ship_city", "ship_postal_code",
    "ship_country", "placed_at",
)  # fmt: skip
_ITEM_COLUMNS = ("order_id", "product_id", "quantity", "unit_price")
_HISTORY_COLUMNS = ("order_id", "from_status", "to_status", "note", "changed_at")
_EVENT_COLUMNS = (
    "event_id", "event_type", "schema_version", "stream_type", "stream_id", "payload",
    "metadata", "recorded_at",
)  # fmt: skip
_SUMMARY_COLUMNS = (
    "order_id", "user_id", "status", "customer_name", "total", "item_count", "placed_at",
)  # fmt: skip
_DETAIL_COLUMNS = ("order_id", "user_id", "document")
_ANALYTICS_COLUMNS = ("day", "status", "order_count", "revenue")

_READ_MODELS = ("order_summary", "order_detail", "order_analytics")

_WRITE_TABLES = (users, products, orders, order_items, order_status_history, event_log)
# When two processes share the work: what the second one writes to the scratch file, and
# what this one writes to the write database directly (the split that evens their loads).
_COPIED_TABLES = (users, products, orders, order_status_history)
_APPENDED_TABLES = (order_items, event_log)
_READ_TABLES = (order_summary, order_detail, order_analytics)
_TABLES = {table.name: table for table in (*_WRITE_TABLES, *_READ_TABLES)}
