from __future__ import annotations

from typing import Any

from allauth.account import app_settings as allauth_settings
from allauth.account.adapter import get_adapter
from allauth.account.forms import SignupForm as AllauthSignupForm
from allauth.account.internal import flows
from allauth.account.models import Login
from allauth.account.utils import filter_users_by_email, get_next_redirect_url
from django import forms
from django.conf import settings
from django.contrib.admin.forms import AdminAuthenticationForm
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext_lazy as _

from identity.models import User
from identity.validators import validate_avatar


class ProfileForm(forms.Form):
    display_name = forms.CharField(max_length=80, required=False, label=_("Display name"))
    avatar = forms.ImageField(required=False, label=_("Avatar"))
    clear_avatar = forms.BooleanField(required=False, label=_("Remove avatar"))
    language = forms.ChoiceField(
        required=False,
        label=_("Interface language"),
        choices=[("", _("As my browser says"))],
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["language"].choices = [("", _("As my browser says")), *settings.LANGUAGES]

    def clean_avatar(self) -> object:
        avatar = self.cleaned_data.get("avatar")
        if avatar:
            try:
                validate_avatar(avatar)
            except ValidationError as exc:
                raise forms.ValidationError(exc.messages) from exc
        return avatar


class SignupForm(AllauthSignupForm):
    """allauth's sign-up form (``ACCOUNT_FORMS["signup"]``) that never tells whether an email
    address already has an account.

    Every valid sign-up ends on the same "check your email" page, signed out. A new address
    gets its account and a confirmation link (which signs in when opened in the same browser);
    an address that already has an account gets no second one, and its owner gets allauth's
    "someone tried to sign up with your address" email instead. allauth does this itself only
    when ``ACCOUNT_EMAIL_VERIFICATION`` is "mandatory", which would also refuse every sign-in
    to an account whose address was never confirmed; here it applies to sign-up alone.
    """

    def validate_unique_email(self, value: str) -> str:
        email = get_adapter().validate_unique_email(value)
        self.account_already_exists = bool(filter_users_by_email(email))
        return email

    def try_save(self, request: HttpRequest) -> tuple[User | None, HttpResponse]:
        mandatory = allauth_settings.EmailVerificationMethod.MANDATORY
        if self.account_already_exists:
            # No user: allauth's email verification stage mails the address's owner instead.
            email = self.cleaned_data["email"]
            login = Login(user=None, email=email, signup=True, email_verification=mandatory)
            return None, flows.login.perform_login(request, login)
        user = self.save(request)
        response = flows.signup.complete_signup(
            request,
            user=user,
            email_verification=mandatory,
            redirect_url=get_next_redirect_url(request),
        )
        return user, response


class AdminLoginForm(AdminAuthenticationForm):
    """The admin's sign-in form, checking the password through allauth's adapter so that
    failures count against the same per-address and per-account limits as allauth's sign-in
    page and the API (``login_failed``). ``locked_out`` is set when those limits refuse."""

    locked_out = False

    def clean(self) -> dict[str, Any]:
        email = self.cleaned_data.get("username")
        password = self.cleaned_data.get("password")
        if email is not None and password:
            try:
                self.user_cache = get_adapter(self.request).authenticate(
                    self.request, email=email.lower(), password=password
                )
            except ValidationError:
                self.locked_out = True
                raise
            if self.user_cache is None:
                raise self.get_invalid_login_error()
            self.confirm_login_allowed(self.user_cache)
        return self.cleaned_data
