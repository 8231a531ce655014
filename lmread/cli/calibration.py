"""``lmread calibration``: per annotator, how readings compare with controls of known answer,
reading speed and order effects (see :mod:`lmread.analysis.calibration`)."""

from __future__ import annotations

from typing import Any

import click

from lmread.analysis.calibration import (
    DEFAULT_MAX_READ_SPEED,
    DEFAULT_WARN_LATE_WORDS,
    DEFAULT_WARN_MISS_SHARE,
)
from lmread.analysis.observations import GROUPINGS
from lmread.cli.common import emit_json, json_option, study_option, study_path
from lmread.errors import OptionError
from lmread.units import format_params


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.0f}%"


def _num(value: float | None, digits: int = 1) -> str:
    if value is None:
        return "-"
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.{digits}f}"


def _rho(block: dict[str, Any]) -> str:
    if block["rho"] is None:
        return f"- (n={block['n']})"
    return f"{block['rho']:+.2f} p={block['p_value']:.2g} (n={block['n']})"


def format_calibration(doc: dict[str, Any]) -> str:
    """A readable summary of a calibration document."""
    c = doc["controls"]
    lines = [f"calibration - {doc['study'].get('name', '')}: controls splice {c['splice']}, loop {c['loop']}, "
             f"human {c['human']}; reading-speed limit {doc['settings']['max_read_speed_wps']:g} words/s"]
    lines.append(f"  {'annotator':<20} {'ctl':>4} {'detect':>7} {'early':>6} {'delay tok [q1, q3]':>20} "
                 f"{'delay w':>8} {'human':>5} {'false':>6} {'score':>6} {'words/s':>8} {'fast':>5}")
    for a in doc["annotators"]:
        o = a["onset_controls"]
        d = o["delay_tokens"]
        delay = "-" if d["median"] is None else f"{_num(d['median'])} [{_num(d['q1'])}, {_num(d['q3'])}]"
        h = a["human_controls"]
        s = a["reading_speed"]
        lines.append(
            f"  {a['annotator']:<20} {o['evaluable']:>4} {_pct(o['detection_rate']):>7} {_pct(o['early_rate']):>6} "
            f"{delay:>20} {_num(o['delay_words']['median']):>8} {h['read']:>5} {_pct(h['false_fall_rate']):>6} "
            f"{_num(a['score']['mean'], 2):>6} {_num(s['wps']):>8} {s['too_fast']:>5}"
        )
    lines.append("")
    lines.append("  order effects (Spearman rho with queue position):")
    for a in doc["annotators"]:
        o = a["order"]
        lines.append(f"    {a['annotator']:<20} fall position {_rho(o['fall_position'])}; "
                     f"control delay {_rho(o['control_delay'])}")
    if doc.get("unit") == "sentences":
        lines.extend(_roft_lines(doc))
    for w in doc["warnings"]:
        lines.append(f"  warning: {w}")
    return "\n".join(lines)


def _roft_lines(doc: dict[str, Any]) -> list[str]:
    lines = ["", "  RoFT's score (sentences: 5 for the exact boundary, max(5 - n, 0) for n sentences late, "
             "0 before it; 'all human' on a machine passage counts as a guess at the last sentence):",
             f"    {'annotator':<20} {'n':>6} {'mean':>6} {'exact':>6} {'exact %':>8} {'early':>6}"]
    for a in doc["annotators"]:
        sc = a["score"]
        lines.append(f"    {a['annotator']:<20} {sc['n']:>6} {_num(sc['mean'], 2):>6} {sc['exact']:>6} "
                     f"{_pct(sc['exact_share']):>8} {sc['early']:>6}")
    rows = [a["score"] for a in doc["annotators"]]
    n = sum(r["n"] for r in rows)
    if n:
        exact = sum(r["exact"] for r in rows)
        lines.append(f"    {'all readings':<20} {n:>6} {sum(r['points'] for r in rows) / n:>6.2f} {exact:>6} "
                     f"{_pct(exact / n):>8} {sum(r['early'] for r in rows):>6}")
    else:
        lines.append("    no reading has a known boundary to score (imported boundary passages such as RoFT's, or "
                     "controls)")
        return lines
    lines.append("")
    lines.append(f"    {'group (' + doc['by'] + ')':<32} {'params':>7} {'n':>6} {'mean':>6} {'exact %':>8} {'early':>6}")
    for g in doc["groups"]:
        lines.append(f"    {g['group']:<32} {format_params(g['n_params']):>7} {g['n']:>6} {_num(g['mean'], 2):>6} "
                     f"{_pct(g['exact_share']):>8} {g['early']:>6}")
    return lines


@click.command("calibration")
@study_option
@json_option("Print the calibration JSON (lmread.calibration/1).")
@click.option("--max-read-speed", "max_read_speed", type=float, default=None,
              help=f"Flag readings faster than this many words per second (default: the study's "
                   f"max_read_speed_wps, else {DEFAULT_MAX_READ_SPEED:g}).")
@click.option("--warn-miss-share", type=float, default=DEFAULT_WARN_MISS_SHARE, show_default=True,
              help="Warn when an annotator fails to detect more than this share of known falls.")
@click.option("--warn-late-words", type=float, default=DEFAULT_WARN_LATE_WORDS, show_default=True,
              help="Warn when an annotator's median delay on controls exceeds this many words.")
@click.option("--unit", type=click.Choice(["words", "sentences"]), default="words", show_default=True,
              help="Score unit: words (lmread's RoFT-style score, one point per 10 words late) or sentences "
                   "(RoFT's own rule, with the exact-hit share and the score per group).")
@click.option("--by", type=click.Choice(list(GROUPINGS)), default="model", show_default=True,
              help="With --unit sentences: the groups of the score table (model+decoding separates top-p).")
@click.option("--prompt-set", "prompt_set", default=None, metavar="NAME",
              help="With --unit sentences: score only readings of samples in this prompt set (RoFT: the dataset, "
                   "e.g. 'Short Stories').")
@click.pass_context
def calibration(ctx: click.Context, study: str | None, as_json: bool, max_read_speed: float | None,
                warn_miss_share: float, warn_late_words: float, unit: str, by: str, prompt_set: str | None) -> None:
    """Per annotator: detection rate and delay on spliced and looped controls, false falls on
    human controls, a RoFT-style score, reading speed with too-fast readings, and whether
    readings drift with queue position.  With --unit sentences, RoFT's own score per annotator
    and per group (on imported RoFT data it reproduces the file's points)."""
    from lmread.analysis.calibration import calibration_of_study
    from lmread.collector import call_paused
    from lmread.study import Study

    if max_read_speed is not None and not max_read_speed > 0:
        raise OptionError(f"--max-read-speed {max_read_speed:g} must be > 0 (words per second)")
    if not 0 <= warn_miss_share <= 1:
        raise OptionError(f"--warn-miss-share {warn_miss_share:g} must be between 0 and 1")
    if (by != "model" or prompt_set is not None) and unit != "sentences":
        raise OptionError("--by and --prompt-set belong to --unit sentences (the RoFT score per group)")
    def analyse() -> tuple[dict[str, Any], list[str]]:
        st = Study.open(study_path(ctx, study), top_k=False)  # calibration never reads the alternatives
        options: dict[str, Any] = {"unit": unit, "by": by} if unit == "sentences" else {}
        if prompt_set is not None:
            from lmread.analysis.readings import readings_of

            sets = sorted({str(s.prompt.get("set")) for s in st.samples.values() if s.prompt.get("set")})
            if prompt_set not in sets:
                raise OptionError(f"no sample of prompt set {prompt_set!r} in this study "
                                  f"(sets: {', '.join(sets) or 'none'})")
            options["readings"] = [r for r in readings_of(st, prompt_falls=True)
                                   if r.sample.prompt.get("set") == prompt_set]
        return calibration_of_study(st, max_read_speed=max_read_speed, warn_miss_share=warn_miss_share,
                                    warn_late_words=warn_late_words, **options), st.warnings

    doc, warnings = call_paused(analyse)  # a whole study's records, freed when analyse() returns
    for warning in warnings:
        click.echo(f"lmread: warning: {warning}", err=True)
    if as_json:
        emit_json(doc)
    else:
        click.echo(format_calibration(doc))
