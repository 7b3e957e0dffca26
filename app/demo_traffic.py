"""The demo's clients and its labelling team.

`TrafficGenerator` calls the serving app over HTTP at a steady rate, from a world that the
demo can switch (normal, then drifted). `LabelFeed` plays the labelling team: the ground
truth of each prediction arrives a few seconds later through `log_label`, a few much later
than the rest, and a few first wrong and then corrected, as real labels do.
"""

from __future__ import annotations

import heapq
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from .demo_model import World, make_request, true_fraud
from .demo_serving import MODEL


@dataclass(frozen=True)
class LabelDelays:
    """How late the ground truth comes, in seconds of the compressed demo."""

    usual_s: float = 2.0
    late_s: float = 12.0
    late_share: float = 0.05
    corrected_share: float = 0.03
    correction_after_s: float = 4.0


class LabelFeed:
    """Logs each prediction's label after its delay, from a thread of its own."""

    def __init__(
        self,
        delays: LabelDelays,
        rng: random.Random,
        *,
        log_label: Callable[..., None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if log_label is None:
            from inferloop.sdk import log_label
        self._log_label = log_label
        self._delays = delays
        self._rng = rng
        self._clock = clock
        self._due: list[tuple[float, int, str, int]] = []
        self._order = 0
        self._lock = threading.Lock()
        self.logged = Counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="demo-labels", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def observe(self, prediction_id: str, truth: int) -> None:
        """Schedule the ground truth of one prediction."""
        delays, rng, now = self._delays, self._rng, self._clock()
        late = rng.random() < delays.late_share
        delay = delays.late_s if late else delays.usual_s * (0.5 + rng.random())
        with self._lock:
            if not late and rng.random() < delays.corrected_share:
                self._push(now + delay, prediction_id, 1 - truth)  # a labelling mistake…
                self._push(now + delay + delays.correction_after_s, prediction_id, truth)
                self.logged["corrections"] += 1
            else:
                self._push(now + delay, prediction_id, truth)
            if late:
                self.logged["late"] += 1

    def _push(self, due: float, prediction_id: str, label: int) -> None:
        self._order += 1
        heapq.heappush(self._due, (due, self._order, prediction_id, label))

    def pending(self) -> int:
        with self._lock:
            return len(self._due)

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            now = self._clock()
            with self._lock:
                ready = []
                while self._due and self._due[0][0] <= now:
                    ready.append(heapq.heappop(self._due))
            for _, _, prediction_id, label in ready:
                self._log_label(prediction_id, label, model=MODEL)
                self.logged["labels"] += 1


class TrafficGenerator:
    """Calls `POST /predict` at `rate` requests a second until stopped."""

    def __init__(
        self,
        serving_url: str,
        world: World,
        rng: random.Random,
        labels: LabelFeed,
        *,
        rate: float = 80.0,
    ) -> None:
        self._url = serving_url.rstrip("/") + "/predict"
        self.world = world
        self._rng = rng
        self._labels = labels
        self._interval = 1.0 / rate
        self.sent = Counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="demo-traffic", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        import httpx

        next_at = time.monotonic()
        with httpx.Client(timeout=10) as client:
            while not self._stop.is_set():
                self._call(client)
                next_at += self._interval
                pause = next_at - time.monotonic()
                if pause > 0:
                    self._stop.wait(pause)
                else:
                    next_at = time.monotonic()  # behind: do not burst to catch up

    def _call(self, client) -> None:
        import httpx

        world, rng = self.world, self._rng
        request = make_request(world, rng)
        truth = true_fraud(request, world, rng)
        try:
            response = client.post(self._url, json={**request, "request_key": rng.randrange(1000)})
        except httpx.HTTPError:
            self.sent["unreachable"] += 1
            return
        self.sent["requests"] += 1
        if response.status_code != 200:
            self.sent["errors"] += 1
            return
        body = response.json()
        self.sent[f"v{body['version']}"] += 1
        if body["prediction_id"]:
            self._labels.observe(body["prediction_id"], truth)


__all__ = ["LabelDelays", "LabelFeed", "TrafficGenerator"]
