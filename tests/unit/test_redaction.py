# ruff: noqa: S106 - fake secrets are what these tests hide
"""redacted_payload and the ways a field is marked sensitive."""

from __future__ import annotations

import dataclasses
import datetime
import subprocess
import sys
import uuid
from typing import Annotated, Any, ClassVar

import pytest
from pydantic import (
    BaseModel,
    Field,
    RootModel,
    Secret,
    SecretBytes,
    SecretStr,
    computed_field,
    field_serializer,
)
from typing_extensions import TypedDict

from cqrs_kit import Command, ConfigurationError, Event, Query, redaction
from cqrs_kit.redaction import REDACTED, Sensitive, redacted_payload, sensitive_fields


class Card(BaseModel):
    holder: str
    number: Annotated[str, Sensitive]


class Wallet(BaseModel):
    owner: str
    cards: list[Card]
    pin: SecretStr


class Pay(Command[None]):
    amount: int
    card_number: Annotated[str, Sensitive]
    cvv: Annotated[str, Sensitive()]


def test_annotated_marker_class_and_instance_hide_the_value():
    payload = redacted_payload(Pay(amount=5, card_number="4111", cvv="123"))

    assert payload == {"amount": 5, "card_number": REDACTED, "cvv": REDACTED}
    assert REDACTED == "***"


def test_pydantic_secret_types_are_sensitive():
    class Login(Command[None]):
        user: str
        password: SecretStr
        key: SecretBytes
        born: Secret[datetime.date]
        token: SecretStr | None = None

    message = Login(
        user="ada", password="pw", key=b"k", born=datetime.date(1815, 12, 10), token="t"
    )

    assert redacted_payload(message) == {
        "user": "ada",
        "password": REDACTED,
        "key": REDACTED,
        "born": REDACTED,
        "token": REDACTED,
    }


def test_sensitive_fields_dunder_hides_listed_fields_and_subclasses_extend_it():
    class Register(Command[None]):
        __sensitive_fields__: ClassVar[frozenset[str]] = frozenset({"password"})
        email: str
        password: str

    class RegisterWithPhone(Register):
        __sensitive_fields__: ClassVar[frozenset[str]] = frozenset({"phone"})
        phone: str

    assert redacted_payload(Register(email="a@b.c", password="pw")) == {
        "email": "a@b.c",
        "password": REDACTED,
    }
    assert redacted_payload(RegisterWithPhone(email="a@b.c", password="pw", phone="555")) == {
        "email": "a@b.c",
        "password": REDACTED,
        "phone": REDACTED,
    }
    assert sensitive_fields(RegisterWithPhone) == {"password", "phone"}


def test_nested_models_and_lists_of_models_are_redacted_recursively():
    class OpenAccount(Command[None]):
        wallet: Wallet
        backup: Card | None = None
        by_name: dict[str, Card] = Field(default_factory=dict)
        pair: tuple[Card, Card] | None = None

    card = Card(holder="Ada", number="4111")
    message = OpenAccount(
        wallet=Wallet(owner="Ada", cards=[card, card], pin=SecretStr("0000")),
        backup=card,
        by_name={"main": card},
        pair=(card, card),
    )
    hidden_card = {"holder": "Ada", "number": REDACTED}

    assert redacted_payload(message) == {
        "wallet": {"owner": "Ada", "cards": [hidden_card, hidden_card], "pin": REDACTED},
        "backup": hidden_card,
        "by_name": {"main": hidden_card},
        "pair": [hidden_card, hidden_card],
    }
    assert sensitive_fields(OpenAccount) == frozenset(), "nested fields are their model's"


def test_optional_nested_model_that_is_none_stays_none():
    class MaybePay(Command[None]):
        card: Card | None = None

    assert redacted_payload(MaybePay()) == {"card": None}


def test_union_members_are_redacted_by_their_runtime_class():
    class Iban(BaseModel):
        iban: Annotated[str, Sensitive]
        bank: str

    class Refund(Command[None]):
        to: Card | Iban

    assert redacted_payload(Refund(to=Iban(iban="DE00", bank="B"))) == {
        "to": {"iban": REDACTED, "bank": "B"}
    }


def test_a_marker_inside_a_container_type_hides_the_whole_field():
    class Backup(Command[None]):
        codes: list[Annotated[str, Sensitive]]
        labels: list[str]

    assert redacted_payload(Backup(codes=["1", "2"], labels=["a"])) == {
        "codes": REDACTED,
        "labels": ["a"],
    }


def test_other_values_are_json_ready_and_unchanged():
    class Ship(Event):
        order_id: uuid.UUID
        at: datetime.datetime
        note: str

    order_id = uuid.UUID(int=1)
    at = datetime.datetime(2024, 5, 1, 12, 0, tzinfo=datetime.UTC)

    assert redacted_payload(Ship(order_id=order_id, at=at, note="n")) == {
        "order_id": str(order_id),
        "at": "2024-05-01T12:00:00Z",
        "note": "n",
    }


def test_keys_are_field_names_even_with_aliases():
    class Aliased(Query[int]):
        card_number: Annotated[str, Sensitive] = Field(alias="cardNumber")

    assert redacted_payload(Aliased(cardNumber="4111")) == {"card_number": REDACTED}


def test_each_call_returns_a_fresh_dict_and_leaves_the_message_alone():
    message = Pay(amount=5, card_number="4111", cvv="123")

    first = redacted_payload(message)
    first["amount"] = 0

    assert redacted_payload(message)["amount"] == 5
    assert message.card_number == "4111"


def test_excluded_sensitive_fields_are_simply_absent():
    class Hidden(Command[None]):
        __sensitive_fields__: ClassVar[frozenset[str]] = frozenset({"token"})
        token: str = Field(exclude=True)
        name: str

    assert redacted_payload(Hidden(token="t", name="n")) == {"name": "n"}


def test_computed_fields_can_be_listed_as_sensitive():
    class WithComputed(Command[None]):
        __sensitive_fields__: ClassVar[frozenset[str]] = frozenset({"masked"})
        number: Annotated[str, Sensitive]

        @computed_field  # type: ignore[prop-decorator]
        @property
        def masked(self) -> str:
            return self.number[-4:]

    assert redacted_payload(WithComputed(number="4111222233334444")) == {
        "number": REDACTED,
        "masked": REDACTED,
    }


def test_any_typed_fields_are_walked_at_runtime():
    class Envelope(Command[None]):
        body: Any
        items: list[Any]

    card = Card(holder="Ada", number="4111")

    assert redacted_payload(Envelope(body=card, items=[1, card])) == {
        "body": {"holder": "Ada", "number": REDACTED},
        "items": [1, {"holder": "Ada", "number": REDACTED}],
    }


def test_recursive_models_are_redacted_at_every_depth():
    class Node(BaseModel):
        secret: Annotated[str, Sensitive]
        children: list[Node] = []

    class Tree(Command[None]):
        root: Node

    tree = Tree(root=Node(secret="a", children=[Node(secret="b", children=[Node(secret="c")])]))

    assert redacted_payload(tree) == {
        "root": {
            "secret": REDACTED,
            "children": [{"secret": REDACTED, "children": [{"secret": REDACTED, "children": []}]}],
        }
    }


def test_nested_root_models_are_walked():
    class Cards(RootModel[list[Card]]):
        pass

    class Pin(RootModel[Annotated[str, Sensitive]]):
        pass

    class Holder(Command[None]):
        cards: Cards
        pin: Pin

    message = Holder(cards=Cards([Card(holder="Ada", number="1")]), pin=Pin("0000"))

    assert redacted_payload(message) == {
        "cards": [{"holder": "Ada", "number": REDACTED}],
        "pin": REDACTED,
    }


def test_a_custom_serializer_that_changes_the_shape_fails_closed():
    class Summary(Command[None]):
        card: Card

        @field_serializer("card")
        def _flatten(self, card: Card) -> str:
            return f"{card.holder}:{card.number}"

    assert redacted_payload(Summary(card=Card(holder="Ada", number="4111"))) == {"card": REDACTED}


def test_dataclasses_and_typed_dicts_with_sensitive_parts_are_hidden_whole():
    @dataclasses.dataclass
    class Address:
        street: str
        door_code: Annotated[str, Sensitive]

    @dataclasses.dataclass
    class Plain:
        street: str

    class Secrets(TypedDict):
        token: SecretStr

    class Move(Command[None]):
        to: Address
        plain: Plain
        secrets: Secrets

    message = Move(
        to=Address(street="Main", door_code="42"),
        plain=Plain(street="Side"),
        secrets={"token": SecretStr("t")},
    )

    assert redacted_payload(message) == {
        "to": REDACTED,
        "plain": {"street": "Side"},
        "secrets": REDACTED,
    }


def test_sensitive_plans_are_computed_once_per_class(monkeypatch):
    class Once(Command[None]):
        number: Annotated[str, Sensitive]
        card: Card

    calls: list[Any] = []
    scan = redaction._scan

    def counting_scan(tp: Any, seen: set[int]) -> tuple[bool, bool]:
        calls.append(tp)
        return scan(tp, seen)

    monkeypatch.setattr(redaction, "_scan", counting_scan)
    message = Once(number="1", card=Card(holder="A", number="2"))

    redacted_payload(message)
    first = len(calls)
    redacted_payload(message)
    redacted_payload(Once(number="3", card=Card(holder="B", number="4")))

    assert first > 0
    assert len(calls) == first, "the second payload must reuse the cached plan"


def test_an_unknown_name_in_sensitive_fields_is_a_configuration_error():
    class Typo(Command[None]):
        __sensitive_fields__: ClassVar[frozenset[str]] = frozenset({"pasword", "tokn"})
        password: str

    with pytest.raises(ConfigurationError, match=r"pasword, tokn, which are not fields of Typo"):
        sensitive_fields(Typo)
    with pytest.raises(ConfigurationError, match="pasword"):
        redacted_payload(Typo(password="pw"))


def test_a_string_sensitive_fields_is_a_configuration_error():
    class Stringly(Command[None]):
        __sensitive_fields__: ClassVar[str] = "password"  # type: ignore[assignment]
        password: str

    with pytest.raises(ConfigurationError, match="must be a collection of field names"):
        sensitive_fields(Stringly)


def test_the_marker_combines_with_repr_false_to_keep_values_out_of_reprs():
    class QuietPay(Command[None]):
        amount: int
        card_number: Annotated[str, Sensitive, Field(repr=False)]

    message = QuietPay(amount=5, card_number="4111")

    assert repr(message) == "QuietPay(amount=5)", "tracebacks that show locals use repr"
    assert redacted_payload(message) == {"amount": 5, "card_number": REDACTED}


def test_the_marker_changes_nothing_about_validation():
    assert Pay(amount=1, card_number="4111", cvv="1").card_number == "4111"
    assert repr(Sensitive()) == "Sensitive()"


def test_importing_redaction_does_not_import_structlog():
    code = "import sys, cqrs_kit, cqrs_kit.redaction; print('structlog' in sys.modules)"
    result = subprocess.run(  # noqa: S603 - our own interpreter, fixed arguments
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )

    assert result.stdout.strip() == "False"
