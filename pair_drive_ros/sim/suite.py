# Copyright 2026 pair_drive_ros maintainers
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
# You may obtain a copy of the License at
#
#     http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS,
# WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
# See the License for the specific language governing permissions and
# limitations under the License.

"""
The scenario suite: scenarios as data (YAML) with named seed ranges (splits).

`resolve_jobs` turns "suite + split, or seed ranges" into (scenario, seed) jobs for any command
(generate, evaluate, reports). Seed specs (`parse_seeds`): `0-9` (inclusive), `3`, lists
`0-9,20,30-31`, and per scenario `highway=0-9;merge=5,7` (a scenario absent from a per-scenario
spec gets no seeds).
"""

from dataclasses import dataclass, field
import hashlib
import logging
from pathlib import Path
import re

import numpy as np
import yaml

LOG = logging.getLogger(__name__)

SPLITS = ('train', 'val', 'test')   # the standard splits; a suite may name others
_SPLIT_NAME = re.compile(r'^[A-Za-z0-9][A-Za-z0-9_.-]*$')
EXPERTS = ('idm', 'search')
DEFAULT_SUITE = Path(__file__).resolve().parents[2] / 'config' / 'scenarios.yaml'


class SuiteError(ValueError):
    """The suite YAML is malformed."""


@dataclass(frozen=True)
class ScenarioSpec:
    """
    One scenario: a highway-env env id with config overrides and per-split seed ranges.

    seeds: split name -> (first, last) half-open range. max_steps: episode cap at 10 Hz.
    reference_speed_mps: speed used for the route-completion target of open-ended routes
    (None: 0.8 x the speed limit of the ego's first lane). weight: share of `generate
    --episodes` given to this scenario (relative to the others).
    """

    name: str
    env_id: str
    family: str
    expert: str = 'idm'
    config: dict = field(default_factory=dict)
    seeds: dict = field(default_factory=dict)
    max_steps: int = 200
    reference_speed_mps: float | None = None
    weight: float = 1.0

    def seed_range(self, split: str) -> range:
        """Seeds of a split."""
        if split not in self.seeds:
            raise SuiteError(f'scenario {self.name!r} has no seeds for split {split!r}')
        first, last = self.seeds[split]
        return range(int(first), int(last))


@dataclass(frozen=True)
class Suite:
    """All scenarios of a suite file."""

    scenarios: dict
    path: str = ''
    sha256: str = ''

    def get(self, name: str) -> ScenarioSpec:
        """Return the scenario with this name."""
        if name not in self.scenarios:
            raise SuiteError(f'unknown scenario {name!r}; suite has {sorted(self.scenarios)}')
        return self.scenarios[name]

    def names(self) -> list[str]:
        """Scenario names in file order."""
        return list(self.scenarios)


def load_suite(path: str | Path = DEFAULT_SUITE) -> Suite:
    """Read and validate a suite YAML file."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as err:
        raise SuiteError(f'cannot read suite {path}: {err}') from err
    if not isinstance(data, dict) or not isinstance(data.get('scenarios'), dict):
        raise SuiteError(f'{path}: expected a mapping with a "scenarios" mapping')
    scenarios = {}
    allowed = {f for f in ScenarioSpec.__dataclass_fields__ if f != 'name'}
    for name, entry in data['scenarios'].items():
        if not isinstance(entry, dict) or 'env_id' not in entry:
            raise SuiteError(f'{path}: scenario {name!r} needs an env_id')
        unknown = set(entry) - allowed
        if unknown:
            raise SuiteError(f'{path}: scenario {name!r} has unknown keys {sorted(unknown)}')
        entry = dict(entry)
        entry.setdefault('family', name)
        if entry.get('expert', 'idm') not in EXPERTS:
            raise SuiteError(f'{path}: scenario {name!r} expert must be one of {EXPERTS}')
        seeds = {}
        for split, rng in (entry.get('seeds') or {}).items():
            if (not _SPLIT_NAME.match(str(split)) or not isinstance(rng, (list, tuple))
                    or len(rng) != 2 or int(rng[0]) >= int(rng[1])):
                raise SuiteError(f'{path}: scenario {name!r} bad seed range {split}: {rng}')
            seeds[split] = (int(rng[0]), int(rng[1]))
        ranges = sorted(seeds.values())
        for (_, b), (c, _) in zip(ranges, ranges[1:]):
            if c < b:
                raise SuiteError(f'{path}: scenario {name!r} seed ranges overlap between splits')
        entry['seeds'] = seeds
        entry['config'] = dict(entry.get('config') or {})
        scenarios[name] = ScenarioSpec(name=name, **entry)
    return Suite(scenarios, str(path), hashlib.sha256(path.read_bytes()).hexdigest())


def check_split_name(split: str) -> str:
    """Return `split` if it is a usable split (folder) name, else raise SuiteError."""
    if not _SPLIT_NAME.match(str(split)):
        raise SuiteError(f'bad split name {split!r}: use letters, digits, ".", "_", "-"')
    return str(split)


def _parse_ranges(text: str) -> list[int]:
    seeds: list[int] = []
    for part in text.split(','):
        part = part.strip()
        m = re.fullmatch(r'(\d+)(?:-(\d+))?', part)
        if not m:
            raise SuiteError(f'bad seed range {part!r}: use N, A-B (inclusive) or a comma list')
        first = int(m.group(1))
        last = int(m.group(2)) if m.group(2) is not None else first
        if last < first:
            raise SuiteError(f'bad seed range {part!r}: {last} < {first}')
        seeds.extend(range(first, last + 1))
    if len(set(seeds)) != len(seeds):
        raise SuiteError(f'seed spec {text!r} repeats seeds')
    return seeds


def parse_seeds(text: str) -> dict:
    """
    Parse a seed spec: {None: seeds} for all scenarios, or {scenario: seeds}.

    '11000-11019' -> {None: [11000, ..., 11019]}; 'highway=0-4;merge=7,9' ->
    {'highway': [0, ..., 4], 'merge': [7, 9]}. Ranges are inclusive.
    """
    text = text.strip()
    if not text:
        raise SuiteError('empty seed spec')
    if '=' not in text:
        return {None: _parse_ranges(text)}
    out = {}
    for item in text.split(';'):
        name, sep, ranges = item.partition('=')
        name = name.strip()
        if not sep or not name or name in out:
            raise SuiteError(f'bad per-scenario seed spec {item!r}: use NAME=RANGES;NAME=RANGES')
        out[name] = _parse_ranges(ranges)
    return out


def allot(total: int, weights: list[float]) -> list[int]:
    """Split `total` in proportion to `weights` (largest remainder, ties to the first)."""
    w = np.asarray(weights, dtype=np.float64)
    if total < 0 or len(w) == 0 or np.any(w < 0) or w.sum() <= 0:
        raise ValueError(f'cannot split {total} episodes with weights {list(weights)}')
    exact = total * w / w.sum()
    counts = np.floor(exact).astype(int)
    order = sorted(range(len(w)), key=lambda k: (-(exact[k] - counts[k]), k))
    for k in order[:total - int(counts.sum())]:
        counts[k] += 1
    return [int(c) for c in counts]


def resolve_jobs(suite: 'Suite', split: str | None = None, *, seeds: str | dict | None = None,
                 episodes: int | None = None, per_scenario: int | None = None, skip: int = 0,
                 scenarios: list[str] | None = None) -> list[tuple[str, int]]:
    """
    (scenario, seed) jobs of a suite, in a deterministic order.

    Exactly one way to choose seeds:
    - `seeds`: a seed spec (see parse_seeds) or its parsed dict; the split is only a label then
      (a seed that lies in another split's range of a scenario is logged as a warning);
    - `episodes`: a total over the split's scenarios in proportion to their weight, the first
      seeds of each scenario's range (generate's plan);
    - `per_scenario`: that many seeds of each scenario's split range after `skip` (evaluation).
    `scenarios` restricts the scenarios (default: all; with a split, those that have it).
    Jobs are ordered by seed, then by scenario order in the suite, so that partial runs cover
    every scenario.
    """
    if sum(x is not None for x in (seeds, episodes, per_scenario)) != 1:
        raise ValueError('give exactly one of seeds, episodes or per_scenario')
    for name in scenarios or []:
        suite.get(name)
    names = list(scenarios or suite.names())
    jobs: list[tuple[str, int]] = []
    if seeds is not None:
        spec = parse_seeds(seeds) if isinstance(seeds, str) else dict(seeds)
        for name in spec:
            if name is not None:
                suite.get(name)
                if scenarios and name not in scenarios:
                    raise SuiteError(f'seed spec names {name!r}, not among the selected '
                                     f'scenarios {names}')
        for name in names:
            chosen = spec.get(None, spec.get(name, []))
            jobs.extend((name, int(s)) for s in chosen)
            _warn_other_split(suite.get(name), split, chosen)
    else:
        if split is None:
            raise ValueError('a split is needed to choose seeds by count')
        if not scenarios:
            names = [n for n in names if split in suite.get(n).seeds]
        if not names:
            known = sorted({s for n in suite.names() for s in suite.get(n).seeds})
            raise SuiteError(f'no scenario of the suite has seeds for split {split!r}; '
                             f'splits: {known}')
        counts = (allot(episodes, [suite.get(n).weight for n in names]) if episodes is not None
                  else [per_scenario] * len(names))
        for name, count in zip(names, counts):
            rng = suite.get(name).seed_range(split)
            if skip + count > len(rng):
                raise SuiteError(f'{name}: {count} episodes after {skip} requested, only '
                                 f'{len(rng)} seeds in split {split}')
            jobs.extend((name, rng[skip + i]) for i in range(count))
    order = {n: k for k, n in enumerate(names)}
    return sorted(jobs, key=lambda j: (j[1], order[j[0]]))


def _warn_other_split(spec: 'ScenarioSpec', split: str | None, seeds: list[int]) -> None:
    for other, (first, last) in spec.seeds.items():
        if other == split:
            continue
        inside = [s for s in seeds if first <= s < last]
        if inside:
            LOG.warning('%s: seeds %d..%d lie in split %r of the suite (labelled %r here)',
                        spec.name, min(inside), max(inside), other, split)


def split_scenarios(split: str, episodes_per_scenario: int, skip: int = 0,
                    suite: 'Suite | None' = None) -> list[tuple[str, int]]:
    """
    (scenario, seed) pairs: N seeds of each scenario's range for the split, after `skip`.

    Scenario-major, in suite order (the order rollout sets were built in): the same pairs as
    `resolve_jobs(suite, split, per_scenario=N, skip=skip)`. Default suite unless `suite`.
    """
    suite = suite or load_suite()
    out = []
    for name in suite.names():
        seeds = list(suite.get(name).seed_range(split))
        out.extend((name, s) for s in seeds[skip:skip + episodes_per_scenario])
    return out
