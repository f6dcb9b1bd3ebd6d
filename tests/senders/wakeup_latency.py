"""How late a SCHED_FIFO thread wakes up on this machine, at JACK's 256-frame period.

    python3 wakeup_latency.py [SECONDS]     (root, for SCHED_FIFO)

The JACK dummy driver's timer thread is such a thread: when it wakes more than a period late,
the server reports an xrun whatever its clients do (see tests/live_jack.rs).
"""

import os
import sys
import time

seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 15.0
os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(70))
period = 256 / 48000
late = []
due = time.monotonic()
end = due + seconds
while due < end:
    due += period
    time.sleep(max(0.0, due - time.monotonic()))
    late.append(time.monotonic() - due)
late.sort()
n = len(late)
print(
    f"{n} wake-ups every {period * 1e3:.2f} ms (SCHED_FIFO 70): median {late[n // 2] * 1e6:.0f} us late, "
    f"99.9% {late[int(n * 0.999)] * 1e6:.0f} us, max {late[-1] * 1e6:.0f} us; "
    f"over 1 ms: {sum(x > 1e-3 for x in late)}, over a period: {sum(x > period for x in late)}; "
    f"load average {os.getloadavg()[0]:.1f}"
)
