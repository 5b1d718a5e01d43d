from typing import Any

from allauth.account.adapter import DefaultAccountAdapter
from django.http import HttpRequest

from identity.lockout import login_failed_key


class AccountAdapter(DefaultAccountAdapter):
    """allauth's adapter, counting failed sign-ins per account by email address alone."""

    def _get_login_attempts_cache_key(self, request: HttpRequest, **credentials: Any) -> str:
        # allauth prefixes the host name (port included) of the request: one account, many keys.
        return login_failed_key(credentials.get("email", credentials.get("username", "")))
