"""Gate: the proxy balances by least request — in-flight work stays level across pods.

Round robin gives every pod the same NUMBER of calls, but the pods that drew several long
streams pile up while others idle; least request keeps in-flight level. The headline figure is
the p95 over 1 s buckets of max/mean in-flight across pods during the steady phase.
"""

import pytest

from loadgate import judge


@pytest.mark.gate("balance")
@pytest.mark.timeout(600)
def test_least_request_balance(run_gate):
    run = run_gate()
    t0, t1 = run.window()
    b = judge.balance(
        run.samples,
        bucket=run.params.bucket_s,
        batch_size=run.facts.batch_size,
        pods=run.pods,
        t0=t0,
        t1=t1,
    )
    run.check("buckets", b.buckets)
    run.check("imbalance_p95", b.imbalance_p95, f"{len(run.pods)} pods, 1.0 = level")
    run.check("queued_while_idle", b.queued_while_idle, f"a full batch = {run.facts.batch_size}")
    run.check("imbalance_mean", b.imbalance_mean)
    for pod, share in b.request_share.items():
        run.note(f"request_share.{pod}", share)
    run.assert_passed()
