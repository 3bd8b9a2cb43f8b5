"""Operator mistakes end in one paragraph that names the problem and the fix, never a traceback.

Commands raise ``OperatorError`` where they can check a mistake themselves (a stake below the
deployment's minimum, an account without gas); ``explain`` turns the errors that surface from
deeper down (a wrong keystore password, an RPC endpoint with nothing listening, a refused
transaction, the user's own model code failing) into the same kind of paragraph. ``MorphwareGroup``
applies both to every command: ``morphware --debug CMD`` shows the traceback as well.
"""

from __future__ import annotations

import sys
import traceback
from typing import Any

import typer
from typer.core import TyperGroup

DEBUG_HINT = "(run `morphware --debug ...` to see the traceback)"


class OperatorError(Exception):
    """A mistake the operator can fix: ``problem`` says what is wrong, ``fix`` what to do."""

    def __init__(self, problem: str, fix: str = "") -> None:
        self.problem = problem.rstrip(".")
        self.fix = fix
        super().__init__(self.paragraph())

    def paragraph(self) -> str:
        return f"{self.problem}. {self.fix}".strip() if self.fix else f"{self.problem}."


def _chain_unreachable(exc: BaseException) -> bool:
    """requests/urllib3/web3 all report 'nothing listening' differently."""
    names = {t.__name__ for t in type(exc).__mro__}
    return bool(names & {"ConnectionError", "ProviderConnectionError", "NewConnectionError",
                         "MaxRetryError", "ConnectionRefusedError"}) and not isinstance(
        exc, (BrokenPipeError,))


def explain(exc: BaseException) -> OperatorError | None:
    """The operator-facing explanation of ``exc``, or None for a genuine bug (shown in full)."""
    if isinstance(exc, OperatorError):
        return exc
    from morphware.runtime.node.keystore import KeystoreError

    if isinstance(exc, KeystoreError):
        return OperatorError(f"keystore: {exc}",
                             "Check the path given to --keystore and the password in "
                             "$MORPHWARE_PASSWORD (or the variable --password-env names); "
                             "`morphware keys new --keystore FILE` creates a new key.")
    text = str(exc)
    if "insufficient funds" in text.lower():
        return OperatorError(
            "the account has no ETH left to pay for gas (the chain refused a transaction: "
            f"{text.splitlines()[0][:200]})",
            "On a dev chain run `morphware devnet fund --keystore FILE`; on a real chain send "
            "ETH to the address `morphware keys show --keystore FILE` prints.")
    if _chain_unreachable(exc):
        return OperatorError(
            f"cannot reach the chain: nothing answers at the RPC endpoint ({text[:200]})",
            "Start a dev chain with `morphware devnet`, or check the URL given to --rpc.")
    from morphware.runtime.node.chain import MarketError

    if isinstance(exc, MarketError):
        return OperatorError(f"the market contract refused a transaction: {text}",
                             "Read the contract's reason above; `morphware node --help` "
                             "lists the settings (stake, prices) that decide what is sent.")
    from morphware.runtime.job.packaging import PackagingError
    from morphware.runtime.job.spec import JobSpecError

    if isinstance(exc, (PackagingError, JobSpecError)):
        return OperatorError(f"the job cannot be packaged: {text}",
                             "Fix the job.toml or the model code it names, then try again "
                             "(`morphware package JOB` checks it without a chain).")
    return None


def report(exc: BaseException, debug: bool) -> None:
    """Print the explanation (and with ``debug`` the traceback) on stderr."""
    err = explain(exc)
    if debug:
        traceback.print_exception(exc, file=sys.stderr)
    msg = err.paragraph() if err is not None else f"{type(exc).__name__}: {exc}"
    hint = "" if debug else f" {DEBUG_HINT}"
    typer.echo(f"error: {msg}{hint}", err=True)


class MorphwareGroup(TyperGroup):
    """The root command group: every command's operator errors become ``report``'s paragraph
    and exit status 1. Anything else (typer's own exits and usage errors, and unknown errors,
    which are bugs to report) passes through unchanged."""

    def invoke(self, ctx: Any) -> Any:
        debug = bool(ctx.params.get("debug"))
        try:
            return super().invoke(ctx)
        except Exception as e:  # noqa: BLE001 - sorted by explain(): known or a bug
            if explain(e) is None:
                raise
            report(e, debug)
            raise typer.Exit(1) from None
