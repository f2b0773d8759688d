"""Cost of inference per 100M queries from a machine's hourly price.

FastFormers (Kim & Hassan 2020, SustaiNLP) prices serving 100M requests on an Azure F16s_v2
instance (16 vCPUs): 4,223 USD out of the box down to 18 USD with its recipes."""
from __future__ import annotations

from compress.errors import UserInputError

QUERIES = 100_000_000
# Azure F16s_v2 pay-as-you-go Linux list price in US regions (approximate, check current pricing):
# an example, not a quote; pass the price of the machine you measured on.
AZURE_F16S_V2_USD_PER_HOUR = 0.677
# the report's default: roughly a small 2-vCPU on-demand cloud VM, the size the harness is tested on
EXAMPLE_USD_PER_HOUR = 0.10
USD_PER_HOUR_HELP = (
    "hourly price (USD) of the whole measured machine, for USD per 100M queries. FastFormers "
    "(Kim & Hassan 2020) prices an Azure F16s_v2 instance (16 vCPUs, about "
    f"{AZURE_F16S_V2_USD_PER_HOUR} USD/h pay-as-you-go): 4,223 USD -> 18 USD per 100M requests. "
    "Pass the price of the machine you measured on"
)


def usd_per_100m_queries(throughput: float, usd_per_hour: float) -> float:
    """Hours to serve 1e8 queries at ``throughput`` (queries/s) × the hourly price."""
    if throughput <= 0:
        raise UserInputError(f"throughput must be positive to price it, got {throughput}")
    if usd_per_hour < 0:
        raise UserInputError(f"--usd-per-hour must not be negative, got {usd_per_hour}")
    return QUERIES / throughput / 3600.0 * usd_per_hour


def usd_per_100m_or_none(throughput: float | None, usd_per_hour: float) -> float | None:
    """The same, None where nothing was timed (a report's missing row)."""
    return usd_per_100m_queries(throughput, usd_per_hour) if throughput else None
