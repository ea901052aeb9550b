"""The latency model of the simulated accelerator: pure functions of a `LatencyModel`.

Every duration is in seconds of *simulated* time and is multiplied by `time_scale` here, so the
rest of the server never scales anything itself.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LatencyModel:
    time_scale: float = 1.0
    prefill_base_s: float = 0.010  # fixed cost of a prefill pass
    prefill_per_token_s: float = 0.0002  # grows with the prompt
    decode_step_s: float = 0.020  # one generated token per sequence per step
    cv_batch_base_s: float = 0.005  # fixed cost of one CV batch
    cv_per_image_s: float = 0.0015  # 8 images: 5 + 12 = 17 ms, well under 50 ms

    def prefill(self, prompt_tokens: int) -> float:
        return (self.prefill_base_s + self.prefill_per_token_s * prompt_tokens) * self.time_scale

    def decode(self, tokens: int) -> float:
        return self.decode_step_s * tokens * self.time_scale

    def cv_batch(self, images: int) -> float:
        return (self.cv_batch_base_s + self.cv_per_image_s * images) * self.time_scale


def stream_plan(
    model: LatencyModel, prompt_tokens: int, max_tokens: int, chunk: int
) -> list[tuple[float, int]]:
    """When each stream message leaves and how many tokens it carries, as offsets from the start
    of execution (after queueing).

    The prefill pass yields the first token, and it is sent alone at once so time to first token is
    exact whatever the chunk size; later tokens go out `chunk` at a time when the last of them
    exists. The tokens of all messages sum to `max_tokens`.
    """
    if max_tokens <= 0:
        return []
    chunk = max(1, chunk)
    first = model.prefill(prompt_tokens)
    plan = [(first, 1)]
    done = 1
    while done < max_tokens:
        n = min(chunk, max_tokens - done)
        done += n
        plan.append((first + model.decode(done - 1), n))
    return plan
