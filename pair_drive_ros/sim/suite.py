"""The scenario suite: scenarios as data (YAML), grouped into train/val/test seed ranges."""

from dataclasses import dataclass, field
from pathlib import Path

import yaml

SPLITS = ('train', 'val', 'test')
EXPERTS = ('idm', 'search')
DEFAULT_SUITE = Path(__file__).resolve().parents[2] / 'config' / 'scenarios.yaml'


class SuiteError(ValueError):
    """The suite YAML is malformed."""


@dataclass(frozen=True)
class ScenarioSpec:
    """One scenario: a highway-env env id with config overrides and per-split seed ranges.

    seeds: split -> (first, last) half-open range. max_steps: episode cap at 10 Hz.
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
            if split not in SPLITS or len(rng) != 2 or int(rng[0]) >= int(rng[1]):
                raise SuiteError(f'{path}: scenario {name!r} bad seed range {split}: {rng}')
            seeds[split] = (int(rng[0]), int(rng[1]))
        ranges = sorted(seeds.values())
        for (_, b), (c, _) in zip(ranges, ranges[1:]):
            if c < b:
                raise SuiteError(f'{path}: scenario {name!r} seed ranges overlap between splits')
        entry['seeds'] = seeds
        entry['config'] = dict(entry.get('config') or {})
        scenarios[name] = ScenarioSpec(name=name, **entry)
    return Suite(scenarios, str(path))


def split_scenarios(split: str, episodes_per_scenario: int, skip: int = 0) -> list:
    """(scenario, seed) pairs: N seeds of each scenario's range for the split, after `skip`."""
    suite = load_suite()
    out = []
    for name in suite.names():
        seeds = suite.get(name).seed_range(split)
        out.extend((name, s) for s in list(seeds)[skip:skip + episodes_per_scenario])
    return out
