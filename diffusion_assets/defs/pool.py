"""The GPU pool's crash safety: the executor every job runs with, and the sensor that frees dead runs' slots.

Every job runs its steps inside the run worker (Dagster's in-process executor): a GPU step is then
the run worker itself, so one ``kill -9`` ends both, and no step process is left to run on outside
the pool (the multiprocess executor's step processes outlive a killed run worker). The executor also
records the run's owner (``diffusion_assets.runs``) and, when a step waits for a pool slot, says
which run holds it, at WARNING, after freeing the slots of dead runs.
"""

import dagster as dg

RECLAIM_INTERVAL_S = 15


class OwnedInProcessExecutor(dg.Executor):
    """Dagster's in-process executor, tagging the run with its owner process first."""

    def __init__(self, inner: dg.Executor):
        self._inner = inner

    @property
    def retries(self):
        return self._inner.retries

    @property
    def step_dependency_config(self):
        return self._inner.step_dependency_config

    def execute(self, plan_context, execution_plan):
        from diffusion_assets import runs  # noqa: PLC0415

        instance, run_id = plan_context.instance, plan_context.run_id
        instance.add_run_tags(run_id, runs.Owner.current().tags())
        for event in self._inner.execute(plan_context, execution_plan):
            message = event.message or ""
            if event.is_engine_event and "blocked by limit for pool" in message:
                pool = message.rsplit(" ", 1)[-1]
                for line in runs.reclaim_dead_runs(instance, pool):
                    plan_context.log.warning(line)
                for holder in runs.pool_holders(instance, pool, exclude=[run_id]):
                    plan_context.log.warning(holder.waiting_line(pool))
            yield event


@dg.executor(name="in_process", config_schema=dg.in_process_executor.config_schema)
def owned_in_process_executor(init_context) -> OwnedInProcessExecutor:
    """Every step in the run worker's own process (Dagster's `in_process` executor, same settings);
    the run records its owner process so that a killed run's pool slots can be freed."""
    return OwnedInProcessExecutor(dg.in_process_executor.executor_creation_fn(init_context))


@dg.sensor(minimum_interval_seconds=RECLAIM_INTERVAL_S, default_status=dg.DefaultSensorStatus.RUNNING)
def gpu_pool_sensor(context: dg.SensorEvaluationContext):
    """Frees the `gpu` pool slots of runs whose process on this host is gone (marking the run
    failed) and of ended runs; never touches a live run. Requests no runs."""
    from diffusion_assets import runs  # noqa: PLC0415

    freed = runs.reclaim_dead_runs(context.instance, runs.GPU_POOL)
    for line in freed:
        context.log.warning(line)
    return dg.SkipReason("; ".join(freed) or "every gpu slot is held by a live run, or free")
