"""A gameday waiting on a flood answers Ctrl-C at once, whichever thread the kernel hands the
signal to (grpc's threads can take it; Python runs the handler only in the main thread, and only
when that thread runs again)."""

import signal
import threading
import time

import pytest

from loadgate.chaos.flood import Flood


@pytest.fixture
def default_sigint():
    """Python's own Ctrl-C handler for the test: another test in the same worker may have left
    its own (a run's stop handler sets an event instead of raising)."""
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signal handlers run in the main thread only")
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, before)


@pytest.mark.timeout(30)
def test_sigint_taken_by_another_thread_interrupts_the_wait_promptly(default_sigint):
    flood = Flood("127.0.0.1:1", requests=1, duration_s=20.0)
    flood._thread = threading.current_thread()  # "running": its _done is never set here

    def other_thread_takes_the_signal() -> None:
        time.sleep(0.3)
        signal.pthread_kill(threading.get_ident(), signal.SIGINT)  # to this thread, not main

    helper = threading.Thread(target=other_thread_takes_the_signal)
    t0 = time.monotonic()
    helper.start()
    with pytest.raises(KeyboardInterrupt):
        flood.wait(timeout=10)
    helper.join()
    assert time.monotonic() - t0 < 2.0  # not after the 10 s the wait was given


def test_wait_still_ends_at_its_timeout():
    flood = Flood("127.0.0.1:1", requests=1, duration_s=20.0)
    flood._thread = threading.current_thread()
    t0 = time.monotonic()
    flood.wait(timeout=0.5)
    assert 0.45 <= time.monotonic() - t0 < 1.5
