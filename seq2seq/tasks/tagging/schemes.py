"""Entity spans written as tags, and the conversions between the ways of writing them.

    IOB1   I-X inside a span; B-X only where a span directly follows another of the same type X
           (CoNLL-2003's files)
    IOB2   (BIO) B-X opens every span, I-X continues it
    IOBES  B-X opens a span of several tokens, I-X continues it, E-X closes it; S-X is a span of one

and O outside every span. Files are read into IOB2 (`to_iob2`); the model learns IOB2 or IOBES
(tagging.scheme); its outputs are written and scored in IOB2.

An I-X that follows O or a span of another type opens a span, as conlleval reads it: that is IOB1's
rule, and in an IOB2 file (where it is a mistake) it is the reading every scorer makes; `to_iob2`
writes such a tag as B-X and counts it (`repairs`), so a reader can say how many there were.
"""

from __future__ import annotations

OUTSIDE = "O"
PREFIXES = {"iob1": "BI", "iob2": "BI", "iobes": "BIES"}  # the prefixes each scheme writes before -TYPE


def split(tag: str) -> tuple[str, str]:
    """'B-PER' -> ('B', 'PER'); 'O' -> ('O', '')."""
    if tag == OUTSIDE:
        return OUTSIDE, ""
    prefix, _, kind = tag.partition("-")
    return prefix, kind


def malformed(tag: str, scheme: str) -> str | None:
    """Why `tag` is not a tag of `scheme`, or None when it is one."""
    prefix, kind = split(tag)
    if prefix == OUTSIDE:
        return None
    if "-" not in tag or len(prefix) != 1 or not kind:
        return f"tag {tag!r} is neither O nor PREFIX-TYPE (e.g. B-PER)"
    if prefix not in PREFIXES[scheme]:
        return f"tag {tag!r}: prefix {prefix!r} is not one of {scheme.upper()}'s ({', '.join(PREFIXES[scheme])})"
    return None


def repairs(tags: list[str]) -> int:
    """How many tags open a span with I-X (after O or a span of another type)."""
    previous, count = "", 0
    for tag in tags:
        prefix, kind = split(tag)
        count += prefix == "I" and kind != previous
        previous = kind
    return count


def to_iob2(tags: list[str]) -> list[str]:
    """IOB1 (or IOB2) -> IOB2: an I-X that opens a span becomes B-X; every other tag stays."""
    out, previous = [], ""
    for tag in tags:
        prefix, kind = split(tag)
        out.append(f"B-{kind}" if prefix == "I" and kind != previous else tag)
        previous = kind
    return out


def iob2_to_iobes(tags: list[str]) -> list[str]:
    """IOB2 -> IOBES: a span of one token is S-X, the last token of a longer span E-X."""
    out = []
    for i, tag in enumerate(tags):
        prefix, kind = split(tag)
        continued = i + 1 < len(tags) and tags[i + 1] == f"I-{kind}"
        if prefix == "B":
            out.append(tag if continued else f"S-{kind}")
        elif prefix == "I":
            out.append(tag if continued else f"E-{kind}")
        else:
            out.append(tag)
    return out


def iobes_to_iob2(tags: list[str]) -> list[str]:
    """IOBES -> IOB2: S-X is B-X and E-X is I-X; a tag sequence a model wrote out of order (I-X
    after O, E-X without B-X) is read as conlleval reads it (`to_iob2`)."""
    plain = []
    for tag in tags:
        prefix, kind = split(tag)
        plain.append({"S": f"B-{kind}", "E": f"I-{kind}"}.get(prefix, tag))
    return to_iob2(plain)


def convert(tags: list[str], source: str, target: str) -> list[str]:
    """Tags from scheme `source` (iob1, iob2, iobes) to scheme `target` (iob2 or iobes)."""
    iob2 = iobes_to_iob2(tags) if source == "iobes" else to_iob2(tags)
    return iob2_to_iobes(iob2) if target == "iobes" else iob2
