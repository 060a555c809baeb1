"""Parse and canonicalise free-text street addresses.

The parser turns what residents and call takers type (``16815 W VANOWEN ST, 91406``,
``1200 block of N Lake Ave``, ``29TH AVE AT SPEEDWAY``, ``near 455 e colorodo blvd
pasadena 91101``, ``5520 fulcher avenue apt 4``) into a :class:`ParsedAddress` with
canonical parts: USPS Publication 28 street types and directionals, ordinals written
``1ST`` (never ``FIRST``), a leading ``ST`` read as ``SAINT``, units kept apart as
metadata.  Parsing is pure and never raises on text: whatever cannot be read ends up
as ``kind="empty"``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Literal

__all__ = [
    "BUILTIN_NAME_ALIASES",
    "DIRECTIONALS",
    "NO_PLACES",
    "STREET_TYPES",
    "TYPE_LONG_FORM",
    "AddressKind",
    "ParsedAddress",
    "ParsedStreet",
    "PlaceNames",
    "canonical_name",
    "canonical_street_type",
    "normalize_text",
    "parse_address",
    "parse_street",
]

AddressKind = Literal["address", "block", "between", "intersection", "street", "empty"]

#: Directionals (USPS Publication 28, C2) -> canonical one- or two-letter form.
DIRECTIONALS: dict[str, str] = {
    "N": "N", "NO": "N", "NORTH": "N",
    "S": "S", "SO": "S", "SOUTH": "S",
    "E": "E", "EAST": "E",
    "W": "W", "WEST": "W",
    "NE": "NE", "NORTHEAST": "NE",
    "NW": "NW", "NORTHWEST": "NW",
    "SE": "SE", "SOUTHEAST": "SE",
    "SW": "SW", "SOUTHWEST": "SW",
}  # fmt: skip

_TYPES_SOURCE: dict[str, tuple[str, ...]] = {
    # canonical USPS abbreviation: (primary name, common variants ...)
    "ALY": ("ALLEY", "ALLEE", "ALLY"),
    "ANX": ("ANNEX", "ANEX", "ANNX"),
    "ARC": ("ARCADE",),
    "AVE": ("AVENUE", "AV", "AVEN", "AVENU", "AVN", "AVNUE"),
    "BCH": ("BEACH",),
    "BLF": ("BLUFF",),
    "BLVD": ("BOULEVARD", "BOUL", "BOULV", "BLV", "BL"),
    "BND": ("BEND",),
    "BR": ("BRANCH", "BRNCH"),
    "BRG": ("BRIDGE", "BRDGE"),
    "BYP": ("BYPASS", "BYPA", "BYPAS", "BYPS"),
    "CIR": ("CIRCLE", "CIRC", "CIRCL", "CRCL", "CRCLE", "CL"),
    "CLF": ("CLIFF",),
    "CMN": ("COMMON",),
    "COR": ("CORNER",),
    "CRES": ("CRESCENT", "CRSENT", "CRSNT"),
    "CRK": ("CREEK",),
    "CRST": ("CREST",),
    "CSWY": ("CAUSEWAY", "CAUSWA"),
    "CT": ("COURT", "CRT"),
    "CTR": ("CENTER", "CEN", "CENT", "CENTR", "CENTRE", "CNTER", "CNTR"),
    "CV": ("COVE",),
    "CYN": ("CANYON", "CANYN", "CNYN"),
    "DR": ("DRIVE", "DRIV", "DRV"),
    "EST": ("ESTATE",),
    "ESTS": ("ESTATES",),
    "EXPY": ("EXPRESSWAY", "EXP", "EXPR", "EXPRESS", "EXPW"),
    "EXT": ("EXTENSION", "EXTN", "EXTNSN"),
    "FWY": ("FREEWAY", "FREEWY", "FRWAY", "FRWY"),
    "GDN": ("GARDEN", "GARDN", "GRDEN", "GRDN"),
    "GDNS": ("GARDENS", "GRDNS"),
    "GLN": ("GLEN",),
    "GRN": ("GREEN",),
    "GRV": ("GROVE", "GROV"),
    "HBR": ("HARBOR", "HARB", "HARBR", "HRBOR"),
    "HTS": ("HEIGHTS", "HT"),
    "HWY": ("HIGHWAY", "HIGHWY", "HIWAY", "HIWY", "HWAY"),
    "HL": ("HILL",),
    "HLS": ("HILLS",),
    "HOLW": ("HOLLOW", "HLLW", "HOLLOWS", "HOLWS"),
    "JCT": ("JUNCTION", "JCTION", "JCTN", "JUNCTN", "JUNCTON"),
    "KNL": ("KNOLL", "KNOL"),
    "LK": ("LAKE",),
    "LN": ("LANE",),
    "LNDG": ("LANDING", "LNDNG"),
    "LOOP": ("LOOPS",),
    "MALL": (),
    "MDWS": ("MEADOWS", "MDW", "MEDOWS"),
    "MEWS": (),
    "MNR": ("MANOR",),
    "OVAL": ("OVL",),
    "PARK": ("PRK",),
    "PASS": (),
    "PATH": ("PATHS",),
    "PIKE": ("PIKES",),
    "PKWY": ("PARKWAY", "PARKWY", "PKWAY", "PKY"),
    "PL": ("PLACE",),
    "PLZ": ("PLAZA", "PLZA"),
    "PROM": ("PROMENADE",),
    "PT": ("POINT",),
    "RDG": ("RIDGE", "RDGE"),
    "RD": ("ROAD",),
    "ROW": (),
    "RUN": (),
    "SQ": ("SQUARE", "SQR", "SQRE", "SQU"),
    "ST": ("STREET", "STRT", "STR"),
    "TER": ("TERRACE", "TERR"),
    "TRL": ("TRAIL", "TRAILS", "TRLS"),
    "VIS": ("VISTA", "VIST", "VST", "VSTA"),
    "VLY": ("VALLEY", "VALLY", "VLLY"),
    "VW": ("VIEW",),
    "WALK": ("WALKS",),
    "WAY": ("WY",),
    "XING": ("CROSSING", "CRSSNG"),
}

#: Street types (USPS Publication 28, C1): every accepted spelling -> USPS abbreviation.
STREET_TYPES: dict[str, str] = {}
for _abbr, _variants in _TYPES_SOURCE.items():
    STREET_TYPES[_abbr] = _abbr
    for _v in _variants:
        STREET_TYPES.setdefault(_v, _abbr)
#: Spelled-out form of each USPS abbreviation (``AVE`` -> ``AVENUE``).
TYPE_LONG_FORM: dict[str, str] = {
    abbr: (variants[0] if variants else abbr) for abbr, variants in _TYPES_SOURCE.items()
}

_ORDINAL_WORDS: dict[str, str] = {
    "FIRST": "1ST", "SECOND": "2ND", "THIRD": "3RD", "FOURTH": "4TH", "FIFTH": "5TH",
    "SIXTH": "6TH", "SEVENTH": "7TH", "EIGHTH": "8TH", "NINTH": "9TH", "TENTH": "10TH",
    "ELEVENTH": "11TH", "TWELFTH": "12TH", "THIRTEENTH": "13TH", "FOURTEENTH": "14TH",
    "FIFTEENTH": "15TH", "SIXTEENTH": "16TH", "SEVENTEENTH": "17TH", "EIGHTEENTH": "18TH",
    "NINETEENTH": "19TH", "TWENTIETH": "20TH",
}  # fmt: skip

_TENS = {"TWENTY": 20, "THIRTY": 30, "FORTY": 40, "FIFTY": 50, "SIXTY": 60, "SEVENTY": 70,
         "EIGHTY": 80, "NINETY": 90}  # fmt: skip
_TENS_ORDINALS = {"THIRTIETH": 30, "FORTIETH": 40, "FIFTIETH": 50, "SIXTIETH": 60,
                  "SEVENTIETH": 70, "EIGHTIETH": 80, "NINETIETH": 90}  # fmt: skip


_NUMBER_WORDS = frozenset(_TENS) | frozenset(_ORDINAL_WORDS)
#: FIRST .. NINTH -> 1 .. 9, the words that follow a tens word (THIRTY SEVENTH)
_UNIT_ORDINALS = {w: int(v[:-2]) for w, v in _ORDINAL_WORDS.items() if int(v[:-2]) < 10}


def _join_spelled_ordinals(tokens: list[str]) -> list[str]:
    """``THIRTY SEVENTH`` -> ``37TH``; ``FORTIETH`` -> ``40TH`` (other tokens unchanged)."""
    if not any(t in _NUMBER_WORDS or "-" in t or t in _TENS_ORDINALS for t in tokens):
        return tokens
    split: list[str] = []
    for tok in tokens:  # THIRTY-SEVENTH
        parts = tok.split("-")
        split.extend(parts if len(parts) > 1 and all(p in _NUMBER_WORDS for p in parts) else [tok])
    tokens = split
    out: list[str] = []
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        nxt = tokens[i + 1] if i + 1 < len(tokens) else ""
        if tok in _TENS and nxt in _UNIT_ORDINALS:
            out.append(_ordinal(_TENS[tok] + _UNIT_ORDINALS[nxt]))
            i += 2
            continue
        out.append(_ordinal(_TENS_ORDINALS[tok]) if tok in _TENS_ORDINALS else tok)
        i += 1
    return out


#: Leading abbreviations that stand for a word inside a name (``ST ANDREWS`` = Saint).
_NAME_PREFIXES: dict[str, str] = {"ST": "SAINT", "STE": "SAINTE", "MT": "MOUNT", "FT": "FORT"}

#: Whole-name aliases every reference knows (alias -> canonical name).
BUILTIN_NAME_ALIASES: dict[str, str] = {
    "MLK": "MARTIN LUTHER KING JR",
    "MLK JR": "MARTIN LUTHER KING JR",
    "MARTIN LUTHER KING": "MARTIN LUTHER KING JR",
    "DR MARTIN LUTHER KING JR": "MARTIN LUTHER KING JR",
    "CESAR CHAVEZ": "CESAR E CHAVEZ",
    "JAMES WOOD": "JAMES M WOOD",
}

_UNIT_WORDS = (
    "APARTMENT|APT|UNIT|SUITE|STE|ROOM|RM|SPACE|SPC|BUILDING|BLDG|FLOOR|FL|LOT|TRAILER|TRLR|DEPT|NO"
)
_UNIT_RE = re.compile(rf"(?:\b(?:{_UNIT_WORDS})\b\.?\s*#?|#)\s*([A-Z0-9][A-Z0-9-]*)\b")
_UNIT_BARE_RE = re.compile(r"\b(REAR|FRONT|UPPER|LOWER|BSMT|BASEMENT|GARAGE)\s*$")
_ZIP_RE = re.compile(r"\b(\d{5})(?:-\d{4})?\b")
_ABBR_DOT_RE = re.compile(r"(?<=[A-Z])\.(?=[A-Z])")
_JUNK_RE = re.compile(r"[^A-Z0-9,#&/@+\- ]")
_SUFFIX_COMMA_RE = re.compile(r"\s*,\s*(?=(?:JR|SR|II|III)\b)")
_COMMA_RE = re.compile(r"\s*,\s*")
_SPACES_RE = re.compile(r"\s+")
_TOKEN_SPLIT_RE = re.compile(r"[\s,#&/@+\-]+")
_TAIL_WORDS_RE = re.compile(r"\b(?:USA|U S A|US|UNITED STATES|CA|CALIF|CALIFORNIA)\b")
_STATE_RE = re.compile(r"\b(?:USA|U S A|UNITED STATES|CA|CALIF|CALIFORNIA)\s*$")
_FILLER_RE = re.compile(
    r"^(?:NEAR(?:BY)?|IN FRONT OF|FRONT OF|ACROSS(?: THE STREET)? FROM|ACROSS|OUTSIDE(?: OF)?|"
    r"BEHIND|NEXT TO|BY|AROUND|ON|AT|CLOSE TO|OPPOSITE(?: OF)?|"
    r"(?:ON |AT )?(?:THE )?(?:SE |SW |NE |NW )?CORNER OF|INTERSECTION OF|THE|APPROX(?:IMATELY)?)\s+"
)
_BLOCK_RE = re.compile(r"^(\d+)\s*(?:BLOCK|BLK)\b\s*(?:OF\b)?\s*")
_XX_RE = re.compile(r"^(\d{1,3})XX\b\s*")
_NUMBER_RE = re.compile(r"^(\d+)(?:\s*-\s*\d+\b)?([A-Z](?=\s))?(?:\s+(1/2|1/4|3/4))?\s+")
_INTERSECTION_RE = re.compile(r"\s+(?:AT|AND|&|@|/|\+|X)\s+|\s*&\s*|(?<!\d)\s*/\s*(?!\d)")
_BETWEEN_RE = re.compile(r"^(.+?)\s+(?:BETWEEN|BTWN|BTW|B/T)\s+(.+?)\s+(?:AND|&|/)\s+(.+)$")
_SIDE_NOISE_RE = re.compile(r"\b[NSEW]/[RB]\b")

@dataclass(frozen=True, eq=False)
class PlaceNames:
    """Names of places (the city, its communities, its neighbours) that may end an address.

    ``5520 fulcher avenue van nuys 91406`` ends in a place name with no comma before it;
    the parser strips such a tail only for names it is given (a comma-separated tail,
    ``..., Van Nuys, CA``, needs none). A city pack lists its own
    (``[reference].place_names``); the address reference keeps them for its geocoder.
    Compared by identity, so one object per reference keeps parsing caches fast.

    Parameters
    ----------
    names : tuple of str
        Place names in any case; canonicalised to upper case, longest first.
    """

    names: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        canon = {" ".join(normalize_text(n).split()) for n in self.names}
        ordered = tuple(sorted((n for n in canon if n), key=lambda n: (-len(n), n)))
        object.__setattr__(self, "names", ordered)
        object.__setattr__(self, "last_words", frozenset(n.split()[-1] for n in ordered))
        pattern = r"\s+(?:" + "|".join(re.escape(n) for n in ordered) + r")\s*$"
        object.__setattr__(self, "tail_re", re.compile(pattern) if ordered else None)

    last_words: frozenset[str] = field(init=False, default=frozenset())
    tail_re: re.Pattern[str] | None = field(init=False, default=None)


#: No place names: only comma-separated tails are read as places.
NO_PLACES = PlaceNames()


@dataclass(frozen=True, slots=True)
class ParsedStreet:
    """One street as written, canonicalised.

    Attributes
    ----------
    predir, postdir : str
        Canonical directionals (``N``, ``SW`` ...) or ``""``.
    name : str
        Canonical street name (``VANOWEN``, ``1ST``, ``SAINT ANDREWS``, ``AVENUE 34``).
    street_type : str
        USPS abbreviation (``ST``, ``AVE``) or ``""`` when none was written.
    type_word : str
        The type as typed, upper case; lets a matcher read ``ECHO PARK`` as a name
        when ``PARK`` was no type.
    """

    predir: str = ""
    name: str = ""
    street_type: str = ""
    postdir: str = ""
    type_word: str = ""

    @property
    def full(self) -> str:
        """Canonical street as one string, e.g. ``W VANOWEN ST``."""
        return " ".join(p for p in (self.predir, self.name, self.street_type, self.postdir) if p)

    @property
    def key(self) -> str:
        """Name and type without directionals, e.g. ``VANOWEN ST``."""
        return " ".join(p for p in (self.name, self.street_type) if p)


@dataclass(frozen=True, slots=True)
class ParsedAddress:
    """Result of :func:`parse_address`.

    Attributes
    ----------
    raw : str
        The text as it came in.
    kind : {"address", "block", "between", "intersection", "street", "empty"}
        What the text describes; ``between`` is ``X BETWEEN Y AND Z`` (a stretch of X).
    number : int or None
        House number (first number of a range; for blocks the block start, e.g. 1200).
    number_suffix : str
        ``1/2``, ``A`` ... or ``""``.
    street : ParsedStreet
        The (first) street.
    cross_street : ParsedStreet or None
        Second street of an intersection.
    unit : str
        Unit designator kept as metadata (``APT 4``, ``# 12``), ``""`` when none.
    zip : str
        Five-digit ZIP code or ``""``.
    city : str
        City or community text found in the tail, ``""`` when none.
    second_cross : ParsedStreet or None
        ``Z`` of ``X BETWEEN Y AND Z`` (``Y`` is ``cross_street``).
    """

    raw: str
    kind: AddressKind = "empty"
    number: int | None = None
    number_suffix: str = ""
    street: ParsedStreet = field(default_factory=ParsedStreet)
    cross_street: ParsedStreet | None = None
    unit: str = ""
    zip: str = ""
    city: str = ""
    second_cross: ParsedStreet | None = None


def normalize_text(text: str) -> str:
    """Upper-case, drop punctuation that carries no meaning, collapse spaces.

    Parameters
    ----------
    text : str
        Free text.

    Returns
    -------
    str
        Normalised text; keeps ``,``, ``#``, ``&``, ``/`` and ``-`` that carry structure.
    """
    s = text.upper().replace("\u00a0", " ")
    s = s.replace("'", "").replace("`", "").replace("’", "")
    s = _ABBR_DOT_RE.sub("", s)  # U.S. -> US
    s = _JUNK_RE.sub(" ", s)
    s = _SUFFIX_COMMA_RE.sub(" ", s)  # KING, JR BLVD
    s = _COMMA_RE.sub(", ", s)
    s = _SPACES_RE.sub(" ", s)
    return s.strip(" ,-")


def canonical_street_type(word: str) -> str:
    """USPS abbreviation of a street type, or ``""`` when ``word`` is none.

    Parameters
    ----------
    word : str
        Street type as typed (any case), e.g. ``Avenue``, ``AV``, ``boulevard``.

    Returns
    -------
    str
        ``AVE``, ``BLVD`` ... or ``""``.
    """
    return STREET_TYPES.get(word.upper().strip("."), "")


def _ordinal(n: int) -> str:
    suffix = "TH" if 10 <= n % 100 <= 20 else {1: "ST", 2: "ND", 3: "RD"}.get(n % 10, "TH")
    return f"{n}{suffix}"


@lru_cache(maxsize=65536)
def canonical_name(name: str) -> str:
    """Canonical street name: ordinals, Saint/Mount/Fort, ``AVENUE 34``, aliases.

    Parameters
    ----------
    name : str
        Street name without directionals or type, any case.

    Returns
    -------
    str
        Canonical upper-case name, e.g. ``first`` -> ``1ST``, ``St Andrews`` ->
        ``SAINT ANDREWS``, ``Ave 34`` -> ``AVENUE 34``.
    """
    tokens = _join_spelled_ordinals(normalize_text(name).replace(",", " ").split())
    out: list[str] = []
    for i, tok in enumerate(tokens):
        if tok in _ORDINAL_WORDS:
            tok = _ORDINAL_WORDS[tok]
        elif re.fullmatch(r"\d+(?:ST|ND|RD|TH|D)", tok):
            tok = _ordinal(int(re.sub(r"\D", "", tok)))
        elif i == 0 and len(tokens) > 1 and tok in _NAME_PREFIXES:
            tok = _NAME_PREFIXES[tok]
        elif i == 0 and len(tokens) == 2 and STREET_TYPES.get(tok) == "AVE" and tokens[1].isdigit():
            tok = "AVENUE"
        out.append(tok)
    joined = " ".join(out)
    if len(out) == 1 and out[0].isdigit():
        joined = _ordinal(int(out[0]))
    return BUILTIN_NAME_ALIASES.get(joined, joined)


def parse_street(text: str) -> ParsedStreet:
    """Split one street (no house number) into directionals, name and type.

    Parameters
    ----------
    text : str
        E.g. ``W VANOWEN ST``, ``north lake avenue``, ``AVENUE 34``, ``BROADWAY``.

    Returns
    -------
    ParsedStreet
        Canonical parts; an empty name when nothing usable was written.
    """
    s = _SIDE_NOISE_RE.sub(" ", normalize_text(text))
    tokens = [t for t in _TOKEN_SPLIT_RE.split(s) if t]
    return _street_from_tokens(tokens)


_ENDS_IN_CONNECTOR_RE = re.compile(r"(?:&|/|@|\bAND|\bAT)\s*$")
_NOT_STREET_WORDS = frozenset({"BLOCK", "BLK", "OF"})  # "2200 BLOCK OF W VENICE"
_ORDINAL_TOKEN_RE = re.compile(r"\d+(?:ST|ND|RD|TH)")  # "11TH" names a street
_BARE_TYPE_ABBREVIATIONS = frozenset(
    {"ST", "AVE", "AV", "BLVD", "DR", "PL", "CT", "LN", "RD", "WAY", "TER", "CIR"}
)


def _street_from_tokens(tokens: list[str]) -> ParsedStreet:
    predir = postdir = stype = type_word = ""
    toks = list(tokens)
    if len(toks) >= 2 and toks[0] in DIRECTIONALS:
        rest = toks[1:]
        # "E ST" is a street named E; "S HILL" is South Hill (no type); "W COURT" is Court
        # St with its type dropped (a geocoder may still read "WEST BOULEVARD" as West Blvd)
        if not (len(rest) == 1 and rest[0] in _BARE_TYPE_ABBREVIATIONS):
            predir = DIRECTIONALS[toks[0]]
            toks = rest
    # ``AVENUE E`` is a name; ``LONG BEACH AVE EAST`` is Long Beach Ave with a post-direction
    avenue_letter = len(toks) == 2 and toks[0] in ("AVENUE", "AVE", "AV")
    if len(toks) >= 2 and toks[-1] in DIRECTIONALS and not avenue_letter:
        before = toks[:-1]
        if not (len(before) == 1 and before[0] in STREET_TYPES):
            postdir = DIRECTIONALS[toks[-1]]
            toks = before
    if len(toks) >= 2 and toks[-1] in STREET_TYPES and not toks[-1].isdigit():
        # ``AVENUE 34`` style names keep their leading type word: only the last token is a type.
        type_word = toks[-1]
        stype = STREET_TYPES[type_word]
        toks = toks[:-1]
    elif len(toks) == 2 and toks[0].isdigit() and toks[1] in ("ST", "ND", "RD", "TH"):
        toks = [toks[0] + toks[1]]  # "3 RD" typed with a space
    name = canonical_name(" ".join(toks)) if toks else ""
    return ParsedStreet(predir, name, stype, postdir, type_word)


def _has_street_word(head: str) -> bool:
    for _ in range(4):
        new = _FILLER_RE.sub("", head)
        if new == head:
            break
        head = new
    tokens = head.replace(",", " ").split()
    # a street word starts with a letter: "#" or "-" alone is no street
    return any(
        (t[0].isalpha() and t not in DIRECTIONALS and t not in _NOT_STREET_WORDS)
        or _ORDINAL_TOKEN_RE.fullmatch(t)
        for t in tokens
    )


def _strip_tail(s: str, places: PlaceNames) -> tuple[str, str, str]:
    """Remove ``city, state zip`` tails. Return (rest, zip, city)."""
    zip_code = ""
    matches = list(_ZIP_RE.finditer(s))
    for m in reversed(matches):
        # a 5-digit number is a ZIP only after some street text, never as the house number
        after = _TAIL_WORDS_RE.sub("", s[m.end() :])
        if m.start() > 0 and re.search(r"[A-Z]", s[: m.start()]) and not re.search(r"\w", after):
            zip_code = m.group(1)
            s = (s[: m.start()] + " " + s[m.end() :]).strip(" ,-")
            break
    s = _SPACES_RE.sub(" ", s)
    city = ""
    for _ in range(3):
        before = s
        while True:
            stripped = _STATE_RE.sub("", s).strip(" ,-")
            # "12 CA": a street named like the state keeps its name
            if stripped == s or not _has_street_word(stripped):
                break
            s = stripped
        parts = [p.strip() for p in s.split(",")]
        if len(parts) > 1 and parts[-1] and not re.search(r"\d", parts[-1]):
            tail = parts[-1]
            if not _UNIT_RE.search(tail) and not _INTERSECTION_RE.search(tail):
                city = city or tail
                s = ", ".join(parts[:-1]).strip(" ,-")
        last = s.rsplit(" ", 1)[-1]
        tail_re = places.tail_re
        cm = (
            None if city or tail_re is None or last not in places.last_words
            else tail_re.search(s)
        )  # fmt: skip
        # "near 722 S LOS ANGELES" is a street: a city tail needs a street name before it,
        # and "WESTERN & VENICE" ends in a cross street, not a city
        if cm and _has_street_word(s[: cm.start()]) and not _ENDS_IN_CONNECTOR_RE.search(
            s[: cm.start()]
        ):
            city = cm.group(0).strip()
            s = s[: cm.start()].strip(" ,-")
        if s == before:
            break
    return s, zip_code, city


def parse_address(
    text: object, zip_code: object = None, places: PlaceNames = NO_PLACES
) -> ParsedAddress:
    """Parse free text into a :class:`ParsedAddress`; never raises.

    Parameters
    ----------
    text : object
        Address as typed. Anything that is not a non-empty string gives ``kind="empty"``.
    zip_code : object, optional
        ZIP from a separate field; used when the text carries none.
    places : PlaceNames, optional
        Place names that may end the text without a comma (the city pack's).

    Returns
    -------
    ParsedAddress
        Canonical parts and the kind of location described.
    """
    raw = text if isinstance(text, str) else ""
    zip_field = _clean_zip(zip_code)
    return _parse_cached(raw, zip_field, places)


def _clean_zip(zip_code: object) -> str:
    if zip_code is None:
        return ""
    if isinstance(zip_code, float):
        if zip_code != zip_code:  # NaN
            return ""
        zip_code = int(zip_code)
    m = re.search(r"\d{5}", str(zip_code))
    return m.group(0) if m else ""


@lru_cache(maxsize=200_000)
def _parse_cached(raw: str, zip_field: str, places: PlaceNames) -> ParsedAddress:
    s = normalize_text(raw)
    if not s:
        return ParsedAddress(raw=raw, zip=zip_field)
    s = _SIDE_NOISE_RE.sub(" ", s)
    if re.fullmatch(r"\d{5}(?:-\d{4})?", s):
        return ParsedAddress(raw=raw, kind="empty", zip=s[:5])
    s, zip_code, city = _strip_tail(s, places)
    zip_code = zip_code or zip_field

    unit = ""
    m = _UNIT_RE.search(s)
    # a unit needs a street before it: some letters ("422 E G APT 4" is G St's)
    if m and m.start() > 0 and re.search(r"[A-Z]{2}|\b[A-Z]\b.*\b[A-Z]\b", s[: m.start()]):
        unit_word = s[m.start() : m.start(1)].strip(" .")
        unit = f"{unit_word} {m.group(1)}".strip()
        s = (s[: m.start()] + " " + s[m.end() :]).strip(" ,-")
    else:
        m2 = _UNIT_BARE_RE.search(s)
        if m2 and m2.start() > 0:
            unit = m2.group(1)
            s = s[: m2.start()].strip(" ,-")
    s = s.split(",")[0].strip(" -") if "," in s else s

    for _ in range(4):
        new = _FILLER_RE.sub("", s)
        if new == s:
            break
        s = new

    kind: AddressKind = "street"
    number: int | None = None
    suffix = ""
    bm = _BLOCK_RE.match(s)
    xm = None if bm else _XX_RE.match(s)
    if bm is not None:
        number, kind, s = int(bm.group(1)), "block", s[bm.end() :]
    elif xm is not None:
        number, kind, s = int(xm.group(1)) * 100, "block", s[xm.end() :]
    else:
        nm = _NUMBER_RE.match(s + " ")
        if nm and len(nm.group(1)) <= 6:
            number = int(nm.group(1))
            suffix = nm.group(3) or nm.group(2) or ""
            kind = "address"
            s = (s + " ")[nm.end() :].strip()

    bt = _BETWEEN_RE.match(s) if number is None else None
    if bt is not None:
        x, y, z = (parse_street(_FILLER_RE.sub("", g.strip())) for g in bt.groups())
        if x.name and y.name and z.name:
            return ParsedAddress(
                raw=raw, kind="between", street=x, cross_street=y, unit=unit, zip=zip_code,
                city=city, second_cross=z,
            )  # fmt: skip

    parts = [p for p in _INTERSECTION_RE.split(s) if p and p.strip()]
    if len(parts) >= 2 and number is None:
        for i in range(len(parts)):
            parts[i] = _FILLER_RE.sub("", parts[i].strip())
        first = parse_street(parts[0])
        second = parse_street(parts[1])
        if first.name and second.name:
            return ParsedAddress(
                raw=raw,
                kind="intersection",
                street=first,
                cross_street=second,
                unit=unit,
                zip=zip_code,
                city=city,
            )
    street = parse_street(parts[0] if parts else s)
    if not street.name:
        return ParsedAddress(raw=raw, kind="empty", unit=unit, zip=zip_code, city=city)
    return ParsedAddress(
        raw=raw,
        kind=kind,
        number=number,
        number_suffix=suffix,
        street=street,
        unit=unit,
        zip=zip_code,
        city=city,
    )
