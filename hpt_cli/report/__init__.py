"""`hpt report`: which configuration wins, on every date range, and is it real.

Reads one or more run folders (local or gs://, finished or still running), merges them by
configuration, and analyses them (`build.analyse`): ranking with confidence intervals, rank per
date range, paired tests of the best against the next ones (Holm-corrected), per-parameter
effects, the incumbent trajectory, failures and the best trial's files. Renderers: `text`,
`formats` (csv, json), `html` (with `plots`, which need matplotlib). Nothing here imports click.
"""

from hpt_cli.report.build import Report, analyse, build_report
from hpt_cli.report.load import Results, load_results

__all__ = ["Report", "Results", "analyse", "build_report", "load_results"]
