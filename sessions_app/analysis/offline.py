"""The offline analyser: numpy only, no model download.

* Summary: sentences become TF-IDF vectors; a TextRank-style ranking (power iteration of
  PageRank on the cosine-similarity graph) picks the most central ones, which are returned in
  the order they were said, so the summary is made of the transcript's own sentences.
* Topics: TF-IDF of unigrams and bigrams over windows of the transcript, bigrams absorbing the
  words they contain, plurals folded (English) or words stemmed (Russian: a topic is shown as
  it was said most often, ``квартальный отчёт`` for all its cases).
* Action items: rule-based (``actions.py``, ``actions_ru.py`` for Russian sentences). Speaker
  stats: computed from the segments.

English, Russian and a mix of both are understood (``text.py``). The one label the analysis
writes itself, the room's name in the speaker stats, comes with the input
(``AnalysisInput.room_name``), so this module needs neither Django nor a catalogue.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Sequence

import numpy as np

from sessions_app.analysis.actions import extract_action_items
from sessions_app.analysis.names import is_case_of
from sessions_app.analysis.text import (
    Sentence,
    content_words,
    ends_sentence,
    is_cyrillic,
    is_russian_infinitive,
    is_stopword,
    sentences_of,
    term_key,
    words,
)
from sessions_app.analysis.types import AnalysisInput, AnalysisResult, SpeakerStat, Utterance

PROVIDER = "offline"
DAMPING = 0.85
MAX_ITERATIONS = 100
TOLERANCE = 1e-6
# Sentences shorter than this rarely make a readable summary line.
MIN_SUMMARY_WORDS = 5
# Two picked sentences more similar than this say the same thing: keep the first.
REDUNDANCY = 0.7
MAX_SENTENCES_PER_TOPIC = 2
# Topics are scored over windows of this many words (document frequency for the IDF).
TOPIC_WINDOW_WORDS = 250
MAX_TOPICS = 8


def summary_length(sentence_count: int) -> int:
    """About the square root of the sentence count, 1 to 8 sentences."""
    return max(1, min(8, round(math.sqrt(sentence_count))))


def _tfidf_matrix(docs: list[list[str]]) -> np.ndarray:
    """Row-normalised TF-IDF vectors (float32) of tokenised ``docs``; terms used once dropped."""
    df: Counter[str] = Counter()
    for doc in docs:
        df.update(set(doc))
    n = len(docs)
    # Sorted: the column order (and so float32 rounding and ties) must not depend on the
    # process's string hash seed, or the same transcript could get another summary.
    vocab = {term: i for i, term in enumerate(sorted(t for t, c in df.items() if c >= 2 or n < 8))}
    matrix = np.zeros((n, len(vocab)), dtype=np.float32)
    if not vocab:
        return matrix
    idf = np.zeros(len(vocab), dtype=np.float32)
    for term, i in vocab.items():
        idf[i] = math.log((1 + n) / (1 + df[term])) + 1.0
    for row, doc in enumerate(docs):
        for term, count in Counter(doc).items():
            col = vocab.get(term)
            if col is not None:
                matrix[row, col] = 1.0 + math.log(count)
    matrix *= idf
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    np.divide(matrix, norms, out=matrix, where=norms > 0)
    return matrix


def textrank(vectors: np.ndarray, teleport: np.ndarray | None = None) -> np.ndarray:
    """PageRank scores of the cosine-similarity graph of the rows of ``vectors`` (unit or zero
    rows), by power iteration; ``teleport`` (sums to 1) biases the random jumps.

    The n x n similarity matrix ``S = V Vt - I`` is never built: ``S w = V (Vt w) - w`` costs
    two thin matrix-vector products per iteration instead of one n x n product, and memory stays
    linear in the number of sentences.
    """
    n = vectors.shape[0]
    self_similarity = np.einsum("ij,ij->i", vectors, vectors)
    out_weight = vectors @ vectors.sum(axis=0) - self_similarity
    dangling = out_weight <= 1e-9
    inverse = np.where(dangling, 0.0, 1.0 / np.where(dangling, 1.0, out_weight))
    jump = np.full(n, 1.0 / n) if teleport is None else teleport
    scores = np.full(n, 1.0 / n, dtype=np.float64)
    for _ in range(MAX_ITERATIONS):
        weights = (scores * inverse).astype(vectors.dtype)
        spread = vectors @ (vectors.T @ weights) - self_similarity * weights
        # Sentences with no neighbours hand their score to everybody (dangling nodes).
        updated = (1 - DAMPING) * jump + DAMPING * (spread + scores[dangling].sum() * jump)
        if np.abs(updated - scores).sum() < TOLERANCE:
            return updated
        scores = updated
    return scores


def _topic_teleport(docs: list[list[str]], topics: list[str]) -> np.ndarray | None:
    """Random jumps favour sentences that mention the key topics (a topic-biased TextRank)."""
    topic_words = {term_key(w) for topic in topics for w in topic.split(" ")}
    if not topic_words:
        return None
    weights = np.array([1.0 + sum(w in topic_words for w in doc) for doc in docs])
    return weights / weights.sum()


def summarise(sentences: list[Sentence], topics: list[str] | None = None) -> str:
    """The most central sentences, as said and in order; ``topics`` bias the ranking."""
    if not sentences:
        return ""
    docs = [[term_key(w) for w in content_words(s.text)] for s in sentences]
    vectors = _tfidf_matrix(docs)
    scores = textrank(vectors, _topic_teleport(docs, topics or []))
    length = summary_length(len(sentences))
    topic_words = [{term_key(w) for w in topic.split(" ")} for topic in topics or []]
    per_topic: Counter[int] = Counter()
    picked: list[int] = []
    for index in np.argsort(-scores, kind="stable"):
        if len(words(sentences[index].text)) < MIN_SUMMARY_WORDS and len(sentences) > length:
            continue
        if any(float(vectors[index] @ vectors[other]) > REDUNDANCY for other in picked):
            continue
        # Cover several topics rather than saying the most central one many times.
        topic = next((i for i, ws in enumerate(topic_words) if ws <= set(docs[index])), None)
        if topic is not None:
            if per_topic[topic] >= MAX_SENTENCES_PER_TOPIC:
                continue
            per_topic[topic] += 1
        picked.append(int(index))
        if len(picked) == length:
            break
    if not picked:
        picked = [int(np.argmax(scores))]
    return " ".join(_as_sentence(sentences[i].text) for i in sorted(picked))


def _as_sentence(text: str) -> str:
    text = text.strip()
    text = text[0].upper() + text[1:] if text else text
    return text if ends_sentence(text) else text + "."


def _terms(
    tokens: list[str], skip: frozenset[str], said: defaultdict[str, Counter[str]]
) -> list[str]:
    """Unigrams and bigrams of adjacent content words (a stopword breaks a bigram), as term
    keys; ``said`` counts the words as spoken behind each key."""
    terms: list[str] = []
    previous: tuple[str, str] | None = None
    for token in tokens:
        if len(token) < 3 or token.isdigit() or is_stopword(token):
            previous = None
            continue
        term = term_key(token)
        if term in skip:
            previous = None
            continue
        terms.append(term)
        said[term][token] += 1
        if previous is not None and previous[0] != term:
            bigram = f"{previous[0]} {term}"
            terms.append(bigram)
            said[bigram][f"{previous[1]} {token}"] += 1
        previous = (term, token)
    return terms


def _shown(term: str, said: defaultdict[str, Counter[str]]) -> str:
    """How a topic reads: English as its key (plural folded), Russian as said most often."""
    if not is_cyrillic(term):
        return term
    return said[term].most_common(1)[0][0]


def extract_topics(
    utterances: list[Utterance], *, names: Sequence[str] = (), limit: int = MAX_TOPICS
) -> list[str]:
    """Key topics; people's names (``names`` and the speakers', in any case: ``Марии``) and
    Russian verbs (the stems of the transcript's infinitives) are not topics."""
    tokens = [w for u in utterances for w in words(u.text)]
    if not tokens:
        return []
    name_words = {
        w for name in [*names, *(u.speaker_name for u in utterances)] for w in words(name)
    }
    russian_names = [w for w in name_words if is_cyrillic(w)]
    unique = {w for w in tokens if is_cyrillic(w)}
    skip = frozenset(
        {term_key(w) for w in name_words}
        | {term_key(w) for w in unique if any(is_case_of(w, name) for name in russian_names)}
        | {term_key(w) for w in unique if is_russian_infinitive(w)}
    )
    said: defaultdict[str, Counter[str]] = defaultdict(Counter)
    windows = [
        _terms(tokens[i : i + TOPIC_WINDOW_WORDS], skip, said)
        for i in range(0, len(tokens), TOPIC_WINDOW_WORDS)
    ]
    tf: Counter[str] = Counter()
    df: Counter[str] = Counter()
    for window in windows:
        tf.update(window)
        df.update(set(window))
    n = len(windows)
    # A term said once is not a topic, unless the transcript is tiny.
    min_count = 2 if len(tokens) > 30 else 1
    scores: dict[str, float] = {}
    for term, count in tf.items():
        if count < min_count:
            continue
        idf = math.log((1 + n) / (1 + df[term])) + 1.0
        # Bigrams are rarer than words by nature; weigh them up so a repeated phrase wins.
        weight = 1.6 if " " in term else 1.0
        scores[term] = (1.0 + math.log(count)) * idf * weight * math.log(2 + count)
    return [_shown(term, said) for term in _merge_topics(scores, tf, limit)]


def _merge_topics(scores: dict[str, float], tf: Counter[str], limit: int) -> list[str]:
    """Best terms first; a bigram absorbs its words, and a word already inside a kept bigram
    (or a bigram whose word was kept and explains it) is not repeated."""
    absorbed: set[str] = set()
    for term in scores:
        if " " in term:
            left, right = term.split(" ")
            for word in (left, right):
                # Most uses of the word are inside this phrase: the phrase is the topic.
                if tf[term] * 2 >= tf[word]:
                    absorbed.add(word)
    chosen: list[str] = []
    for term in sorted(scores, key=lambda t: (-scores[t], t)):
        if term in absorbed:
            continue
        parts = set(term.split(" "))
        if any(parts & set(kept.split(" ")) for kept in chosen):
            continue
        chosen.append(term)
        if len(chosen) == limit:
            break
    return chosen


def speaker_stats(utterances: list[Utterance], *, room_name: str = "Room") -> list[SpeakerStat]:
    """Talk time, words, words per minute and turns per speaker, most talkative first; speech
    from no one in particular is ``room_name``'s."""
    talk: defaultdict[str, float] = defaultdict(float)
    word_count: Counter[str] = Counter()
    turns: Counter[str] = Counter()
    names: dict[str, str] = {}
    previous: str | None = None
    for u in sorted(utterances, key=lambda u: u.start):
        key = u.speaker_identity or u.speaker_name or "room"
        names.setdefault(key, u.speaker_name or room_name)
        talk[key] += max(u.end - u.start, 0.0)
        word_count[key] += len(words(u.text))
        if key != previous:
            turns[key] += 1
        previous = key
    stats: list[SpeakerStat] = []
    for key in sorted(talk, key=lambda k: (-talk[k], names[k])):
        minutes = talk[key] / 60
        stats.append(
            SpeakerStat(
                identity=key if key != "room" else "",
                name=names[key],
                talk_seconds=round(talk[key], 1),
                words=word_count[key],
                wpm=round(word_count[key] / minutes) if minutes > 0 else 0,
                turns=turns[key],
            )
        )
    return stats


def analyse(data: AnalysisInput) -> AnalysisResult:
    utterances = sorted(data.utterances, key=lambda u: u.start)
    sentences = sentences_of(utterances)
    topics = extract_topics(utterances, names=data.known_names)
    return AnalysisResult(
        provider=PROVIDER,
        summary=summarise(sentences, topics),
        topics=topics,
        action_items=extract_action_items(sentences, known_names=data.known_names),
        speaker_stats=speaker_stats(utterances, room_name=data.room_name),
    )
