"""webapp.predictor: the served prediction is the trainer's evaluation of the same file."""

import io

import keras
import numpy as np
import pytest

from conftest import TINY_CLASSES
from trainer.data import load_folder
from trainer.train import evaluate
from webapp.predictor import PredictionError, parse_top_k


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_served_probabilities_equal_trainer_evaluate(client, models_dir, make_image, tmp_path, fmt):
    # An EXIF-free photo of odd size, so decoding and resizing both matter.
    data = make_image(fmt, size=(37, 23), seed=5)
    (tmp_path / "labelled" / "cat").mkdir(parents=True)
    (tmp_path / "labelled" / "cat" / f"photo.{fmt.lower()}").write_bytes(data)

    served = client.post("/api/predict", data={"image": (io.BytesIO(data), "photo"), "model": "tiny", "top_k": "3"},
                         content_type="multipart/form-data").get_json()
    served = {p["label"]: p["probability"] for p in served["predictions"]}

    model = keras.saving.load_model(models_dir / "tiny.h5")
    folder = load_folder(tmp_path / "labelled", 16, classes=TINY_CLASSES)
    probabilities = model.predict(folder.images.astype(np.float32), verbose=0)[0]
    assert served == pytest.approx(dict(zip(TINY_CLASSES, probabilities.tolist())), abs=1e-6)
    # `trainer evaluate` scores the file with those same probabilities.
    assert evaluate(model, folder)["loss"] == pytest.approx(-np.log(served["cat"]), rel=1e-5)


def test_top_k_bounds(app):
    with app.app_context():
        assert parse_top_k(None) == 5 and parse_top_k("") == 5 and parse_top_k("3") == 3
        assert parse_top_k("1") == 1 and parse_top_k("1000") == 1000
        # "\u0661": an Arabic-Indic digit, isdigit() but not ASCII; int() of 5000 digits would itself fail.
        for bad in ("0", "-1", "1001", "1.5", "2.5", "abc", "\u0661", "9" * 5000):
            with pytest.raises(PredictionError, match="top_k") as refused:
                parse_top_k(bad)
            assert refused.value.status == 400
