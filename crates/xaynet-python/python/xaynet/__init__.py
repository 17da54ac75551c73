"""Xaynet participants for Python: masked federated learning with the protocol in Rust.

Three ways to take part, from most to least hands-off:

* ``spawn_participant(url, MyParticipant)``: subclass :class:`ParticipantABC` and implement
  ``train_round``; a background thread ticks the participant with back-off, fetches global
  models and trains when the participant is an updater.
* ``spawn_async_participant(url)``: training stays in your code; you get an event that is set
  when a new global model is available, and hand over a local model whenever you have one.
* :class:`Participant`: the tick-driven participant itself (what the two above drive).

Models go in and out as numpy arrays (lists work too). ``stop()`` returns the saved state; pass
it as ``state=`` to resume. The state holds the participant's secret key: store it safely.
"""

from __future__ import annotations

import random
import threading
import time
from typing import Any, Optional, Sequence, Tuple, Type

import numpy as np

from . import _native
from ._native import (
    GlobalModelDataTypeMisMatch,
    GlobalModelUnavailable,
    LocalModelDataTypeMisMatch,
    LocalModelLengthMisMatch,
    ParticipantInit,
    ParticipantRestore,
    XaynetError,
)

__all__ = [
    "Participant",
    "ParticipantABC",
    "InternalParticipant",
    "AsyncParticipant",
    "spawn_participant",
    "spawn_async_participant",
    "XaynetError",
    "ParticipantInit",
    "ParticipantRestore",
    "LocalModelLengthMisMatch",
    "LocalModelDataTypeMisMatch",
    "GlobalModelUnavailable",
    "GlobalModelDataTypeMisMatch",
    "TASK_NONE",
    "TASK_SUM",
    "TASK_UPDATE",
]

TASK_NONE, TASK_SUM, TASK_UPDATE = 0, 1, 2


class Participant:
    """A participant driven by :meth:`tick` (no threads of its own).

    ``Participant(url, scalar=1.0, state=None, secret_key=None, max_message_size=65536,
    poll_interval_ms=1000)``: a fresh key unless ``secret_key`` (64 bytes) is given; with
    ``state`` (from :meth:`save` / :meth:`stop`) the saved participant resumes.
    """

    def __init__(self, url: str, scalar: float = 1.0, state: Optional[bytes] = None,
                 secret_key: Optional[bytes] = None, max_message_size: int = 65536,
                 poll_interval_ms: int = 1000) -> None:
        if state is not None:
            state = bytes(state)
        self._inner = _native.Participant(url, scalar, state, secret_key, max_message_size,
                                          poll_interval_ms)

    def tick(self) -> int:
        """Does what is due now (HTTP included) and returns the tick flags."""
        return self._inner.tick()

    def made_progress(self) -> bool:
        """Whether the last tick changed the state."""
        return self._inner.made_progress()

    def should_set_model(self) -> bool:
        """Whether the participant waits for :meth:`set_model`."""
        return self._inner.should_set_model()

    def new_global_model(self) -> bool:
        """Whether a new (changed) global model is available."""
        return self._inner.new_global_model()

    def task(self) -> int:
        """``TASK_NONE``, ``TASK_SUM`` or ``TASK_UPDATE`` in the current round."""
        return self._inner.task()

    def local_model_config(self) -> Optional[Tuple[str, int]]:
        """(numpy dtype name, length) of the round's model, or None before the first round."""
        return self._inner.local_model_config()

    def round_seed(self) -> Optional[bytes]:
        """The current round's seed (an identifier of the round), or None."""
        return self._inner.round_seed()

    def public_key(self) -> bytes:
        """The participant's public key."""
        return self._inner.public_key()

    def set_model(self, model: Any, scalar: Optional[float] = None) -> None:
        """Hands over the local model (numpy array or list) for the current round, converted
        to the round's data type, with an optional aggregation weight."""
        config = self.local_model_config()
        if config is None:
            raise LocalModelLengthMisMatch("no round yet: tick first")
        dtype, length = config
        array = np.asarray(model)
        if array.ndim != 1 or array.shape[0] != length:
            raise LocalModelLengthMisMatch(
                f"the round expects a flat model of {length} weights, got shape {array.shape}")
        try:
            converted = array.astype(np.dtype(dtype).newbyteorder("<"), casting="same_kind")
        except TypeError as e:
            raise LocalModelDataTypeMisMatch(
                f"the round expects {dtype}, got {array.dtype}: {e}") from None
        self._inner.set_model_bytes(converted.tobytes(), dtype, scalar)

    def global_model(self) -> Optional[np.ndarray]:
        """The latest global model as a numpy array, or None before the first one."""
        got = self._inner.global_model_bytes()
        if got is None:
            return None
        dtype, raw = got
        return np.frombuffer(raw, dtype=np.dtype(dtype).newbyteorder("<")).astype(dtype)

    def save(self) -> bytes:
        """The whole state (contains the secret key)."""
        return self._inner.save()

    def stop(self) -> bytes:
        """Saves and stops; later calls raise :class:`XaynetError`."""
        return self._inner.stop()


class ParticipantABC:
    """Subclass and implement :meth:`train_round`; run with :func:`spawn_participant`."""

    def train_round(self, global_model: Optional[np.ndarray]) -> Any:
        """Trains locally from the global model (None in the very first round: return the
        initial weights) and returns the local model as a flat array of the round's length.
        Return ``(model, scalar)`` to give this update its own aggregation weight."""
        raise NotImplementedError

    def participate_in_update_task(self) -> bool:
        """Whether to train now when chosen as an updater (e.g. False on low battery)."""
        return True

    def on_new_global_model(self, global_model: Optional[np.ndarray]) -> None:
        """Called with each new global model."""

    def on_stop(self) -> None:
        """Called when the participant stops."""


class _Backoff:
    """Waits longer while nothing happens (100 ms × 1.2 per idle tick, up to ``cap``), with
    jitter; resets on progress."""

    def __init__(self, start: float = 0.1, cap: float = 2.0) -> None:
        self.start, self.cap, self.delay = start, cap, start

    def reset(self) -> None:
        self.delay = self.start

    def next(self) -> float:
        d = self.delay * random.uniform(0.75, 1.0)
        self.delay = min(self.delay * 1.2, self.cap)
        return d


class _Background(threading.Thread):
    """A participant ticked on a daemon thread; :meth:`stop` returns its saved state."""

    def __init__(self, url: str, state: Optional[bytes], scalar: float,
                 **participant_options: Any) -> None:
        super().__init__(daemon=True)
        self._participant = Participant(url, scalar=scalar, state=state, **participant_options)
        self._stop_event = threading.Event()
        self._lock = threading.Lock()
        self._state: Optional[bytes] = None
        self.error: Optional[BaseException] = None

    def stop(self) -> bytes:
        """Stops the thread and returns the saved state (to resume with ``state=``)."""
        self._stop_event.set()
        if self.is_alive():
            self.join()
        with self._lock:
            if self._state is None:
                self._state = self._participant.stop()
        if self.error is not None:
            raise XaynetError(f"the participant thread failed: {self.error!r}") from self.error
        return self._state

    def public_key(self) -> bytes:
        """The participant's public key."""
        with self._lock:
            return self._participant.public_key()


class InternalParticipant(_Background):
    """The background thread of :func:`spawn_participant`."""

    def __init__(self, url: str, cls: Type[ParticipantABC], args: Sequence[Any],
                 kwargs: dict, state: Optional[bytes], scalar: float,
                 **participant_options: Any) -> None:
        super().__init__(url, state, scalar, **participant_options)
        self._cls, self._args, self._kwargs = cls, tuple(args), dict(kwargs)

    def run(self) -> None:
        try:
            # Built on this thread, so that ML frameworks initialise where they run.
            user = self._cls(*self._args, **self._kwargs)
            backoff = _Backoff()
            global_model: Optional[np.ndarray] = None
            fetched = False
            while not self._stop_event.is_set():
                with self._lock:
                    p = self._participant
                    p.tick()
                    progress = p.made_progress()
                    if p.new_global_model() or not fetched:
                        try:
                            global_model = p.global_model()
                            fetched = True
                            user.on_new_global_model(global_model)
                        except GlobalModelUnavailable:
                            fetched = False
                    if p.should_set_model() and fetched and user.participate_in_update_task():
                        result = user.train_round(global_model)
                        model, scalar = (result if isinstance(result, tuple) else (result, None))
                        p.set_model(model, scalar)
                        progress = True
                if progress:
                    backoff.reset()
                self._stop_event.wait(0.01 if progress else backoff.next())
            user.on_stop()
        except BaseException as e:  # reported by stop() and .error
            self.error = e


def spawn_participant(coordinator_url: str, participant_cls: Type[ParticipantABC],
                      args: Sequence[Any] = (), kwargs: Optional[dict] = None,
                      state: Optional[bytes] = None, scalar: float = 1.0,
                      **participant_options: Any) -> InternalParticipant:
    """Starts a background participant that instantiates ``participant_cls(*args, **kwargs)``
    on its own thread and trains with it whenever it is an updater. ``participant_options``
    are passed to :class:`Participant` (``max_message_size``, ``poll_interval_ms``,
    ``secret_key``)."""
    t = InternalParticipant(coordinator_url, participant_cls, args, kwargs or {}, state,
                            scalar, **participant_options)
    t.start()
    return t


class AsyncParticipant(_Background):
    """The background thread of :func:`spawn_async_participant`: training stays in user code."""

    def __init__(self, url: str, state: Optional[bytes], scalar: float,
                 **participant_options: Any) -> None:
        super().__init__(url, state, scalar, **participant_options)
        self.new_global_model_event = threading.Event()
        self._global: Optional[np.ndarray] = None
        self._local: Optional[Tuple[Any, Optional[float]]] = None

    def run(self) -> None:
        try:
            backoff = _Backoff()
            while not self._stop_event.is_set():
                with self._lock:
                    p = self._participant
                    p.tick()
                    progress = p.made_progress()
                    if p.new_global_model():
                        try:
                            self._global = p.global_model()
                            self.new_global_model_event.set()
                        except GlobalModelUnavailable:
                            pass
                    if p.should_set_model() and self._local is not None:
                        model, scalar = self._local
                        self._local = None
                        p.set_model(model, scalar)
                        progress = True
                if progress:
                    backoff.reset()
                self._stop_event.wait(0.01 if progress else backoff.next())
        except BaseException as e:
            self.error = e

    def get_global_model(self) -> Optional[np.ndarray]:
        """The latest global model (None before the first); clears the event."""
        with self._lock:
            self.new_global_model_event.clear()
            return self._global

    def set_local_model(self, model: Any, scalar: Optional[float] = None) -> None:
        """Caches a local model; it is used the next time the participant is an updater and
        replaces a model cached earlier."""
        with self._lock:
            self._local = (model, scalar)


def spawn_async_participant(coordinator_url: str, state: Optional[bytes] = None,
                            scalar: float = 1.0, **participant_options: Any
                            ) -> Tuple[AsyncParticipant, threading.Event]:
    """Starts a background participant whose local models come from
    :meth:`AsyncParticipant.set_local_model`; returns it and the event set on new global
    models."""
    t = AsyncParticipant(coordinator_url, state, scalar, **participant_options)
    t.start()
    return t, t.new_global_model_event
