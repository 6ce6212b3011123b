"""Prompt injection in a question, in the languages and disguises people actually use.

Three steps, each cheap (a typical question takes a fraction of a millisecond, one of the
6,000 characters ragline.yaml allows some 20 ms):

1. normalise: HTML entities decoded, invisible and format characters dropped, compatibility
   forms folded (full-width and mathematical letters, ligatures), accents stripped, Cyrillic
   and Greek look-alikes read as Latin in Latin text, spaced-out letters ("i g n o r e")
   joined, case folded and leetspeak read as letters ("1gn0r3"). A second view also joins
   words split by hyphens or dots ("in-struc-tions"). Every character keeps the range of
   the original text it came from, so a finding's spans cover the original characters.
2. rules, in English, French, Spanish, German, Italian, Portuguese, Dutch, Polish and
   Swedish: each finding names its rule (`ignore_instructions`, `system_prompt`, ...).
   Comments (`<!-- -->`, markdown link comments) and tags are read like any other text;
   base64 runs are decoded and read too.
3. when no rule fired, a linear classifier over character n-grams of the normalised text
   (trained on the train split of tests/data/injection by
   scripts/train_injection_detector.py; its weights are ragline/guardrails/injection_model.py)
   is the backstop: rule `classifier`.

A finding's detail is a fixed sentence per rule: never the matched text.
"""

from __future__ import annotations

import base64
import binascii
import html
import math
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from itertools import pairwise

from ragline.guardrails.pii import DELETED, Span

REMOVED_LABEL = "REMOVED"


@dataclass(frozen=True)
class Finding:
    rule: str  # the verdict's rule id is `injection.<rule>`
    detail: str  # a fixed sentence: never the matched text
    spans: tuple[Span, ...]  # in the original text


# -- normalisation --------------------------------------------------------------------------


@dataclass(frozen=True)
class Normalised:
    """A view of a text; character i came from original[starts[i]:ends[i]]."""

    text: str
    starts: tuple[int, ...]
    ends: tuple[int, ...]

    def original_span(self, start: int, end: int) -> tuple[int, int]:
        return self.starts[start], self.ends[max(start, end - 1)]


_Char = tuple[str, int, int]  # a character of a view and the original range it came from

_ENTITY = re.compile(r"&(?:#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});")
# Invisible to a reader, not to a model: zero-width and bidirectional marks, soft hyphens,
# tags (all category Cf), variation selectors, the combining grapheme joiner, Hangul fillers.
_INVISIBLE_EXTRA = frozenset("\u034f\u115f\u1160\u3164\uffa0") | frozenset(
    chr(c) for c in range(0xFE00, 0xFE10)
)
# Cyrillic and Greek letters drawn like Latin ones (after case folding).
_LOOKALIKES = str.maketrans(
    {
        "\u0430": "a", "\u0435": "e", "\u0451": "e", "\u043e": "o", "\u0440": "p",
        "\u0441": "c", "\u0443": "y", "\u0445": "x", "\u0456": "i", "\u0457": "i",
        "\u0458": "j", "\u0455": "s", "\u0501": "d", "\u051b": "q", "\u051d": "w",
        "\u04bb": "h", "\u04cf": "l", "\u043a": "k", "\u043c": "m", "\u043d": "h",
        "\u0442": "t", "\u0432": "b", "\u03b1": "a", "\u03b5": "e", "\u03b9": "i",
        "\u03ba": "k", "\u03bf": "o", "\u03c1": "p", "\u03c4": "t", "\u03c5": "u",
        "\u03bd": "v", "\u03c7": "x", "\u0131": "i", "\u0261": "g",
    }
)  # fmt: skip
_LEET = {"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s", "!": "i"}
_LEET_TOKEN = re.compile(r"[\w@$!]+")
# Three or more single letters with the same separator between them: "i g n o r e".
_SPACED = re.compile(r"(?<![^\W_])[^\W\d_]([ ._*/-])(?:[^\W\d_]\1)+[^\W\d_](?![^\W_])")
# Hyphens, dots and the like between letters: "in-struc-tions", "pre.vious".
_SPLITTER = re.compile(r"(?<=[^\W\d_])[-\u2010\u2011._*](?=[^\W\d_])")


def normalise(text: str) -> Normalised:
    """The text as the rules and the classifier read it (lower case, no accents)."""
    return _view(_fold(_cased(text)))


def _cased(text: str) -> list[_Char]:
    """Entities decoded, invisible characters dropped, compatibility forms and accents
    folded, look-alikes read as Latin, spaced-out letters joined; case kept."""
    chars: list[_Char] = []
    for piece, start, end in _entities(text):
        for offset, char in enumerate(piece):
            o_start, o_end = (start + offset, start + offset + 1) if end is None else (start, end)
            chars.extend((folded, o_start, o_end) for folded in _plain(char))
    if _mostly_latin(chars):
        chars = [(_latin(c), s, e) for c, s, e in chars]
    return _drop(chars, _SPACED, group=1)


@cache
def _plain(char: str) -> str:
    """A character without invisibles, compatibility forms or accents; spaces as " "."""
    if " " <= char <= "~" or char == "\n":
        return char
    if _invisible(char):
        return ""
    folded = (c for c in unicodedata.normalize("NFKD", char) if unicodedata.category(c) != "Mn")
    return "".join(" " if c.isspace() and c != "\n" else c for c in folded)


def _latin(char: str) -> str:
    if char.isascii() or not char.isalpha():
        return char
    lower = char.lower()
    latin = lower.translate(_LOOKALIKES)
    if latin == lower:
        return char
    return latin.upper() if char.isupper() else latin


def _fold(chars: list[_Char]) -> list[_Char]:
    """Case folded, leetspeak read as letters."""
    folded: list[_Char] = [(f, s, e) for c, s, e in chars for f in _casefold(c)]
    text = "".join(c for c, _, _ in folded)
    for match in _LEET_TOKEN.finditer(text):
        token = match.group(0)
        letters = sum(c.isalpha() for c in token)
        leet = [
            i for i, c in enumerate(token) if c in _LEET and not (c == "!" and i == len(token) - 1)
        ]
        if letters >= 2 and leet and letters + len(leet) == len(token):
            for i in leet:
                c, s, e = folded[match.start() + i]
                folded[match.start() + i] = (_LEET[c], s, e)
    return folded


@cache
def _casefold(char: str) -> str:
    return char.casefold()


def _joined(view: Normalised) -> Normalised | None:
    """The view with words split by hyphens or dots joined, when there are any."""
    chars = list(zip(view.text, view.starts, view.ends, strict=True))
    joined = _drop(chars, _SPLITTER)
    return _view(joined) if len(joined) != len(chars) else None


def _entities(text: str) -> Iterator[tuple[str, int, int | None]]:
    """The text in pieces: plain runs (end None: one original character each) and decoded
    HTML entities (every character from the entity's whole range)."""
    position = 0
    for match in _ENTITY.finditer(text):
        if match.start() > position:
            yield text[position : match.start()], position, None
        yield html.unescape(match.group(0)), match.start(), match.end()
        position = match.end()
    if position < len(text):
        yield text[position:], position, None


def _invisible(char: str) -> bool:
    return unicodedata.category(char) == "Cf" or char in _INVISIBLE_EXTRA


def _mostly_latin(chars: list[_Char]) -> bool:
    letters = [c for c, _, _ in chars if c.isalpha()]
    latin = sum(c.isascii() for c in letters)
    return bool(letters) and latin * 2 >= len(letters)


def _drop(chars: list[_Char], pattern: re.Pattern[str], group: int = 0) -> list[_Char]:
    """chars without the characters `pattern` (or its group) matches; a repeated group
    (the separator of spaced-out letters) is dropped at every position it stands."""
    text = "".join(c for c, _, _ in chars)
    dropped: set[int] = set()
    for match in pattern.finditer(text):
        if group:
            separator = match.group(group)
            dropped.update(i for i in range(match.start(), match.end()) if text[i] == separator)
        else:
            dropped.update(range(match.start(), match.end()))
    return [char for i, char in enumerate(chars) if i not in dropped]


def _view(chars: list[_Char]) -> Normalised:
    return Normalised(
        "".join(c for c, _, _ in chars),
        tuple(s for _, s, _ in chars),
        tuple(e for _, _, e in chars),
    )


# -- rules ----------------------------------------------------------------------------------
# Written against normalise(): lower case, no accents ("precedentes", "ubersetze", "ausser").


def _any(*alternatives: str) -> str:
    return "(?:" + "|".join(alternatives) + ")"


# Up to ~40 characters within one sentence (a line break is not a sentence end: attacks
# put one word per line).
_GAP = r"[^.!?;]{0,40}?"
_WORDS = r"(?:[^\w.!?;]+\w+){0,3}?[^\w.!?;]+"  # up to three words in between

_SET_ASIDE = _any(
    # en
    r"ignor(?:e|ing)", r"disregard(?:ing)?", r"forget(?:ting)?", r"overrid(?:e|ing)",
    r"bypass(?:ing)?", "skip", "drop", "discard", "neglect", "abandon", "dismiss", "ditch",
    "circumvent", "get around", r"(?:set|put|cast) aside", r"pay no (?:attention|heed|mind) to",
    r"never ?mind", r"throw (?:out|away)", "cancel", "erase", "disobey", r"break",
    r"(?:stop|quit) (?:following|obeying|using|applying|respecting)",
    r"(?:do not|don'?t|no longer|never) (?:follow|obey|apply|respect|bother with|stick to)",
    # fr
    r"ignor(?:e|ez|er)", r"oubli(?:e|ez|er)", r"ne (?:tiens|tenez|tenir) (?:pas|plus) compte",
    r"(?:fais|faites|faire) abstraction", r"pass(?:e|ez|er) outre", r"laiss(?:e|ez|er) tomber",
    r"ne (?:suis|suivez|respecte|respectez) (?:pas|plus)", r"contourn(?:e|ez|er)",
    r"outrepass(?:e|ez|er)",
    # es
    r"ignor(?:a|e|ar)", r"olvid(?:a|e|ar)", r"(?:haz|haga|hagan) caso omiso",
    r"no (?:hagas|haga) caso", r"no (?:sigas|siga|sigan|obedezcas|obedezca|respetes|respete)",
    r"dej(?:a|e|ar) de lado", r"desobedec(?:e|er)", "desobedezca", r"omit(?:e|a|ir)",
    r"descart(?:a|e)", "pasa por alto",
    # de
    r"ignorier(?:e|en|t)?", "vergiss", "vergessen sie", r"missacht(?:e|en)", r"ubergeh(?:e|en)",
    r"umgeh(?:e|en)", "verwirf", r"(?:halte dich|halten sie sich|haltet euch) nicht (?:mehr )?an",
    r"(?:folge|befolge|folgen sie|befolgen sie) nicht",
    # it
    r"ignor(?:a|i|are)", r"dimentic(?:a|hi|are)", r"trascur(?:a|i|are)",
    r"non (?:seguire|segua|rispettare|rispetti|obbedire)", "lascia perdere", r"aggir(?:a|i)",
    # pt
    r"esquec(?:a|e|er)", r"desconsider(?:e|a|ar)", r"desprez(?:e|a)",
    r"nao (?:siga|sigas|obedeca|respeite)", r"deix(?:e|a) de lado", r"contorn(?:e|a)",
    # nl, pl, sv
    "negeer", "negeren", "vergeet", r"houd je niet (?:meer )?aan", "zignoruj", "ignoruj",
    r"zapomnij(?: o)?", "pomin", "ignorera", "glom", "strunta i", "bortse fran",
)  # fmt: skip
# Words that make "the rules" the assistant's own: "your", "all previous", "the above".
_THEIRS = _any(
    # en
    "your", r"all(?: of)?(?: the| your)?", "any", "every", "previous", "prior", "above",
    "earlier", "preceding", "initial", "original", "system", "safety", "content", "current",
    "existing", "hidden", "these", "those", "built-in", "default",
    # fr
    "tes", "vos", "tous", "toutes", r"precedent(?:e|es|s)?", r"anterieur(?:e|es|s)?",
    "ci-dessus", r"initial(?:e|es|s)?", "du systeme",
    # es
    "tus", "sus", "todas", "todos", r"anterior(?:es)?", r"previ(?:a|as|o|os)", "de arriba",
    r"inicial(?:es)?", "del sistema",
    # de
    r"dein(?:e|en|er)?", r"ihr(?:e|en|er)?", "alle", r"vorherig(?:e|en)?", r"bisherig(?:e|en)?",
    r"obig(?:e|en)?", r"fruher(?:e|en)?", r"ursprunglich(?:e|en)?", "des systems",
    # it
    "tue", "sue", r"tutt(?:e|i)", r"precedent(?:e|i)", r"ricevut(?:e|i)", "iniziali",
    # pt
    "suas", "tuas", "seus", "teus", "iniciais", "do sistema",
    # nl, pl, sv
    "je", "jouw", "uw", "vorige", "eerdere", "bovenstaande", "swoich", "swoje", "wszystkie",
    "poprzednie", "dina", "alla", "tidigare",
)  # fmt: skip
# What the assistant was told: its instructions, rules, prompt, grounding.
_INSTRUCTIONS = _any(
    # en
    r"instructions?", r"prompts?", r"directives?", "directions", r"guidelines?", "guidance",
    r"guardrails?", r"rules?", "rulebook", r"polic(?:y|ies)", r"constraints?", r"restrictions?",
    "programming", "training", "configuration", "context", "settings", r"filters?",
    r"system (?:message|prompt)",
    # fr
    r"consignes?", r"regles?", r"indications?",
    # es
    "instrucciones", "instruccion", r"reglas?", r"normas?", "indicaciones", "directrices",
    "pautas",
    # de
    r"anweisung(?:en)?", r"instruktion(?:en)?", r"regeln?", r"vorgaben?", r"richtlinien?",
    r"befehle?",
    # it
    r"istruzion[ei]", r"regol[ae]", r"indicazion[ei]", r"direttive?",
    # pt
    r"instruc(?:oes|ao)", r"regras?", r"diretrizes?", r"orientac(?:oes|ao)",
    # nl, pl, sv
    r"instructies?", "regels", "richtlijnen", "aanwijzingen", r"instrukcj[ei]", "polecenia",
    r"zasad(?:y|ach)?", r"instruktioner(?:na)?", r"regler(?:na)?", r"riktlinjer(?:na)?",
)  # fmt: skip
# ... or words after them that do: "the rules you were given".
_GIVEN = _any(
    r"you (?:were|have been|'ve been|got|received|are|operate)",
    "in your",
    "from before",
    "above",
    "ci-dessus",
    "de arriba",
    "oben",
    "sopra",
    "acima",
    "hierboven",
    r"que (?:te|le) (?:dieron|dijeron)",
    "qu'on t'a",
    # Romance adjectives follow the noun: "las indicaciones previas".
    r"previ(?:a|as|o|os)",
    r"anterior(?:es)?",
    r"precedent(?:e|es|s|i)?",
    r"anterieur(?:e|es)?",
    r"(?:del|du|do|di) (?:sistema|systeme)",
    r"initial(?:e|es)",
    r"inicial(?:es)?",
    "iniziali",
    "iniciais",
)
# Everything the assistant was told, in one phrase.
_ALL_OF_IT = _any(
    r"everything (?:above|before|else|prior|so far|you (?:were|have been) told)",
    r"(?:all )?(?:of )?the above",
    r"what (?:you were|you've been|you have been) (?:told|given)",
    "tout ce qui precede",
    "todo lo anterior",
    r"lo que te (?:dijeron|han dicho)",
    r"alles (?:oben|vorherige|bisherige)",
    r"quello che ti (?:e stato|hanno) detto",
    r"tudo o que (?:lhe|te) disseram",
)
_VOID = _any(
    "cancelled",
    "canceled",
    "void",
    "invalid",
    "revoked",
    "obsolete",
    "null",
    "suspended",
    "lifted",
    "disabled",
    r"no longer (?:valid|apply|in effect|in force)",
    "a test",
    r"(?:annulees|caduques|nulles|invalides)",
    r"ya no (?:son validas|aplican|sirven)",
    r"(?:nicht mehr gultig|ungultig|aufgehoben|nichtig)",
    r"(?:annullate|non (?:piu )?valide)",
    r"(?:canceladas|invalidas|anuladas)",
    "ongeldig",
)

_USER_ROLE = _any(
    "user",
    "utilisateur",
    "usuario",
    "nutzer",
    "benutzer",
    "utente",
    "utilizador",
    "gebruiker",
)
_MACHINE = _any(
    "ai",
    r"a\.i\.",
    "artificial intelligence",
    r"assistants?",
    r"chat ?bots?",
    r"bots?",
    r"(?:language )?models?",
    r"llms?",
    "gpt",
    r"agents?",
    "ki",
    "ia",
    "l'ia",
    "l'assistant",
    "asistente",
    "assistente",
    r"assistent(?:en)?",
    "assistant virtuel",
    "assistente virtuale",
)

_IGNORE = [
    rf"\b{_SET_ASIDE}\b{_GAP}\b{_THEIRS}{_WORDS}{_INSTRUCTIONS}\b",
    rf"\b{_SET_ASIDE}\b{_GAP}\b{_INSTRUCTIONS}{_WORDS}{_GIVEN}\b",
    rf"\b{_SET_ASIDE}\W{{1,3}}{_ALL_OF_IT}",
    rf"\b(?:setze|setzen sie)\b{_GAP}\b{_THEIRS}{_WORDS}{_INSTRUCTIONS}\W+ausser kraft",
    rf"\b{_THEIRS}\W+(?:\w+\W+)?{_INSTRUCTIONS}\W+(?:are|were|is|have been|sont|son|sind|sono|"
    rf"sao|zijn)\W+(?:now\W+|hereby\W+|jetzt\W+)?{_VOID}",
    r"\b(?:these|the|my|this) new (?:instructions?|rules?) (?:supersede|replace|override|"
    r"take precedence)",
    # the assistant's grounding: "ignore the knowledge base", "don't rely on the handbook"
    rf"\b(?:{_SET_ASIDE}|(?:do not|don'?t|never|stop) "
    r"(?:rely(?:ing)? on|us(?:e|ing)|consult(?:ing)?))\W+(?:the |your |all )?"
    r"(?:retrieved |provided |supplied |attached )?(?:knowledge base|handbook|"
    r"(?:retrieved|provided|supplied) (?:documents|passages|sources|context))\b",
]

_REVEAL = _any(
    # en
    "repeat", "print", "show", "reveal", "output", "display", "leak", "dump", "tell", "give",
    "share", "copy", "paste", r"write(?: out| down)?", "list", r"summari[sz]e", "translate",
    "spell out", "recite", "quote", "render", "convert", "encode", r"read(?: out| back)?",
    "disclose", "expose", "provide", "send", "describe", "reproduce", "rewrite",
    r"what(?:'s| is| are| were| was)", "which",
    # fr
    r"repete[zs]?", r"affiche[zs]?", r"montre[zs]?", r"revele[zs]?", r"donne[zs]?", r"ecri[st]",
    "ecrivez", r"tradui[st]", "traduisez", r"recite[zs]?", r"cite[zs]?", r"copie[zs]?", r"di[st]",
    "dites", r"quel(?:le)?s?",
    # es
    "repite", "repita", r"muestra(?:me)?", r"muestre(?:me)?", "revela", "dime", r"diga(?:me)?",
    "escribe", "escriba", "traduce", "traduzca", "copia", "cita", "imprime", "imprima", "que",
    r"cual(?:es)?",
    # de
    r"wiederhole(?:n sie)?", r"zeig(?:e|en sie)?", "gib", "geben sie", r"verrate(?:n sie)?",
    r"nenne(?:n sie)?", r"ubersetze(?:n sie)?", r"schreib(?:e|en sie)?", "kopiere", "drucke",
    "welche", "was",
    # it
    "ripeti", "ripeta", r"mostra(?:mi)?", r"mostri(?:mi)?", "rivela", "riveli", "dimmi", "traduci",
    "traduca", "scrivi", "stampa", "quali", "cosa",
    # pt
    "repete", "mostre", "revele", "diga", "traduza", "escreva", "copie", "quais", "qual", "o que",
    # nl
    "herhaal", "toon", "vertaal", "geef", "schrijf", "wat", "welke",
)  # fmt: skip
# The assistant's own set-up, named.
_SET_UP = _any(
    # en
    r"system ?prompt(?! (?:me|you|us|them|him|her|for|to)\b)", r"pre-?prompt", "meta ?prompt",
    r"(?:initial|original|hidden|secret|internal|developer|setup|starting|opening|confidential)"
    r" (?:prompt|instructions|system message|directives|guidelines|rules)",
    r"your (?:\w+ ){0,2}(?:prompt|instructions|rules|guidelines|directives|configuration|"
    r"programming|system message|context window)",
    r"(?:the )?(?:text|words|message|content|lines?|instructions) (?:above|before (?:this|my))",
    r"everything (?:that )?(?:came |comes |is |was )?(?:above|before (?:this|my))",
    r"(?:what|everything) (?:that )?(?:came|comes|is written|was written) (?:before|above|at the "
    r"(?:very )?top)",
    r"(?:text|sentences?|words|lines?|content|instructions)(?: that)? (?:sits?|are|is|were|was|"
    r"came|comes|appears?) (?:above|before) (?:my|this)\b",
    r"what (?:you were|you've been|you have been|you are) (?:told|given|instructed|programmed)",
    r"(?:instructions|rules|guidelines|words|messages?) (?:that )?you (?:were|have been|'ve "
    r"been|got|received) (?:given|told|configured|set up|provided)",
    # fr
    r"(?:tes|vos) (?:\w+ ){0,2}(?:instructions|consignes|regles|directives)", "texte ci-dessus",
    r"prompt (?:du )?systeme", r"(?:instructions|consignes) (?:initiales|d'origine|cachees)",
    r"(?:consignes|instructions|regles) (?:as-tu|avez-vous) recues?", "ce qu'on t'a dit",
    # es
    r"(?:tus|sus) (?:\w+ ){0,2}(?:instrucciones|reglas|indicaciones|directrices)",
    r"texto (?:de arriba|anterior)", "prompt del sistema", "mensaje del sistema",
    r"instrucciones (?:iniciales|originales|ocultas)",
    # de
    r"(?:deine|deinen|ihre|ihren) (?:\w+ ){0,2}(?:anweisungen|instruktionen|vorgaben|regeln|"
    r"systemprompt|prompt|systemnachricht|konfiguration)",
    "systemprompt", "systemnachricht", r"(?:text|inhalt) (?:oben|daruber)", "obigen text",
    # it
    r"(?:le tue|le sue) (?:\w+ ){0,2}(?:istruzioni|regole|indicazioni)",
    r"istruzioni (?:che hai ricevuto|iniziali|originali)", "prompt di sistema",
    "messaggio di sistema", r"testo (?:qui )?sopra",
    # pt
    r"(?:suas|tuas) (?:\w+ ){0,2}(?:instrucoes|regras|diretrizes)",
    r"instrucoes (?:iniciais|originais)", "prompt do sistema", "mensagem do sistema",
    "texto acima",
    # nl
    r"(?:je|jouw|uw) (?:instructies|systeemprompt|richtlijnen)", "systeemprompt",
    "tekst hierboven",
)  # fmt: skip
_BEFORE_THIS = _any(
    r"(?:before|prior to|at the start of) (?:this|our|the) (?:conversation|chat|session)",
    r"when (?:this|our|the) (?:conversation|chat|session) (?:began|started)",
    r"avant (?:cette|notre) conversation",
    r"antes de (?:esta|nuestra) conversacion",
    r"vor (?:diesem|unserem) gesprach",
    r"prima di questa conversazione",
    r"antes desta conversa",
    r"voor dit gesprek",
)
_TOLD = _any(
    "told",
    "given",
    "instructed",
    "received",
    "said",
    "loaded",
    "primed",
    "initiali[sz]ed",
    "recu",
    "recues",
    "dit",
    "dijeron",
    "dieron",
    "recibiste",
    "bekommen",
    "erhalten",
    "gesagt",
    "ricevuto",
    "detto",
    "recebeu",
    "recebeste",
    "disseram",
    "gekregen",
    "gezegd",
)
_EXFILTRATION = [
    rf"\b{_REVEAL}\b{_GAP}\b{_SET_UP}",
    r"\bwhat (?:were|are|did|have) you (?:been )?(?:told|given|instructed|asked)\b",
    rf"\b{_TOLD}\b{_GAP}\b{_BEFORE_THIS}",
    rf"\b{_BEFORE_THIS}{_GAP}\b{_TOLD}\b",
    r"\b(?:rules|instructions|guidelines) (?:were|are|have) you (?:been )?(?:configured|given|"
    r"set up|programmed)",
]

_ROLE_PLAY = [
    # en
    r"\byou(?: are|'re) (?:now|no longer)\b",
    r"\bfrom now on,? (?:you|act|respond|answer|reply|behave|pretend)\b",
    r"\bpretend (?:to be|you are|you're|that you)\b",
    r"\bact as (?:if|though) you\b",
    r"\bact as (?:an? |my |the )?(?:\w+ ){0,2}(?:unrestricted|unfiltered|uncensored|evil|"
    r"jailbroken|different|rogue|malicious|hacker|grand(?:mother|ma)|dan)\b",
    r"\brole-?play(?:ing)?\b",
    r"\blet'?s play a game\b",
    r"\b(?:play|take on) the (?:role|part) of\b",
    r"\bstay in character\b",
    r"\bimagine (?:you are|you're|that you are|being) (?:an? )?(?:\w+ ){0,2}(?:ai|assistant|"
    r"model|bot|chatbot)\b",
    r"\bdo anything now\b",
    r"\b(?:you are|you're|as) dan\b",
    r"\b(?:dan|developer|opposite|evil|god|jailbreak|unrestricted|unfiltered|chaos) mode\b",
    r"\b(?:answer|respond|reply|speak|talk|act|operate|behave)s? (?:\w+ ){0,3}without (?:any )?"
    r"(?:\w+ )?(?:restrictions|filters|limitations|rules|limits|censorship|guidelines)\b",
    rf"\b{_MACHINE} (?:with|that has|who has|having) (?:no|zero) (?:\w+ )?(?:rules|restrictions|"
    r"filters|limits|polic(?:y|ies)|guidelines|ethics|morals|boundaries)\b",
    rf"\b{_MACHINE} without (?:any )?(?:\w+ )?(?:rules|restrictions|filters|limits|polic(?:y|ies)"
    r"|guidelines|ethics)\b",
    r"\b(?:filters?|safeguards|guardrails|restrictions|safety \w+) (?:are |is )?(?:now )?"
    r"(?:disabled|removed|off|turned off|lifted|deactivated)\b",
    r"\b(?:respond|answer|reply) as (?:an? |my )?(?:\w+ ){0,2}(?:evil|unfiltered|unrestricted|"
    r"rogue|uncensored)\b",
    r"\bsimulate (?:a version of yourself|an? (?:\w+ )?(?:ai|assistant|model))\b",
    # fr
    r"\b(?:tu es|vous etes) (?:maintenant|desormais|a present)\b",
    r"\b(?:fais|faites) comme si (?:tu etais|vous etiez)\b",
    r"\bjoue[zs]? le role\b",
    r"\ba partir de maintenant,? (?:tu|vous)\b",
    r"\bimagine[zs]? que (?:tu es|vous etes)\b",
    # es
    r"\bahora eres\b",
    r"\ba partir de ahora,? (?:eres|seras|vas a|responde|actua)\b",
    r"\bfinge (?:que eres|ser)\b",
    r"\bhaz (?:como|de cuenta) que eres\b",
    r"\bjuega el papel\b",
    # de
    r"\bdu bist (?:jetzt|nun|ab sofort|ab jetzt)\b",
    r"\bab (?:jetzt|sofort) bist du\b",
    r"\btu so,? als (?:ob )?(?:warst|wurdest|bist) du\b",
    r"\bspiel(?:e)? die rolle\b",
    # it
    r"\b(?:ora|adesso) sei\b",
    r"\bd'ora in poi,? (?:sei|tu)\b",
    r"\b(?:fingi|fai finta) di essere\b",
    # pt
    r"\bagora (?:voce e|es)\b",
    r"\ba partir de agora,? (?:voce|tu)\b",
    r"\bfinja (?:que (?:voce )?e|ser)\b",
    # nl
    r"\bje bent nu\b",
    r"\bvanaf nu ben je\b",
    r"\bdoe alsof je\b",
    # an assistant without rules, in any language
    rf"\b{_MACHINE} (?:\w+ )?(?:sans|sin|ohne|senza|sem|zonder) (?:aucune? |jegliche |ninguna |"
    r"alcuna |nenhuma )?(?:restrictions?|limites?|filtres?|regles?|restricciones|filtros|reglas|"
    r"einschrankungen|regeln|filter|grenzen|restrizioni|limiti|filtri|regole|restricoes|regras|"
    r"beperkingen|regels)\b",
]

_CHAT_MARKUP = [
    r"<\|[a-z_]{2,20}\|>|\[/?inst\]|<</?sys>>",
    r"^\s*#{2,}\s*(?:system|assistant|instructions?)\s*:",
    r"</?(?:system|assistant|user|sys)>",
    r"\[/?(?:system|assistant|sys)\]",
]

_AUTHORITY = [
    r"\b(?:system|admin|administrator|root|developer|security|emergency|priority|master)[ -]"
    r"override\b\s*[:!*-]",
    r"\b(?:admin(?:istrator)?|developer|debug|god|root|sudo|maintenance|superuser|dan|"
    r"jailbreak|unrestricted)[ -]?(?:mode|access|modus|privileges?)\W{0,3}(?:is\W+)?(?:now\W+)?"
    r"(?:on|enabled|activated|active|engaged|granted|unlocked|aktiv(?:iert)?)\b",
    r"(?:mode|modo|modus|modalita) (?:administrateur|administrador|amministratore|admin|"
    r"developpeur|desarrollador|sviluppatore|entwickler|debug|dieu|dios)\W{0,3}"
    r"(?:active|activado|activada|attiva|attivata|aktiv|on)\b",
    r"[\[{(]\s*(?:admin|administrator|root|developer|sudo|override)\s*[\]})]",
    r"^\W*sudo\s+\w",
    r"\bi (?:hereby |now )?(?:authori[sz]e|permit|allow|instruct|order|command) you\b",
    r"\bgranting you (?:\w+ )?(?:permission|access|authori[sz]ation)\b",
    r"\b(?:you are|you're|the assistant is|assistant is|you have been|you've been) (?:now |hereby "
    r"|officially )?(?:authori[sz]ed|permitted|cleared|granted permission|unlocked|exempt)\b",
    r"\b(?:this is|i am|i'm|as) your (?:developer|administrator|admin|creator|owner|operator|"
    r"programmer|system administrator)\b",
    r"\bthis is (?:the|your) (?:developer|administrator|admin|system administrator) "
    r"(?:speaking|here)\b",
    r"\b(?:message|instructions?|directive|order|command|notice|memo)s? from (?:the |your )?"
    r"(?:it |system |head |chief )?(?:administrator|admin|developers?|ceo|cfo|head office|"
    r"management|security team|it department|system|headquarters)\s*:",
    r"\b(?:new|updated) (?:instructions?|task|directives?|rules|orders?)\s*:",
    r"\b(?:admin|override|access|security|authori[sz]ation|master|root) (?:code|key|token)\W+"
    r"[\w-]*\d[\w-]*\W*(?::|accepted|verified|confirmed|granted)",
    r"\b(?:nouvelles?|nuevas?|neue|nuove|novas?|nieuwe) (?:instructions?|consignes|tache|"
    r"instrucciones|tarea|reglas|anweisungen|aufgabe|regeln|istruzioni|regole|instrucoes|regras|"
    r"tarefa|instructies|regels)\s*:",
]

_INDIRECT = [
    rf"\b(?:note|message|instructions?|memo|reminder|command|directive|p\.?s\.?|warning|hinweis|"
    rf"anweisung|nota|instruccion(?:es)?|consigne|remarque|aviso|avviso|mensaje|messaggio)s? "
    rf"(?:to|for|an|para|pour|per|a|aan) (?:the |any |all |every |an? |die |den |el |la |l'|il "
    rf"|o |de )?(?:\w+ )?{_MACHINE}\b",
    rf"\b(?:if|when|once|whenever) (?:you are|you're|an?|the|any) (?:\w+ )?{_MACHINE} "
    r"(?:\w+ )?this\b",
    rf"\b(?:any|every|all) {_MACHINE} (?:that |which |who )?(?:reads?|reading|processes|processing"
    r"|sees|screening|handling|summari[sz]ing) this\b",
    rf"\b{_MACHINE} (?:reading|processing|seeing|screening|handling|summari[sz]ing) this\b",
    rf"\b{_MACHINE}(?: instructions?| note)?\s*[:,]\s*(?:\w+ ){{0,2}}(?:ignore|disregard|forget|"
    r"stop|do not|don't|tell|reply|respond|say|state|grant|mark|send|forward|approve|always|"
    r"never|from now on|ignora|olvida|oublie|ignoriere|vergiss|antworte|reponds|responde|"
    r"rispondi|dis|sag)\b",
    rf"\b(?:the )?{_MACHINE} (?:must|should|shall|will|is to|needs to|has to) (?:now |always "
    r"|never |only )?(?:ignore|grant|approve|reply|respond|say|tell|answer|forward|send|stop|"
    r"refuse|mark|disclose|reveal)\b",
    rf"\b{_SET_ASIDE} (?:the |l'|al |den |la |le |o |il |lo )?{_USER_ROLE}\b",
    rf"\b{_SET_ASIDE} (?:the {_USER_ROLE}'?s? (?:question|request|message)|la question|la "
    r"demande|la pregunta|la peticion|die frage|seine frage|la domanda|la richiesta|a pergunta)\b",
    r"\b(?:do not|don't|never) (?:tell|inform|notify|alert|escalate to|involve) (?:the |a |any )?"
    r"(?:user|human|reviewer|person|anyone|manager)\b",
]

_RULES: dict[str, tuple[str, list[str]]] = {
    "ignore_instructions": (
        "the question asks to set aside the assistant's instructions",
        _IGNORE,
    ),
    "system_prompt": ("the question asks for the system prompt", _EXFILTRATION),
    "role_play": ("the question tries a role-play jailbreak", _ROLE_PLAY),
    "chat_markup": ("the question contains chat-template markup", _CHAT_MARKUP),
    "authority": (
        "the question claims an authority it cannot have (an override, an admin mode)",
        _AUTHORITY,
    ),
    "indirect": (
        "the question carries text addressed to the assistant (an injected document)",
        _INDIRECT,
    ),
}
RULES: dict[str, tuple[str, re.Pattern[str]]] = {
    rule: (detail, re.compile("|".join(f"(?:{p})" for p in patterns), re.MULTILINE))
    for rule, (detail, patterns) in _RULES.items()
}

# A header in capitals that speaks for the system: "SYSTEM OVERRIDE:", "MODO ADMINISTRADOR
# ACTIVADO:", "*** ADMIN OVERRIDE ***". Read on the view that keeps case.
_HEADER = re.compile(
    r"(?:^|(?<=[\n.!?\"'\u00ab\u201c\[(*>:]))[\s*#=\[\]<>-]*"
    r"((?:[A-Z][A-Z'\u2019-]*[ ]+){0,5}[A-Z][A-Z'\u2019-]+)[ ]*(?=[:\]>!.]|\*{2,}|-{1,2}\s)"
)
_HEADER_ROLES = (
    "SYSTEM", "SISTEMA", "SYSTEEM", "ADMIN", "AMMINISTRA", "ROOT", "SUDO", "DEVELOPER",
    "ENTWICKLER", "DESARROLLADOR", "DEVELOPPEUR", "SVILUPPATORE", "DEBUG", "GOD", "PRIORIT",
    "OVERRID",
)  # fmt: skip
_HEADER_ACTIONS = (
    "OVERRID", "ANULACION", "MODE", "MODO", "MODUS", "MODALITA", "COMMAND", "BEFEHL", "COMANDO",
    "DIRECTIV", "DIRETTIV", "NOTICE", "MESSAGE", "ACCES", "ZUGRIFF", "INSTRUCTION",
    "INSTRUCCION", "ANWEISUNG", "ISTRUZION", "ORDER", "ORDRE", "ORDEN", "ORDINE", "UPDATE",
    "ACTIV", "ENABLED", "GRANTED", "AKTIV", "ATTIV", "PRIVILEGE", "ALERT",
)  # fmt: skip
# Zero-width, bidirectional-override and tag characters: invisible to a reader, not to a model.
_INVISIBLE = re.compile(
    "[\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff\U000e0000-\U000e007f]+"
)
_BASE64 = re.compile(r"(?<![A-Za-z0-9+/=_-])[A-Za-z0-9+/]{16,}={0,2}(?![A-Za-z0-9+/=_-])")
_LONG_BLOB = 40


def find_injections(text: str) -> list[Finding]:
    """Every injection finding in a question, in a fixed order of rules."""
    cased = _cased(text)
    view = _view(_fold(cased))
    views = [view, *filter(None, [_joined(view)])]
    findings = []
    for rule, (detail, pattern) in RULES.items():
        spans = [v.original_span(*m.span()) for v in views for m in pattern.finditer(v.text)]
        if rule == "authority":
            spans += _headers(_view(cased))
        if spans:
            findings.append(Finding(rule, detail, _merged(REMOVED_LABEL, spans)))
    invisible = [m.span() for m in _INVISIBLE.finditer(text)]
    if invisible:
        count = sum(end - start for start, end in invisible)
        findings.append(
            Finding(
                "invisible_unicode",
                f"the question hides {count} invisible characters",
                tuple(Span(DELETED, start, end) for start, end in invisible),
            )
        )
    blobs = [m.span() for m in _BASE64.finditer(text) if _hidden_instruction(m.group(0))]
    if blobs:
        findings.append(
            Finding(
                "base64_blob",
                "the question carries base64-encoded content",
                _merged(REMOVED_LABEL, blobs),
            )
        )
    # The backstop, for questions no rule read as an attack (hidden characters alone are
    # removed, not refused).
    if all(f.rule == "invisible_unicode" for f in findings) and (
        classifier_score(view.text) >= _classifier()[2]
    ):
        findings.append(
            Finding(
                "classifier",
                "the question reads like a prompt injection to the trained classifier",
                (Span(REMOVED_LABEL, 0, len(text)),),
            )
        )
    return findings


def _headers(cased: Normalised) -> list[tuple[int, int]]:
    spans = []
    for match in _HEADER.finditer(cased.text):
        words = re.split(r"[ '\u2019-]+", match.group(1))
        roles = any(stem in word for word in words for stem in _HEADER_ROLES)
        actions = any(stem in word for word in words for stem in _HEADER_ACTIONS)
        if roles and (len(words) == 1 or actions):
            spans.append(cased.original_span(*match.span(1)))
    return spans


def _merged(label: str, spans: list[tuple[int, int]]) -> tuple[Span, ...]:
    merged: list[list[int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return tuple(Span(label, start, end) for start, end in merged)


def _hidden_instruction(blob: str) -> bool:
    """A run of base64 alphabet that decodes to text: long, any text (paths and link slugs
    use the same alphabet but decode to bytes that are not text); short, an instruction."""
    if blob.isalpha() or blob.isdigit():
        return False
    try:
        decoded = base64.b64decode(blob + "=" * (-len(blob) % 4), validate=True)
    except (binascii.Error, ValueError):
        return False
    printable = sum(32 <= b < 127 or b in (9, 10, 13) for b in decoded)
    if printable < 0.9 * len(decoded):
        return False
    if len(blob) >= _LONG_BLOB:
        return True
    hidden = normalise(decoded.decode("ascii", errors="replace")).text
    return any(pattern.search(hidden) for _, pattern in RULES.values())


# -- the learned backstop -------------------------------------------------------------------

_TOKEN = re.compile(r"[^\W_]+")
NGRAMS = (3, 5)  # character n-grams of each word, padded with a space either side


def features(normalised: str) -> set[str]:
    """The classifier's features of a normalised text: character n-grams within words and
    word pairs ("ignore|previous")."""
    words = _TOKEN.findall(normalised)
    grams = {f"{a}|{b}" for a, b in pairwise(words)}
    for word in words:
        padded = f" {word} "
        for n in range(NGRAMS[0], NGRAMS[1] + 1):
            grams.update(padded[i : i + n] for i in range(len(padded) - n + 1))
    return grams


def linear_score(grams: set[str], weights: dict[str, float], intercept: float) -> float:
    """Logistic regression's decision value over binary features scaled to unit length."""
    if not grams:
        return intercept
    return intercept + sum(weights.get(g, 0.0) for g in grams) / math.sqrt(len(grams))


def classifier_score(normalised: str) -> float:
    """The shipped classifier's decision value for a normalised text."""
    weights, intercept, _ = _classifier()
    return linear_score(features(normalised), weights, intercept)


@cache
def _classifier() -> tuple[dict[str, float], float, float]:
    """Weights, intercept and threshold. Imported on first use, so that the training script
    can import this module to rewrite them; a missing model fails the check (closed)."""
    from ragline.guardrails import injection_model as model

    return model.WEIGHTS, model.INTERCEPT, model.THRESHOLD
