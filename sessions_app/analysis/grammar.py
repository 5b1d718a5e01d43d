"""Does a commitment name an action: a verb, and an object to act on?

The action-item rules find the frame ("I'll …", "we need to …", "Bob, can you …"); what follows
the frame must then read as a verb phrase, or it is a fragment the recogniser misheard ("we will
then direct the other white"). No part-of-speech model is needed for that much: the words that
are *not* verbs or nouns form small closed classes (determiners, pronouns, prepositions,
conjunctions, auxiliaries, numbers, fillers), and a short list of adjectives and empty nouns
covers the words that can end a noun phrase without naming anything.

* The verb: after adverbs and catenatives ("then", "go ahead and", "try to"), the first word
  must be open-class (no determiner, pronoun, preposition, auxiliary…) and not an ``-ing`` form.
* The object: some later word must be able to head a noun phrase: open-class, and not an
  adjective, an empty noun ("thing", "way"), a time word ("tomorrow") or a light verb.
  "send it", "take care of that" and "direct the other white" have none.
"""

from __future__ import annotations

import re

_WORD = re.compile(r"[A-Za-z0-9\u00C0-\u024F][\w'\u2019-]*")


def _set(text: str) -> frozenset[str]:
    return frozenset(text.split())


DETERMINERS = _set(
    "a an the this that these those my your our their his her its some any every each all both "
    "no another either neither few several many much more most such what which whose"
)
PRONOUNS = _set(
    "i me you it he him she we us they them myself yourself himself herself itself ourselves "
    "yourselves themselves something anything everything nothing someone anyone everyone "
    "somebody anybody everybody nobody mine yours ours theirs hers there here"
)
PREPOSITIONS = _set(
    "to for with on at by from in into onto of about over under after before through up out off "
    "down back around across along against between among within without toward towards via per "
    "upon than like as until till since during behind beyond near past away"
)
CONJUNCTIONS = _set("and or but nor so yet if because although though while whereas unless")
# Modals and the inflected auxiliaries: never the verb of a commitment ("we will is …").
AUXILIARIES = _set(
    "am is are was were been being will would shall should can could may might must ought has "
    "had does did gonna wanna gotta"
)
NUMBERS = _set(
    "zero one two three four five six seven eight nine ten eleven twelve twenty thirty fifty "
    "hundred thousand million half"
)
FILLERS = _set("um umm uh uhm uhh er erm ah eh hmm mm mhm oh yeah ok okay please")
# Said between the frame and the verb: "we will *then* send", "I'll *just* check".
ADVERBS = _set(
    "then also just definitely probably maybe perhaps quickly really actually certainly still "
    "first now later soon already again all both personally basically literally honestly "
    "obviously hopefully finally immediately asap right even only surely absolutely totally"
)
NEGATIONS = _set("not never no don't won't can't cannot shouldn't")
# Words that end a noun phrase without naming anything to act on.
ADJECTIVES = _set(
    "other same such own whole entire next last first second third new old big small little "
    "large great good bad best better worse worst right left wrong high low long short full "
    "empty real true false sure ready able possible main certain different similar various "
    "general specific fast slow early late white black red green blue yellow orange purple pink "
    "grey gray brown dark bright clear important final initial current previous recent "
    "additional extra less least nice fine whole"
)
EMPTY_NOUNS = _set(
    "thing things stuff way ways lot lots bit bits one ones kind sort part time times "
    "something anything everything nothing"
)
TIME_WORDS = _set(
    "today tomorrow tonight yesterday morning afternoon evening night noon week weeks weekend "
    "month months year years day days hour hours minute quarter eod eow "
    "monday tuesday wednesday thursday friday saturday sunday january february march april "
    "june july august september october november december"
)
# Verbs too light to be what a commitment is about ("let's try and *see*").
LIGHT_VERBS = _set(
    "be have do get go see know think say make take give come let try want need keep look seem "
    "feel hear put happen"
)
# Base forms ending in -ing: every other -ing word after "will" / "to" is a participle.
_ING_VERBS = _set("bring string swing spring sling fling sting cling wring ping sing ring")
_CATENATIVES = [
    tuple(phrase.split())
    for phrase in (
        "go ahead and",
        "try to",
        "try and",
        "need to",
        "have to",
        "want to",
        "be sure to",
        "make sure to",
    )
]

_CLOSED = DETERMINERS | PRONOUNS | PREPOSITIONS | CONJUNCTIONS | AUXILIARIES | NUMBERS | FILLERS
_NOT_A_VERB = _CLOSED | ADVERBS | NEGATIONS | TIME_WORDS
_NOT_A_HEAD = _CLOSED | ADVERBS | NEGATIONS | ADJECTIVES | EMPTY_NOUNS | TIME_WORDS | LIGHT_VERBS


def tokens(text: str) -> list[str]:
    """Lower-case words of ``text`` (apostrophes and hyphens kept: ``don't``, ``follow-up``)."""
    return [w.lower().replace("\u2019", "'") for w in _WORD.findall(text)]


def _contraction_base(word: str) -> str | None:
    """``it's`` → ``it``; ``don't`` → ``don't``; a possessive (``client's``) → None."""
    if "'" not in word:
        return None
    if word.endswith("n't"):
        return word
    base, _, tail = word.partition("'")
    if tail in ("s", "re", "ve", "ll", "d", "m") and base in _CLOSED | {"it", "that", "there"}:
        return base
    return None


def is_verb(word: str) -> bool:
    """Could ``word`` be the base-form verb of a commitment?"""
    if word in _NOT_A_VERB or word.isdigit() or _contraction_base(word) is not None:
        return False
    return not (word.endswith("ing") and len(word) > 5 and word not in _ING_VERBS)


def is_head(word: str) -> bool:
    """Could ``word`` head the noun phrase a commitment acts on?"""
    if word in _NOT_A_HEAD or _contraction_base(word) is not None:
        return False
    return not any(ch.isdigit() for ch in word) and len(word) > 1


def _skip_to_verb(words: list[str]) -> int | None:
    """Index of the verb after adverbs, fillers and catenatives; None after a negation."""
    i = 0
    while i < len(words):
        word = words[i]
        if word in NEGATIONS:
            return None
        if word in ADVERBS or word in FILLERS:
            i += 1
            continue
        catenative = next((c for c in _CATENATIVES if tuple(words[i : i + len(c)]) == c), None)
        if catenative is None:
            return i
        i += len(catenative)
    return i


def has_verb_and_object(rest: str, *, verb_given: bool = False) -> bool:
    """Whether ``rest`` — what follows a commitment's frame, its due phrase taken out — is a
    verb and its object.

    ``verb_given`` when the frame already holds the verb ("I can *take* …"): only the object is
    looked for.
    """
    words = tokens(rest)
    start = _skip_to_verb(words)
    if start is None:
        return False
    if not verb_given:
        if start >= len(words) or not is_verb(words[start]):
            return False
        start += 1
    return any(is_head(word) for word in words[start:])
