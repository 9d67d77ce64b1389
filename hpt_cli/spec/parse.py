"""JSON text -> validated, resolved `Spec`, or a `SpecError` listing every problem found.

Each problem names its JSON path (and the line of the file it stands on). The key names come
from the JSON Schema shipped with the package, so the schema and the parser cannot disagree on
what a known key is.
"""

from __future__ import annotations

import difflib
import json
import re
import string
from datetime import date
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from hpt_cli.dates import (
    DateRange,
    parse_date,
    parse_duration,
    parse_length,
    rolling_windows,
)
from hpt_cli.errors import Problem, SpecError
from hpt_cli.spec import jsonpos
from hpt_cli.spec.domains import (
    LARGEST_INT,
    Choice,
    Distribution,
    Domain,
    DomainError,
    Fixed,
    Grid,
    Int,
    Normal,
    Quantized,
    Uniform,
)
from hpt_cli.spec.model import (
    DataSpec,
    ExecutorSpec,
    Objective,
    QuickSpec,
    Resources,
    Rolling,
    SchedulerSpec,
    Search,
    Spec,
    TrialSettings,
    relative_end,
)

# Facts a command template may use besides the parameters: "{trial_id}", "{artifact_dir}", ...
# (what each is, for messages); a parameter may not take one of these names
COMMAND_FACTS = {
    "trial_id": "the trial's id", "artifact_dir": "the trial's folder", "start": "the date range's start",
    "end": "the date range's end", "seed": "the trial's seed", "epochs": "trial.epochs",
    "device": "the trial's device", "data_path": "data.path",
}
DEFAULT_RANDOM_TRIALS = 20
MAX_TRIALS = 10**9  # search.trials: far beyond any sweep, well inside what indexes can count
MAX_REPEATS = 10**4
DEFAULT_ROLLING = {"count": 1, "length": "1Y"}
_MISSING = object()


@lru_cache(maxsize=1)
def schema() -> dict[str, Any]:
    """The JSON Schema of the spec, as shipped with the package."""
    text = resources.files("hpt_cli").joinpath("schema/spec.schema.json").read_text("utf-8")
    return json.loads(text)


def _keys(*where: str | int) -> tuple[str, ...]:
    node: Any = schema()
    for step in where:
        node = node[step]
    return tuple(node["properties"])


def _distribution_keys() -> dict[str, tuple[str, ...]]:
    out: dict[str, tuple[str, ...]] = {}
    for branch in schema()["$defs"]["distribution"]["oneOf"]:
        names = branch["properties"]["distribution"]
        for name in names.get("enum", [names.get("const")]):
            out[name] = tuple(branch["properties"])
    return out


def load_spec(path: str | Path, today: date | None = None) -> Spec:
    """Read and resolve the spec file at `path`; raise SpecError naming the file on any problem."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError([Problem(None, "no such file; give the path of a JSON spec")], str(path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError([Problem(None, f"cannot read the spec: {exc}")], str(path)) from None
    return parse_spec(text, source=str(path), today=today, default_name=path.stem)


def parse_spec(
    text: str,
    source: str | None = None,
    today: date | None = None,
    default_name: str | None = None,
) -> Spec:
    """Parse JSON text into a resolved Spec. `today` is the run day for rolling windows."""
    text = text.removeprefix("\ufeff")  # a UTF-8 byte order mark, as some Windows editors write
    if not text.strip():
        raise SpecError([Problem(None, "the spec is empty; write a JSON object such as "
                                       "{\"architecture\": \"ridge\"}")], source)
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SpecError([_malformed(text, exc)], source) from None
    lines = jsonpos.line_index(text)
    return Checker(lines, source).spec(raw, today or date.today(), default_name)


def _malformed(text: str, exc: json.JSONDecodeError) -> Problem:
    """The one line for text that is not JSON; a comma before } or ] (which JSON does not allow)
    said as such, with where the comma is."""
    where = f"line {exc.lineno} column {exc.colno}"
    before = text[:exc.pos].rstrip()
    if before.endswith(",") and text[exc.pos:exc.pos + 1] in ("}", "]"):
        comma = len(before) - 1
        line = text.count("\n", 0, comma) + 1
        column = comma - (text.rfind("\n", 0, comma) + 1) + 1
        return Problem(None, f"malformed JSON at line {line} column {column}: a trailing comma before "
                             f"{text[exc.pos]}; JSON allows none: remove it", line)
    return Problem(None, f"malformed JSON at {where}: {exc.msg}", exc.lineno)


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "an object"


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


class Checker:
    """Walks the raw JSON once, collecting every problem before raising them together."""

    def __init__(self, lines: dict[str, int] | None = None, source: str | None = None):
        self.lines = lines or {}
        self.source = source
        self.problems: list[Problem] = []

    # -- helpers -------------------------------------------------------------------------------
    def problem(self, path: str, message: str) -> None:
        self.problems.append(Problem(path, message, jsonpos.nearest_line(self.lines, path)))

    def obj(self, value: Any, path: str, known: tuple[str, ...]) -> dict[str, Any] | None:
        """`value` as a dict whose keys are all known, or None (with a problem) if not a dict."""
        if not isinstance(value, dict):
            self.problem(path, f"expected an object, got {_type_name(value)}")
            return None
        for key in value:
            if key not in known:
                self.problem(jsonpos.join(path, key), unknown_key(key, known))
        return value

    def typed(self, value: Any, path: str, check, expected: str, default: Any = None) -> Any:
        if value is _MISSING:
            return default
        if not check(value):
            self.problem(path, f"expected {expected}, got {_type_name(value)} {json.dumps(value)}")
            return default
        return value

    def integer(self, value: Any, path: str, minimum: int, default: Any, maximum: int | None = None) -> Any:
        got = self.typed(value, path, _is_int, f"an integer >= {minimum}", _MISSING)
        if got is _MISSING:
            return default
        if got < minimum:
            self.problem(path, f"expected an integer >= {minimum}, got {got}")
            return default
        if maximum is not None and got > maximum:
            self.problem(path, f"expected an integer from {minimum} to {maximum:,}, got {got:,}")
            return default
        return got

    def text(self, value: Any, path: str, default: Any = None) -> Any:
        return self.typed(
            value, path, lambda v: isinstance(v, str) and v.strip() != "", "a non-empty string", default
        )

    def choice(self, value: Any, path: str, allowed: tuple[str, ...], default: str) -> str:
        if value is _MISSING:
            return default
        if value not in allowed:
            options = ", ".join(repr(a) for a in allowed)
            self.problem(path, f"expected one of {options}, got {json.dumps(value)}")
            return default
        return value

    def convert(self, value: Any, path: str, parse, default: Any = None) -> Any:
        if value is _MISSING:
            return default
        try:
            return parse(value)
        except ValueError as exc:
            self.problem(path, str(exc))
            return default

    # -- the spec ------------------------------------------------------------------------------
    def spec(self, raw: Any, today: date, default_name: str | None) -> Spec:
        top = self.obj(raw, "", _keys())
        if top is None:
            raise SpecError(self.problems, self.source)
        get = lambda key: top.get(key, _MISSING)  # noqa: E731

        command = self.command(get("command"))
        architectures = self.architectures(get("architecture"), "command" in top)  # a bad command: said there
        parameters, per_architecture = self.parameter_blocks(get("parameters"), architectures)
        located = [  # (JSON path, name, domain) of every parameter
            (jsonpos.join(jsonpos.join("parameters", arch) if arch else "parameters", name), name, domain)
            for arch, ps in per_architecture or (("", parameters),)
            for name, domain in ps
        ]
        if command is not None:
            self.placeholders(command, located, get("trial"))
        date_ranges, rolling = self.date_ranges(top, today)
        spaces = {a: ps for a, ps in per_architecture or ((a, parameters) for a in architectures)}
        search = self.search(get("search"), located, spaces, command)
        objective = self.objective(get("objective"))
        spec = Spec(
            name=self.text(get("name"), "name", default_name or (architectures or ("spec",))[0]),
            architectures=architectures,
            command=command,
            date_ranges=date_ranges,
            rolling=rolling,
            parameters=parameters,
            per_architecture=per_architecture,
            search=search,
            objective=objective,
            metrics=self.metrics(get("metrics")),
            data=self.data(get("data")),
            resources=self.resources(get("resources")),
            executor=self.executor(get("executor")),
            trial=self.trial(get("trial")),
            mode=self.choice(get("mode"), "mode", ("full", "quick"), "full"),
            quick=self.quick(get("quick")),
            output=self.text(get("output"), "output", "runs"),
            today=today,
            scheduler=self.scheduler(get("scheduler"), objective),
            default_dates=not any(k in top for k in ("date-range", "date_ranges")),
        )
        if not self.problems and search.strategy == "grid":
            self.grid_size(spec)
        if spec.executor.type == "dask" and spec.resources.gpus_per_trial == "auto":  # as make_executor says
            implied = "gpus_per_trial" not in (top.get("resources") or {})
            self.problem("resources.gpu_memory_per_trial" if implied else "resources.gpus_per_trial",
                         ("gpu_memory_per_trial without a share" if implied else "gpus_per_trial \"auto\"")
                         + " packs trials by a GPU's free memory, which needs the local executor; on Dask give "
                           "gpus_per_trial a share (0.5) or a count of GPUs")
        if self.problems:
            raise SpecError(self.problems, self.source)
        return spec

    def grid_size(self, spec: Spec) -> None:
        """A grid's trials are counted and indexed as integers of at most 2^63 - 1."""
        configurations = 0
        for arch in spec.architectures:
            size = 1
            for _, domain in spec.space_of(arch):
                size *= len(domain.values) if isinstance(domain, Grid) else 1
            configurations += size
        trials = configurations * len(spec.date_ranges) * spec.search.repeats
        if trials > LARGEST_INT:
            self.problem("parameters", f"the grid has {configurations:.3g} configurations ({trials:.3g} trials), more "
                                       f"than hpt can count (2^63 - 1): search it at random with \"search\": "
                                       f"{{\"strategy\": \"random\", \"trials\": 100}}")

    def architectures(self, value: Any, has_command: bool) -> tuple[str, ...]:
        if value is _MISSING:
            if has_command:
                return ("command",)
            self.problem("architecture", "missing; name an architecture (e.g. \"mlp\") or give a \"command\"")
            return ()
        if isinstance(value, str):
            value = [value]
            paths = ["architecture"]
        elif isinstance(value, list) and value:
            paths = [jsonpos.join("architecture", i) for i in range(len(value))]
        else:
            self.problem("architecture", f"expected a name or a non-empty list of names, got {_type_name(value)}")
            return ()
        names = []
        for item, path in zip(value, paths):
            if self.text(item, path) is None:
                continue
            if item in names:
                self.problem(path, f"architecture {item!r} is listed twice")
            names.append(item)
        if has_command and names and names != ["command"]:  # "command" alone: a resolved spec's form
            self.problem("architecture", "give \"command\" (its trials' rows say architecture \"command\") or "
                                         "\"architecture\", not both")
        elif not has_command and "command" in names:
            self.problem("architecture", "architecture \"command\" needs the spec's \"command\" template, e.g. "
                                         "\"command\": [\"python\", \"train.py\", \"--lr\", \"{lr}\"]")
        return tuple(names)

    def command(self, value: Any) -> tuple[str, ...] | None:
        if value is _MISSING:
            return None
        if not isinstance(value, list) or not value:
            self.problem("command", "expected a non-empty list of strings, e.g. [\"python\", \"train.py\", \"--lr\", \"{lr}\"]")
            return None
        ok = True
        for i, item in enumerate(value):
            if not isinstance(item, str):
                self.problem(jsonpos.join("command", i), f"expected a string, got {_type_name(item)}")
                ok = False
        return tuple(value) if ok else None

    def placeholders(self, command: tuple[str, ...], located: list[tuple[str, str, Any]], trial: Any) -> None:
        """Every placeholder is a parameter or a fact (COMMAND_FACTS), no parameter takes a fact's
        name (the fact would win in the template: every trial would get the same argument), and
        {epochs} needs trial.epochs (else it would be an empty argument). `located`: (JSON path,
        name, domain) of each parameter; `trial`: the spec's raw "trial" value."""
        for path, name, _ in located:
            if name in COMMAND_FACTS:
                self.problem(path, f"'{name}' is hpt's own placeholder {{{name}}} ({COMMAND_FACTS[name]}): the "
                                   f"command's {{{name}}} gets that, never this parameter; rename the parameter "
                                   f"(e.g. 'my_{name}', used as {{my_{name}}}); {COMMAND_FACTS[name]} stays "
                                   f"available as {{{name}}}")
        epochs_set = isinstance(trial, dict) and trial.get("epochs") is not None
        known = {name for _, name, _ in located} | set(COMMAND_FACTS)
        for i, item in enumerate(command):
            path = jsonpos.join("command", i)
            try:
                fields = [(f, fmt, conv) for _, f, fmt, conv in string.Formatter().parse(item) if f is not None]
            except ValueError as exc:
                self.problem(path, f"bad placeholder in {item!r}: {exc}; write {{{{ and }}}} for literal braces")
                continue
            for name, fmt, conv in fields:
                if name not in known:
                    hint = difflib.get_close_matches(name, sorted(known), n=1)
                    tail = f"; did you mean '{{{hint[0]}}}'?" if hint else (
                        f"; use a parameter name or one of {', '.join(COMMAND_FACTS)}")
                    if not re.fullmatch(r"[\w.\-]+", name):  # '{"val_mse": 1}': JSON meant literally
                        tail += "; write {{ and }} for literal braces"
                    shown = "{" + name + (f"!{conv}" if conv else "") + (f":{fmt}" if fmt else "") + "}"
                    self.problem(path, f"unknown placeholder {shown!r}{tail}")
                elif name == "epochs" and not epochs_set:
                    self.problem(path, "{epochs} is trial.epochs, which this spec does not set (the command would "
                                       "get an empty argument); set \"trial\": {\"epochs\": N}, or tune a "
                                       "parameter of your own such as {n_epochs}")

    def date_ranges(self, top: dict, today: date) -> tuple[tuple[DateRange, ...], Rolling | None]:
        given = [k for k in ("date-range", "date_ranges") if k in top]
        if len(given) == 2:
            self.problem("date_ranges", "give either \"date-range\" or its alias \"date_ranges\", not both")
            return (), None
        key = given[0] if given else None
        value = top[key] if key else {"rolling": DEFAULT_ROLLING}
        path = key or "date-range"
        if isinstance(value, dict):
            return self.rolling(value, path, today)
        if not isinstance(value, list) or not value:
            self.problem(path, "expected a non-empty list of [start, end] pairs or {\"rolling\": {...}}")
            return (), None
        ranges: list[DateRange] = []
        for i, pair in enumerate(value):
            item = jsonpos.join(path, i)
            if not isinstance(pair, list) or len(pair) != 2:
                self.problem(item, f"expected a [start, end] pair of ISO dates, got {json.dumps(pair)}")
                continue
            start = self.convert(pair[0], jsonpos.join(item, 0), parse_date)
            end = self.convert(pair[1], jsonpos.join(item, 1), parse_date)
            if start is None or end is None:
                continue
            if end <= start:
                self.problem(jsonpos.join(item, 1), f"end {end} must be after start {start} (ranges are [start, end))")
                continue
            rng = DateRange(start, end)
            if rng in ranges:
                self.problem(item, f"date range {rng} is listed twice")
                continue
            ranges.append(rng)
        return tuple(ranges), None

    def rolling(self, value: dict, path: str, today: date) -> tuple[tuple[DateRange, ...], Rolling | None]:
        outer = self.obj(value, path, ("rolling",))
        if outer is None or "rolling" not in outer:
            if outer is not None:
                self.problem(path, "expected {\"rolling\": {\"count\": 3, \"length\": \"3M\"}} or a list of [start, end] pairs")
            return (), None
        path = jsonpos.join(path, "rolling")
        known = tuple(schema()["$defs"]["dateRanges"]["oneOf"][1]["properties"]["rolling"]["properties"])
        spec = self.obj(outer["rolling"], path, known)
        if spec is None:
            return (), None
        for required in ("count", "length"):
            if required not in spec:
                self.problem(jsonpos.join(path, required), "missing; e.g. {\"count\": 3, \"length\": \"3M\", \"step\": \"1M\"}")
        count = self.integer(spec.get("count", _MISSING), jsonpos.join(path, "count"), 1, None)
        length = self.convert(spec.get("length", _MISSING), jsonpos.join(path, "length"), parse_length)
        step = self.convert(spec.get("step", _MISSING), jsonpos.join(path, "step"), parse_length, length)
        end_text = spec.get("end", "today")
        end = self.convert(end_text, jsonpos.join(path, "end"), lambda text: _parse_end(text, today))
        if count is None or length is None or step is None or end is None:
            return (), None
        rule = Rolling(count, length, step, end_text)
        return tuple(rolling_windows(end, count, length, step)), rule

    def parameter_blocks(self, value: Any, architectures: tuple[str, ...]):
        """Shared parameters, or (with several architectures) one block per architecture."""
        blocks = (
            len(architectures) > 1 and isinstance(value, dict) and value
            and all(key in architectures and isinstance(v, dict) and "distribution" not in v
                    for key, v in value.items())
        )
        if not blocks:
            return self.parameters(value, "parameters"), None
        per = tuple(
            (arch, self.parameters(value.get(arch, {}), jsonpos.join("parameters", arch)))
            for arch in architectures
        )
        return (), per

    def parameters(self, value: Any, where: str) -> tuple[tuple[str, Domain], ...]:
        if value is _MISSING:
            return ()
        if not isinstance(value, dict):
            self.problem(where, f"expected an object of parameter names, got {_type_name(value)}")
            return ()
        out = []
        for name, raw in value.items():
            path = jsonpos.join(where, name)
            if not name.strip():
                self.problem(path, "a parameter name must not be empty")
                continue
            domain = self.domain(raw, path)
            if domain is not None:
                out.append((name, domain))
        return tuple(out)

    def domain(self, raw: Any, path: str) -> Domain | None:
        if isinstance(raw, list):
            if not raw:
                self.problem(path, "empty grid: give at least one value, or a scalar to fix the parameter")
                return None
            return Grid(tuple(raw))
        if not isinstance(raw, dict):
            return Fixed(raw)
        if "distribution" not in raw:
            if set(raw) == {"value"}:
                return Fixed(raw["value"])
            self.problem(path, "an object parameter needs \"distribution\" (e.g. {\"distribution\": \"uniform\", "
                               "\"low\": 0, \"high\": 1}); write {\"value\": {...}} to fix an object value")
            return None
        name = raw["distribution"]
        keys = _distribution_keys()
        if name not in keys:
            hint = difflib.get_close_matches(str(name), list(keys), n=1)
            tail = f"; did you mean '{hint[0]}'?" if hint else f"; known: {', '.join(keys)}"
            self.problem(jsonpos.join(path, "distribution"), f"unknown distribution {json.dumps(name)}{tail}")
            return None
        args = self.obj(raw, path, keys[name])
        before = len(self.problems)
        domain = self.distribution(name, args, path)
        if domain is None or len(self.problems) > before:
            return None
        return domain

    def distribution(self, name: str, args: dict, path: str) -> Distribution | None:
        def arg(key: str, check=_is_number, expected: str = "a number", required: bool = True, default=None):
            if key not in args:
                if required:
                    self.problem(jsonpos.join(path, key), f"missing; {name} needs {expected} here")
                return default
            return self.typed(args[key], jsonpos.join(path, key), check, expected, default)

        try:
            if name in ("uniform", "loguniform"):
                low, high = arg("low"), arg("high")
                return None if low is None or high is None else Uniform(low, high, log=name == "loguniform")
            if name in ("int", "randint"):
                low, high = arg("low", _is_int, "an integer"), arg("high", _is_int, "an integer")
                log = arg("log", lambda v: isinstance(v, bool), "true or false", False, False)
                step = arg("step", _is_int, "an integer", False, 1)
                return None if low is None or high is None else Int(low, high, log=log, step=step)
            if name == "choice":
                values = arg("values", lambda v: isinstance(v, list), "a list of values")
                weights = arg("weights", lambda v: isinstance(v, list) and all(_is_number(w) for w in v),
                              "a list of numbers", False)
                if values is None:
                    return None
                return Choice(tuple(values), None if weights is None else tuple(weights))
            if name in ("normal", "lognormal"):
                mu, sigma = arg("mu"), arg("sigma")
                return None if mu is None or sigma is None else Normal(mu, sigma, log=name == "lognormal")
            low, high, q = arg("low"), arg("high"), arg("q")
            if low is None or high is None or q is None:
                return None
            return Quantized(low, high, q, log=name == "qloguniform")
        except DomainError as exc:
            self.problem(jsonpos.join(path, exc.field) if exc.field else path, str(exc))
            return None

    def search(self, value: Any, located: list[tuple[str, str, Domain]],
               spaces: dict[str, tuple[tuple[str, Domain], ...]], command: tuple[str, ...] | None) -> Search:
        s = self.obj(value, "search", _keys("properties", "search")) if value is not _MISSING else {}
        s = s or {}
        has_distribution = any(isinstance(d, Distribution) for _, _, d in located)
        strategies = tuple(schema()["properties"]["search"]["properties"]["strategy"]["enum"])
        strategy = self.choice(s.get("strategy", _MISSING), "search.strategy", strategies,
                               "random" if has_distribution else "grid")
        if strategy == "grid":
            for path, _, domain in located:
                if isinstance(domain, Distribution):
                    self.problem(path,
                                 "grid search cannot enumerate a distribution; give a list of values, "
                                 "or set search.strategy to \"random\"")
        default_trials = DEFAULT_RANDOM_TRIALS if strategy != "grid" else None
        return Search(
            strategy=strategy,
            trials=self.integer(s.get("trials", _MISSING), "search.trials", 1, default_trials, MAX_TRIALS),
            seed=self.integer(s.get("seed", _MISSING), "search.seed", 0, 0, LARGEST_INT),
            order=self.choice(s.get("order", _MISSING), "search.order", ("shuffled", "sequential"), "shuffled"),
            repeats=self.integer(s.get("repeats", _MISSING), "search.repeats", 1, 1, MAX_REPEATS),
            max_time=self.convert(s.get("max_time", _MISSING), "search.max_time", parse_duration),
            initial=self.initial(s.get("initial", _MISSING), spaces, command),
        )

    def initial(self, value: Any, spaces: dict[str, tuple[tuple[str, Domain], ...]],
                command: tuple[str, ...] | None) -> tuple[tuple[str, dict[str, Any]], ...]:
        """search.initial: [{"lr": 0.01, ...}, ...], configurations run before the search's own; with
        several architectures each names its own ("architecture": "mlp"). `spaces`: each
        architecture's (name, domain) pairs. A parameter a configuration leaves out takes the
        spec's value where the spec fixes it (as every other trial does), and is otherwise not
        passed (the architecture's default); the result lists them in the spec's order."""
        if value is _MISSING:
            return ()
        names = {a: [n for n, _ in ps] for a, ps in spaces.items()}
        where = "search.initial"
        if not isinstance(value, list):
            self.problem(where, f"expected a list of configurations, e.g. [{{\"lr\": 0.01}}], got {_type_name(value)}")
            return ()
        architectures = tuple(names)
        used = set()  # the parameters a command's placeholders name: a command trial needs them all
        for item in command or ():
            try:
                used.update(f for _, f, _, _ in string.Formatter().parse(item) if f)
            except ValueError:
                pass  # said by placeholders()
        out, seen = [], set()
        for i, item in enumerate(value):
            path = jsonpos.join(where, i)
            if not isinstance(item, dict):
                self.problem(path, f"expected an object of parameter values, e.g. {{\"lr\": 0.01}}, "
                                   f"got {_type_name(item)}")
                continue
            params = dict(item)
            arch = params.pop("architecture", None)
            if arch is None:
                if len(architectures) > 1:
                    self.problem(path, "this spec has several architectures: say which this configuration is "
                                       f"for with \"architecture\": one of {', '.join(architectures)}")
                    continue
                arch = architectures[0] if architectures else None
            elif not isinstance(arch, str) or arch not in names:
                self.problem(jsonpos.join(path, "architecture"),
                             f"{arch!r} is not an architecture of this spec; one of {', '.join(architectures)}")
                continue
            if arch is None:
                continue
            known = names[arch]
            ok = True
            for key in params:
                if key not in known:
                    hint = difflib.get_close_matches(key, known, n=1)
                    tail = f"did you mean '{hint[0]}'?" if hint else f"its parameters: {', '.join(known) or 'none'}"
                    self.problem(jsonpos.join(path, key), f"'{key}' is not a parameter of {arch} in this spec; {tail}")
                    ok = False
            fixed = {n: d.value for n, d in spaces[arch] if isinstance(d, Fixed)}
            params = {n: params[n] if n in params else fixed[n] for n in known if n in params or n in fixed}
            missing = [n for n in known if n in used and n not in params]
            if missing:
                self.problem(path, f"the command uses {', '.join(missing)}: give {'it' if len(missing) == 1 else 'them'}"
                                   " a value here too")
                ok = False
            key = json.dumps([arch, params], sort_keys=True)
            if ok and key in seen:
                self.problem(path, "this configuration is listed twice")
            elif ok:
                seen.add(key)
                out.append((arch, params))
        return tuple(out)

    def objective(self, value: Any) -> Objective:
        if value is _MISSING:
            return Objective()
        o = self.obj(value, "objective", _keys("properties", "objective")) or {}
        return Objective(
            metric=self.text(o.get("metric", _MISSING), "objective.metric", Objective.metric),
            mode=self.choice(o.get("mode", _MISSING), "objective.mode", ("min", "max"), "min"),
        )

    def metrics(self, value: Any) -> tuple[str, ...]:
        if value is _MISSING:
            return ()
        if not isinstance(value, list):
            self.problem("metrics", f"expected a list of metric names, got {_type_name(value)}")
            return ()
        names = [self.text(m, jsonpos.join("metrics", i)) for i, m in enumerate(value)]
        return tuple(dict.fromkeys(n for n in names if n))

    def data(self, value: Any) -> DataSpec:
        if value is _MISSING:
            return DataSpec()
        if isinstance(value, str):
            value = {"path": value}
        d = self.obj(value, "data", _keys("properties", "data", "oneOf", 1)) or {}
        default = DataSpec()
        spec = DataSpec(
            path=self.text(d.get("path", _MISSING), "data.path", None),
            date_column=self.text(d.get("date_column", _MISSING), "data.date_column", default.date_column),
            target=self.text(d.get("target", _MISSING), "data.target", default.target),
            validation=self.convert(d.get("validation", _MISSING), "data.validation", parse_length,
                                    default.validation),
        )
        if spec.target == spec.date_column:  # the dates cannot be what the trials predict
            self.problem("data.target" if "target" in d else "data.date_column",
                         f"{spec.target!r} is also data.date_column; set data.target to the numeric column to "
                         f"predict" if "target" in d else
                         f"{spec.date_column!r} is also data.target; set data.date_column to the column of dates")
        return spec

    def resources(self, value: Any) -> Resources:
        if value is _MISSING:
            return Resources()
        from hpt_cli.devices.placement import check_gpus_per_trial, parse_trial_memory

        r = self.obj(value, "resources", _keys("properties", "resources")) or {}
        gpus = self.convert(r.get("gpus_per_trial", _MISSING), "resources.gpus_per_trial",
                            check_gpus_per_trial, 0.0)
        memory = self.convert(r.get("gpu_memory_per_trial", _MISSING), "resources.gpu_memory_per_trial",
                              parse_trial_memory, None)
        if memory is not None and gpus == 0:  # memory alone: admission by free memory (docs/gpu.md)
            gpus = "auto"
        return Resources(
            gpus_per_trial=gpus,
            cpus_per_trial=self.integer(r.get("cpus_per_trial", _MISSING), "resources.cpus_per_trial", 1, 1),
            gpu_memory_per_trial_mib=memory,
        )

    def executor(self, value: Any) -> ExecutorSpec:
        if value is _MISSING:
            return ExecutorSpec()
        if isinstance(value, str):
            value = {"type": value}
        e = self.obj(value, "executor", ("type", "scheduler")) or {}
        kind = self.choice(e.get("type", _MISSING), "executor.type", ("local", "dask"), "local")
        scheduler = self.text(e.get("scheduler", _MISSING), "executor.scheduler", None)
        return ExecutorSpec(kind, scheduler)

    def quick(self, value: Any) -> QuickSpec:
        if value is _MISSING:
            return QuickSpec()
        q = self.obj(value, "quick", _keys("properties", "quick")) or {}
        default = QuickSpec()
        return QuickSpec(
            date_ranges=self.integer(q.get("date_ranges", _MISSING), "quick.date_ranges", 1, default.date_ranges),
            train_length=self.convert(q.get("train_length", _MISSING), "quick.train_length", parse_length,
                                      default.train_length),
            epochs=self.integer(q.get("epochs", _MISSING), "quick.epochs", 1, default.epochs),
        )

    def scheduler(self, value: Any, objective: Objective) -> SchedulerSpec | None:
        if value is _MISSING:
            return None
        s = self.obj(value, "scheduler", _keys("properties", "scheduler"))
        if s is None:
            return None
        kinds = tuple(schema()["properties"]["scheduler"]["properties"]["type"]["enum"])
        if "type" not in s:
            self.problem("scheduler.type", f"missing; one of {', '.join(repr(k) for k in kinds)}")
            return None
        default = SchedulerSpec("asha")
        return SchedulerSpec(
            type=self.choice(s["type"], "scheduler.type", kinds, "asha"),
            metric=self.text(s.get("metric", _MISSING), "scheduler.metric", objective.metric),
            mode=self.choice(s.get("mode", _MISSING), "scheduler.mode", ("min", "max"), objective.mode),
            grace=self.integer(s.get("grace", _MISSING), "scheduler.grace", 1, default.grace),
            reduction=self.integer(s.get("reduction", _MISSING), "scheduler.reduction", 2, default.reduction),
        )

    def trial(self, value: Any) -> TrialSettings:
        if value is _MISSING:
            return TrialSettings()
        t = self.obj(value, "trial", _keys("properties", "trial")) or {}
        return TrialSettings(
            timeout=self.convert(t.get("timeout", _MISSING), "trial.timeout", parse_duration),
            retries=self.integer(t.get("retries", _MISSING), "trial.retries", 0, 0),
            epochs=self.integer(t.get("epochs", _MISSING), "trial.epochs", 1, None),
        )


def _parse_end(text: Any, today: date) -> date:
    """A rolling end: "today", "today-1M" (see relative_end) or an ISO date."""
    expected = "expected \"today\", \"today-1M\" (a length before the first of the run day's month) or an ISO date"
    if not isinstance(text, str):
        raise ValueError(f"{expected}, got {_type_name(text)}")
    try:
        end = relative_end(text, today)
    except ValueError:
        raise ValueError(f"{expected}, got {text!r}") from None
    return end if end is not None else parse_date(text)


def unknown_key(key: str, known: tuple[str, ...]) -> str:
    """"unknown key 'paramters'; did you mean 'parameters'?" (or the list of known keys)."""
    hint = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    if hint:
        return f"unknown key '{key}'; did you mean '{hint[0]}'?"
    return f"unknown key '{key}'; known keys: {', '.join(k for k in known if k != 'hpt')}"


__all__ = ["load_spec", "parse_spec", "schema", "unknown_key"]
