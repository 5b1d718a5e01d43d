"""Tokenising and sentence splitting shared by the offline analysers."""

from __future__ import annotations

import re

from sessions_app.analysis.types import Utterance

WORD_RE = re.compile(r"[a-z0-9]+(?:'[a-z]+)*")
_CURLY_APOSTROPHE = "\u2019"
_SENTENCE_END_RE = re.compile(r"(?<=[.!?])\s+(?=\S)")
# Speech recognisers often return long runs without punctuation: cut them into readable pieces.
MAX_SENTENCE_WORDS = 40

_STOPWORD_TEXT = """
    a about above after again against all almost also although always am among an and another
    any anybody anyone anything anyway anyways are aren't around as at away back be became
    because become been before being below between both but by can can't cannot could couldn't
    did didn't do does doesn't doing don't done down during each either else enough etc even
    ever every everybody everyone everything exactly few for from further get gets getting give
    given go goes going gone got gotten had hadn't has hasn't have haven't having he he'd he'll
    he's her here here's hers herself him himself his how how's however i i'd i'll i'm i've if in
    into is isn't it it'd it'll it's its itself just keep kind know known let let's lets like
    likely lot lots made make makes making many may maybe me mean means might mine more most
    much must mustn't my myself need needs neither never no nobody none nor not nothing now of
    off oh ok okay on once one ones only onto or other others otherwise ought our ours ourselves
    out over own perhaps please pretty probably put quite rather really right said same say
    saying says see seem seemed seems sees shall shan't she she'd she'll she's should shouldn't
    since so some somebody someone something sometimes somewhat soon sort still such sure take
    taking tell than thank thanks that that's the their theirs them themselves then there
    there's these they they'd they'll they're they've thing things think thinking this those
    though through thus to today together too took toward towards try trying two um uh under
    until up upon us use used using very via want wanted wants was wasn't way we we'd we'll we're
    we've well went were weren't what what's whatever when when's where where's whether which
    while who who's whole whom whose why why's will with within without won't would wouldn't
    yeah yep yes yet you you'd you'll you're you've your yours yourself yourselves hmm mm mhm
    actually basically literally gonna gotta wanna stuff guess look looking good great fine
    first second next last new old big small little time times day days week weeks today
    tomorrow yesterday monday tuesday wednesday thursday friday saturday sunday month months
    year years morning afternoon evening tonight hi hello bye everybody guys folks alright
    able call called come comes coming start started end ended point bit far put talk talking
    talked said tell told ask asked work working feel felt back via per done doing let's
    i'll we'll you'll he'll she'll they'll can could would should
"""
STOPWORDS = frozenset(_STOPWORD_TEXT.split())
# Tokens under three letters are noise for topics and summaries.
_MIN_TOKEN_LEN = 3


def words(text: str) -> list[str]:
    """Lower-case word tokens (apostrophes kept: ``don't``)."""
    return WORD_RE.findall(text.lower().replace(_CURLY_APOSTROPHE, "'"))


def content_words(text: str) -> list[str]:
    return [w for w in words(text) if w not in STOPWORDS and len(w) >= _MIN_TOKEN_LEN]


def normalise_term(word: str) -> str:
    """A light plural fold so ``deadline``/``deadlines`` count as one term."""
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def split_sentences(text: str) -> list[str]:
    """Sentences of ``text``; unpunctuated runs are cut every ``MAX_SENTENCE_WORDS`` words."""
    pieces: list[str] = []
    for sentence in _SENTENCE_END_RE.split(text.strip()):
        sentence = sentence.strip()
        if not sentence:
            continue
        tokens = sentence.split()
        if len(tokens) <= MAX_SENTENCE_WORDS:
            pieces.append(sentence)
            continue
        for i in range(0, len(tokens), MAX_SENTENCE_WORDS):
            pieces.append(" ".join(tokens[i : i + MAX_SENTENCE_WORDS]))
    return pieces


class Sentence:
    """A sentence with the utterance it came from (speaker and time)."""

    __slots__ = ("start", "text", "utterance")

    def __init__(self, text: str, utterance: Utterance) -> None:
        self.text = text
        self.utterance = utterance
        self.start = utterance.start


def sentences_of(utterances: list[Utterance]) -> list[Sentence]:
    return [Sentence(s, u) for u in utterances for s in split_sentences(u.text)]
