"""The Python participants against a live coordinator (see conftest.py)."""

import threading
import time

import numpy as np
import pytest

import xaynet

LEN = 50


def delta(i: int) -> np.ndarray:
    return (((np.arange(LEN) * 7 + i * 13) % 100) / 200.0 - 0.25).astype(np.float32)


def test_tick_participants_average_exactly(coordinator):
    """Tick-level participants; every global model is the plain average of the models the
    updaters of an earlier round submitted."""
    ps = [xaynet.Participant(coordinator.url, poll_interval_ms=50, max_message_size=300)
          for _ in range(8)]
    submitted = {}  # round seed -> {participant: model}
    verified = 0
    deadline = time.time() + 90
    while verified < 2:
        assert time.time() < deadline, "no two global models within 90 s"
        for i, p in enumerate(ps):
            flags = p.tick()
            assert bin(flags & 7).count("1") == 1
            if p.should_set_model():
                assert p.task() == xaynet.TASK_UPDATE
                p.set_model(list(delta(i)))  # a list works as well as an array
                submitted.setdefault(p.round_seed(), {})[i] = delta(i)
            if p.new_global_model():
                g = p.global_model()
                assert g.dtype == np.float32 and g.shape == (LEN,)
                assert not p.new_global_model()
                now = p.round_seed()
                assert any(
                    np.allclose(g, np.mean(list(models.values()), axis=0), atol=1e-6, rtol=0)
                    for seed, models in submitted.items() if seed != now), \
                    "the global model is not the average of a round's models"
                if i == 0:
                    verified += 1
        time.sleep(0.02)


class Trainer(xaynet.ParticipantABC):
    """Local model = half the global model plus a participant-specific delta; records what it
    trained from, so that the test knows which models were averaged together."""

    def __init__(self, index, log, lock):
        self.index, self.log, self.lock = index, log, lock
        self.globals = []

    def train_round(self, global_model):
        base = np.zeros(LEN, dtype=np.float32) if global_model is None else global_model
        model = (base * 0.5 + delta(self.index)).astype(np.float32)
        key = None if global_model is None else global_model.tobytes()
        with self.lock:
            self.log.setdefault(key, {})[self.index] = model
        return model

    def on_new_global_model(self, global_model):
        if global_model is not None:
            with self.lock:
                self.globals.append(global_model)
                self.log.setdefault("globals", []).append(global_model)


def test_spawned_participants_train_rounds_and_resume(coordinator):
    log, lock = {}, threading.Lock()
    threads = [xaynet.spawn_participant(coordinator.url, Trainer, args=(i,),
                                        kwargs={"log": log, "lock": lock}, poll_interval_ms=50)
               for i in range(8)]
    deadline = time.time() + 90
    while True:
        with lock:
            distinct = {g.tobytes() for g in log.get("globals", [])}
        if len(distinct) >= 2:
            break
        assert time.time() < deadline, "no two global models within 90 s"
        assert all(t.error is None for t in threads), [t.error for t in threads]
        time.sleep(0.1)
    keys = [t.public_key() for t in threads]
    states = [t.stop() for t in threads]
    with lock:
        globals_ = list({g.tobytes(): g for g in log["globals"]}.values())
        groups = [m for k, m in log.items() if k != "globals"]
    for g in globals_:
        assert any(np.allclose(g, np.mean(list(m.values()), axis=0), atol=1e-6, rtol=0)
                   for m in groups), "a global model that is no round's average"
    # Resume from the saved state: same identity.
    resumed = xaynet.Participant(coordinator.url, state=states[0])
    assert resumed.public_key() == keys[0]
    resumed.stop()


def test_async_participants(coordinator):
    parts = [xaynet.spawn_async_participant(coordinator.url, poll_interval_ms=50)
             for _ in range(8)]
    for i, (p, _) in enumerate(parts):
        p.set_local_model(delta(i))
    p0, event = parts[0]
    assert event.wait(60), "no global model within 60 s"
    g = p0.get_global_model()
    assert g is not None and g.shape == (LEN,)
    assert not event.is_set()
    states = [p.stop() for p, _ in parts]
    assert all(isinstance(s, bytes) and len(s) > 32 for s in states)


def test_errors(coordinator):
    with pytest.raises(xaynet.ParticipantInit):
        xaynet.Participant("not a url")
    with pytest.raises(xaynet.ParticipantInit):
        xaynet.Participant(coordinator.url, secret_key=b"short")
    with pytest.raises(xaynet.ParticipantInit):
        xaynet.Participant(coordinator.url, max_message_size=10)
    with pytest.raises(xaynet.ParticipantRestore):
        xaynet.Participant(coordinator.url, state=b"garbage")
    p = xaynet.Participant(coordinator.url, poll_interval_ms=50)
    with pytest.raises(xaynet.LocalModelLengthMisMatch):
        p.set_model(np.zeros(LEN, dtype=np.float32))  # no round yet
    p.tick()
    assert p.local_model_config() == ("float32", LEN)
    assert len(p.round_seed()) == 32
    with pytest.raises(xaynet.LocalModelLengthMisMatch):
        p.set_model(np.zeros(LEN + 1, dtype=np.float32))
    with pytest.raises(xaynet.LocalModelLengthMisMatch):
        p.set_model(np.zeros((5, 10), dtype=np.float32))
    with pytest.raises(xaynet.LocalModelDataTypeMisMatch):
        p.set_model(np.array(["a"] * LEN))
    assert issubclass(xaynet.LocalModelDataTypeMisMatch, xaynet.XaynetError)
    saved = p.save()
    q = xaynet.Participant(coordinator.url, state=saved)
    assert q.public_key() == p.public_key()
    p.stop()
    with pytest.raises(xaynet.XaynetError):
        p.tick()
    down = xaynet.Participant("http://127.0.0.1:9")
    with pytest.raises(xaynet.GlobalModelUnavailable):
        down.global_model()
