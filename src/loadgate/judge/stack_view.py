"""The calls as the stack recorded them: each sample's times, pod and outcome replaced by Envoy's
own record of it (the access log), in the samples' shape, so every judge function can compute a
figure from the stack's record as easily as from the client's.

Why: a CPU-starved client sees answers late. Its `start`/`end` grow with its own lag, so "in
flight at once" and "rejected after N ms" computed from them describe the client, not the proxy.
Envoy stamps a call when it arrives and when it sends the last byte, whatever the client does.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from loadgate.observe.envoy_access import join_proxy, sent_upstream


def stack_calls(samples: pd.DataFrame, proxy: pd.DataFrame) -> pd.DataFrame:
    """Samples whose `start`, `end`, `first_byte`, `served_by` and `status` come from the proxy's
    record where it has one: start/end are when Envoy received the call and sent its last byte,
    `served_by` the pod it sent the call to ("" for a local reply such as breaker overflow, whose
    log names the pod it had chosen but never contacted), `status` the gRPC status it passed on
    (the client's when it logged none, e.g. a call the client abandoned). `intended`, class,
    phase and tokens stay the client's. Column `seen`: whether the proxy logged the call (calls
    it never saw keep the client's view)."""
    j = join_proxy(samples, proxy)
    seen = j["proxy_start"].notna().to_numpy()
    sent = np.zeros(len(j), dtype=bool)
    if seen.any():
        p = pd.DataFrame(
            {
                "flags": j["proxy_flags"],
                "upstream": j["proxy_upstream"],
            }
        )
        sent = sent_upstream(p).to_numpy() & seen
    out = samples.copy()
    out["start"] = np.where(seen, j["proxy_start"], samples["start"])
    out["end"] = np.where(seen, j["proxy_end"], samples["end"])
    out["first_byte"] = np.where(seen, j["proxy_first_byte"], samples["first_byte"])
    out["served_by"] = np.where(sent, j["proxy_upstream"], np.where(seen, "", samples["served_by"]))
    proxy_status = j["proxy_grpc_status"].to_numpy()
    out["status"] = np.where(seen & (proxy_status != ""), proxy_status, samples["status"])
    out["seen"] = seen
    return out


def drain_lag_s(samples: pd.DataFrame, proxy: pd.DataFrame) -> pd.Series:
    """Per call the proxy logged: how long after the proxy's last byte the client recorded the
    call's end (its time to take the answer off the wire). Grows when the client is CPU-starved."""
    j = join_proxy(samples, proxy)
    j = j[j["proxy_end"].notna() & j["end"].notna()]
    return (j["end"] - j["proxy_end"]).rename("drain_lag_s")
