"""TableSweeper: `python train.py -m table=<name>` runs every (row, seed) of the table.

A table (configs/table/<name>.yaml) lists rows, each an experiment plus overrides of its own
(`forecasting/etth1` with `data.horizon=48`), so the jobs are not a Cartesian product of
parameters and Hydra's BasicSweeper cannot express them. This sweeper expands
`table.rows × table.seeds` into jobs whose overrides are

    experiment=<row.experiment> <row.overrides...> seed=<s> table_row=<row.id> <command line...>

The command line comes last, so `trainer.max_epochs=1` shortens every job, and its sweeps
(`optimizer.lr=0.01,0.02`) multiply the rows as BasicSweeper would (each job then gets the
directory `<row>/seed<s>/<job number>`). Everything else (batching,
validating the job configs, the launcher: local, joblib, submitit_slurm) is BasicSweeper's.
`hydra.sweeper.rows=[id,...]` runs only those rows. Without a `table` node it is BasicSweeper.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException
from omegaconf import OmegaConf

NUMBERED_SUBDIR = "${table_row}/seed${seed}/${hydra.job.num}"
RESERVED = ("experiment", "seed", "table_row")  # set per job; seeds come from table.seeds


def row_overrides(table: Any, only: Sequence[str] | None = None) -> list[list[str]]:
    """The overrides of each (row, seed) job of a table config, rows first, then seeds."""
    ids = [str(row.id) for row in table.rows]
    unknown = sorted(set(only or ()) - set(ids))
    if unknown:
        raise HydraException(f"Unknown table rows: {unknown}; the table has {ids}")
    jobs = []
    for row in table.rows:
        if only and row.id not in only:
            continue
        for seed in table.seeds:
            jobs.append(
                [
                    f"experiment={row.experiment}",
                    *(str(o) for o in row.get("overrides") or ()),
                    f"seed={seed}",
                    f"table_row={row.id}",
                ]
            )
    return jobs


class TableSweeper(BasicSweeper):
    def __init__(
        self,
        max_batch_size: int | None = None,
        params: dict[str, str] | None = None,
        rows: list[str] | None = None,
    ) -> None:
        super().__init__(max_batch_size=max_batch_size, params=params)
        self.rows = list(rows) if rows else None
        self.jobs: list[list[str]] | None = None  # the table's (row, seed) jobs, set by sweep

    def sweep(self, arguments: list[str]) -> Any:
        assert self.config is not None and self.hydra_context is not None
        table = OmegaConf.select(self.config, "table")
        if table is None:
            return super().sweep(arguments)
        parser = OverridesParser.create(config_loader=self.hydra_context.config_loader)
        given = {o.get_key_element().lstrip("+~") for o in parser.parse_overrides(arguments)}
        clash = sorted(given & set(RESERVED))
        if clash:
            raise HydraException(
                f"table={table.name} sets {', '.join(clash)} per job; run other seeds with "
                "table.seeds=[0,1,2] and a single row with experiment=<its experiment>"
            )
        self.jobs = row_overrides(table, self.rows)
        return super().sweep(arguments)

    def split_arguments(  # type: ignore[override]
        self, overrides: list[Any], max_batch_size: int | None
    ) -> list[list[list[str]]]:
        """BasicSweeper's product of the command line, crossed with the table's jobs."""
        if self.jobs is None:
            return BasicSweeper.split_arguments(overrides, max_batch_size)
        (command_line,) = BasicSweeper.split_arguments(overrides, None)
        if len(command_line) > 1:  # a sweep on top: one <row>/seed<s>/<job number> dir per job
            jobs = [[*job, f"hydra.sweep.subdir={NUMBERED_SUBDIR}"] for job in self.jobs]
        else:
            jobs = self.jobs
        batch = [[*job, *args] for job, args in itertools.product(jobs, command_line)]
        if max_batch_size is None:
            return [batch]
        return list(BasicSweeper.split_overrides_to_chunks(batch, max_batch_size))
