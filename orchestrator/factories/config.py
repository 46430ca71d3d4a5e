"""``IntervalGCSAsset``: the factory's configuration, an :class:`~worker.core.spec.ImportSpec` plus what only Dagster needs."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from orchestrator.factories.new_files_cursor import parse_lookback
from worker.core.spec import ImportSpec

#: ``asset_kwargs`` keys the factory sets itself; passing them would silently fight the spec.
RESERVED_ASSET_KWARGS = frozenset(
    {"name", "key", "key_prefix", "partitions_def", "backfill_policy", "check_specs", "required_resource_keys",
     "compute_fn", "ins", "io_manager_key", "io_manager_def", "deps"}
)

#: Partitions one backfill run covers at most (one worker launch each): a 900-day backfill is 30
#: runs of 30 intervals, each well inside the pod wait (4 h), rather than one run that outlives it.
DEFAULT_MAX_PARTITIONS_PER_RUN = 30

#: The resource key of the worker launcher the asset and the clean-up job use.
DEFAULT_LAUNCHER_RESOURCE_KEY = "launcher"

#: How far back in time the new-files sensor re-lists a sortable layout to notice re-uploads
#: (for a daily layout: yesterday and today); see docs/orchestrator.md, "The new-files sensor".
DEFAULT_SENSOR_LOOKBACK = "1d"


@dataclass(kw_only=True, frozen=True)
class IntervalGCSAsset(ImportSpec):
    """An :class:`~worker.core.spec.ImportSpec` plus what only Dagster needs.

    ``asset_kwargs`` go to ``@asset`` unchanged (``group_name``, ``owners``, ``tags``,
    ``description``, ``kinds``, ``metadata``, ...); the keys the factory derives from
    the spec (name, key_prefix, partitions_def, ...) are refused. They never reach
    the worker: :meth:`ImportSpec.to_dict` sends only the spec's own fields.

    ``max_partitions_per_run``: a backfill is split into runs of at most this many
    partitions (``BackfillPolicy.multi_run``); ``None`` runs any backfill as one run.
    ``launcher_resource_key``: the ``WorkerLauncher`` resource the asset launches with.
    ``sensor_lookback``: a duration (``"6h"``, ``"1d"``, ``"36h"``, ``"7d"``, ``"30m"``; units
    m, h, d, w): for a sortable layout, each pass of the new-files sensor starts at the interval
    containing the earlier of ``now - sensor_lookback`` and the interval after the newest one it
    requested, so a re-upload into an interval that began within the look-back is requested
    again and an older one is not (it needs a run of that partition).
    ``max_arrival_to_queryable``: a duration in the same units (``"5m"``, ``"1h"``); when set, the asset
    gets the WARN check ``arrival_to_queryable``, which fails a run that published an interval more
    than that long after its newest file's GCS ``updated`` time (``arrival_to_queryable_seconds``).
    """

    asset_kwargs: dict[str, Any] = field(default_factory=dict)
    max_partitions_per_run: int | None = DEFAULT_MAX_PARTITIONS_PER_RUN
    launcher_resource_key: str = DEFAULT_LAUNCHER_RESOURCE_KEY
    sensor_lookback: str = DEFAULT_SENSOR_LOOKBACK
    max_arrival_to_queryable: str | None = None

    #: Spec errors name the spec as the orchestrator's user wrote it: ``IntervalGCSAsset 'name': field ...``.
    spec_label = "IntervalGCSAsset"

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.asset_kwargs, dict):
            self._fail("asset_kwargs", f"is {self.asset_kwargs!r}", "give a dict of @asset keyword arguments")
        clash = sorted(RESERVED_ASSET_KWARGS & set(self.asset_kwargs))
        if clash:
            self._fail(
                "asset_kwargs", f"sets {clash}",
                "leave these out: the factory derives them from the spec (use name/key_prefix/interval instead)",
            )
        per_run = self.max_partitions_per_run
        if per_run is not None and (isinstance(per_run, bool) or not isinstance(per_run, int) or per_run < 1):
            self._fail("max_partitions_per_run", f"is {per_run!r}",
                       "give a whole number of partitions per backfill run (1 or more), or None for one run")
        key = self.launcher_resource_key
        if not isinstance(key, str) or not key.isidentifier():
            self._fail("launcher_resource_key", f"is {key!r}", "give a resource key such as 'launcher'")
        try:
            parse_lookback(self.sensor_lookback)
        except ValueError:
            self._fail("sensor_lookback", f"is {self.sensor_lookback!r}",
                       "give a duration such as '1d', '36h' or '30m' (whole numbers of m, h, d or w)")
        if self.max_arrival_to_queryable is not None:
            try:
                bound = parse_lookback(self.max_arrival_to_queryable)
            except ValueError:
                bound = timedelta()
            if bound <= timedelta():
                self._fail("max_arrival_to_queryable", f"is {self.max_arrival_to_queryable!r}",
                           "give a positive duration such as '5m' or '1h' (whole numbers of m, h, d or w), or leave it unset")

    @property
    def sensor_lookback_delta(self) -> timedelta:
        """``sensor_lookback`` as a :class:`~datetime.timedelta`."""
        return parse_lookback(self.sensor_lookback)

    @property
    def max_arrival_to_queryable_seconds(self) -> float | None:
        """``max_arrival_to_queryable`` in seconds (None: unset, no ``arrival_to_queryable`` check)."""
        if self.max_arrival_to_queryable is None:
            return None
        return parse_lookback(self.max_arrival_to_queryable).total_seconds()
