from allauth.core import ratelimit
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.template.response import TemplateResponse
from django.utils.translation import gettext as _

from identity.forms import ProfileForm
from identity.lockout import retry_after
from identity.services import profile_update


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
            messages.success(request, _("Profile saved."))
            return redirect("identity:profile")
        status = 400
    else:
        form = ProfileForm(initial={"display_name": user.display_name})
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
