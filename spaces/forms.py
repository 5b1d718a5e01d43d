from django import forms


class SpaceCreateForm(forms.Form):
    name = forms.CharField(max_length=120, label="Space name")
