"""One-line summaries of errors that run to pages."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy

from building_energy.logs import error_summary


def test_an_error_summary_gives_the_cause_a_wrapper_only_repeats_and_keeps_one_that_adds_to_it(
    tmp_path: Path,
) -> None:
    engine = sqlalchemy.create_engine(f"sqlite:///{tmp_path / 'store.db'}")
    with pytest.raises(sqlalchemy.exc.OperationalError) as caught, engine.connect() as connection:
        connection.execute(sqlalchemy.text("SELECT * FROM missing"))
    # SQLAlchemy's message holds the driver's, with the driver's type before it and the SQL after.
    assert str(caught.value).splitlines()[0] == "(sqlite3.OperationalError) no such table: missing"
    assert error_summary(caught.value) == "OperationalError: no such table: missing"
    with pytest.raises(ValueError, match=r"store\.db") as wrapped:
        raise ValueError(f"{tmp_path / 'store.db'}: cannot read it\nmore") from caught.value
    assert error_summary(wrapped.value) == f"ValueError: {tmp_path / 'store.db'}: cannot read it"
    assert error_summary(RuntimeError()) == "RuntimeError: "


@pytest.mark.parametrize(
    "wrapper",
    [
        LookupError("no registered model 'name' in the store"),
        ValueError("the MLflow store at sqlite:///m/mlflow.db could not be written: KeyError: 'name'"),
    ],
)
def test_an_error_summary_keeps_any_other_wrapper_even_when_it_quotes_its_cause(wrapper: Exception) -> None:
    with pytest.raises(type(wrapper)) as caught:
        try:
            {}["name"]
        except KeyError as cause:
            raise wrapper from cause
    assert error_summary(caught.value) == f"{type(wrapper).__name__}: {wrapper}"
