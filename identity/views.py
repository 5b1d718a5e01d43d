from allauth.core import ratelimit
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.template.response import TemplateResponse
from django.utils import translation
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from identity.forms import ProfileForm
from identity.lockout import retry_after
from identity.services import profile_update, user_language_set


@login_required
def profile(request: HttpRequest) -> HttpResponse:
    user = request.user
    if request.method == "POST":
        form = ProfileForm(request.POST, request.FILES)
        if form.is_valid():
            profile_update(
                user=user,
                display_name=form.cleaned_data["display_name"],
                avatar=form.cleaned_data.get("avatar") or None,
                clear_avatar=form.cleaned_data["clear_avatar"],
            )
            language = form.cleaned_data["language"]
            user_language_set(user=user, language=language)
            if language:
                translation.activate(language)
            messages.success(request, _("Profile saved."))
            return redirect("identity:profile")
        status = 400
    else:
        form = ProfileForm(initial={"display_name": user.display_name, "language": user.language})
        status = 200
    context = {"form": form, "avatar_max_bytes": settings.AVATAR_MAX_BYTES}
    return render(request, "identity/profile.html", context, status=status)


def admin_login(request: HttpRequest) -> HttpResponse:
    """The admin's sign-in page (``/admin/login/``) under allauth's sign-in limits: every POST
    counts against "login" (per address), every wrong password against "login_failed" (per
    address and per account, shared with allauth's page and the API; ``AdminLoginForm``).
    Over a limit it answers 429 with ``Retry-After``; the page shows why."""
    if request.method == "POST" and not ratelimit.consume(request, action="login"):
        response = ratelimit.respond_429(request)
        response["Retry-After"] = str(max(retry_after(request, action="login"), 1))
        return response
    response = admin.site.login(request)
    form = response.context_data.get("form") if isinstance(response, TemplateResponse) else None
    if getattr(form, "locked_out", False):
        wait = retry_after(request, action="login_failed", email=form.cleaned_data["username"])
        response.status_code = 429
        response["Retry-After"] = str(max(wait, 1))
    return response


@require_POST
def language_set(request: HttpRequest) -> HttpResponse:
    """The language switcher (top bar, sign-in page): remember the chosen interface language
    in a cookie, and in the profile of a signed-in person, then go back to ``next``. An
    unknown language is ignored; a ``next`` off this site goes home."""
    language = request.POST.get("language", "")
    target = request.POST.get("next") or request.META.get("HTTP_REFERER") or "/"
    if not url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        target = "/"
    response = HttpResponseRedirect(target)
    if language not in dict(settings.LANGUAGES):
        return response
    if request.user.is_authenticated:
        user_language_set(user=request.user, language=language)
    response.set_cookie(
        settings.LANGUAGE_COOKIE_NAME,
        language,
        max_age=settings.LANGUAGE_COOKIE_AGE,
        secure=settings.LANGUAGE_COOKIE_SECURE,
        httponly=settings.LANGUAGE_COOKIE_HTTPONLY,
        samesite=settings.LANGUAGE_COOKIE_SAMESITE,
    )
    return response
