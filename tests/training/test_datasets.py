"""Training folders: a folder whose name is a class in another case gets a 'did you mean'."""

from __future__ import annotations

import pytest

from reviewer.training.datasets import list_dataset
from reviewer.training.errors import TrainingError
from tests.support.images import write_png


def test_a_class_folder_in_the_wrong_case_gets_a_did_you_mean(tmp_path):
    write_png(tmp_path / "Cat" / "a.png", 1)
    write_png(tmp_path / "dog" / "b.png", 2)
    write_png(tmp_path / "zebra" / "c.png", 3)
    with pytest.raises(TrainingError) as raised:
        list_dataset(tmp_path, ["cat", "dog"])
    message = str(raised.value)
    assert "folders Cat, zebra are not in the class list (cat, dog)" in message
    assert "'Cat': did you mean 'cat'?" in message and "'zebra': did you mean" not in message
