"""The log-in throttle's bookkeeping: failures count over a sliding window, so the count resets
by itself (once a pause is over, one more wrong password does not pause the name again), and
an unknown name is counted exactly like a real one."""
from admin_web.login_throttle import LoginThrottle, device_cookie, trusted_device


def test_a_pause_ends_and_one_more_failure_does_not_start_another():
    t = LoginThrottle(per_client=20, per_account=5, window=900)
    for n in range(5):
        assert not t.account_paused("admin", 100 + n)
        t.failed("10.0.0.1", "admin", 100 + n)
    assert t.account_paused("admin", 110)
    assert t.paused_until("admin", 110) == 100 + 900
    assert not t.account_paused("admin", 1005)      # the window has passed
    t.failed("10.0.0.1", "admin", 1006)             # one more wrong password
    assert not t.account_paused("admin", 1007)
    assert t.account_failures("admin", 1007) == 1


def test_known_and_unknown_names_are_counted_alike_and_clients_apart():
    t = LoginThrottle(per_client=3, per_account=2, window=60)
    for name in ("admin", "nobody"):
        t.failed("1.1.1.1", name, 0)
        t.failed("2.2.2.2", name, 1)
    assert t.account_paused("admin", 2) and t.account_paused("nobody", 2)
    assert t.client_wait("1.1.1.1", 2) == 0          # 2 failures < 3
    t.failed("1.1.1.1", "x", 3)
    assert 0 < t.client_wait("1.1.1.1", 4) <= 60
    assert t.client_wait("3.3.3.3", 4) == 0
    t.clear("admin")
    assert not t.account_paused("admin", 5) and t.account_paused("nobody", 5)


def test_device_cookie_is_per_user_and_keyed():
    cookie = device_cookie("key", "admin")
    assert trusted_device("key", cookie, "admin")
    assert not trusted_device("key", cookie, "manager")
    assert not trusted_device("other-key", cookie, "admin")
    assert not trusted_device("key", None, "admin") and not trusted_device("key", "x" * 300, "admin")
