"""What the benches share: a timed run, paired runs, rounds of API calls, the machine's load.

A bench on a shared machine compares two commands run by run, one right after
the other (in alternating order), and reports the median of the per-run
ratios: load then weighs on both sides of each ratio alike.
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
WRANGLER = REPO / "wrangler" / "node_modules" / ".bin" / "wrangler"


SMOKE_TOKEN = "bench-smoke-token-0123456789"


def seed_for_rollout(emulator) -> dict:
    """The demo account, its scripts holding SMOKE_TOKEN, and what advance's smoke checks read
    from the environment (the token, each script's URL on the emulator): the phases smoke-test
    every candidate before it gets traffic."""
    ids = emulator.state.seed_demo(smoke_token=SMOKE_TOKEN)
    os.environ["TGK_SMOKE_TOKEN"] = SMOKE_TOKEN
    from tgk_deploy.smoke import url_variable

    for environment, script in (
        ("production", "tgk-email-orchestrator"),
        ("staging", "tgk-email-orchestrator-staging"),
    ):
        os.environ[url_variable(environment)] = emulator.worker_url(script)
    return ids


class Run:
    """One child process: its wall time and the CPU time it used (user + system).

    On a loaded machine the wall time waits for a core; the CPU time does not,
    so it is printed beside the wall time as the steadier figure of the two.
    """

    def __init__(self, args: Sequence[str], *, cwd: Path = REPO, env: dict[str, str] | None = None):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        self.done = subprocess.run(list(args), cwd=cwd, env=env, capture_output=True, text=True)
        self.wall = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        if self.done.returncode != 0:
            raise SystemExit(
                f"{' '.join(args)} failed ({self.done.returncode}):\n"
                f"{self.done.stdout[-2000:]}\n{self.done.stderr[-2000:]}"
            )


def timed(args: Sequence[str], *, cwd: Path = REPO, env: dict[str, str] | None = None) -> float:
    """Wall seconds of one run; a failing run stops the bench with its output."""
    return Run(args, cwd=cwd, env=env).wall


def paired(ours: Callable[[], Run], theirs: Callable[[], Run], runs: int) -> list[tuple[Run, Run]]:
    """``runs`` pairs (ours, theirs), the order swapped every other run."""
    pairs = []
    for run in range(runs):
        if run % 2:
            b = theirs()
            a = ours()
        else:
            a = ours()
            b = theirs()
        pairs.append((a, b))
    return pairs


def print_pairs(pairs: list[tuple[Run, Run]], ours: str, theirs: str, target: float) -> float:
    """One line per pair (wall and CPU), then the median wall ratio against the target."""
    print(
        f"{'run':>4}  {ours + ' wall (cpu)':>30}  {theirs + ' wall (cpu)':>30}  {'ratio':>6}  cpu ratio"
    )
    for run, (a, b) in enumerate(pairs, 1):
        print(
            f"{run:>4}  {f'{a.wall:.3f}s ({a.cpu:.3f}s)':>30}  {f'{b.wall:.3f}s ({b.cpu:.3f}s)':>30}"
            f"  {a.wall / b.wall:>6.3f}  {a.cpu / b.cpu:.3f}"
        )
    ratio = statistics.median(a.wall / b.wall for a, b in pairs)
    cpu_ratio = statistics.median(a.cpu / b.cpu for a, b in pairs)
    print(
        f"median ratio {ours} / {theirs}: {ratio:.3f} wall, {cpu_ratio:.3f} cpu  "
        f"(median walls {statistics.median(a.wall for a, _ in pairs):.3f}s / "
        f"{statistics.median(b.wall for _, b in pairs):.3f}s)  "
        f"target <= {target:g}: {'met' if ratio <= target else 'NOT met'}"
    )
    return ratio


def rounds(records) -> int:
    """Calls that overlap in time form one round; a call that starts after they all ended, the next."""
    spans = sorted(
        (
            datetime.fromisoformat(r.timestamp) - timedelta(milliseconds=r.duration_ms),
            datetime.fromisoformat(r.timestamp),
        )
        for r in records
    )
    count, round_end = 0, None
    for start, end in spans:
        if round_end is None or start >= round_end:
            count += 1
            round_end = end
        else:
            round_end = max(round_end, end)
    return count


def compile_package() -> None:
    """Byte-compile tgk_deploy, as pip does when it installs a package.

    An editable install leaves that to the first run, and where
    PYTHONDONTWRITEBYTECODE is set (this workplace's machines) every run compiles
    every module again: 40 ms of start-up that no installed tgk-deploy pays.
    """
    import compileall

    compileall.compile_dir(REPO / "tgk_deploy", quiet=1)


def machine() -> str:
    """How busy the machine was: absolute times mean little without it."""
    one, five, _ = os.getloadavg()
    return f"{os.cpu_count()} cores, load average {one:.2f} (1 min) {five:.2f} (5 min)"


def wrangler_env(env: dict[str, str]) -> dict[str, str]:
    """wrangler pointed at the same API (CLOUDFLARE_API_BASE_URL & co.), sending no metrics."""
    return {**env, "WRANGLER_SEND_METRICS": "false", "CI": "1"}
