"""The operator's login limits turned into the clinic's LoginPolicy."""

from __future__ import annotations

import datetime

from clinic.accounts import LoginPolicy, RateLimit

from ..config import AccountsConfig


def login_policy(accounts: AccountsConfig) -> LoginPolicy:
    """The login limits the operator configured (see LoginPolicy and docs/operations.md)."""
    window = datetime.timedelta(minutes=accounts.login_window_minutes)
    return LoginPolicy(pair=RateLimit(accounts.login_max_failures, window),
                       address=RateLimit(accounts.login_address_max_failures, window),
                       account_ceiling=accounts.login_account_ceiling,
                       slowdown=datetime.timedelta(seconds=accounts.login_slowdown_seconds),
                       known_for=datetime.timedelta(days=accounts.login_known_address_days))
