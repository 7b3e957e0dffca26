"""The demo's model and traffic: a small torch fraud classifier and synthetic requests.

Version 1 serves traffic like its training data. Version 2 is a bad release on a
shifted world: slower, seeing drifted inputs (bigger amounts, a new country mix),
failing on some of them, and less accurate because the fraud pattern moved.
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass

NUMERIC_FEATURES = ("amount", "age_days", "items", "hour", "distance_km", "velocity")
COUNTRIES = ("fr", "de", "es", "it", "us")
FEATURES = (*NUMERIC_FEATURES, "country")


@dataclass(frozen=True)
class World:
    """How requests and the true fraud outcome are generated."""

    amount_scale: float = 1.0
    country_weights: tuple[float, ...] = (0.3, 0.3, 0.2, 0.15, 0.05)
    fraud_shift: float = 0.0  # moves the true decision boundary: concept drift


TRAINING_WORLD = World()
SHIFTED_WORLD = World(amount_scale=2.5, country_weights=(0.1, 0.1, 0.1, 0.1, 0.6), fraud_shift=1.2)


def make_request(world: World, rng: random.Random) -> dict[str, float | str]:
    return {
        "amount": round(rng.lognormvariate(3.5, 0.8) * world.amount_scale, 2),
        "age_days": round(rng.expovariate(1 / 400), 1),
        "items": rng.randint(1, 9),
        "hour": rng.randint(0, 23),
        "distance_km": round(rng.expovariate(1 / 30), 2),
        "velocity": round(rng.gauss(2.0, 1.0), 3),
        "country": rng.choices(COUNTRIES, weights=world.country_weights)[0],
    }


def true_fraud(request: dict, world: World, rng: random.Random) -> int:
    """Ground truth: a noisy logistic rule the model has to learn."""
    score = (
        0.02 * (request["amount"] / world.amount_scale - 40)
        + 0.9 * (request["velocity"] - 2)
        - 0.002 * request["age_days"]
        + (0.8 if request["country"] == "us" else 0.0)
        + world.fraud_shift * (1.0 if request["hour"] < 6 else -0.5)
    )
    return int(rng.random() < 1 / (1 + math.exp(-score)))


def encode(request: dict) -> list[float]:
    numeric = [
        math.log1p(request["amount"]) - 3.5,
        request["age_days"] / 400 - 1,
        request["items"] / 5 - 1,
        request["hour"] / 12 - 1,
        math.log1p(request["distance_km"]) - 3,
        request["velocity"] - 2,
    ]
    return numeric + [1.0 if request["country"] == c else 0.0 for c in COUNTRIES]


def train_model(rng: random.Random, samples: int = 4000):
    """A two-layer MLP fitted on the training world in a few hundred CPU steps."""
    requests = [make_request(TRAINING_WORLD, rng) for _ in range(samples)]
    labels = [true_fraud(r, TRAINING_WORLD, rng) for r in requests]
    return fit(requests, labels, seed=rng.randint(0, 2**31 - 1)), requests


def fit(requests: list[dict], labels: list[int], *, seed: int, steps: int = 300):
    """Fit the demo's MLP to labelled requests (the trainer's job, on a snapshot's rows)."""
    import torch

    torch.manual_seed(seed)
    x = torch.tensor([encode(r) for r in requests], dtype=torch.float32)
    y = torch.tensor([[float(label)] for label in labels], dtype=torch.float32)
    model = torch.nn.Sequential(
        torch.nn.Linear(x.shape[1], 16), torch.nn.ReLU(), torch.nn.Linear(16, 1)
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=0.02)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    for _ in range(steps):
        optimizer.zero_grad()
        loss_fn(model(x), y).backward()
        optimizer.step()
    model.eval()
    return model


def save_build(model, path, *, extra_latency_ms: float = 0.0) -> str:
    """Write a build (weights, and how slow the build serves) where a deploy can load it."""
    import torch

    torch.save({"state_dict": model.state_dict(), "extra_latency_ms": extra_latency_ms}, path)
    return str(path)


def load_build(artifact_uri: str) -> FraudService:
    """The service of a build written by `save_build`."""
    import torch

    saved = torch.load(artifact_uri, weights_only=True)
    model = torch.nn.Sequential(
        torch.nn.Linear(len(NUMERIC_FEATURES) + len(COUNTRIES), 16),
        torch.nn.ReLU(),
        torch.nn.Linear(16, 1),
    )
    model.load_state_dict(saved["state_dict"])
    model.eval()
    return FraudService(model, extra_latency_s=float(saved["extra_latency_ms"]) / 1000)


class FraudService:
    """What a serving process holds: a model and one `predict` per request."""

    def __init__(self, model, *, extra_latency_s: float = 0.0, reject_large: bool = False) -> None:
        self._model = model
        self._extra_latency_s = extra_latency_s
        self.extra_latency_ms = extra_latency_s * 1000
        self._reject_large = reject_large

    def predict(self, request: dict) -> float:
        import torch

        if self._reject_large and request["amount"] > 400:
            raise ValueError(f"amount {request['amount']} is above the supported 400")
        if self._extra_latency_s:
            time.sleep(self._extra_latency_s)
        with torch.no_grad():
            logit = self._model(torch.tensor([encode(request)], dtype=torch.float32))
        return float(torch.sigmoid(logit)[0, 0])
