"""What the generator draws from: names, places, products, and the shape of an order."""

from __future__ import annotations

from dataclasses import dataclass

_FIRST = (
    "Ada", "Alan", "Alice", "Amara", "Ana", "Ben", "Carla", "Chen", "Dana", "Diego", "Elif",
    "Emma", "Farid", "Grace", "Hana", "Hugo", "Ines", "Ivan", "Jonas", "Julia", "Kai", "Kofi",
    "Lea", "Liam", "Lina", "Marco", "Maya", "Mei", "Nadia", "Noah", "Omar", "Paula", "Quinn",
    "Rosa", "Sami", "Sara", "Tariq", "Uma", "Vera", "Yuki", "Zoe",
)  # fmt: skip
_LAST = (
    "Abbott", "Bauer", "Costa", "Dubois", "Eriksen", "Fischer", "Garcia", "Haddad", "Ito",
    "Jensen", "Kowalski", "Lopez", "Moreau", "Nakamura", "Novak", "Okafor", "Petrov", "Quinn",
    "Rossi", "Schmidt", "Silva", "Tanaka", "Urban", "Varga", "Weber", "Wong", "Yilmaz",
    "Zimmer",
)  # fmt: skip
_STREETS = (
    "High Street", "Station Road", "Rue de Rivoli", "Hauptstrasse", "Via Roma", "Calle Mayor",
    "Market Square", "Church Lane", "Park Avenue", "Mill Road", "Kungsgatan", "Nowy Swiat",
)  # fmt: skip
_CITIES = (
    ("London", "EC1A", "GB"), ("Paris", "75001", "FR"), ("Berlin", "10115", "DE"),
    ("Rome", "00184", "IT"), ("Madrid", "28013", "ES"), ("Lisbon", "1100", "PT"),
    ("Amsterdam", "1012", "NL"), ("Stockholm", "111 52", "SE"), ("Warsaw", "00-001", "PL"),
    ("Vienna", "1010", "AT"), ("Dublin", "D01", "IE"), ("Prague", "110 00", "CZ"),
)  # fmt: skip
_ADJECTIVES = (
    "Classic", "Compact", "Deluxe", "Eco", "Essential", "Folding", "Heavy", "Light", "Modern",
    "Mini", "Portable", "Premium", "Rustic", "Smart", "Solid", "Travel", "Vintage", "Wireless",
)  # fmt: skip
_MATERIALS = (
    "Bamboo", "Brass", "Canvas", "Ceramic", "Cotton", "Glass", "Leather", "Linen", "Oak",
    "Steel", "Wool",
)  # fmt: skip
_NOUNS = (
    "Backpack", "Blanket", "Bottle", "Bowl", "Candle", "Chair", "Clock", "Desk", "Kettle",
    "Lamp", "Mug", "Notebook", "Pan", "Pen", "Pillow", "Planter", "Scarf", "Shelf", "Speaker",
    "Stool", "Teapot", "Tray", "Umbrella", "Vase", "Wallet",
)  # fmt: skip

# Lines per order (1-5, mean 2.2) and units per line, as lookup tables indexed by random().
_LINES = [1] * 35 + [2] * 30 + [3] * 20 + [4] * 10 + [5] * 5
_UNITS = [1] * 60 + [2] * 25 + [3] * 10 + [4] * 3 + [5] * 2
_STAFF_SHARE = 0.002
_CANCELLED_PENDING = 0.05  # of orders are cancelled before being confirmed,
_CANCELLED_CONFIRMED = 0.08  # minus those, once confirmed; the rest are shipped
_CARRIERS = ("DHL", "UPS", "FedEx", "La Poste", "DPD")
_CANCEL_NOTES = ('"customer request"', '"payment failed"', "null", "null")


@dataclass(slots=True)
class _Customer:
    name: str
    address: tuple[str, str, str, str]
    created_json: str  # '"customer_name": "..."' fragment of OrderCreated
    created_address: str  # the address in OrderCreated (json.dumps spacing)
    detail_json: str  # the customer fragment of the OrderDetail document (compact)
    detail_address: str  # the address in the OrderDetail document (compact)


@dataclass(slots=True)
class _Product:
    cents: int
    created_prefix: str  # OrderCreated item, up to '"quantity": '
    detail_prefix: str  # OrderDetail item, up to '"quantity":'
