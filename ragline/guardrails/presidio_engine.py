"""Presidio, configured for ragline: offline recognizers and the analyzer and anonymizer
engines. Imported only when a redactor is built: Presidio pulls in transformers and torch
(~5 s), which the CLI's other commands should not pay for."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

import regex
import tldextract
from presidio_analyzer import (
    AnalyzerEngine,
    EntityRecognizer,
    Pattern,
    PatternRecognizer,
    RecognizerRegistry,
)
from presidio_analyzer.nlp_engine import NlpEngineProvider
from presidio_analyzer.predefined_recognizers import (
    CreditCardRecognizer,
    EmailRecognizer,
    IbanRecognizer,
    IpRecognizer,
    PhoneRecognizer,
    UsSsnRecognizer,
)
from presidio_anonymizer import AnonymizerEngine

from ragline.config import Pii

# The public suffix list that ships inside tldextract: the default extractor fetches the
# list from the internet on first use, which stalls (or fails) on a machine without it.
_OFFLINE_TLDS = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)
# PatternRecognizer's default global_regex_flags.
_PATTERN_FLAGS = regex.DOTALL | regex.MULTILINE | regex.IGNORECASE


class OfflineEmailRecognizer(EmailRecognizer):
    """Presidio's email recognizer, validating domains against the bundled suffix list."""

    def validate_result(self, pattern_text: str) -> bool:
        return bool(_OFFLINE_TLDS(pattern_text).fqdn)


class CardRecognizer(CreditCardRecognizer):
    """Presidio's card recognizer (Luhn-checked) with Mastercard's 2221-2720 range, which
    its pattern (first digit 1, 3, 4, 5 or 6) misses."""

    PATTERNS = [
        Pattern(
            "All Credit Cards (weak)",
            r"\b(?!1\d{12}(?!\d))((4\d{3})|(5[0-5]\d{2})|(6\d{3})|(1\d{3})|(3\d{3})|"
            r"(2(?:22[1-9]|2[3-9]\d|[3-6]\d{2}|7[01]\d|720)))"
            r"[- ]?(\d{3,4})[- ]?(\d{3,4})[- ]?(\d{3,5})\b",
            0.3,
        ),
    ]


_BUILTIN: dict[str, Callable[[], EntityRecognizer]] = {
    "EMAIL_ADDRESS": OfflineEmailRecognizer,
    "PHONE_NUMBER": PhoneRecognizer,
    "CREDIT_CARD": CardRecognizer,  # Luhn-checked
    "IBAN_CODE": IbanRecognizer,  # checksum-validated
    "IP_ADDRESS": IpRecognizer,
    "US_SSN": UsSsnRecognizer,
}


def build_analyzer(config: Pii) -> tuple[AnalyzerEngine, list[str]]:
    """The analyzer for the config, and the entity names to ask it for."""
    registry = RecognizerRegistry(supported_languages=["en"])
    for entity in config.entities:
        recognizer = _BUILTIN.get(entity)
        if recognizer is not None:
            registry.add_recognizer(recognizer())
    for custom in config.custom_patterns:
        registry.add_recognizer(
            PatternRecognizer(
                supported_entity=custom.name,
                patterns=[Pattern(custom.name.lower(), custom.pattern, custom.score)],
            )
        )
    engine = config.nlp_engine
    nlp = NlpEngineProvider(
        nlp_configuration={
            "nlp_engine_name": engine.name,
            "models": [{"lang_code": "en", "model_name": engine.model}],
        }
    ).create_engine()
    entities = list(config.entities) + [c.name for c in config.custom_patterns]
    if engine.name != "no_op":
        registry.add_nlp_recognizer(nlp)
        entities += engine.entities
    analyzer = AnalyzerEngine(nlp_engine=nlp, registry=registry, supported_languages=["en"])
    return analyzer, entities


def custom_regexes(config: Pii) -> dict[str, Any]:
    """Each custom pattern compiled as Presidio's PatternRecognizer compiles it (the regex
    module, its default flags): a text it finds nothing in, Presidio finds nothing in."""
    return {
        custom.name: regex.compile(custom.pattern, flags=_PATTERN_FLAGS)
        for custom in config.custom_patterns
    }


@cache
def anonymizer() -> AnonymizerEngine:
    return AnonymizerEngine()  # type: ignore[no-untyped-call]
