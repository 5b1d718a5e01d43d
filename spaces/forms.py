from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from spaces.languages import MAX_LANGUAGES, language_choices, languages_label
from spaces.models import Space

# The ``language`` choices besides one fixed language.
AUTOMATIC = "auto"
SEVERAL = "several"


class SpaceCreateForm(forms.Form):
    name = forms.CharField(max_length=120, label=gettext_lazy("Space name"))


class LanguagesForm(forms.Form):
    """A choice of transcription languages: automatic detection, one language, or several
    expected ones (ticked in ``languages``), from the list every form offers. Languages this
    server's speech engine cannot transcribe (``supported``: what it can, None for any) are
    marked, and the services refuse them. Subclasses say whose languages they are."""

    language = forms.ChoiceField(label=gettext_lazy("Transcription language"))
    languages = forms.MultipleChoiceField(
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label=gettext_lazy("Expected languages"),
    )
    # Said of whose languages they are, by each subclass: the help of ``languages`` and the
    # error when "several" comes with none ticked (both take ``%(max)d``).
    several_help: str
    several_missing: str
    # The ids of the two help texts (templates/_language_fields.html).
    help_id = "language-help"
    several_help_id = "languages-help"
    # The ``language`` values that mean "the default" (``languages_chosen`` gives None).
    default_values: tuple[str, ...] = ()

    def language_choices_set(
        self,
        *,
        current: list[str],
        supported: frozenset[str] | None,
        leading: list[tuple[str, str]],
    ) -> None:
        """Offer ``leading`` (e.g. a default), automatic detection, each language (with
        ``current`` among them) and "several"."""
        languages = [
            (code, marked(name, [code], supported))
            for code, name in language_choices(extra=current)
        ]
        self.fields["language"].choices = [
            *leading,
            (AUTOMATIC, _("Automatic detection")),
            *languages,
            (SEVERAL, _("Several languages (tick them below)")),
        ]
        self.fields["languages"].choices = languages
        self.fields["languages"].help_text = self.several_help % {"max": MAX_LANGUAGES}
        if supported is not None:
            self.fields["language"].help_text = _(
                "This server transcribes %(languages)s only, so the languages marked “not "
                "transcribed here” cannot be chosen."
            ) % {"languages": languages_label(sorted(supported))}
            self.fields["language"].widget.attrs["aria-describedby"] = self.help_id

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("language") == SEVERAL and not data.get("languages"):
            self.add_error("languages", self.several_missing % {"max": MAX_LANGUAGES})
        return data

    def languages_chosen(self) -> list[str] | None:
        """The languages chosen: ``[]`` for automatic detection, else the codes (which the
        services check); None for a leading choice such as a default."""
        value = self.cleaned_data["language"]
        if value == AUTOMATIC:
            return []
        if value == SEVERAL:
            return list(self.cleaned_data["languages"])
        if value in self.default_values:
            return None
        return [value]


class SpaceLanguagesForm(LanguagesForm):
    """The space page's settings card (owners): the transcription languages new sessions of the
    space take unless they choose otherwise (``space_languages_set`` checks them)."""

    several_help = gettext_lazy(
        "With “Several languages”: the languages spoken in the space's sessions, at most "
        "%(max)d; the transcription switches between them."
    )
    several_missing = gettext_lazy(
        "Tick the languages expected in the space's sessions, at most %(max)d."
    )
    help_id = "space-language-help"
    several_help_id = "space-languages-help"

    def __init__(
        self, *args: Any, space: Space, supported: frozenset[str] | None, **kwargs: Any
    ) -> None:
        current = [code for code in space.languages if isinstance(code, str)]
        if not current:
            initial = {"language": AUTOMATIC}
        elif len(current) == 1:
            initial = {"language": current[0]}
        else:
            initial = {"language": SEVERAL, "languages": current}
        kwargs.setdefault("initial", initial)
        # The page also holds the new-session form, whose fields have the same names.
        kwargs.setdefault("auto_id", "space_%s")
        super().__init__(*args, **kwargs)
        self.language_choices_set(current=current, supported=supported, leading=[])


def marked(label: str, codes: list[str], supported: frozenset[str] | None) -> str:
    """``label``, marked when this server's speech engine cannot transcribe one of ``codes``
    (``supported``: what it can; None for any)."""
    if supported is None or all(code in supported for code in codes):
        return label
    return _("%(language)s — not transcribed here") % {"language": label}
