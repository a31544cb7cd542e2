"""Config: Parsl's fields and defaults, and errors that name the field at construction or load."""
from __future__ import annotations

import pytest

import parsl_repro
from parsl_repro import python_app
from parsl_repro.config import Config
from parsl_repro.errors import ConfigurationError
from parsl_repro.executors import ThreadPoolExecutor
from parsl_repro.typecheck import ConfigurationTypeError


def test_defaults_match_parsl():
    c = Config()
    assert [type(e).__name__ for e in c.executors] == ["ThreadPoolExecutor"]
    assert c.executors[0].label == "threads" and c.executors[0].max_threads == 2
    assert (c.app_cache, c.checkpoint_files, c.checkpoint_mode, c.checkpoint_period) == (True, None, None, None)
    assert (c.retries, c.retry_handler, c.run_dir, c.exit_mode) == (0, None, "runinfo", "cleanup")
    assert (c.strategy, c.strategy_period, c.max_idletime) == ("simple", 5, 120.0)
    assert (c.garbage_collect, c.initialize_logging, c.usage_tracking, c.lazy_errors) == (True, True, 0, True)
    assert c.internal_tasks_max_threads == 10 and c.std_autopath is None and c.monitoring is None


@pytest.mark.parametrize("field,value", [
    ("retries", "2"),
    ("run_dir", 5),
    ("exit_mode", "explode"),
    ("app_cache", "yes"),
    ("executors", [object()]),
    ("checkpoint_mode", "sometimes"),
    ("strategy_period", "fast"),
])
def test_wrong_type_fails_at_construction_naming_the_field(field, value):
    with pytest.raises(ConfigurationTypeError, match=field) as info:
        Config(**{field: value})
    assert isinstance(info.value, TypeError) and isinstance(info.value, ConfigurationError)
    assert "Config" in str(info.value)


def test_duplicate_executor_labels_are_refused():
    with pytest.raises(ConfigurationError, match="label='same'"):
        Config(executors=[ThreadPoolExecutor(label="same"), ThreadPoolExecutor(label="same")])


@pytest.mark.parametrize("fields,message", [
    ({"checkpoint_mode": "periodic"}, "checkpoint_period"),
    ({"checkpoint_period": "every hour"}, "HH:MM:SS"),
    ({"retries": -1}, "retries"),
    ({"strategy": "greedy"}, "strategy"),
    ({"usage_tracking": 9}, "usage_tracking"),
])
def test_bad_values_fail_at_construction_naming_the_field(fields, message):
    with pytest.raises(ConfigurationError, match=message):
        Config(**fields)


def test_thread_pool_executor_type_errors_name_the_field():
    with pytest.raises(TypeError, match="max_threads"):
        ThreadPoolExecutor(max_threads="4")


def test_load_refuses_a_non_config():
    with pytest.raises(ConfigurationError, match="Config"):
        parsl_repro.load({"executors": []})


def test_loading_twice_is_refused_with_advice(dfk):
    with pytest.raises(ConfigurationError, match="cleanup"):
        parsl_repro.load(Config())


def test_several_executors_and_apps_pinned_by_label(load):
    kernel = load(executors=[ThreadPoolExecutor(label="left", thread_name_prefix="L"),
                             ThreadPoolExecutor(label="right", thread_name_prefix="R")])

    @python_app(executors=["left"])
    def on_left():
        import threading
        return threading.current_thread().name

    @python_app(executors=["right"])
    def on_right():
        import threading
        return threading.current_thread().name

    assert on_left().result().startswith("L") and on_right().result().startswith("R")
    assert set(kernel.executors) == {"left", "right", "_parsl_internal"}


def test_app_pinned_to_an_unknown_label_fails_only_its_task(load):
    load(executors=[ThreadPoolExecutor(label="cpu")])

    @python_app(executors=["gpu"])
    def needs_gpu():
        return 1

    @python_app
    def anywhere():
        return 2

    error = needs_gpu().exception(timeout=10)
    assert isinstance(error, ConfigurationError)
    assert "'gpu'" in str(error) and "'cpu'" in str(error) and "needs_gpu" in str(error)
    assert anywhere().result(timeout=10) == 2


def test_resource_specification_on_threads_fails_the_task_with_a_clear_error(dfk):
    from parsl_repro.executors.errors import InvalidResourceSpecification

    @python_app
    def wants_cores(parsl_resource_specification=None):
        return 1

    error = wants_cores(parsl_resource_specification={"cores": 2}).exception(timeout=10)
    assert isinstance(error, InvalidResourceSpecification) and "cores" in str(error)


def test_config_repr_reads_like_the_call():
    text = repr(Config(retries=3, executors=[ThreadPoolExecutor(label="x")]))
    assert text.startswith("Config(") and "retries=3" in text and "label='x'" in text


def test_a_non_executor_in_executors_names_the_field_once():
    """It said "Config: Config: field executors[0] ..." (the check's own prefix, then the wrapper's)."""
    with pytest.raises(ConfigurationTypeError) as raised:
        Config(executors=[ThreadPoolExecutor(), "threads"])
    assert str(raised.value) == "Config: field executors[1] is a str, not an executor (ParslExecutor)"


def test_monitoring_hub_imports_from_parsls_module_path():
    """Parsl's monitoring docs import it from parsl.monitoring.monitoring."""
    import parsl_repro.monitoring
    from parsl_repro.monitoring.monitoring import MonitoringHub

    assert MonitoringHub is parsl_repro.monitoring.MonitoringHub
    hub = MonitoringHub(workflow_name="w", resource_monitoring_interval=5)
    assert Config(monitoring=hub).monitoring is hub
