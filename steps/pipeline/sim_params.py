"""What a simulation is run with: its profile's spread, its number of worlds, its seed."""

from __future__ import annotations

import hashlib

PROFILES = {"base": 1.0, "conservative": 0.8, "volatile": 1.25}
DEFAULT_WORLDS = 1000


def stable_seed(*parts: object) -> int:
    """A seed from values, stable across processes and machines (unlike hash())."""
    digest = hashlib.sha256("|".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big")


def profile_scale(profile: str | None) -> float:
    name = profile or "base"
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r}; known profiles: {', '.join(sorted(PROFILES))}")
    return PROFILES[name]
