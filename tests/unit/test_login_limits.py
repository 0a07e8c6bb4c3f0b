"""Sign-in limits (#20): per address whatever the emails, per account whatever the address,
and no flood of junk emails or addresses pushes a real count out."""

from __future__ import annotations

from monitor.web.login_limits import LoginLimiter, address_key


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_one_address_trying_many_emails_is_limited():
    limiter = LoginLimiter(max_address_failures=20, clock=Clock())
    for n in range(20):
        assert limiter.retry_after("203.0.113.9", f"user{n}@example.org") is None
        limiter.attempt("203.0.113.9")
    wait = limiter.retry_after("203.0.113.9", "someone-new@example.org")
    assert wait is not None and 0 < wait <= 300
    assert limiter.retry_after("203.0.113.10", "someone-new@example.org") is None


def test_an_account_is_limited_from_any_address_and_a_right_password_is_no_failure():
    clock = Clock()
    limiter = LoginLimiter(max_account_failures=3, clock=clock)
    limiter.attempt("198.51.100.1")
    limiter.succeeded("198.51.100.1", "mod@example.org")
    for n in range(3):
        assert limiter.attempt_account("Mod@example.org ") is None
        limiter.attempt(f"198.51.100.{n}")
    assert limiter.attempt_account("mod@example.org") is not None
    assert limiter.retry_after("192.0.2.77", "mod@example.org") is not None
    clock.now += 301
    assert limiter.retry_after("192.0.2.77", "mod@example.org") is None


def test_junk_emails_and_addresses_never_evict_a_real_lockout():
    limiter = LoginLimiter(max_address_failures=5, max_addresses=100, clock=Clock())
    for _ in range(5):
        limiter.attempt("203.0.113.9")
    for _ in range(11):
        limiter.attempt_account("mod@example.org")
    for n in range(10_000):  # junk emails are not accounts: only addresses count them
        limiter.attempt(f"10.{n // 65536}.{n // 256 % 256}.{n % 256}")
    assert limiter.retry_after("203.0.113.9", "x@example.org") is not None
    assert limiter.retry_after("192.0.2.1", "mod@example.org") is not None
    # new addresses past the table's size share one window, which is spent
    assert limiter.retry_after("10.200.0.1", "x@example.org") is not None


def test_ipv6_addresses_count_by_their_64():
    assert address_key("2001:db8::1") == address_key("2001:db8::ffff:1") == "2001:db8::/64"
    assert address_key("::ffff:192.0.2.1") == "192.0.2.1"
    assert address_key("unknown") == "unknown"
