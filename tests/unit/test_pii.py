import socket
from pathlib import Path

import pytest
import tldextract
from tldextract.cache import DiskCache

from ragline.config import CustomPattern, Pii, parse_config
from ragline.errors import ConfigError
from ragline.guardrails import presidio_engine
from ragline.guardrails.pii import PiiRedactor, Placeholders, ascii_digits, join_digit_groups


@pytest.fixture(scope="module")
def redactor() -> PiiRedactor:
    return PiiRedactor(Pii())


@pytest.mark.parametrize(
    ("value", "placeholder"),
    [
        ("jane.doe@acme.com", "<EMAIL_1>"),
        ("+1 415 555 0132", "<PHONE_1>"),
        ("4111 1111 1111 1111", "<CREDIT_CARD_1>"),
        ("2221 7601 4327 9626", "<CREDIT_CARD_1>"),  # Mastercard's 2-series
        ("DE89 3704 0044 0532 0130 00", "<IBAN_1>"),
        ("192.168.1.20", "<IP_ADDRESS_1>"),
        ("536-22-8471", "<US_SSN_1>"),
    ],
)
def test_each_default_entity_is_replaced_by_its_typed_placeholder(
    redactor: PiiRedactor, value: str, placeholder: str
) -> None:
    redaction = redactor.redact(f"Please note {value} for the file.", Placeholders())
    assert redaction.text == f"Please note {placeholder} for the file."


def _full_width(text: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else "\u3000" for c in text)


def _arabic_indic(text: str) -> str:
    return "".join(chr(0x0660 + int(c)) if c.isdigit() else c for c in text)


@pytest.mark.parametrize(
    "card",
    [
        "4111.1111.1111.1111",
        "4111 . 1111 . 1111 . 1111",
        "4111/1111/1111/1111",
        "4111\u20131111\u20131111\u20131111",  # en dashes
        "4111\u00a01111\u00a01111\u00a01111",  # no-break spaces
        _full_width("4111 1111 1111 1111"),  # and ideographic spaces
        _full_width("4111111111111111"),
        _arabic_indic("4111 1111 1111 1111"),
        _full_width("3782-822463-10005"),
    ],
)
def test_a_card_number_in_other_digits_or_separators_is_replaced_whole(
    redactor: PiiRedactor, card: str
) -> None:
    redaction = redactor.redact(f"Card {card} was charged twice.", Placeholders())
    assert redaction.text == "Card <CREDIT_CARD_1> was charged twice."
    assert redaction.counts == {"CREDIT_CARD": 1}


@pytest.mark.parametrize(
    ("value", "placeholder"),
    [
        (_full_width("536-22-8471"), "<US_SSN_1>"),
        (_full_width("jane.doe@acme.com"), "<EMAIL_1>"),
        ("+1\u00a0415\u00a0555\u00a00132", "<PHONE_1>"),
    ],
)
def test_other_entities_in_full_width_forms_are_replaced(
    redactor: PiiRedactor, value: str, placeholder: str
) -> None:
    redaction = redactor.redact(f"Please note {value} for the file.", Placeholders())
    assert redaction.text == f"Please note {placeholder} for the file."


@pytest.mark.parametrize(
    "text",
    [
        "The reference is 4111.1111.1111.1112 on the form.",  # fails the Luhn check
        "Leave runs from 2026.03.04 to 2026.03.09; the limit is 1.800 EUR.",
        "Version 4.1.1 of the app needs 16 / 32 GB.",
    ],
)
def test_dotted_numbers_that_are_not_cards_are_left_alone(redactor: PiiRedactor, text: str) -> None:
    assert redactor.redact(text, Placeholders()).text == text


def test_digit_groups_are_joined_with_offsets_into_the_original() -> None:
    text = "Card 4111 . 1111/1111-1111 1111 or 192.168.1.20"
    joined, origin = join_digit_groups(text)
    assert joined == "Card 4111 1111 1111-1111 1111 or 192 168 1 20"
    assert len(origin) == len(joined)
    for i, char in enumerate(joined):
        assert char == text[origin[i]] or (char == " " and not text[origin[i]].isdigit())
    assert origin[joined.index("192")] == text.index("192")


def test_ascii_digits_keeps_one_character_for_one() -> None:
    text = _full_width("4111") + "\u3000" + _arabic_indic("1111") + "\u2013x\u00e9"
    assert ascii_digits(text) == "4111 1111-x\u00e9"
    assert ascii_digits("plain ASCII 42") == "plain ASCII 42"


def test_a_card_number_failing_the_luhn_check_is_left_alone(redactor: PiiRedactor) -> None:
    text = "The reference is 4111 1111 1111 1112 on the form."
    redaction = redactor.redact(text, Placeholders())
    assert redaction.text == text
    assert redaction.counts == {}
    assert not redaction.changed


def test_dates_are_not_redacted(redactor: PiiRedactor) -> None:
    text = "Leave runs from 2026-03-04 to 4 March 2026 inclusive."
    redaction = redactor.redact(text, Placeholders())
    assert redaction.text == text
    assert redaction.counts == {}


def test_a_custom_pattern_is_redacted_under_its_own_name() -> None:
    config = Pii(custom_patterns=[CustomPattern(name="EMPLOYEE_ID", pattern=r"\bEMP-\d{6}\b")])
    redaction = PiiRedactor(config).redact("Badge EMP-123456 was lost.", Placeholders())
    assert redaction.text == "Badge <EMPLOYEE_ID_1> was lost."
    assert redaction.counts == {"EMPLOYEE_ID": 1}


def test_the_same_value_twice_gets_the_same_placeholder(redactor: PiiRedactor) -> None:
    redaction = redactor.redact("Mail jane@acme.com, then jane@acme.com again.", Placeholders())
    assert redaction.text == "Mail <EMAIL_1>, then <EMAIL_1> again."


def test_different_values_are_numbered_in_reading_order(redactor: PiiRedactor) -> None:
    redaction = redactor.redact("From jane@acme.com to omar@acme.com.", Placeholders())
    assert redaction.text == "From <EMAIL_1> to <EMAIL_2>."


def test_one_placeholders_object_keeps_numbers_across_texts(redactor: PiiRedactor) -> None:
    placeholders = Placeholders()
    first = redactor.redact("Ask jane@acme.com.", placeholders)
    second = redactor.redact("Ask omar@acme.com or jane@acme.com.", placeholders)
    assert first.text == "Ask <EMAIL_1>."
    assert second.text == "Ask <EMAIL_2> or <EMAIL_1>."


def test_numbering_continues_after_the_placeholders_a_text_holds(redactor: PiiRedactor) -> None:
    placeholders = Placeholders.continuing("Did <EMAIL_1> reply to <EMAIL_2>?")
    redaction = redactor.redact("Write to lena@acme.com.", placeholders)
    assert redaction.text == "Write to <EMAIL_3>."


def test_an_allowed_address_is_kept_and_others_are_redacted() -> None:
    redactor = PiiRedactor(Pii(allow=[r"[a-z-]+@northwind-lumen\.example"]))
    redaction = redactor.redact(
        "Write to hr@northwind-lumen.example, not jane@acme.com.", Placeholders()
    )
    assert redaction.text == "Write to hr@northwind-lumen.example, not <EMAIL_1>."
    assert redaction.counts == {"EMAIL": 1}


def test_counts_are_replacements_per_label_without_values(redactor: PiiRedactor) -> None:
    text = "Mail jane@acme.com, omar@acme.com and jane@acme.com or call +1 415 555 0132."
    redaction = redactor.redact(text, Placeholders())
    assert redaction.counts == {"EMAIL": 3, "PHONE": 1}
    assert redaction.changed


def test_the_email_recognizer_never_touches_the_network(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    attempts: list[tuple[object, ...]] = []

    def refuse(*args: object, **kwargs: object) -> None:
        attempts.append(args)
        raise OSError("the network is off in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    # Name resolution comes before any connect; without DNS it is the only call made.
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    # Forget the suffix lists loaded earlier (in this process, or cached on disk by an
    # earlier one), so that a recognizer fetching the list on first use would do it here:
    # Presidio's own email recognizer then tries raw.githubusercontent.com.
    monkeypatch.setattr(tldextract.tldextract.TLD_EXTRACTOR, "_extractor", None)
    monkeypatch.setattr(tldextract.tldextract.TLD_EXTRACTOR, "_cache", DiskCache(str(tmp_path)))
    monkeypatch.setattr(presidio_engine._OFFLINE_TLDS, "_extractor", None)

    redaction = PiiRedactor(Pii()).redact("Reach someone@example.co.uk today.", Placeholders())

    assert redaction.text == "Reach <EMAIL_1> today."
    assert attempts == []


@pytest.mark.parametrize(
    ("pii_section", "named"),
    [
        (
            {"custom_patterns": [{"name": "EMPLOYEE_ID", "pattern": r"EMP-(\d{6}"}]},
            "pii.custom_patterns.0.pattern",
        ),
        (
            {"custom_patterns": [{"name": "employee_id", "pattern": r"\bEMP-\d{6}\b"}]},
            "pii.custom_patterns.0.name",
        ),
        ({"entities": ["email_address"]}, "pii.entities.0"),
        ({"allow": ["[a-z+@example"]}, "pii.allow.0"),
    ],
)
def test_a_bad_pii_setting_is_refused_naming_the_key(
    pii_section: dict[str, object], named: str
) -> None:
    data = {"assistant_pipeline": {"guardrails": {"pii": pii_section}}}
    with pytest.raises(ConfigError) as raised:
        parse_config(data, origin="ragline.yaml")
    assert f"ragline.yaml: assistant_pipeline.guardrails.{named}:" in str(raised.value)


@pytest.mark.parametrize("entities", [["EMAIL"], ["EMAIL_ADDRESS", "PASSPORT"]])
def test_an_entity_without_a_recognizer_stops_start_up(entities: list[str]) -> None:
    data = {"assistant_pipeline": {"guardrails": {"pii": {"entities": entities}}}}
    with pytest.raises(ConfigError, match=r"assistant_pipeline\.guardrails\.pii: .*no recognizer"):
        parse_config(data)
