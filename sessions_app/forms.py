from django import forms

LANGUAGE_CHOICES = [
    ("en", "English"),
    ("fr", "French"),
    ("de", "German"),
    ("es", "Spanish"),
    ("it", "Italian"),
    ("pt", "Portuguese"),
    ("nl", "Dutch"),
    ("ru", "Russian"),
    ("auto", "Detect automatically"),
]


class SessionCreateForm(forms.Form):
    title = forms.CharField(max_length=200, label="Session title")
    language = forms.ChoiceField(choices=LANGUAGE_CHOICES, initial="en", label="Spoken language")
    peer_to_peer = forms.BooleanField(
        required=False, label="Small meeting (peer-to-peer video, up to a few people)"
    )

    def languages(self) -> list[str]:
        value = self.cleaned_data["language"]
        return [] if value == "auto" else [value]
