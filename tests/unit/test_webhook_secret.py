"""An empty webhook secret (an HMAC key anyone knows) is refused at config load (#20)."""

from __future__ import annotations

import pytest

from detectors.errors import ConfigError
from monitor.settings import load_settings


@pytest.mark.parametrize("secret", ["", "   ", "whsec_"])
def test_an_empty_webhook_secret_is_one_config_error(tmp_path, secret):
    hook = {"url": "https://hooks.example/in", "secret": secret}
    with pytest.raises(ConfigError) as caught:
        load_settings(None, data_dir=tmp_path, alerts={"webhooks": [hook]})
    message = str(caught.value)
    assert "\n" not in message and "alerts.webhooks.0.secret" in message and "is empty" in message


@pytest.mark.parametrize("secret", [None, "a-long-random-string", "whsec_c2VjcmV0"])
def test_a_real_secret_or_none_loads(tmp_path, secret):
    hook = {"url": "https://hooks.example/in", "secret": secret}
    settings = load_settings(None, data_dir=tmp_path, alerts={"webhooks": [hook]})
    got = settings.alerts.webhooks[0].secret
    assert (got is None) == (secret is None)
