"""Word lists the equivalence check reads (ragline/cache/equivalence.py). General English,
written before the labelled pairs were looked at; nothing here names a corpus's topic."""

from __future__ import annotations

STOPWORDS = frozenset(
    """a an the and or of to in on at for from by with about as into onto than then that this
    these those there here it its it's is are was were be been being am do does did done
    doing have has had having i me my mine we us our ours you your yours he him his she her
    they them their what whats which who whom whose when where why how whether if so such
    can could may might must shall should will would also too very really just still yet
    any some much many there's one ones s t d ll ve re m over up out off away""".split()
)

# Words a second asker adds around the same question.
FILLERS = frozenset(
    """question quick wondering wonder wondered know tell please hi hello hey thanks thank
    curious hoping hope explain remind confirm exactly actually basically anyone someone
    somebody idea ok okay kind sort like want wanted need needed trying try help figure
    find out look looking check say says said mean means meant correct right true
    happen happens number amount total get gets got getting last lasts lasted call called
    come came comes go goes went run running ran need needs needed word term do does did
    done per""".split()
)

NEGATIONS = frozenset("not no never none nobody nothing neither nor without cannot".split())

# Contractions expanded before tokenising, so "don't" carries its negation.
CONTRACTIONS = {
    "can't": "can not",
    "cannot": "can not",
    "won't": "will not",
    "shan't": "shall not",
    "n't": " not",
    "'re": " are",
    "'ve": " have",
    "'ll": " will",
    "'d": " would",
    "'m": " am",
    "what's": "what is",
    "who's": "who is",
    "where's": "where is",
    "when's": "when is",
    "how's": "how is",
    "it's": "it is",
    "there's": "there is",
    "that's": "that is",
}

NUMBER_WORDS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13,
    "fourteen": 14, "fifteen": 15, "sixteen": 16, "seventeen": 17, "eighteen": 18,
    "nineteen": 19, "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60,
    "seventy": 70, "eighty": 80, "ninety": 90, "hundred": 100, "thousand": 1000,
    "million": 1_000_000, "billion": 1_000_000_000, "dozen": 12, "half": 0.5,
    "twice": 2, "double": 2, "once": 1, "single": 1, "couple": 2,
}  # fmt: skip

ORDINALS = {
    "first": 1, "1st": 1, "second": 2, "2nd": 2, "third": 3, "3rd": 3, "fourth": 4,
    "4th": 4, "fifth": 5, "5th": 5, "sixth": 6, "seventh": 7, "eighth": 8, "ninth": 9,
    "tenth": 10,
}  # fmt: skip

MONTHS = {
    "january": 1, "jan": 1, "february": 2, "feb": 2, "march": 3, "mar": 3, "april": 4,
    "apr": 4, "may": 5, "june": 6, "jun": 6, "july": 7, "jul": 7, "august": 8, "aug": 8,
    "september": 9, "sep": 9, "sept": 9, "october": 10, "oct": 10, "november": 11,
    "nov": 11, "december": 12, "dec": 12,
}  # fmt: skip

DAYS = frozenset(
    """monday tuesday wednesday thursday friday saturday sunday weekday weekend today
    tomorrow yesterday tonight morning afternoon evening night midnight noon""".split()
)

# Units of time or amount: asked in days is not asked in weeks. Adjectives fold into them.
UNITS = {
    "second": "second", "seconds": "second", "minute": "minute", "minutes": "minute",
    "hour": "hour", "hours": "hour", "hourly": "hour", "day": "day", "days": "day",
    "daily": "day", "week": "week", "weeks": "week", "weekly": "week", "fortnight": "week2",
    "month": "month", "months": "month", "monthly": "month", "quarter": "quarter",
    "quarters": "quarter", "quarterly": "quarter", "year": "year", "years": "year",
    "yearly": "year", "annual": "year", "annually": "year", "decade": "decade",
    "decades": "decade", "century": "century", "centuries": "century", "percent": "percent",
    "percentage": "percent", "%": "percent",
}  # fmt: skip

# Load-bearing qualifiers, by the contrast they carry: two questions must hold the same
# classes. Words of one class are interchangeable.
QUALIFIERS = {
    "only": "only", "solely": "only", "exclusively": "only",
    "before": "before", "prior": "before", "until": "before", "till": "before",
    "earlier": "before", "after": "after", "following": "after", "since": "after",
    "later": "after", "afterwards": "after",
    "more": "more", "exceed": "more", "exceeds": "more",
    "exceeding": "more", "greater": "more", "longer": "more", "larger": "more",
    "higher": "more",
    "less": "less", "fewer": "less", "shorter": "less",
    "smaller": "less", "lower": "less",
    "maximum": "max", "max": "max", "most": "max", "highest": "max", "largest": "max",
    "longest": "max", "biggest": "max", "limit": "max",
    "minimum": "min", "min": "min", "least": "min", "lowest": "min", "smallest": "min",
    "shortest": "min", "fewest": "min",
    "earliest": "first", "full": "full", "fulltime": "full", "part": "part", "parttime": "part",
    "paid": "paid", "unpaid": "unpaid", "free": "free",
    "internal": "internal", "external": "external", "domestic": "domestic",
    "international": "international", "abroad": "international", "overseas": "international",
    "remote": "remote", "remotely": "remote", "home": "remote", "onsite": "onsite",
    "public": "public", "private": "private", "new": "new", "existing": "existing",
    "current": "current", "former": "former", "previous": "former", "senior": "senior",
    "junior": "junior", "permanent": "permanent", "temporary": "temporary",
    "except": "except", "excluding": "except", "unless": "except", "besides": "except",
    "both": "both", "either": "either",
    "same": "same", "different": "different", "other": "other", "another": "other",
    "early": "early", "late": "late", "older": "more", "elder": "more", "younger": "less",
    "best": "best", "better": "best", "worst": "worst", "worse": "worst",
    "north": "north", "northern": "north",
    "south": "south", "southern": "south", "east": "east", "eastern": "east",
    "west": "west", "western": "west",
    "inside": "inside", "outside": "outside", "within": "within",
}  # fmt: skip

# Comparisons that are constraints only before a number ("over 30 days", not "carry over").
BEFORE_NUMBER = {
    "over": "more", "above": "more", "beyond": "more", "exceeding": "more",
    "under": "less", "below": "less",
}  # fmt: skip

# Words that say what kind of answer is asked for ("on what date" is "when").
ANSWER_FRAMES = frozenset("date point person place city location way kind type sort name".split())

# Interchangeable words (each group is one meaning in a question). General English only.
SYNONYM_GROUPS = [
    "get receive obtain have earn given entitled entitlement allowed allowance",
    "can may able allowed permitted permit allow",
    "ask request apply",
    "start begin commence",
    "end finish stop terminate",
    "big large huge",
    "small little tiny",
    "buy purchase",
    "need require required must mandatory necessary have has",
    "use using utilise utilize",
    "make create",
    "take took taken",
    "job role position",
    "company employer organisation organization firm business",
    "staff employee employees worker workers",
    "customer customers client clients",
    "holiday vacation pto",
    "ill sick illness sickness",
    "pay payment reimburse reimbursed reimbursement",
    "cost costs price fee charge",
    "long duration length",
    "happen occur",
    "found founded establish established",
    "build built construct constructed",
    "die died death",
    "city town",
    "called named name",
    "lead led leader",
    "rule ruled ruler reign",
    "war conflict",
    "fast quick quickly soon",
    "book booking reserve reservation",
    "trip travel",
    "approve approval approved sign signoff",
    "report reporting notify notification tell inform",
    "contact reach",
    "handle handling deal process",
    "rule rules policy guideline guidelines",
    "keep retain",
    "amount sum",
    "number count",
    "happen happens happened",
    "move moved relocate relocated",
    "expense expenses cost",
    "often frequency frequent frequently",
    "contact notify inform tell reach",
    "book arrange organise organize schedule plan",
    "cause caused responsible",
    "fall fell capture captured conquer conquered",
    "informal unofficial",
    "release released come publish published print printed issue issued",
    "marry married wed wedding",
    "known famous renowned",
    "die died death pass passed",
    "locate located situate situated",
    "complete completed finish finished",
    "reach arrive arrived",
    "serve served work worked employ employed",
    "escape escaped flee fled",
    "receive received award awarded win won given",
    "chair chairman chaired preside presided",
    "control limit cap regulate",
    "pass passed enact enacted adopt adopted",
    "origin originate originated",
    "visit visited travel travelled traveled",
    "main core key principal",
    "old age",
    "mean meaning definition",
]

WORD_SIMILARITY = 0.72  # two different words count as one meaning above this cosine
