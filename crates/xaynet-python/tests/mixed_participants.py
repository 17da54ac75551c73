"""N Python participants that keep taking part until killed (at most SECONDS), for the
mixed-language round test. Every model set is reported on stdout as
    SUBMIT <round seed hex> python-<i> <w0> <w1> ...
Usage: python mixed_participants.py URL N SECONDS"""

import sys
import time

import numpy as np

import xaynet

url, n, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
ps = [xaynet.Participant(url, poll_interval_ms=50) for _ in range(n)]
end = time.time() + seconds
while time.time() < end:
    for i, p in enumerate(ps):
        p.tick()
        if p.should_set_model():
            _, length = p.local_model_config()
            w = (((np.arange(length) * 11 + i * 3) % 80) / 160.0 - 0.25).astype(np.float32)
            p.set_model(w)
            values = " ".join(format(float(v), ".9g") for v in w)
            print(f"SUBMIT {p.round_seed().hex()} python-{i} {values}", flush=True)
    time.sleep(0.02)
