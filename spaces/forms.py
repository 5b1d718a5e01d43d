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


class SpaceLanguagesForm(forms.Form):
    """The space page's settings card (owners): the transcription languages new sessions of the
    space take unless they choose otherwise — automatic detection, one language, or several
    expected ones (ticked in ``languages``).

    The list is the one the new-session form offers. Languages this server's speech engine
    cannot transcribe (``supported``: what it can, None for any) are marked, and
    ``space_languages_set`` refuses them.
    """

    language = forms.ChoiceField(label=gettext_lazy("Transcription language"))
    languages = forms.MultipleChoiceField(
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label=gettext_lazy("Expected languages"),
    )

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
        languages = [
            (code, _marked(name, code, supported)) for code, name in language_choices(extra=current)
        ]
        self.fields["language"].choices = [
            (AUTOMATIC, _("Automatic detection")),
            *languages,
            (SEVERAL, _("Several languages (tick them below)")),
        ]
        self.fields["languages"].choices = languages
        self.fields["languages"].help_text = _(
            "With “Several languages”: the languages spoken in the space's sessions, at most "
            "%(max)d; the transcription switches between them."
        ) % {"max": MAX_LANGUAGES}
        if supported is not None:
            self.fields["language"].help_text = _(
                "This server transcribes %(languages)s only, so the languages marked “not "
                "transcribed here” cannot be chosen."
            ) % {"languages": languages_label(sorted(supported))}
            self.fields["language"].widget.attrs["aria-describedby"] = "space-language-help"

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("language") == SEVERAL and not data.get("languages"):
            self.add_error(
                "languages",
                _("Tick the languages expected in the space's sessions, at most %(max)d.")
                % {"max": MAX_LANGUAGES},
            )
        return data

    def languages_chosen(self) -> list[str]:
        """The space's languages for ``space_languages_set``: ``[]`` for automatic detection,
        else the codes (which it checks)."""
        value = self.cleaned_data["language"]
        if value == AUTOMATIC:
            return []
        if value == SEVERAL:
            return list(self.cleaned_data["languages"])
        return [value]


def _marked(label: str, code: str, supported: frozenset[str] | None) -> str:
    """``label``, marked when this server's speech engine cannot transcribe ``code``."""
    if supported is None or code in supported:
        return label
    return _("%(language)s — not transcribed here") % {"language": label}
