"""Every error tgk-deploy raises on purpose, and the exit code each one maps to.

    TgkError                      exit 1  something failed; the message says what
    ├── SpecError                 exit 2  a phase or project file is malformed (file:line:col field)
    ├── ConfigError               exit 2  bad flags or environment (e.g. no CLOUDFLARE_API_TOKEN)
    ├── MetricsError              exit 3  Prometheus unreachable or answered an error: inconclusive
    │   ├── PrometheusQueryError          Prometheus answered an error (errorType and error verbatim)
    │   └── PrometheusUnreachable         connection errors / timeouts / 5xx after retries
    ├── RefusedError              exit 4  the plan refuses: bake, approval, earlier phase, drift
    ├── ConflictError             exit 5  live state changed underneath us / lock held
    ├── CloudflareError           exit 6  the Cloudflare API failed; says what state it left
    │   ├── RateLimited                   429 beyond our patience (--timeout)
    │   ├── CloudflareUnreachable         connection errors / timeouts after retries
    │   └── MissingResource               404: a configured script, zone or rule is not there
    └── InternalError             exit 70 a bug: any other exception, wrapped by the CLI (EX_SOFTWARE)

The CLI maps this tree to exit codes in one place (``cli.output.reports``); library
code raises, never exits and never prints. Messages must never contain secret
values: the constructors take names, never values.
"""

from __future__ import annotations

from dataclasses import dataclass


class ExitCode:
    """Documented exit codes (README "Exit codes")."""

    OK = 0
    FAILED = 1
    BAD_INPUT = 2
    INCONCLUSIVE = 3
    REFUSED = 4
    CONFLICT = 5
    CLOUDFLARE = 6
    INTERNAL = 70  # sysexits EX_SOFTWARE: a bug, told apart from a failed rollout
    INTERRUPTED = 130


class TgkError(Exception):
    """Base of every deliberate error; ``hint`` is the command that finishes or undoes."""

    exit_code: int = ExitCode.FAILED

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def to_dict(self) -> dict[str, object]:
        return {"error": type(self).__name__, "message": self.message, "hint": self.hint}


@dataclass(frozen=True)
class SpecProblem:
    """One problem in one file, located precisely enough for an editor to jump to."""

    file: str
    line: int
    column: int
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}"
        field = f" {self.field}:" if self.field else ""
        return f"{where}:{field} {self.message}"


class SpecError(TgkError):
    exit_code = ExitCode.BAD_INPUT

    def __init__(self, problems: list[SpecProblem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))

    def to_dict(self) -> dict[str, object]:
        return {
            "error": "SpecError",
            "message": f"{len(self.problems)} problem(s) in the spec",
            "problems": [p.__dict__ for p in self.problems],
        }


class ConfigError(TgkError):
    exit_code = ExitCode.BAD_INPUT


class MetricsError(TgkError):
    exit_code = ExitCode.INCONCLUSIVE


class PrometheusQueryError(MetricsError):
    """Prometheus answered ``status: error``; its ``errorType`` and ``error`` are kept verbatim."""

    def __init__(
        self, query: str, *, status: int, error_type: str, error: str, hint: str | None = None
    ) -> None:
        self.query = query
        self.status = status
        self.error_type = error_type
        self.error = error
        super().__init__(f"Prometheus {error_type} (HTTP {status}): {error}", hint=hint)

    def to_dict(self) -> dict[str, object]:
        return {
            **super().to_dict(),
            "query": self.query,
            "status": self.status,
            "error_type": self.error_type,
        }


class PrometheusUnreachable(MetricsError):
    """No answer from Prometheus within the retry deadline (connection, timeout, 429/5xx)."""


class RefusedError(TgkError):
    exit_code = ExitCode.REFUSED


class ConflictError(TgkError):
    exit_code = ExitCode.CONFLICT


@dataclass
class CloudflareErrorDetail:
    code: int | None
    message: str


class CloudflareError(TgkError):
    """A Cloudflare call failed. ``state_left`` says what is now true on Cloudflare."""

    exit_code = ExitCode.CLOUDFLARE

    def __init__(
        self,
        operation: str,
        *,
        status: int | None = None,
        errors: list[CloudflareErrorDetail] | None = None,
        state_left: str = "unchanged: the call did not take effect",
        hint: str | None = None,
    ) -> None:
        self.operation = operation
        self.status = status
        self.errors = errors or []
        self.state_left = state_left
        details = "; ".join(
            f"{e.code}: {e.message}" if e.code is not None else e.message for e in self.errors
        )
        status_text = f" (HTTP {status})" if status is not None else ""
        message = f"{operation} failed{status_text}"
        if details:
            message += f": {details}"
        message += f". Cloudflare state: {state_left}"
        super().__init__(message, hint=hint or _next_command(status))

    @property
    def codes(self) -> list[int]:
        return [e.code for e in self.errors if e.code is not None]

    def to_dict(self) -> dict[str, object]:
        return {
            **super().to_dict(),
            "operation": self.operation,
            "status": self.status,
            "cloudflare_errors": [e.__dict__ for e in self.errors],
            "state_left": self.state_left,
        }


def _next_command(status: int | None) -> str:
    """What to run after a Cloudflare failure that named no command of its own."""
    if status in (401, 403):
        return (
            "check CLOUDFLARE_API_TOKEN and its permissions (Workers Scripts, Email Routing, "
            "D1: edit) and CLOUDFLARE_ACCOUNT_ID, then run the same command again"
        )
    if status == 429:
        return "wait a few minutes (Cloudflare's rate limit), then run the same command again"
    return "tgk-deploy status shows what Cloudflare has; the same command again finishes the job"


class RateLimited(CloudflareError):
    pass


class CloudflareUnreachable(CloudflareError):
    pass


class MissingResource(CloudflareError):
    """A configured script, zone or email rule does not exist: never "nothing to do"."""

    def __init__(self, missing: list[str], *, hint: str | None = None) -> None:
        self.missing = missing
        super().__init__(
            "find " + "; ".join(missing),
            status=404,
            state_left="unchanged: nothing was changed",
            hint=hint
            or "check the names in tgk-deploy.yaml and CLOUDFLARE_ACCOUNT_ID / CLOUDFLARE_ZONE_ID "
            "(`wrangler deploy` creates a script; email rules are made in the dashboard), "
            "then run the command again",
        )
        self.message = "not found on Cloudflare: " + "; ".join(missing) + ". Nothing was changed"

    def to_dict(self) -> dict[str, object]:
        return {**super().to_dict(), "missing": self.missing}


class InternalError(TgkError):
    """An exception nobody raised on purpose: a bug in tgk-deploy, not a verdict on the rollout.

    A pipeline must not read it as "a trigger fired" (exit 1), so it gets its own code.
    """

    exit_code = ExitCode.INTERNAL
