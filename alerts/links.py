"""Links in messages: evidence pages and signed confirm / unsubscribe URLs under
``[web] base_url``.

Tokens are itsdangerous signatures over (subscription id, address) with the web secret
key, one salt per purpose, so a confirm token cannot unsubscribe and vice versa. Confirm
links expire; unsubscribe links in old mail keep working. A password reset link signs
(user id, a fingerprint of the password hash it replaces): it expires within the hour and
works once, since the new password changes the fingerprint.
"""

from __future__ import annotations

from itsdangerous import BadData, URLSafeTimedSerializer

CONFIRM_SALT = "stylewatch.subscription.confirm"
UNSUBSCRIBE_SALT = "stylewatch.subscription.unsubscribe"
CONFIRM_MAX_AGE_S = 7 * 24 * 3600
CONFIRM_PATH = "/subscriptions/confirm/"
UNSUBSCRIBE_PATH = "/unsubscribe/"
RESET_SALT = "stylewatch.password.reset"
RESET_MAX_AGE_S = 3600
RESET_PATH = "/login/reset/"


class Links:
    """Builds and reads the links stylewatch puts in messages."""

    def __init__(self, base_url: str, secret_key: bytes) -> None:
        self.base_url = base_url.rstrip("/")
        self._confirm = URLSafeTimedSerializer(secret_key, salt=CONFIRM_SALT)
        self._unsubscribe = URLSafeTimedSerializer(secret_key, salt=UNSUBSCRIBE_SALT)
        self._reset = URLSafeTimedSerializer(secret_key, salt=RESET_SALT)

    def finding(self, finding_id: int) -> str:
        return f"{self.base_url}/findings/{finding_id}"

    def confirm(self, subscription_id: int, address: str) -> str:
        token = self._confirm.dumps([subscription_id, address])
        return f"{self.base_url}{CONFIRM_PATH}{token}"

    def unsubscribe(self, subscription_id: int, address: str) -> str:
        token = self._unsubscribe.dumps([subscription_id, address])
        return f"{self.base_url}{UNSUBSCRIBE_PATH}{token}"

    def read_confirm(self, token: str) -> tuple[int, str] | None:
        """(subscription id, address) from a confirm token, or None when it is forged,
        damaged or older than `CONFIRM_MAX_AGE_S`."""
        return _read(self._confirm, _token_of(token, CONFIRM_PATH), CONFIRM_MAX_AGE_S)

    def read_unsubscribe(self, token: str) -> tuple[int, str] | None:
        return _read(self._unsubscribe, _token_of(token, UNSUBSCRIBE_PATH), None)

    def reset(self, user_id: int, fingerprint: str) -> str:
        token = self._reset.dumps([user_id, fingerprint])
        return f"{self.base_url}{RESET_PATH}{token}"

    def read_reset(self, token: str) -> tuple[int, str] | None:
        """(user id, password fingerprint) from a reset token, or None when it is forged,
        damaged or older than `RESET_MAX_AGE_S`."""
        return _read(self._reset, _token_of(token, RESET_PATH), RESET_MAX_AGE_S)


def _token_of(value: str, path: str) -> str:
    """The token itself, also when given the whole URL."""
    return value.rsplit(path, 1)[-1].strip().strip("/")


def _read(
    serializer: URLSafeTimedSerializer, token: str, max_age: int | None
) -> tuple[int, str] | None:
    try:
        value = serializer.loads(token, max_age=max_age)
    except BadData:
        return None
    match value:
        case [int(number), str(text)]:
            return number, text
    return None
