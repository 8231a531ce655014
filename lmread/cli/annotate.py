"""``lmread annotate``: run machine readers (deterministic fall detectors) over a study."""

from __future__ import annotations

import click

from lmread.cli.common import emit_json, make_study_option, study_path


@click.command("annotate")
@make_study_option()
@click.option("--detector", "detectors", multiple=True, required=True,
              help="Detector name(s), comma-separated or repeated: repetition, special-token, improbable-run.")
@click.option("--param", "params", multiple=True,
              help="KEY=VALUE for every chosen detector that has KEY, or DETECTOR.KEY=VALUE (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary.")
@click.pass_context
def annotate(ctx: click.Context, study: str | None, detectors: tuple[str, ...], params: tuple[str, ...],
             as_json: bool) -> None:
    """Mark every sample with machine readers, as annotators auto-<detector>.

    A fall found is a fall mark with the detector's name, version and parameters; no fall found
    is a no-fall mark censored at the sample's length.  Running again with the same parameters
    adds nothing.
    """
    from lmread.detectors import resolve
    from lmread.detectors.annotate import annotate as run
    from lmread.study import Study

    names = [name for item in detectors for name in item.split(",") if name.strip()]
    specs = resolve(names, list(params))
    st = Study.open(study_path(ctx, study), top_k=False)  # detectors never read the top-k
    report = run(st, specs)
    if as_json:
        emit_json(report.to_json())
        return
    click.echo(f"annotated {report.samples} samples in {report.study}")
    for d in report.detectors:
        click.echo(f"  {d.annotator:<22} added {d.added:>6} (falls {d.falls}, no fall {d.no_falls}, "
                   f"skipped {d.skips}), unchanged {d.unchanged}")
