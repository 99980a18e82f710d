"""What one call used of the Realtime model and what it cost: each response's usage as LiveKit's
OpenAI plugin reports it (one `RealtimeModelMetrics` per `response.done`, cancelled ones included),
summed and priced at the settings' price table, plus the telephony minutes."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agent.settings import PriceTable
    from agent.speculation import SpeculationStats

_PER = 1_000_000  # prices are per 1M tokens


@dataclass
class ResponseUsage:
    """One Realtime response's tokens. Cached input is a part of the input, not extra."""

    response_id: str
    cancelled: bool
    text_in: int
    audio_in: int
    cached_text_in: int
    cached_audio_in: int
    text_out: int
    audio_out: int

    def cost(self, prices: PriceTable) -> float:
        return (
            (self.text_in - self.cached_text_in) * prices.text_input
            + self.cached_text_in * prices.text_cached_input
            + (self.audio_in - self.cached_audio_in) * prices.audio_input
            + self.cached_audio_in * prices.audio_cached_input
            + self.text_out * prices.text_output
            + self.audio_out * prices.audio_output
        ) / _PER


@dataclass
class CallUsage:
    responses: list[ResponseUsage] = field(default_factory=list)
    # the model's speculation record, when speculative replies are on: which responses were
    # speculative, and which were abandoned (billed, never played)
    speculation: SpeculationStats | None = None

    def record(self, metrics: Any) -> None:
        """Add one response's `RealtimeModelMetrics`."""
        inp, out = metrics.input_token_details, metrics.output_token_details
        cached = inp.cached_tokens_details
        self.responses.append(
            ResponseUsage(
                response_id=metrics.request_id,
                cancelled=metrics.cancelled,
                text_in=inp.text_tokens,
                audio_in=inp.audio_tokens,
                cached_text_in=cached.text_tokens if cached else 0,
                cached_audio_in=cached.audio_tokens if cached else 0,
                text_out=out.text_tokens,
                audio_out=out.audio_tokens,
            )
        )

    def speculative_ids(self) -> tuple[set[str], set[str]]:
        """(speculative response ids, abandoned ones)."""
        if self.speculation is None:
            return set(), set()
        return self.speculation.response_ids, self.speculation.abandoned_response_ids


def telephony_minutes(duration_s: float | None) -> int:
    """Billed minutes: Twilio and LiveKit both round each call up to the started minute."""
    return math.ceil(duration_s / 60) if duration_s else 0


def usage_and_cost(
    usage: CallUsage, prices: PriceTable | None, *, duration_s: float | None, phone: bool
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The report's `usage` and `cost` sections (cost is None without a price table)."""
    speculative, abandoned = usage.speculative_ids()
    rs = usage.responses
    summed = {
        "input_text_tokens": sum(r.text_in for r in rs),
        "input_audio_tokens": sum(r.audio_in for r in rs),
        "cached_text_tokens": sum(r.cached_text_in for r in rs),
        "cached_audio_tokens": sum(r.cached_audio_in for r in rs),
        "output_text_tokens": sum(r.text_out for r in rs),
        "output_audio_tokens": sum(r.audio_out for r in rs),
        "responses": {
            "requested": len(rs),
            "cancelled": sum(r.cancelled for r in rs),
            "speculative": sum(r.response_id in speculative for r in rs),
            "speculative_cancelled": sum(r.response_id in abandoned for r in rs),
        },
    }
    if prices is None:
        return summed, None
    model = sum(r.cost(prices) for r in rs)
    wasted = sum(r.cost(prices) for r in rs if r.response_id in abandoned)
    minutes = telephony_minutes(duration_s) if phone else 0
    telephony = minutes * prices.telephony_per_minute
    # amounts in USD; `total` is what `receptionist report` sums (summary->'cost'->>'total')
    cost = {
        "model": round(model, 6),
        "telephony": round(telephony, 6),
        "total": round(model + telephony, 6),
        "telephony_minutes": minutes,
        # what speculative replies cost that nobody heard, as a share of the model's cost
        "speculative_share": round(wasted / model, 4) if model else 0.0,
        "currency": "USD",
        "realtime_model": prices.model,
        "prices_as_of": prices.as_of,
    }
    return summed, cost

