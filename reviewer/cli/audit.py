"""The ``auto-accept`` command: the certified threshold, and what the model may label alone."""

from __future__ import annotations

import json

import click

from reviewer.cli.context import Context, pass_context
from reviewer.core import db


@click.command("auto-accept")
@click.option("--risk", type=float, help="α, the error rate allowed (default: risk_target).")
@click.option("--confidence", type=float, help="1 − δ (default: risk_confidence).")
@click.option("--json", "as_json", is_flag=True, help="One JSON document.")
@pass_context
def auto_accept(ctx: Context, risk, confidence, as_json) -> None:
    """The certified auto-accept threshold of the active version.

    The random audit (the `audit` strategy, and a share `audit_rate` of every other
    strategy's handouts, shown blind) is a simple random sample of the pool; its labels bound
    the errors of the images the model would label alone, and the threshold is the lowest
    confidence at which that bound stays within the risk target, with the given confidence:
    with probability at least 1 − δ over the audit's random order, the error rate of the
    images nobody answered at or above it is at most the reported bound, for the pool as it
    stands now. `reviewer export OUT --auto-accept` writes them with the model's label.
    """
    from reviewer.review.audit import certificate, describe

    ctx.require_database()
    for name, value in (("--risk", risk), ("--confidence", confidence)):
        if value is not None and not 0 < value < 1:
            raise click.BadParameter("must be above 0 and below 1", param_hint=name)
    with db.snapshot(ctx.sessions) as session:
        result = certificate(session, risk=risk, confidence=confidence)
    if as_json:
        click.echo(json.dumps(result.as_dict()))
        return
    for line in describe(result):
        click.echo(line)
