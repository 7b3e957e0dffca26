"""What an analyzer run looks at and how strict it is (one place for the knobs).

The run-level knobs are the `analyzer` section of the settings tree
(`INFERLOOP_ANALYZER__*`, `inferloop analyzer --help`); this class adds the options
of the pure checks, which code sets (tests, benchmarks, the demo) but the
environment does not.
"""

from __future__ import annotations

from pydantic import ConfigDict, Field, InstanceOf

from inferloop.settings import AnalyzerSettings

from ._data_quality import DataQualityOptions
from ._drift import DriftOptions
from ._performance import PerfOptions
from ._quality import QualityOptions


class AnalyzerConfig(AnalyzerSettings):
    """The analyzer settings plus the options of each check, validated at construction."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    drift: InstanceOf[DriftOptions] = Field(default_factory=DriftOptions)
    performance: InstanceOf[PerfOptions] = Field(default_factory=PerfOptions)
    quality: InstanceOf[QualityOptions] = Field(default_factory=QualityOptions)
    data_quality: InstanceOf[DataQualityOptions] = Field(default_factory=DataQualityOptions)

    @classmethod
    def from_settings(cls, section: AnalyzerSettings, **options) -> AnalyzerConfig:
        """The config of the `analyzer` settings section, with check options added."""
        return cls(**section.model_dump(), **options)

    @property
    def confirm_after_ns(self) -> int:
        """`confirm_after_s` in nanoseconds; one window when unset."""
        seconds = self.window_s if self.confirm_after_s is None else self.confirm_after_s
        return int(seconds * 1e9)
