from django import forms
from django.core.exceptions import ValidationError

from identity.validators import validate_avatar


class ProfileForm(forms.Form):
    display_name = forms.CharField(max_length=80, required=False, label="Display name")
    avatar = forms.ImageField(required=False, label="Avatar")
    clear_avatar = forms.BooleanField(required=False, label="Remove avatar")

    def clean_avatar(self) -> object:
        avatar = self.cleaned_data.get("avatar")
        if avatar:
            try:
                validate_avatar(avatar)
            except ValidationError as exc:
                raise forms.ValidationError(exc.messages) from exc
        return avatar
