"""Rule-based action items in Russian: who committed to what, and by when.

The frames of ``actions.py`` as Russian says them (case-insensitive, after fillers like "ну",
"так", "хорошо"). Russian puts a due phrase anywhere ("К понедельнику Мария подготовит
отчёт"), so it is taken out of the clause before the frame is looked for.

* ``я пришлю / подготовлю / займусь …``, ``я могу / буду / постараюсь + infinitive``,
  ``мне нужно + infinitive``, ``пришлю … завтра`` (no pronoun, a due phrase said) — owned by
  the speaker;
* ``Мария подготовит / займётся …``, ``Мария должна / будет + infinitive``, ``Отчёт подготовит
  Мария``, ``Марии нужно + infinitive`` — owned by that participant or member;
* ``Мария, подготовь …``, ``Мария, можешь / не могла бы + infinitive``, ``Мария, ты
  подготовишь …?``, ``Мария, с тебя …`` — owned by Мария;
* ``нужно / надо / необходимо + infinitive``, ``мы подготовим …``, ``мы должны + infinitive``,
  ``давайте назначим …`` — the team's;
* the imperative of a work verb with nobody named (``подготовь отчёт``) — no owner;
* ``задача: …`` (a name first names the owner).

Due phrases ("к пятнице", "до конца недели", "завтра", "в следующий понедельник", "до 15
марта", "через две недели") are kept as said, like the English ones.

As in English (``grammar.py``), what follows the frame must be a verb and its object. Russian
marks both with endings: the verb is told by its form (infinitive ``-ть``, first person
``-ю``, third person ``-ит`` …), and the object is a later word that is no stop word (pronoun,
preposition, particle, time word) and does not end like an adjective. "Я пришлю это" and
"сделай до пятницы" name nothing to act on; "давайте посмотрим, что получилось" is talk about
the meeting itself, not a task.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from sessions_app.analysis.names import NameBook
from sessions_app.analysis.text import fold_yo, is_russian_infinitive, is_stopword, words

_WEEKDAY = (
    r"(?:понедельник[аеу]?|вторник[аеу]?|сред[аеуы]|четверг[аеу]?|пятниц[аеуы]|суббот[аеуы]|"
    r"воскресень[еяю])"
)
_MONTH = r"(?:января|февраля|марта|апреля|мая|июня|июля|августа|сентября|октября|ноября|декабря)"
_THIS_NEXT = (
    r"(?:следующ(?:ий|ую|ее|ей|его|ему)|эт(?:от|у|о|ой|ого|ому)|ближайш(?:ий|ую|ее|ей|его|ему))"
)
_COUNT = (
    r"(?:\d+|один|одну|одного|два|две|двух|три|трёх|трех|четыре|пять|пару|пары|несколько|"
    r"нескольких)"
)
_MEETING = r"(?:встреч[аеиу]|созвон[ау]?|планёрк[аеиу]|планерк[аеиу]|синк[ау]?|стендап[ау]?|ретро)"
_DUE_PATTERNS = [
    re.compile(p, re.IGNORECASE)
    for p in (
        r"\b(?:до|к) (?:самого )?конц[ау] "
        r"(?:(?:этой|этого|текущей|текущего|следующей|следующего) )?"
        r"(?:недел[иеь]|месяц[ау]|квартал[ау]|год[ау]|дн[яю]|спринт[ау])\b",
        rf"\b(?:до|к|ко) (?:{_THIS_NEXT} )?{_WEEKDAY}(?: (?:утр[ау]|вечер[ау]))?\b",
        rf"\b(?:в|во) (?:{_THIS_NEXT} )?{_WEEKDAY}(?: (?:утром|днём|днем|вечером))?\b",
        rf"\b(?:(?:до|к|ко) )?\d{{1,2}}(?:-?(?:го|е|ое|му|ому))? {_MONTH}\b",
        rf"\b(?:до|к|ко) (?:следующ(?:ей|его|ему) )?{_MEETING}\b",
        r"\b(?:на|в течение) (?:этой|следующей) неделе\b|\bв течение (?:этой |следующей )?"
        r"(?:недели|месяца|дня|квартала)\b",
        r"\bв (?:этом|следующем) (?:месяце|квартале|году|спринте)\b",
        rf"\b(?:в течение|за) {_COUNT} (?:час(?:а|ов)?|дн(?:я|ей)|недел(?:и|ь)|месяц(?:а|ев)?)\b",
        rf"\bчерез (?:{_COUNT} )?(?:час(?:а|ов)?|день|дня|дней|неделю|недели|недель|месяц|"
        r"месяца|месяцев)\b",
        r"\b(?:до|к) (?:завтра|завтрашнему дню|завтрашнего дня|вечера|вечеру|обеда|обеду)\b",
        r"\b(?:завтра|послезавтра)(?: (?:утром|днём|днем|вечером|до обеда|к обеду))?\b",
        r"\bсегодня(?: (?:вечером|днём|днем|до вечера|к вечеру))?\b",
        r"\b(?:понедельник|вторник|среда|четверг|пятница|суббота|воскресенье)\b",
    )
]

_FILLERS = re.compile(
    r"^(?:(?:ну|так|итак|хорошо|ладно|окей|ок|ага|угу|да|отлично|супер|договорились|значит|"
    r"в общем|короче|тогда|и|а|кстати|слушайте|смотрите|коллеги|друзья|ребята|пожалуйста|"
    r"понятно|ясно|всё|все|вот|так что|ещё|также|потом|затем|э+|м+|хм+)\b[\s,.!\u2014\u2013-]*)+",
    re.IGNORECASE,
)
_CLAUSE_SPLIT = re.compile(
    r"[,;:]\s+|\s+(?:и|а|а потом|и потом|так что)\s+(?=(?:я|мы|давай|давайте)\b)", re.IGNORECASE
)
_NAME = r"(?P<name>[A-ZА-ЯЁ][\w-]*(?: [A-ZА-ЯЁ][\w-]*)?)"
_SELF = re.compile(r"^я\s+(?P<rest>.+)", re.IGNORECASE)
_SELF_NEED = re.compile(
    r"^мне\s+(?:нужно|надо|необходимо|придётся|придется|следует)\s+(?P<rest>.+)", re.IGNORECASE
)
_TEAM_NEED = re.compile(
    r"^(?:(?:нам|тебе|вам)\s+)?(?:нужно|надо|необходимо|следует|придётся|придется|требуется)"
    r"(?:\s+бы)?\s+(?P<rest>.+)",
    re.IGNORECASE,
)
_WE = re.compile(r"^мы\s+(?P<rest>.+)", re.IGNORECASE)
_LETS = re.compile(r"^(?:давайте|давай)\s+(?:мы\s+)?(?P<rest>.+)", re.IGNORECASE)
_NAMED = re.compile(rf"^{_NAME}\s+(?P<rest>.+)")
_NAMED_NEED = re.compile(
    r"^(?:нужно|надо|необходимо|придётся|придется|следует)\s+(?P<rest>.+)", re.IGNORECASE
)
# "Отчёт нужно подготовить": the object first, the need word after it.
_NEED_LATER = re.compile(
    r"^(?P<before>.+?)\s+(?:нужно|надо|необходимо|придётся|придется|следует)\s+(?P<rest>.+)",
    re.IGNORECASE,
)
# "Отчёт подготовит Мария": the subject after its verb.
_NAMED_LAST = re.compile(rf"^(?P<rest>.+?)\s+(?P<verb>[\w-]+)\s+{_NAME}[.!]?$")
_VOCATIVE = re.compile(rf"{_NAME}\s*,\s*")
_ASK_MODAL = re.compile(
    r"^(?:(?:ты|вы)\s+)?(?:пожалуйста\W+)?(?:не\s+)?(?:можешь|можете|сможешь|сможете|мог|могла|"
    r"могли)(?:\s+бы)?(?:\s+(?:ты|вы))?(?:\W+пожалуйста)?\W+(?P<rest>.+)",
    re.IGNORECASE,
)
_ASK_NEED = re.compile(
    r"^(?:тебе|вам)\s+(?:нужно|надо|необходимо|придётся|придется)\s+(?P<rest>.+)", re.IGNORECASE
)
_ASK_ON_YOU = re.compile(r"^(?:с|на)\s+(?:тебя|тебе|вас|вам)\s+(?P<rest>.+)", re.IGNORECASE)
_LABEL = re.compile(
    r"^(?:задачи|задача|поручение|action items?)\s*[:\-\u2013\u2014]\s*(?P<rest>.+)", re.IGNORECASE
)
_LABEL_OWNER = re.compile(rf"^{_NAME}\s*[:,\-\u2013\u2014]?\s+(?=\S)")


def _forms(text: str) -> frozenset[str]:
    """The words of ``text``, ``ё`` folded (as the tokens they are matched with are)."""
    return frozenset(fold_yo(w) for w in text.split())


def _imperatives(text: str) -> frozenset[str]:
    """The imperatives of ``text`` and their plurals (``сделайте``, ``свяжитесь``)."""
    singular = _forms(text)
    plural = {w[:-2] + "тесь" if w.endswith("сь") else w + "те" for w in singular}
    return singular | frozenset(plural)


# Those addressed in a request who are nobody in particular ("Коллеги, подготовьте …").
_NOT_NAMES = _forms(
    "команда все народ господа товарищи коллеги ребята друзья парни итак прекрасно замечательно "
    "слушай слушайте смотри смотрите кстати"
)
# Imperatives of the verbs tasks are made of: a sentence may start with one and name nobody.
# ("пришли" and "пошли" are left out: they are also the past tense, "пришли результаты".)
WORK_IMPERATIVES = _imperatives(
    "сделай подготовь отправь напиши проверь обнови согласуй назначь закажи позвони свяжись "
    "созвонись узнай уточни собери составь оформи подпиши перенеси исправь добавь удали загрузи "
    "выложи опубликуй запусти настрой оплати закрой открой создай запиши передай почини "
    "протестируй организуй забронируй купи найди поправь доделай переделай перешли скинь "
    "распечатай заведи выгрузи пересчитай посчитай сравни опиши прочитай ответь напомни "
    "подключи займись возьми поставь внеси зафиксируй сообщи предупреди пригласи договорись "
    "разошли подними разберись изучи просмотри проанализируй проведи запланируй пропиши отметь "
    "сформулируй набросай верни оцени вышли продумай распиши заполни доработай уведоми почисти "
    "проконтролируй"
)
# The same verbs in the first person: said with no pronoun ("Пришлю отчёт завтра").
WORK_FIRST_PERSON = _forms(
    "сделаю подготовлю отправлю пришлю напишу проверю обновлю согласую назначу закажу позвоню "
    "свяжусь созвонюсь узнаю уточню соберу составлю оформлю подпишу перенесу исправлю добавлю "
    "удалю загружу выложу опубликую запущу настрою оплачу закрою открою создам запишу передам "
    "починю протестирую организую забронирую куплю найду поправлю доделаю переделаю перешлю "
    "скину распечатаю заведу выгружу пересчитаю посчитаю сравню опишу прочитаю отвечу напомню "
    "подключу займусь возьму поставлю внесу зафиксирую сообщу предупрежу приглашу договорюсь "
    "разошлю подниму разберусь изучу просмотрю проанализирую проведу запланирую пропишу отмечу "
    "сформулирую набросаю верну оценю вышлю продумаю распишу заполню доработаю уведомлю почищу "
    "проконтролирую"
)
# Third-person futures that look like the present of an ongoing activity (-ает, -ует):
# "Мария согласует бюджет" is a task; "Мария использует шаблон" is not, unless a due phrase
# says when.
WORK_THIRD_PERSON = _forms(
    "сделает согласует протестирует организует проанализирует забронирует опубликует "
    "зафиксирует сформулирует узнает распечатает доделает переделает пересчитает посчитает "
    "прочитает набросает запланирует"
)
_PRESENT_LOOKING = ("ает", "яет", "ует")
# Said between the frame and its verb: adverbs ("я *тогда ещё* пришлю") and the pronouns
# Russian puts before it ("я *вам* пришлю отчёт").
_BEFORE_VERB = _forms(
    "тогда ещё также тоже сам сама сами обязательно лично сразу быстро просто потом затем уже "
    "конечно наверное наверно точно срочно заодно пожалуйста вот ну же уж как раз всё таки "
    "мне тебе ему ей нам вам им"
)
# Modal words followed by the infinitive that is the task ("я *постараюсь* прислать …").
_SELF_MODALS = _forms(
    "могу смогу буду постараюсь попробую попытаюсь готов готова обязуюсь планирую собираюсь "
    "должен должна берусь возьмусь"
)
_THIRD_MODALS = _forms(
    "может сможет будет постарается попробует готов готова должен должна собирается планирует "
    "возьмётся берётся обещал обещала обещает"
)
_WE_MODALS = _forms("будем должны постараемся попробуем планируем собираемся обязаны")
# Verbs of speech, opinion and state ("говорит", "думаю", "отвечает за"): never a task.
# Matched as the start of the verb.
_OPINION_VERBS = tuple(
    _forms(
        "скаж сказа говор дума подума счита зна понима понять пойм помн вспомн вид увид слыш "
        "услыш хоч хоте хотим надея наде соглаш согласен согласна работа занима отвеча сиди ведет"
    )
)
# Verbs of the meeting's own business ("обсудим", "посмотрим", "покажу экран", "расскажет"):
# a task only when a due phrase says it is for later ("покажи макет клиенту до пятницы").
_MEETING_VERBS = tuple(
    _forms(
        "начн начина начать продолж перейд переход вернусь вернемся закончим заканчива подвед "
        "обсуд обсужда поговор посмотр смотр послуша слуша познаком остановимся остановлюсь "
        "расскаж рассказ покаж показ подел отключусь уйд ухож выйд повтор объясн поясн опозда "
        "присоедин"
    )
)
_VERB_1SG = re.compile(r"..(?:у|ю)(?:сь)?$")
_VERB_3SG = re.compile(r"..(?:ет|ёт|ит)(?:ся)?$")
_VERB_2ND = re.compile(r"..(?:ешь|ёшь|ишь|ете|ёте|ите)(?:сь)?$")
_VERB_1PL = re.compile(r"..(?:ем|ём|им)(?:ся)?$")
_IMPERATIVE = re.compile(r".(?:[аеёиоуыэюя]й|ь|и)(?:те)?(?:сь|ся)?$")
# Endings only adjectives (and participles) have: such a word does not name the object.
_ADJECTIVE_ENDINGS = tuple(_forms("ый ая яя ое ее ые ого ому ую юю ыми ых их"))

Verb = Callable[[str], bool]


def due_phrase(text: str) -> str | None:
    for pattern in _DUE_PATTERNS:
        match = pattern.search(text)
        if match:
            return match.group(0)
    return None


def _without_due(text: str) -> str:
    """``text`` with its due phrases taken out (the frame may have been split by one)."""
    for pattern in _DUE_PATTERNS:
        text = pattern.sub(" ", text)
    return re.sub(r"\s+", " ", text).strip(" ,;:")


def strip_fillers(text: str) -> str:
    return _FILLERS.sub("", text.strip()).strip()


def _tokens(text: str) -> list[str]:
    return [fold_yo(w) for w in words(text)]


def _is_head(word: str) -> bool:
    """Could ``word`` name what a task acts on?"""
    if len(word) < 2 or any(ch.isdigit() for ch in word) or is_stopword(word):
        return False
    return not word.endswith(_ADJECTIVE_ENDINGS)


def _is_talk(verb: str, *, dated: bool) -> bool:
    """A verb of opinion, or of the meeting's own business unless ``dated`` (for later)."""
    return verb.startswith(_OPINION_VERBS) or (not dated and verb.startswith(_MEETING_VERBS))


def _open_word(word: str) -> bool:
    return not is_stopword(word) and word not in _BEFORE_VERB


def _is_1sg(word: str) -> bool:
    return _open_word(word) and bool(_VERB_1SG.search(word)) and not word.endswith(("ую", "юю"))


def _is_3sg(word: str) -> bool:
    return _open_word(word) and bool(_VERB_3SG.search(word))


def _is_2nd(word: str) -> bool:
    return _open_word(word) and bool(_VERB_2ND.search(word))


def _is_1pl(word: str) -> bool:
    return _open_word(word) and bool(_VERB_1PL.search(word))


def _is_infinitive(word: str) -> bool:
    return _open_word(word) and is_russian_infinitive(word)


def _is_imperative(word: str) -> bool:
    return word in WORK_IMPERATIVES or (_open_word(word) and bool(_IMPERATIVE.search(word)))


def _verb_and_object(
    rest: str,
    verb: Verb,
    modals: frozenset[str] = frozenset(),
    *,
    dated: bool,
    object_before: bool = False,
) -> bool:
    """Whether ``rest`` starts (after adverbs) with a verb of the form ``verb`` accepts, or one
    of ``modals`` and an infinitive, followed by its object (or preceded by it:
    ``object_before``); a negation ends it. ``dated``: a due phrase was said."""
    tokens = _tokens(rest)
    i = 0
    while i < len(tokens) and tokens[i] in _BEFORE_VERB:
        i += 1
    if i < len(tokens) and tokens[i] in modals:
        i += 1
        while i < len(tokens) and tokens[i] in _BEFORE_VERB:
            i += 1
        verb = _is_infinitive
    if i >= len(tokens) or not verb(tokens[i]) or _is_talk(tokens[i], dated=dated):
        return False
    return object_before or any(_is_head(word) for word in tokens[i + 1 :])


def _has_object(rest: str) -> bool:
    return any(_is_head(word) for word in _tokens(rest))


def _owner_named(said: str, names: NameBook) -> str | None:
    """The person ``said`` refers to; an unknown capitalised word counts as a name when it
    could not be a greeting, an adverb or a crowd ("Коллеги")."""
    owner = names.resolve(said)
    if owner is not None:
        return owner
    word = said.split(" ")[0]
    folded = fold_yo(word.lower())
    if not word[:1].isupper() or is_stopword(folded) or folded in _NOT_NAMES:
        return None
    # Adverbs ("Отлично", "Прекрасно") end in -о; so do a few names, which are then missed.
    return None if folded.endswith("о") else said


def asked_owner(text: str, names: NameBook) -> str | None:
    """``Мария, подготовь …`` (or ``можешь …``, ``ты подготовишь …``, ``с тебя …``) anywhere
    in ``text``: the person asked; None when there is no such request."""
    dated = due_phrase(text) is not None
    for match in _VOCATIVE.finditer(text):
        rest = _without_due(text[match.end() :])
        ask = _ASK_MODAL.match(rest)
        if ask:
            is_task = _verb_and_object(ask.group("rest"), _is_infinitive, dated=dated)
        elif (need := _ASK_NEED.match(rest)) is not None:
            is_task = _verb_and_object(need.group("rest"), _is_infinitive, dated=dated)
        elif (on_you := _ASK_ON_YOU.match(rest)) is not None:
            is_task = _has_object(on_you.group("rest"))
        else:
            words_left = re.sub(r"^(?:ты|вы)\s+", "", rest, flags=re.IGNORECASE)
            is_task = _verb_and_object(
                words_left, lambda w: _is_imperative(w) or _is_2nd(w), dated=dated
            )
        if is_task:
            owner = _owner_named(match.group("name"), names)
            if owner is not None:
                return owner
    return None


def _clause_owner(clause: str, speaker: str | None, names: NameBook) -> tuple[bool, str | None]:
    """Whether ``clause`` is a commitment, and its owner."""
    clause = strip_fillers(clause)
    label = _LABEL.match(clause)
    if label:
        rest = label.group("rest")
        said = _LABEL_OWNER.match(rest)
        owner = names.resolve(said.group("name")) if said else None
        task = rest[said.end() :] if said and owner else rest
        return _has_object(_without_due(task)), owner
    question = clause.rstrip().endswith("?")
    dated = due_phrase(clause) is not None
    clause = strip_fillers(_without_due(clause))
    if question or not clause:
        return False, None
    if (match := _SELF.match(clause)) is not None:
        return _verb_and_object(match.group("rest"), _is_1sg, _SELF_MODALS, dated=dated), speaker
    if (match := _SELF_NEED.match(clause)) is not None:
        return _verb_and_object(match.group("rest"), _is_infinitive, dated=dated), speaker
    if (match := _TEAM_NEED.match(clause)) is not None:
        return _verb_and_object(match.group("rest"), _is_infinitive, dated=dated), None
    if (match := _WE.match(clause)) is not None:
        return _verb_and_object(match.group("rest"), _is_1pl, _WE_MODALS, dated=dated), None
    if (match := _LETS.match(clause)) is not None:
        verb: Verb = lambda w: _is_1pl(w) or _is_infinitive(w)  # noqa: E731
        return _verb_and_object(match.group("rest"), verb, _WE_MODALS, dated=dated), None
    # An imperative: of a listed work verb, or of any verb when "пожалуйста" makes it a request.
    polite = "пожалуйста" in _tokens(clause)
    verb = _is_imperative if polite else lambda w: w in WORK_IMPERATIVES
    if _verb_and_object(clause, verb, dated=dated):
        return True, None
    # "Пришлю отчёт завтра": the pronoun dropped; a listed verb and a due phrase, as a noun in
    # the accusative looks the same ("Встречу перенесли").
    if dated and _verb_and_object(clause, lambda w: w in WORK_FIRST_PERSON, dated=dated):
        return True, speaker
    found, owner = _named_owner(clause, names, dated=dated)
    if found:
        return True, owner
    # "Отчёт нужно подготовить к пятнице": the team's, the object said first (or after).
    match = _NEED_LATER.match(clause)
    if match and _tokens(match.group("before"))[-1:] != ["не"]:
        before = _has_object(match.group("before"))
        rest = match.group("rest")
        return _verb_and_object(rest, _is_infinitive, dated=dated, object_before=before), None
    return False, None


def _named_owner(clause: str, names: NameBook, *, dated: bool) -> tuple[bool, str | None]:
    """``Мария подготовит …``, ``Марии нужно …`` or ``… подготовит Мария``; ``dated``: the
    clause said when."""

    def future(word: str) -> bool:
        listed = word in WORK_THIRD_PERSON
        return listed or (_is_3sg(word) and (dated or not word.endswith(_PRESENT_LOOKING)))

    match = _NAMED.match(clause)
    if match:
        owner = names.resolve(match.group("name"))
        rest = match.group("rest")
        need = _NAMED_NEED.match(rest)
        if owner is not None and (
            _verb_and_object(need.group("rest"), _is_infinitive, dated=dated)
            if need
            else _verb_and_object(rest, future, _THIRD_MODALS, dated=dated)
        ):
            return True, owner
    match = _NAMED_LAST.match(clause)
    if match:
        owner = names.resolve(match.group("name"))
        verb = fold_yo(match.group("verb").lower())
        if (
            owner is not None
            and future(verb)
            and not _is_talk(verb, dated=dated)
            and _has_object(match.group("rest"))
        ):
            return True, owner
    return False, None


def find(text: str, speaker: str | None, names: NameBook) -> tuple[bool, str | None]:
    """Whether the sentence ``text`` holds a commitment, and its owner (None: the team's)."""
    asked = asked_owner(text, names)
    if asked is not None:
        return True, asked
    for clause in [text, *_CLAUSE_SPLIT.split(text)[1:]]:
        found, owner = _clause_owner(clause, speaker, names)
        if found:
            return True, owner
    return False, None
