"""Gate: the proxy balances by least request — in-flight work stays level across pods.

Round robin gives every pod the same NUMBER of calls, but the pods that drew several long
streams pile up while others idle; least request keeps in-flight level. The headline figure looks
at every choice the proxy made, from Envoy's record of where it sent each call and for how long:
the share of calls sent to the pod that had strictly the most in flight (least request with two
choices over three pods: 1/9; round robin: about 1/3). The client's view is kept beside it.
"""

import pytest

from loadgate import judge


@pytest.mark.gate("balance")
@pytest.mark.timeout(600)
def test_least_request_balance(run_gate):
    run = run_gate()
    t0, t1 = run.window()
    kw = dict(
        bucket=run.params.bucket_s, batch_size=run.facts.batch_size, pods=run.pods, t0=t0, t1=t1
    )
    stack, client = judge.balance(run.stack_samples, **kw), judge.balance(run.samples, **kw)
    run.check("buckets", stack=stack.buckets, client=client.buckets)
    run.check(
        "busiest_pick_share",
        f"{stack.picks_judged} calls, {len(run.pods)} pods",
        stack=stack.busiest_pick_share,
        client=client.busiest_pick_share,
    )
    run.check(
        "queued_while_idle",
        f"a full batch = {run.facts.batch_size}",
        stack=stack.queued_while_idle,
        client=client.queued_while_idle,
    )
    run.check(
        "imbalance_mean",
        "1.0 = level",
        stack=stack.imbalance_mean,
        client=client.imbalance_mean,
    )
    run.note("imbalance_p95", stack.imbalance_p95)
    for pod, share in stack.request_share.items():
        run.note(f"request_share.{pod}", share)
    run.assert_passed()
