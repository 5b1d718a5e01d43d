from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from identity.forms import ProfileForm
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
            messages.success(request, "Profile saved.")
            return redirect("identity:profile")
        status = 400
    else:
        form = ProfileForm(initial={"display_name": user.display_name})
        status = 200
    context = {"form": form, "avatar_max_bytes": settings.AVATAR_MAX_BYTES}
    return render(request, "identity/profile.html", context, status=status)
