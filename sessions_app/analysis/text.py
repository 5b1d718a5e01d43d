"""Tokenising, sentence splitting, stop words and term keys shared by the offline analysers.

English and Russian are both handled, in one transcript if need be: the two alphabets do not
overlap, so one tokeniser and the union of both stop-word lists serve either language, and a
word's script says how to fold it into a term (a light plural fold for Latin words, Snowball
stemming for Cyrillic ones, since Russian inflects every noun into six cases).
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from functools import lru_cache

import snowballstemmer

from sessions_app.analysis.types import Utterance

# Letters and digits of any script; an apostrophe may join parts (``don't``). A hyphen joins
# Russian words (``интернет-магазин``, ``что-то``: one word each) and splits English ones
# (``follow-up``), as it always did.
WORD_RE = re.compile(r"[а-яё0-9]+(?:-[а-яё0-9]+)+|[^\W_]+(?:'[^\W_]+)*")
_CURLY_APOSTROPHE = "\u2019"
# A sentence ends at . ! ? or … (possibly inside a closing quote or bracket) before a space.
_SENTENCE_END_RE = re.compile(r"(?<=[.!?\u2026])\s+(?=\S)|(?<=[.!?\u2026][\u00bb\"\u201d')])\s+")
_SENTENCE_ENDS = (".", "!", "?", "\u2026")
_CYRILLIC_RE = re.compile(r"[\u0400-\u04ff]")
_LATIN_RE = re.compile(r"[A-Za-z\u00c0-\u024f]")
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
# Russian function words in all their forms (pronouns decline irregularly, so they are listed
# rather than stemmed), the verbs and adverbs of talk ("говорю", "думаю", "давайте"), fillers
# and time words. ``ё`` is folded to ``е`` when looked up.
_RUSSIAN_STOPWORD_TEXT = """
    я меня мне мной мною ты тебя тебе тобой тобою он его него ему нему им ним нем нём она её
    ее неё нее ей ней ею нею оно мы нас нам нами вы вас вам вами они их них ими ними себя себе
    собой собою сам сама само сами самого самой самому самим самих самом кто кого кому кем ком
    что чего чему чем чём никто никого никому ничто ничего ничему ничем нечего некого кое то
    нибудь либо таки это этот эта эти этого этой этому этим этих этом эту тот та те того той
    тому тем тех том ту такой такая такое такие такого такому таким таких такую какой какая
    какое какие какого какому каким каких какую который которая которое которые которого
    которой которому которым которых котором которую весь вся всё все всего всей всему всем
    всеми всех всю мой моя моё мои моего моей моему моим моих моём мою твой твоя твоё твои
    твоего твоей твоему твоим твоих твоём твою наш наша наше наши нашего нашей нашему нашим
    наших нашем нашу ваш ваша ваше ваши вашего вашей вашему вашим ваших вашем вашу свой своя
    своё свои своего своей своему своим своих своём свою чей чья чьё чьи каждый каждая каждое
    каждые каждого каждой каждому каждым любой любая любое любые другой другая другое другие
    другого другому другим других другую иной
    в во на с со к ко по о об обо от ото до из изо у за над под подо при про для без безо
    через между перед передо около после вокруг среди ради вместо кроме против вроде насчёт
    внутри вне мимо сквозь вдоль возле благодаря согласно
    и а но или либо да нет не ни же ли бы б вот ну уж уже ещё тоже также только даже именно
    просто прямо чтобы если когда пока как так потому поэтому потом затем тогда там тут здесь
    туда сюда оттуда где куда откуда зачем почему сколько столько очень более менее самый
    самая самое самые самым самых чуть вообще конечно наверное наверно может можно нельзя
    нужно надо необходимо должен должна должно должны будто словно типа короче значит кстати
    собственно причём притом однако хотя впрочем зато ибо раз разве неужели вдруг лишь почти
    совсем сразу опять снова всегда никогда иногда часто давно недавно скоро сейчас теперь
    раньше позже вместе отдельно особенно действительно реально правда точно ровно примерно
    быть есть был была было были буду будешь будет будем будете будут будь стал стала стало
    стали стать станет станем является являются делать сделать делаю делаем делает делают
    сделаю сделаем сделает сделают сделал сделала сделали делал делали говорить сказать говорю
    говорим говорит говорят говорил говорила говорили сказал сказала сказали скажу скажем
    скажет думать думаю думаем думает думают думал думала думали знать знаю знаем знает знают
    знал знала знали хотеть хочу хочешь хочет хотим хотите хотят хотел хотела хотели мочь могу
    можешь можем можете могут мог могла могли смогу сможем сможет понимать понимаю понимаешь
    понимаем понятно видеть вижу видим видно смотреть посмотреть смотрите смотри посмотрим
    посмотрю слушайте слушай давай давайте пойдём идти иду идёт пошли получается получилось
    кажется считаю считаем спасибо пожалуйста привет здравствуйте коллеги друзья ребята ага угу
    эм э ээ эээ мм ммм хм ок окей ладно хорошо отлично супер класс норм ясно согласен согласна
    договорились блин сегодня завтра послезавтра вчера утро утром вечер вечером днём ночью
    понедельник вторник среда среду четверг пятница пятницу суббота субботу воскресенье
    один одна одно одни одного одной одному два две двух три трёх четыре пять шесть семь
    восемь девять десять сто тысяча пару пара итак прекрасно замечательно
    из-за из-под по-моему по-твоему по-нашему по-вашему по-прежнему по-другому по-новому
    по-русски по-английски вообще-то чуть-чуть как-нибудь всё-таки кое-что кое-кто кое-где
"""
# A hyphenated word ending like these is a pronoun or particle (``какой-то``, ``кто-нибудь``).
_RUSSIAN_STOP_SUFFIXES = ("-то", "-нибудь", "-либо", "-таки")
# Generic words whose every form is a stop word: matched by their Snowball stem.
_RUSSIAN_STOP_LEMMAS = """
    новый хороший плохой большой маленький следующий прошлый первый второй третий последний
    целый разный нужный день неделя месяц год время минута час вопрос момент дело вещь штука
    человек люди итог пример слово конец начало понедельник вторник среда четверг пятница
    суббота воскресенье утро вечер
"""


def _word_set(text: str) -> frozenset[str]:
    return frozenset(text.split())


def fold_yo(word: str) -> str:
    """``ё`` spelt ``е``, as most Russian text does: both spellings are one word."""
    return word.replace("ё", "е").replace("Ё", "Е")


_thread_stemmers = threading.local()


@lru_cache(maxsize=65536)
def russian_stem(word: str) -> str:
    """The Snowball stem of a lower-case Russian word (``отчёта`` → ``отчет``)."""
    # Snowball's stemmer objects keep state between calls: one per thread.
    stemmer = getattr(_thread_stemmers, "russian", None)
    if stemmer is None:
        stemmer = _thread_stemmers.russian = snowballstemmer.stemmer("russian")
    return stemmer.stemWord(fold_yo(word))


STOPWORDS = _word_set(_STOPWORD_TEXT) | _word_set(fold_yo(_RUSSIAN_STOPWORD_TEXT))
_RUSSIAN_STOP_STEMS = frozenset(russian_stem(w) for w in _word_set(_RUSSIAN_STOP_LEMMAS))
# Tokens under three letters are noise for topics and summaries.
_MIN_TOKEN_LEN = 3


def is_cyrillic(text: str) -> bool:
    """Whether ``text`` has more Cyrillic letters than Latin ones (and at least one)."""
    cyrillic = len(_CYRILLIC_RE.findall(text))
    return cyrillic > 0 and cyrillic >= len(_LATIN_RE.findall(text))


def words(text: str) -> list[str]:
    """Lower-case word tokens of any script (apostrophes kept: ``don't``; ``ё`` kept)."""
    return WORD_RE.findall(text.lower().replace(_CURLY_APOSTROPHE, "'"))


def is_stopword(word: str) -> bool:
    """Whether the lower-case ``word`` carries no topic: an English or Russian stop word."""
    if word in STOPWORDS:
        return True
    if not _CYRILLIC_RE.search(word):
        return False
    if word.endswith(_RUSSIAN_STOP_SUFFIXES):
        return True
    return fold_yo(word) in STOPWORDS or russian_stem(word) in _RUSSIAN_STOP_STEMS


def content_words(text: str) -> list[str]:
    return [w for w in words(text) if len(w) >= _MIN_TOKEN_LEN and not is_stopword(w)]


def normalise_term(word: str) -> str:
    """A light plural fold so ``deadline``/``deadlines`` count as one term."""
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def term_key(word: str) -> str:
    """What counts as the same term: the stem of a Russian word, the plural-folded English
    word (which is also how English topics are shown)."""
    if _CYRILLIC_RE.search(word):
        return russian_stem(word)
    return normalise_term(word)


# Russian infinitives (``подготовить``, ``заняться``, ``найти``, ``помочь``); nouns in -ость /
# -есть and these few (``сеть``, ``память``) look like them and are not verbs.
_INFINITIVE_RE = re.compile(r"..(?:ть|ти|чь)(?:ся|сь)?$")
_NOT_INFINITIVES = _word_set(
    "сеть память печать тетрадь кровать мать дочь ночь мощь помощь речь вещь почти пять шесть "
    "семь восемь девять десять двадцать тридцать путь часть власть честь"
)


def is_russian_infinitive(word: str) -> bool:
    """Whether the lower-case Russian ``word`` looks like an infinitive."""
    word = fold_yo(word)
    if word in _NOT_INFINITIVES or word.endswith(("ость", "есть", "сеть")):
        return False
    return _INFINITIVE_RE.search(word) is not None


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


def ends_sentence(text: str) -> bool:
    return text.endswith(_SENTENCE_ENDS)


class Sentence:
    """A sentence with the utterance it came from (speaker, time and language)."""

    __slots__ = ("start", "text", "utterance")

    def __init__(self, text: str, utterance: Utterance) -> None:
        self.text = text
        self.utterance = utterance
        self.start = utterance.start


def sentences_of(utterances: list[Utterance]) -> list[Sentence]:
    return [Sentence(s, u) for u in utterances for s in split_sentences(u.text)]


# --- Languages --------------------------------------------------------------------------------


def language_code(language: str) -> str:
    """The ISO 639-1 part of a stored language tag (``ru-RU`` → ``ru``), lower-case."""
    return re.split(r"[-_]", language.strip().lower(), maxsplit=1)[0]


def segment_language(utterance: Utterance, default: str = "") -> str:
    """The language the engine stored for the segment; else Russian for Cyrillic text; else
    ``default`` (the session's one configured language, or "" when that is unknown too)."""
    if utterance.language:
        return language_code(utterance.language)
    return "ru" if is_cyrillic(utterance.text) else default


def transcript_language(utterances: list[Utterance], default: str = "") -> str:
    """The meeting's language: the one most of its words were said in (segments weighed by
    their words, ``segment_language`` each); ``default`` when no segment tells."""
    said: Counter[str] = Counter()
    for utterance in utterances:
        language = segment_language(utterance, default)
        if language:
            said[language] += max(len(words(utterance.text)), 1)
    return said.most_common(1)[0][0] if said else default
