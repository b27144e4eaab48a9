"""How `make test` shares the suite between two xdist workers (tests/conftest.py)."""

from __future__ import annotations

import pytest

from tests.conftest import SERIAL_GROUPS, group_of, pytest_xdist_make_scheduler

pytestmark = pytest.mark.code


def test_the_files_of_a_serial_group_are_one_work_unit() -> None:
    spark, second_lender = SERIAL_GROUPS["jvm"]
    assert group_of(f"{spark}::test_a") == group_of(f"{second_lender}::test_b[x]") == "jvm"


def test_each_sequence_of_documented_commands_is_a_work_unit_of_its_own() -> None:
    path = "tests/documented/test_commands.py"
    lifecycle = group_of(f"{path}::test_lifecycle_command_works[make train]")
    operations = group_of(f"{path}::test_operations_command_works[make up]")
    assert lifecycle == group_of(f"{path}::test_lifecycle_command_works[make rollback]") == "documented-lifecycle"
    assert operations == "documented-operations"
    assert group_of(f"{path}::test_files_command_works[make lint]") == "documented-files"
    assert group_of(f"{path}::test_the_list_names_only_documented_commands") == path


def test_any_other_file_is_a_work_unit_of_its_own() -> None:
    assert group_of("tests/serving/test_api.py::test_a") == "tests/serving/test_api.py"
    assert group_of("tests/serving/test_api.py::test_b") != group_of("tests/serving/test_admin.py::test_b")


def test_loadfile_is_scheduled_by_group_in_collection_order(
    pytestconfig: pytest.Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pytestconfig.option, "dist", "loadfile")
    monkeypatch.setattr(pytestconfig.option, "numprocesses", 2)
    monkeypatch.setattr(pytestconfig.option, "tx", ["2*popen"])
    monkeypatch.setattr(pytestconfig.option, "loadscopereorder", True)
    scheduler = pytest_xdist_make_scheduler(pytestconfig, None)
    assert scheduler is not None
    assert scheduler._split_scope("tests/ui/test_browser_models.py::test_x") == "browser"
    assert pytestconfig.option.loadscopereorder is False, "the longest groups are collected first: keep that order"
